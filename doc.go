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
// Cluster through go-redis v9) and sqlstore (PostgreSQL, SQLite, MySQL and
// MariaDB). A
// session's key in the store is Namespace + ":" + key; a Namespace may not
// contain ':', so two (namespace, key) pairs never share a store key. Optional
// store abilities are found by type assertion: compare-and-swap
// ([store.Swapper]), compare-and-delete ([store.Deleter]), a read that
// returns the time left ([store.TTLGetter]), expiry refresh
// ([store.Toucher], [store.Refresher]) and listing ([store.Scanner]).
//
// # The stored value
//
// With the default JSON codec a session is stored as one readable JSON
// object, the envelope:
//
//	{"typedsession":2,"writes":["hT3kQ0aZr8Ym","Xb1dPq0sLw9e"],"data":{"score":3}}
//
// "typedsession" is the schema version; "writes" the identities of the last
// writes, newest first (at most 8; see Concurrency); "data" the codec's
// encoding of T. A JSON object with a "typedsession" member is an envelope
// whatever its member order or spacing (PostgreSQL's JSONB reorders members),
// and must then hold only the known members, each once, or Load returns
// [ErrCorrupt] and the bytes stay as they are. Data of another framework that
// happens to have a top-level "typedsession" member is therefore corrupt, not
// adopted. Anything else is version 0, adopted by a migration step from 0.
// With Config.Compressor or Config.Keyring set, "layers" lists the layers
// applied to the payload ("deflate" or "zstd", then "aes-256-gcm"), "kid"
// names the sealing key and "dict" the compression dictionary, and "data"
// holds the layers' output in base64. Other codecs get a binary frame
// with the same fields and the codec's name ("codec"). Values of the
// first envelope format ({"typedsession":N,"data":...}, the "\x00TS\x01"
// frame) still load. A sealed value's associated data covers every member
// that decides how its payload is read (version, codec, layers, key and
// dictionary IDs), so a value whose header was edited does not open.
//
// # Values
//
// What Save accepts, Load returns equal; what Load would refuse, Save
// refuses with [ErrInvalid] naming the field, writing nothing: a string that
// is not valid UTF-8 (JSON would change it to U+FFFD), nesting deeper than
// the decoder's 10,000 levels, a time.Time whose zone offset has seconds
// (RFC 3339 keeps minutes). Typed fields come back exactly. Interface fields
// (any, map[string]any) come back with the same JSON value in the types
// encoding/json gives them, with one difference from its default: numbers are
// json.Number, not float64, so a 64-bit chat ID keeps its exact value. Code
// that asserted float64 on such fields must use json.Number's Int64, Float64
// or String. A struct in an interface comes back as a map[string]any, a
// time.Time there as its RFC 3339 string. A time.Time field keeps its
// instant and offset, not its Location's name or its monotonic reading.
// {"data":null} loads only into a T that encodes to null (a nil map, slice or
// pointer).
//
// Stored members that T does not have (a field added by a newer binary, a
// field renamed without a step) are never dropped silently. By default
// ([KeepExtra]) Load ignores them and a Save of a changed session writes
// them back where they were, so an old and a new binary can run side by side
// while a field is added, and a step added later can still recover a renamed
// field; every Save that meets them reports them to Config.Hook
// (Event.Unknown) and Config.Logger warns of each set once, and
// [Manager.MigrateAll] counts such keys. [RejectExtra] makes Load refuse
// such data; [DropExtra] is the explicit opt-out. Members that
// encoding/json matches case-insensitively count as known.
//
// # Validation
//
// Data is checked on every Load and every Save with the validate struct tags
// of github.com/go-playground/validator/v10 and, when T or *T has one, a
// Validate() error method ([Validatable]). A Save that fails validation
// returns [ErrInvalid] naming the field and writes nothing; a Load of stored
// data that fails it returns ErrInvalid too, and the stored value is left as
// it is. New calls Config.Initial once and refuses a value that fails
// validation.
//
// # Versions
//
// The envelope records the schema version next to the data. When T changes,
// add a step to a [migrate.Plan] in Config.Migrations; Load runs the steps
// from the stored version to the latest before decoding into T, and the next
// Save writes the migrated value back with compare-and-swap. Data without an
// envelope, written by an older app or another framework, is version 0 and
// is adopted by a step from 0. A stored version newer than the plan's latest
// gives [ErrFutureVersion]: an old binary never overwrites a schema it does
// not know. Config.WriteVersion keeps writing the previous version during a
// rolling deploy; a session nobody changed is then not rewritten, and a step
// whose down function does not give back what its up function was given is
// an [ErrMigration] naming the step. [Manager.MigrateAll] migrates every
// stored session at once.
//
// # User code and panics
//
// The library calls code of yours. What a panic in it becomes:
//
//	callback                     panic becomes
//	migration step (up or down)  ErrMigration wrapping a *migrate.PanicError (value and stack)
//	Validate method              ErrInvalid with the panic value and stack
//	MarshalJSON / the codec      ErrInvalid from Save; nothing is written
//	UnmarshalJSON                ErrCorrupt from Load, with the panic value
//	Config.Initial               an error from New (called once there); later, from Load
//	Update's fn                  not recovered: it reaches Update's caller, as inline code's
//	                             panic would, after Update has released the per-key lock
//	                             its queue holds
//
// None of them ever moves a stored value aside (Config.Quarantine). The
// middleware releases its per-key lock on every path, panics included.
//
// # Failures
//
// Every failure a value can have on its way in (Load, and the load of
// Update and MigrateAll) or out (Save, and the save of Update and
// MigrateAll): its error (matched with errors.Is), what happens to the
// stored bytes, and whether Config.Quarantine ever moves them aside. A
// value is quarantined only when its bytes are damaged; never for what this
// binary cannot read for reasons of its own (a newer schema, a missing
// step, codec, key or dictionary, a size limit, code of yours that fails
// or panics, data that no longer fits T).
//
//	failure                                                     error                stored bytes  quarantined
//	in: the store's read fails                                  the store's error    stay          never
//	in: longer than any value within Config.MaxBytes            ErrTooLarge          stay          never
//	in: not a value of a codec read (not JSON, bad envelope)    ErrCorrupt           stay          yes
//	in: written with a codec not read (Config.ReadCodecs)       ErrUnsupportedCodec  stay          never
//	in: a layer or dictionary the manager lacks                 ErrUnsupportedCodec  stay          never
//	in: sealed with a key Config.Keyring lacks                  ErrNoSealingKey      stay          never
//	in: a seal that does not open (damaged, edited, moved)      ErrCorrupt           stay          yes
//	in: compressed data that does not decompress                ErrCorrupt           stay          yes
//	in: the payload is over Config.MaxBytes                     ErrTooLarge          stay          never
//	in: a schema version above the latest                       ErrFutureVersion     stay          never
//	in: no migration step from the stored version               ErrMigration         stay          never
//	in: a migration step fails or panics                        ErrMigration         stay          never
//	in: the data does not decode into T                         ErrCorrupt           stay          never
//	in: members T lacks, with RejectExtra                       ErrCorrupt           stay          never
//	in: validation fails or panics                              ErrInvalid           stay          never
//	out: validation fails or panics                             ErrInvalid           stay          -
//	out: a value the codec cannot store as it is                ErrInvalid           stay          -
//	out: the payload is over Config.MaxBytes                    ErrTooLarge          stay          -
//	out: a step down fails or does not invert its step up       ErrMigration         stay          -
//	out: another writer saved first                             ErrConflict          stay          -
//	out: the store refuses the value for sure (its size cap)    ErrTooLarge          stay          -
//	out: the store can no longer read the value it holds        ErrCorrupt           stay          -
//	out: the write's outcome cannot be learned                  ErrOutcomeUnknown    either        -
//
// "A value the codec cannot store as it is": a string that is not valid
// UTF-8, NaN or an infinity, a time outside the years 0-9999 or whose zone
// offset has seconds, nesting deeper than 10,000 levels, or a panic in a
// MarshalJSON method. "Either": the stored bytes are the old value or the
// new one; load to see. The order in which Load decides is the order of
// the rows. A test walks this table (failures_test.go).
//
// # Concurrency
//
// A Manager is safe for concurrent use. A [Session] belongs to the handler
// that loaded it. Save writes with compare-and-swap against the bytes it
// loaded when the store supports it, and returns [ErrConflict] when someone
// else saved in between; [Manager.Update] retries such conflicts with jittered
// exponential backoff, so concurrent updates of one key never lose a write.
// On a store without compare-and-swap the last write wins (Save, Update,
// Destroy and MoveTo alike); a Save that has nothing to write then writes
// nothing at all, not even to extend the expiry, since writing back what it
// read could revert another writer's newer value. On a store with
// compare-and-swap but without compare-and-delete, Destroy and MoveTo of a
// stored session are refused (errors.ErrUnsupported): their delete would
// be blind there, and could erase a save compare-and-swap protected.
//
// Concurrent Updates of one key through one Manager do not race: they wait
// for each other on an in-process key lock (for at most a second each,
// bounded by ctx; on a store without compare-and-swap, by ctx only) and
// each starts from the session the one before saved,
// decoded anew from the bytes written, without a store round trip, so
// queued updates of one key that change it cost one round trip each. That
// session is as current as a Load: a write of the key through any Manager
// of the process in between makes the next update load instead; a write
// from another process fails the compare-and-swap of a change, and an
// update that changes nothing reads the key to compare. Update then loads
// and runs fn again without using up an attempt, and handing on stops for
// a minute. On a store without compare-and-swap nothing is handed on. The
// middleware's per-key lock queues updates too, but each loads: a handler
// that only reads must see what a Load shows.
//
// Every write carries a unique write identity, recorded in the envelope with
// the identities of the 7 writes before it. Every mutation of the store
// goes through one write protocol (its rules, one table, are in the
// documentation of internal/protocol): a compare-and-swap or
// compare-and-delete whose reply was lost is sent again; a resend that
// finds its own value reports success; one that reports a conflict is
// settled against the stored identities, so a write that landed and that
// up to 7 other writes have built on since is still recognised as landed,
// and a delete that landed before the key was written again is recognised
// too. So a write acknowledged to the caller is stored once, through lost
// replies, client resends and server restarts. A write whose outcome cannot
// be learned (the store did not answer again within ctx, or the identities
// cannot tell) returns [ErrOutcomeUnknown], never [ErrConflict], and Update
// does not retry it. A two-key move (MoveTo, quarantine) writes the new key
// first and removes the old one only if it still holds what was read; it
// undoes the new write only after a definite conflict, never after an open
// outcome, so a session is never left under neither key. The
// unchanged-session check compares the data, not the identity.
//
// Limits: the guarantee needs a durable store. A Redis without persistence
// (or with appendfsync other than always) loses acknowledged writes when it
// restarts, and a Redis Cluster failover with asynchronous replication can
// lose writes acknowledged by the old primary; a filestore or SQLite on a
// disk that lies about fsync can too. More than 7 writes built on a lost
// reply's write before the read-back make its outcome unknown.
//
// # Seeing inside
//
// Config.Hook sees every operation as an [Event]: op, outcome, duration,
// bytes, the schema version found and the one after, attempts and
// conflicts, unknown members. It costs nothing when unset and depends on the
// standard library only; metrics and traces plug in there. Config.Logger
// logs through log/slog (every operation at debug level, failures and
// sessions over Config.WarnBytes at warn level); nothing is logged by
// default. Both follow one redaction rule: keys (user identifiers) only
// with Config.LogKeys, in Event.Key and in error texts alike, and values of
// session data never (a validation error names the field and the rule, not
// the value; member paths leave out map keys). Event.Err matches the
// returned error's sentinels with errors.Is.
//
// # Expiry
//
// Config.TTL is an idle timeout with a documented precision, the slack
// ([Manager.Slack]: TTL/10, at most an hour). Every write sets the expiry to
// now + TTL. A Load that finds a session reads the time it has left in the
// same round trip ([store.TTLGetter]) and extends it to now + TTL only when
// less than TTL − slack remains, so most Loads only read and keep working on
// a read-only or full disk; a session expires between TTL − slack and TTL
// after its last use. On a store without the TTL-returning read, a Load
// extends the expiry every time ([store.Refresher] in the same round trip).
// Save writes nothing for an unchanged session (it extends the expiry only
// when near expiry, and only with a Touch or a compare-and-swap), and
// nothing for a new session nobody changed. A TTL longer than the store can
// keep is clamped to [store.MaxExpiry] on both sides of the comparison, so
// it never makes every Load extend. On a store with only Get, Set and
// Delete the expiry is extended by writes only. For a single field with its
// own lifetime, use [Expiring].
//
// # Errors
//
// Every error a Manager returns is an [*Error] naming the operation and the
// key (shortened when long), and matches one of [ErrConflict], [ErrCorrupt],
// [ErrInvalid], [ErrFutureVersion], [ErrMigration], [ErrTooLarge],
// [ErrOutcomeUnknown], [ErrNoSealingKey], [ErrUnsupportedCodec] with errors.Is
// (see Failures), or wraps the store's or the context's error. Each is
// decided once, by its cause, where it happens. A key the store contract refuses (empty, not UTF-8, with NUL, longer
// than [store.MaxKeyLen] with the namespace) matches [store.ErrInvalidKey];
// a store's [store.ErrCorrupt] and [store.ErrTooLarge] match ErrCorrupt and
// ErrTooLarge.
//
// # Middleware
//
// Package middleware loads a session before a handler and saves it after,
// for any handler shape, for net/http and for Telegram bots. Handlers read it
// with [From]. Middleware for another framework wraps its handlers with the
// generic middleware.Handle or middleware.HTTP.
package session
