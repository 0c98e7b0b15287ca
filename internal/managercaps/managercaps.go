// Package managercaps lets the packages built on the session manager
// (conversation, middleware) ask a *session.Manager[T] what its store can
// do, without an exported method. Their promises rest on the Manager's
// own writes: a timeout runs once because the Update that runs it is a
// compare-and-swap; a request that runs across "log out everywhere" fails
// to save because its Save is one. A store given next to the Manager (the
// due-index's, the index of devices') says nothing of the Manager's: a
// wrapper of the same store may forward Get, Set and Delete only.
package managercaps

// Swaps reports whether m, a *session.Manager[T] of any T, writes with
// compare-and-swap (its store is a store.Swapper); false for any other
// value. Package session sets it when it is initialized, so it is set in
// every program that can hold a Manager.
var Swaps func(m any) bool
