// Package session gives every chat-bot user or web visitor a session that is
// a Go struct of your own: checked by the compiler, validated on the way in
// and out, versioned across deploys, and stored in any byte-oriented store.
//
//	type Quiz struct {
//		Active   bool     `json:"active"`
//		Question int      `json:"question" validate:"gte=0,lte=50"`
//		Score    int      `json:"score"`
//		Answers  []string `json:"answers" validate:"max=50"`
//	}
//
//	m, err := session.New(session.Config[Quiz]{Store: st, Namespace: "quiz", TTL: 24 * time.Hour})
//	s, err := m.Load(ctx, userID) // decode -> migrate -> validate
//	s.Data.Score++                // typed: no map lookups, no casts
//	err = m.Save(ctx, s)          // validate -> encode -> compare-and-swap
//
// Or, for a read-modify-write that never loses an update:
//
//	quiz, err := m.Update(ctx, userID, func(q *Quiz) error { q.Score++; return nil })
//
// # Stores
//
// A [Manager] keeps sessions in a [store.Store]: any type with Get, Set and
// Delete on bytes. The module ships memstore (memory, with expiry and a
// snapshot file), filestore (one file per key), redisstore (Redis and Redis
// Cluster through go-redis v9) and sqlstore (PostgreSQL and SQLite). A
// session's key in the store is Namespace + ":" + key. Optional store
// abilities are found by type assertion: compare-and-swap ([store.Swapper]),
// expiry refresh ([store.Toucher], [store.Refresher]) and listing
// ([store.Scanner]).
//
// # Validation
//
// Data is checked on every Load and every Save with the validate struct tags
// of github.com/go-playground/validator/v10 and, when T or *T has one, a
// Validate() error method ([Validatable]). A Save that fails validation
// returns [ErrInvalid] naming the field and writes nothing; a Load of stored
// data that fails it returns ErrInvalid too, and the stored value is left as
// it is.
//
// # Versions
//
// The stored value is an envelope that records the schema version next to
// the data: with the JSON codec, {"typedsession":2,"data":{...}}. When T
// changes, add a step to a [migrate.Plan] in Config.Migrations; Load runs
// the steps from the stored version to the latest before decoding into T, and
// the next Save writes the migrated value back with compare-and-swap. Data
// without an envelope, written by an older app or another framework, is
// version 0 and is adopted by a step from 0. A stored version newer than the
// plan's latest gives [ErrFutureVersion]: an old binary never overwrites a
// schema it does not know. Config.WriteVersion keeps writing the previous
// version during a rolling deploy, and [Manager.MigrateAll] migrates every
// stored session at once.
//
// # Concurrency
//
// A Manager is safe for concurrent use. A [Session] belongs to the handler
// that loaded it. Save writes with compare-and-swap against the bytes it
// loaded when the store supports it, and returns [ErrConflict] when someone
// else saved in between; [Manager.Update] retries such conflicts with jittered
// exponential backoff, so concurrent updates of one key never lose a write.
// On a store without compare-and-swap the last Save wins.
//
// # Expiry
//
// Config.TTL is an idle timeout: every Load that finds a session and every
// write extend it by TTL. On a [store.Refresher] (Redis GETEX, memstore) the
// Load does it in the same round trip, so an unchanged session costs one
// round trip. Save writes nothing for an unchanged session, and nothing for a
// new session nobody changed. For a single field with its own lifetime, use
// [Expiring].
//
// # Errors
//
// Every error a Manager returns is an [*Error] naming the operation and the
// key, and matches one of [ErrConflict], [ErrCorrupt], [ErrInvalid],
// [ErrFutureVersion], [ErrMigration], [ErrTooLarge] with errors.Is, or wraps
// the store's or the context's error.
//
// # Middleware
//
// Package middleware loads a session before a handler and saves it after,
// for any handler shape, for net/http and for Telegram bots. Handlers read it
// with [From]. Middleware of your own binds sessions with [Bind].
package session
