// Package sim checks whole histories of the session manager under faults
// (issue 22, "Trust by construction"): a fault-injecting store wrapper
// ([Store]) and a simulation ([Run]) whose histories are checked for
// linearizability, with github.com/anishathalye/porcupine, against a
// sequential model of the documented contract (the table in model.go),
// plus invariants that need no linearization.
//
// # Runs
//
// The quick run is the root package's TestSimulation (sim_test.go): seeds
// 1 to 12 on memstore with a snapshot file, in every CI run. The soak
// command (internal/sim/soak, a module of its own) runs the same against
// memstore, filestore, Redis, PostgreSQL and NATS. A seed decides the
// operations each client draws and the fault of every call, by the
// operation's ID and the call's number within it (the number of calls an
// operation makes can still differ from run to run: a resend happens
// only after a failure).
//
// # What a fault kind becomes in a report
//
// Each finding names its kind, the slot (a session and the keys moves
// take it to), and, for "linearizability", the shortest prefix of the
// slot's history that no order of the operations explains, around the
// operation none could place, with the faults of each operation's calls.
// The kinds of issue 22, re-introduced one at a time, show as:
//
//	fault in the library                                  finding
//	a resent conditional delete's false trusted            linearizability: a Destroy or a move that returned
//	(example 1)                                            ErrConflict (or a move that succeeded) while
//	                                                       another process's create-if-absent proves the
//	                                                       delete landed; at the end a session under neither
//	                                                       key, or under two
//	an unchanged Save (or Update) that writes blindly     unchanged-save-wrote; linearizability: a Load
//	(example 2, store profile Get/Set/Delete only)        sees a value an earlier write had replaced
//	an undo after an open outcome (example 3)              linearizability at the end: "damaged value ...
//	                                                       should be quarantined 1 time(s), is 0"
//	a handed-on session staler than a Load (example 4)    linearizability: "no linearization places update
//	                                                       ... fn changes nothing" returning the value
//	                                                       another process had overwritten before the call
//	a clamp on one side of the freshness test (ex. 5)     load-touched-fresh (TTL 200 years seeds)
//	ErrOutcomeUnknown where nothing failed                 unknown-without-fault
//	an open outcome reported as a plain error              open-outcome-not-reported
//	an update applied twice                                applied-twice (a token twice in a log), or
//	                                                       linearizability
//	an acknowledged write lost                             linearizability (a later read or the end state)
//	a blind delete (Destroy, a move's old key) on a store  delete-not-refused (every seed of the profile
//	with compare-and-swap but no compare-and-delete        without compare-and-delete); linearizability: a
//	                                                       save made while the move ran is gone at the end
//
// # What the check assumes, and why
//
// Each is a limit of the harness or the model, not a rule of the
// library; each has its reason in a comment where it is made.
//
//   - The managers run with Config.LogKeys: the harness correlates a
//     MigrateAll's hook events with its store calls by key.
//   - No other process writes, damages or expires a move's new key while
//     the move runs (harness.moving): no one knows that key before the
//     move returns.
//   - A move that succeeded is checked as its two steps (splitMove): the
//     write of its new key, up to the start of its delete of the old key,
//     then that delete; a MigrateAll that migrated the new copy between
//     them is then explained (soak, memstore seed 2012).
//   - MigrateAll's reads of a move's new key while the move runs are left
//     out (transient): a move is two steps, and only a scan sees the
//     moment between them; the model takes every operation as one step.
//   - A move whose undo met another writer's value under its new key may
//     report ErrOutcomeUnknown although no call failed (undoMet): both
//     keys may hold a value then, which ErrConflict would deny.
//   - An operation's window is its store calls' (first start to last
//     end), not the time it waited before them: narrower, so stricter.
//   - A read that settles a write's open reply or a compare-and-delete's
//     false is not the operation's own read.
//   - An open quarantine may leave its copy and the original (the model's
//     "copied"), never neither.
//   - The end is observed key by key, each when the last operation on it
//     returned; a slot whose whole history the checker cannot finish in
//     CheckTimeout (stores without compare-and-swap) is checked without
//     the observations, then with each alone (perKey; the figures count
//     such slots as "key by key").
//
// Checked on 2026-12-07 by re-introducing each of issue 22's five faults
// alone (a local edit, not committed) and running the CI run (seeds 1 to
// 12, go test -run 'TestSimulation$' .):
//
//   - a resent compare-and-delete's false settled as a first answer:
//     linearizability in seeds 1, 2, 5, 6, 7 and 8 (a move that no
//     linearization places, another process's create of a key the model
//     still holds);
//   - an unchanged Save that Sets the loaded bytes on a Get/Set/Delete
//     store with a TTL: unchanged-save-wrote (24 and 25 findings) and
//     linearizability in seeds 4 and 10;
//   - an undo after an open outcome of a move's delete: linearizability
//     in seeds 1, 3, 4, 5, 6, 7, 8 and 10, among them seed 6's "damaged
//     value ... should be quarantined 1 time(s), is 0" and moves whose
//     session is under neither key at the end ("should hold ... but is
//     absent");
//   - a handed-on session not verified when fn changes nothing: not in
//     the CI run's seeds (its faults must meet); with the second command
//     below, "no linearization places update ... fn changes nothing" in
//     seeds 21 and 38 of 48;
//   - the TTL clamp on one side only (Config.TTL of 200 years): load-
//     touched-fresh in seeds 7 and 12 (170 and 172 findings).
//
// Examples 3 and 4 need their faults to meet (an outage during a
// quarantine; another process's write while the Update before still
// holds the key); the default rates meet them in some seeds only. To
// look for one kind, raise its faults and leave out the operations that
// find others first, for instance:
//
//	go test -run 'TestSimulation$' . -sim.seeds=48 -sim.disable=move,destroy,delete,save-unchanged -sim.faults=damage:0.05,outage:0.06
//	go test -run 'TestSimulation$' . -sim.seeds=48 -sim.disable=move,destroy,delete,migrate-all,save -sim.faults=foreign-write-after:0.08,outage:0,lost-reply:0,error-before:0,foreign-write-lost-reply:0,damage:0,ttl-low:0
package sim
