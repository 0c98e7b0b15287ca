// Package redisstore is a [store.Store] backed by Redis through go-redis v9.
//
// One [Store] serves a single node (*redis.Client), a Sentinel failover
// client (redis.NewFailoverClient, also a *redis.Client), a Redis Cluster
// (*redis.ClusterClient) and a *redis.Ring:
//
//	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
//	st := redisstore.New(rdb, redisstore.Options{Prefix: "mybot:"})
//
// Besides the three methods of [store.Store], a Store implements every
// optional capability: [store.Swapper], [store.Toucher], [store.Refresher]
// and [store.Scanner].
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
// # TTL semantics
//
// A ttl > 0 makes the key expire after ttl, at Redis's millisecond
// resolution (a ttl under a millisecond counts as one). A ttl <= 0 stores
// the key without expiry; because Set then sends a plain SET, a key that
// had an expiry loses it: a value that replaces another takes the new ttl.
// Expired keys are Redis's business: they are invisible to every command
// from the instant they expire, so the store needs no cleanup of its own.
//
// # Commands
//
//   - Get: GET.
//   - Set: SET key value PX ms (go-redis sends EX s when ttl is a whole
//     number of seconds, which means the same); plain SET when ttl <= 0.
//   - Delete: DEL.
//   - CompareAndSwap: SET key value NX [PX ms] when old is nil; otherwise one
//     Lua script (EVALSHA, falling back to EVAL the first time a server
//     meets it) that GETs the key, compares the bytes exactly and SETs the
//     new value with its ttl. An absent key never matches a non-nil old, and
//     an empty old matches only a stored empty value.
//   - Touch: PEXPIRE; when ttl <= 0 a Lua script that runs EXISTS then
//     PERSIST, since PERSIST alone answers 0 both for an absent key and
//     for a key without expiry.
//   - GetAndTouch: GETEX PX ms, or GETEX PERSIST when ttl <= 0 (Redis 6.2
//     or later).
//   - Scan: SCAN cursor MATCH pattern COUNT n, never KEYS. The pattern is
//     Prefix + the scan prefix with the glob characters *, ?, [, ] and \
//     escaped, followed by *. Keys are reported with Prefix removed.
//
// Every method takes one round trip, apart from the first EVALSHA of a
// script on a server that does not have it yet, and Scan.
//
// # Redis Cluster
//
// Every method except Scan touches exactly one key, so each is a
// single-slot operation that go-redis routes to the master owning the
// key's slot, the Lua scripts included (they name their one key in KEYS).
// No hash tags are needed and none are added: keys spread over the
// cluster's slots as Redis hashes them. Scan lists the masters with
// ForEachMaster and scans them one after the other (a Ring's shards the
// same way), so the callback is never called concurrently.
//
// # Errors
//
// A missing or expired key gives an error matching [store.ErrNotFound]
// (go-redis's redis.Nil); anything else, such as a refused connection or
// a timeout, is returned wrapped with the operation and the key, never as
// ErrNotFound. When ctx is cancelled or its deadline passes, the error
// matches ctx.Err() even where go-redis reports an i/o timeout, and a
// method called with an already-ended ctx sends nothing.
//
// # Retries and lost replies
//
// go-redis resends a command whose reply was lost to a network error (up to
// MaxRetries times, 3 by default). For Get, Set, Touch and Delete that is
// harmless. For CompareAndSwap it is not exactly-once: if the first attempt
// swapped and its reply was lost, the resent attempt finds the new value
// and reports false. The write is never lost, but the session manager then
// sees a conflict, and Manager.Update reloads and applies its function
// again, so an increment can land twice across a server failure. Where an
// update must apply at most once even then, give this store a client with
// MaxRetries: -1; a lost reply is then returned as an error, and the caller
// cannot know whether the swap happened (it must reload to find out).
package redisstore
