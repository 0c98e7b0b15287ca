// Package redisstore is a [store.Store] backed by Redis through go-redis v9.
//
// One [Store] serves a single node (*redis.Client), a Sentinel failover
// client (redis.NewFailoverClient, also a *redis.Client), a Redis Cluster
// (*redis.ClusterClient) and a *redis.Ring. Give it a client configured
// as below (see "Client options" for why):
//
//	rdb := redis.NewClient(&redis.Options{
//		Addr: "127.0.0.1:6379",
//		// Honour ctx deadlines and cancellation while waiting for Redis.
//		ContextTimeoutEnabled: true,
//	})
//	st := redisstore.New(rdb, redisstore.Options{Prefix: "mybot:"})
//
// Besides the three methods of [store.Store], a Store implements every
// optional capability: [store.Swapper], [store.Deleter], [store.Toucher],
// [store.Refresher], [store.TTLGetter] and [store.Scanner]. It needs Redis
// 6.2 or later (GETEX).
//
// # Key layout
//
// The caller's key k is stored in Redis under [Options].Prefix + k, as a plain
// Redis string holding the value's bytes, unchanged. The session manager
// puts its own Namespace + ":" in front of the session key, so a session
// "42" of namespace "quiz" in a store with Prefix "mybot:" lives at
// "mybot:quiz:42", and redis-cli GET shows its bytes. To adopt keys that
// another framework left in Redis, use the same Prefix.
//
// Every method that takes a key first checks it with [store.CheckKey]
// (valid UTF-8 without NUL, 1 to [store.MaxKeyLen] bytes) and refuses any
// other key with an error matching [store.ErrInvalidKey], before any I/O.
// The limit applies to the caller's key; the Prefix comes on top.
//
// # TTL semantics
//
// A ttl > 0 makes the key expire after ttl, at Redis's millisecond
// resolution (a ttl under a millisecond counts as one). A ttl <= 0 stores
// the key without expiry in every method, and removes an expiry the key
// had: Set sends a plain SET (never KEEPTTL), CompareAndSwap a plain SET
// from its script, Touch and GetAndTouch PERSIST.
//
// Redis takes a PX of up to about 2^63 milliseconds minus the time now
// (more is refused with "invalid expire time"), so even the largest
// time.Duration (292 years) would work; the store still clamps every ttl
// to [store.MaxExpiry] by the local clock, like every other store, so a
// key written with a ttl of centuries is live after the write and
// GetWithTTL reports the same time left on every backend.
//
// Expired keys are Redis's business: they are invisible to every command
// from the instant they expire, so the store needs no cleanup of its own.
//
// # Commands
//
// Every method is one round trip, apart from the first EVALSHA of a script
// on a server that does not have it yet (after a restart, too), which is
// followed by an EVAL, and Scan.
//
//   - Get: GET.
//   - Set: SET key value PX ms (go-redis sends EX s when ttl is a whole
//     number of seconds, which means the same); plain SET when ttl <= 0.
//   - Delete: DEL.
//   - CompareAndSwap: one Lua script (EVALSHA) that GETs the key and SETs
//     the new value with its ttl if the current value equals old byte for
//     byte, or, for a nil old, if the key is absent; and also if the
//     current value already equals the new value (the resend rule of
//     [store.Swapper]: a resent swap whose first attempt landed finds its
//     own value and reports true). An absent key never matches a non-nil
//     old, and an empty old matches only a stored empty value.
//   - CompareAndDelete: one Lua script: GET; DEL if it equals old; it
//     reports true only when it deleted the key (an absent key reports
//     false).
//   - Touch: PEXPIRE; when ttl <= 0 a Lua script that runs EXISTS then
//     PERSIST, since PERSIST alone answers 0 both for an absent key and
//     for a key without expiry.
//   - GetAndTouch: GETEX PX ms, or GETEX PERSIST when ttl <= 0. It is a
//     write: Redis appends it to the AOF (46 bytes for a 500-byte value)
//     and sends it to replicas. On a durable Redis (appendonly yes,
//     appendfsync always, which exactly-once updates need) it waits for
//     an fsync: measured here, a median of 162 to 224 µs and a 90th
//     percentile of 1.2 to 3.8 ms, against 19 to 23 µs and no AOF growth
//     for GetWithTTL. A Load that only reads (GetWithTTL, extending the
//     TTL only near expiry) is the cheaper path on such a server.
//   - GetWithTTL: GET and PTTL in one pipeline (two commands, one round
//     trip); PTTL -1 (no expiry) is reported as [store.NoExpiry]. The two
//     are not atomic, on purpose: the time left only decides whether the
//     session manager extends an expiry, and every write it makes is a
//     compare-and-swap against the value read, so a TTL read from a newer
//     value costs at most one early or one skipped extension. MULTI/EXEC
//     (four commands: MULTI, GET, PTTL, EXEC) and a Lua script cost the
//     server more for the same round trip; see BENCHMARKS.md.
//   - Scan: SCAN cursor MATCH pattern COUNT n, never KEYS. The pattern is
//     Prefix + the scan prefix with the glob characters *, ?, [, ] and \
//     escaped, followed by *. Keys are reported with Prefix removed.
//
// # Redis Cluster
//
// Every method except Scan touches exactly one key, so each is a
// single-slot operation that go-redis routes to the master owning the
// key's slot, the Lua scripts and GetWithTTL's pipeline included. No
// hash tags are needed and none are added: keys spread over the cluster's
// slots as Redis hashes them. Scan lists the masters with ForEachMaster and
// scans them one after the other (a Ring's shards the same way), so the
// callback is never called concurrently.
//
// # Errors
//
// A missing or expired key gives an error matching [store.ErrNotFound]
// (go-redis's redis.Nil); anything else, such as a refused connection or
// a timeout, is returned wrapped with the operation and the key (quoted,
// shortened past 64 bytes), never as ErrNotFound. When ctx is cancelled or
// its deadline has passed, the error matches ctx.Err() (for a deadline,
// context.DeadlineExceeded) even where go-redis reports an i/o timeout, and
// a method called with an already-ended ctx sends nothing.
//
// # Client options
//
// The store uses the client it is given as it is; it does not own it and
// never closes it. Two settings matter:
//
//   - ContextTimeoutEnabled: true. Without it go-redis waits for a reply up
//     to its ReadTimeout (3 s by default) whatever ctx says: against a
//     Redis stalled by DEBUG SLEEP 2, a call with a 200 ms deadline returns
//     after 1.98 s, with the reply (a swap reports true) and no error. With
//     it go-redis puts ctx's deadline on the socket, and the same call
//     returns after 200 ms with an error matching
//     context.DeadlineExceeded. The store cannot make up for the option:
//     it would have to abandon a call whose connection go-redis still
//     holds. It does not refuse a client without it either (New cannot
//     fail, and such a client works, only late), so set it yourself.
//   - MaxRetries: leave it at go-redis's default (3 resends), or set what
//     you like. The store resends what is safe to resend: the reads and
//     Touch trivially, CompareAndSwap and CompareAndDelete because of how
//     the store resends them (see "Lost replies"); the blind writes Set
//     and Delete only when the attempt cannot have reached the server.
//     Fewer retries only turn more lost replies into errors.
//
// Give every call a ctx with a deadline as well: go-redis and the store
// resend until their retries run out, which against a stopped server took
// a session Load 0.4 to 10.9 s (the server shut down, connections
// refused) and 156 to 161 s (the server paused: connections open, no
// reply) without one, and the deadline with one (README.md, "The
// recommended client configuration").
//
// # Automatic pipelining
//
// A plain go-redis client writes and reads each command on its own: one
// write and one read system call per command on both sides, which is most
// of the CPU an update costs once the JSON is fast. [Options].AutoPipeline
// hands a call to go-redis's pipeliner (Client.AutoPipeline, experimental
// in go-redis v9.22 and later) whenever another call of the Store is in
// flight, so that concurrent sessions share writes and reads, and sends a
// lone call straight, since through the pipeliner it would cost a
// goroutine handoff and more CPU for nothing. Measured with the peers
// workload of BENCHMARKS.md (a 400-byte session, Redis on loopback, 2
// cores, 64 updates in flight over 1,000 users): 0.03 round trips per
// update instead of 2, client CPU 22 to 27 µs per update instead of 47 to
// 57, Redis CPU 10 to 14 µs instead of 24 to 27, and the wall time 36 to
// 48 µs instead of 75 to 88; one update at a time, the same as the plain
// client.
//
// go-redis dispatches a batch that mixes commands sent with its resends
// and commands sent without them (the Cmder.NoRetry flag) as one pipeline
// per run of alike commands, one round trip each. The compare-and-swap is
// always sent without them (see "Lost replies"), so every command that
// the store sends through the pipeliner goes without them, the reads too,
// and the store resends a read or Touch whose reply was lost itself,
// under the client's retry settings, straight through the client.
// Before (reads with go-redis's resends) the same workload had 0.73 to
// 0.97 round trips per update and no gain in CPU. The pipeliner is one per
// client: your own calls through rdb.AutoPipeline() share its batches, and
// a typed call of yours (sent with resends) splits the batch it lands in.
//
// Against connections cut every 3 ms (CLIENT KILL), calls through the
// pipeliner can stall until their callers' deadlines, about 8% of them in
// the test; no update was lost or applied twice
// (TestManagerClientKillAutoPipeline), but the stalls are long. Give such
// a client a ReadTimeout and WriteTimeout of a few hundred milliseconds,
// besides ContextTimeoutEnabled.
//
// A command that go-redis sends before ctx ends may still run on the
// server after the caller has had its error: the deadline stops the wait,
// not Redis. For a swap, the error then means "outcome unknown"; see below.
//
// # Lost replies
//
// go-redis resends a command whose reply was lost (a connection cut, a
// server restarted) up to MaxRetries times, with a backoff of up to a
// second. For a compare-and-swap that is not enough: a swap that landed
// the first time and is resent finds its own value and reports true (the
// resend rule), but if another writer has built on it in the meantime, the
// resend finds that writer's value and reports false, and a caller that
// trusts the false applies its change again. Measured with 64 writers on 4
// keys and every connection cut each 3 ms: through go-redis's resends, 42
// of 2,560 swaps reported false although they had landed, one of them
// under 206 later writes.
//
// So the store sends CompareAndSwap and CompareAndDelete with go-redis's
// resends turned off for them (the command's NoRetry flag) and resends
// them itself, as many times and with the backoffs the client's options
// say (MaxRetries; MaxRedirects for a cluster client), the first resend at
// once. A resend that finds another value than the one it expected (for
// CompareAndDelete: anything but old) returns an error that says the
// outcome is unknown, not false. A CompareAndSwap "only if absent" (a nil
// old) is never resent once an attempt may have reached the server: if
// the first attempt landed and the key was deleted since, the resend would
// create the key a second time; its lost reply is returned as an error,
// and the session manager settles it by reading the key. Nor are the
// blind writes Set and Delete: a DEL that ran before its reply was lost,
// followed by another writer's create "only if absent", would erase that
// writer's acknowledged session if it were sent again (go-redis would
// resend it; the store sends both with NoRetry, resends only an attempt
// that cannot have reached the server, and returns a lost reply as an
// error, which the session manager settles by reading the key). Hence,
// with this store:
//
//   - true means the swap landed (in this call);
//   - false means it did not, and never will: another write replaced old
//     (given values that are never written twice, as the session
//     manager's are);
//   - an error may mean either. The session manager then reads the key back
//     and looks for its write identity, and reports
//     session.ErrOutcomeUnknown when it cannot tell.
//
// The same run through the store's own resends: 0 swaps false though
// landed, 0 applied twice, 0 acknowledged lost; 320 to 330 of 2,560
// increments got an error (5 to 7 of them had landed), against 0 errors
// and 42 wrong answers with go-redis's resends.
//
// # Durability
//
// A write the store acknowledged survives a Redis crash only if Redis
// persisted it before replying: appendonly yes with appendfsync always.
// With appendfsync everysec (Redis's default when the AOF is on) a crash
// can lose the last second of acknowledged writes; without persistence a
// restart loses everything. A Redis Cluster or Sentinel failover promotes
// a replica that is updated asynchronously, so acknowledged writes the
// replica had not received are lost (the store does not use WAIT).
// Exactly-once updates, in the session manager's sense, need a durable
// server.
package redisstore
