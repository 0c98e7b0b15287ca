// Package conversation runs typed, persistent dialogues (a quiz, a
// sign-up form, an order wizard) on top of a session.Manager: the
// conversation's state lives in the session's data, so every guarantee of
// a session holds for it: typed data, validation, versioned migrations,
// compare-and-swap and exactly-once writes, every store and every
// middleware.
//
// # Steps
//
// A step is a Go type; its value is the step's data. A handler, registered
// with [On], gets its step's data as that type and returns what comes
// next: [Goto] another step with its data, [Turn.Stay], [Turn.Back],
// [Turn.Cancel], [Turn.End] with the flow's typed result, or [Call] a
// sub-conversation. No state is named by a string in your code: a step is
// stored under the name of its Go type ([StepName]).
//
//	type Bot struct {
//		Conv conversation.State `json:"conv"`
//	}
//	type AskName struct{}
//	type AskAge struct{ Name string }
//	type Signup struct{ Name string; Age int }
//
//	f, err := conversation.New[Bot, string, Signup](conversation.Config[Bot]{
//		Name: "signup", Manager: m, Store: st,
//		State: func(b *Bot) *conversation.State { return &b.Conv },
//	})
//	conversation.On(f, func(t *conversation.Turn[Bot, string, Signup], d *AskName) (conversation.Next, error) {
//		name, _ := t.Update()
//		return conversation.Goto(AskAge{Name: name}), nil
//	})
//	conversation.On(f, func(t *conversation.Turn[Bot, string, Signup], d *AskAge) (conversation.Next, error) {
//		text, _ := t.Update()
//		age, err := strconv.Atoi(text)
//		if err != nil {
//			return t.Stay(), nil
//		}
//		return t.End(Signup{Name: d.Name, Age: age}), nil
//	})
//	out, err := f.Handle(ctx, chatKey, update.ID, text)
//
// T is your session type (it holds a [State] field), U the update type
// (a Telegram update, a message's text), R the flow's result type.
//
// # One atomic change per update
//
// [Flow.Handle] runs in one Manager.Update: the state and anything else a
// handler changes in the session (t.Session()) are saved together with
// compare-and-swap, and a conflict with another writer runs the handlers
// again on fresh data. Handlers must therefore only change data; side
// effects (sending a message) go in [Turn.Do], which runs once, after the
// save, in the process that saved (at most once: a process that dies
// between the save and the call loses it). The update's ID (Telegram's
// update_id) is kept in State.Recent (the last 16): an update whose ID is
// there is a duplicate and is not applied again, whichever replica or
// retry brings it, while updates that arrive out of order are each
// applied. Behind a session middleware (go-telegram/bot, telebot,
// telego), [Flow.Apply] runs the update on the session the middleware
// bound instead, and the middleware's save stores it. All of this across
// replicas needs the compare-and-swap of the Manager's store (a
// store.Swapper; a wrapper of a store must forward CompareAndSwap): on a
// store without it the Updates of one Manager still run one after the
// other, but replicas write blindly, the last writer wins, and each may
// apply an update; New refuses such a Manager for a flow with a due-index.
//
// # Timeouts
//
// A flow can time out as a whole (Config.Timeout, handler
// [Flow.OnFlowTimeout], default Cancel) and each step on its own
// ([OnTimeout], from the moment the step was entered). A timeout's
// handler runs once when the deadline passes, even if the user never
// writes again, after a restart, on whichever replica sweeps: each
// deadline is listed in a due-index in the store (values kept with
// compare-and-swap, see [Flow.Sweep] for the rules), and [Flow.Sweep] (or
// [Flow.RunSweeper] in every replica) runs the timeouts that are due,
// each in one Manager.Update whose compare-and-swap is the claim. The next
// update of a conversation whose deadline passed also runs the timeout
// first. A sweep reads the index's cursor and the values of the slots
// from the cursor to now (Config.Granularity wide, Config.Shards values
// each), never the pending conversations further ahead; each timeout
// costs about two round trips (a read and a compare-and-swap of its
// session) plus its share of the index's. The session's TTL, if any, must
// outlast the timeouts: a session that expired first has no timeout to
// run.
//
// # Sub-conversations, back, cancel, re-entry
//
// [Call] starts another flow (same T and U, its own result type) from a
// step; when it ends with [Turn.End], the handler registered with
// [OnReturn] for the calling step gets the typed result. Nesting is
// bounded by Config.MaxDepth. Back returns to the step left by the last
// Goto, with its data as it was left (Config.MaxHistory deep). Global
// handlers ([Flow.Global]) run before the step's handler, also when no
// conversation runs: "/cancel" there always wins, and a Goto from a
// global handler starts the flow (or restarts it: Config.Reentry).
//
// # Versions
//
// The state is part of the session's value, so a deploy that changes a
// step's data migrates it with the manager's migrate.Plan: [MigrateStep]
// converts the stored data of one step type. A conversation stored in a
// step (or flow) that the running binary no longer has is never reset:
// Handle, a sweep and Move return [ErrUnknownStep] and leave the stored
// value as it is, until [Flow.OnUnknown] names a fallback (Goto a step,
// Cancel or End), which gets the stored frame with its raw data.
//
// # Admin
//
// [Flow.Read] returns a user's [State] (flow, step, data, deadline);
// [Move] puts a running conversation in another step; [Flow.Cancel]
// cancels it, whatever its step. With the JSON codec the state is
// readable JSON in the store, so tsinspect's get shows it.
package conversation
