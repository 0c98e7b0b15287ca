// Package redislock is a [middleware.Locker] on Redis: the updates of one
// session key run one after the other across every replica (process) that
// shares a Redis, not only within one process.
//
//	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
//	lock := redislock.New(rdb, redislock.Options{Prefix: "mybot:lock:"})
//	defer lock.Close()
//	mw := middleware.New(quizzes, userKey, middleware.Options{Locker: lock})
//
// # Three levels of concurrency
//
//  1. One process: the middleware's default [middleware.LockTable]
//     serializes the updates of one key; nothing more is needed.
//  2. Many processes, compare-and-swap only: two replicas may run updates
//     of one user at once. Nothing is lost: the store's compare-and-swap
//     refuses the later save with session.ErrConflict. But that update's
//     handler has already run (a message sent, a payment recorded) while
//     its session change was dropped, and the update fails. In the
//     two-replica test below run with only the in-process lock, 67 to 371
//     of the 1,024 updates were refused in three runs; in one process
//     without any lock, 64 updates in flight over 8 users saw 0.79
//     conflicts per update.
//  3. Many processes with this lock: the updates of one key are
//     serialized across replicas; the two-replica test (2 processes x 32
//     goroutines, 8 users) stores every one of 1,024 updates, with 0
//     conflicts and 0 errors. The cost is two round trips per update (the
//     acquire and the release scripts): see the figures below.
//
// # How it works
//
// Lock first takes key's lock in an in-process [middleware.LockTable], so
// that a replica never has two goroutines waiting in Redis for one key;
// then it runs one script: SET Prefix+key token NX PX Lease, with a random
// 128-bit token. A lock taken is renewed every Renew (Lease/3 by default,
// by a timer whose callback runs the renewal script: PEXPIRE only while
// the key still holds our token), so a long handler keeps it. Unlock stops
// the renewals and runs the release script: DEL only if the key still
// holds our token, then PUBLISH on the channel Prefix+key. A replica that
// finds the lock taken SUBSCRIBEs to that channel (one subscription
// connection per Locker, opened by the first wait, shared by its waiters),
// waits until Redis confirms, tries again, and then sleeps until a release
// message, the end of the holder's lease, or Poll, whichever comes first,
// and gives up when its ctx ends. Keyspace notifications are off by
// default on Redis, so nothing here relies on them; a message lost (a
// reconnection) costs at most Poll.
//
// # Fairness
//
// A try that finds the key taken puts its process at the end of the key's
// queue, kept in the lock's value in Redis (a process is in it once,
// whichever of its goroutines waits: the in-process lock lets one at a
// time wait in Redis). A release whose queue is not empty does not free
// the key: it reserves it, for at most Lease, for the first process of the
// queue, which the release message wakes, and whose next try takes it;
// every other try, the releasing process's own included, queues behind.
// So the processes that want a hot key take turns in the order they asked:
// a process that waits is overtaken by at most the rest of the holder's
// chain of handoffs (MaxHandoffs updates) and, with more than two
// processes, the turns of the processes queued before it. A waiter that
// gives up (its ctx ends) leaves the queue, passing a reservation on; one
// that crashes keeps its reservation until it expires (Lease), as a
// crashed holder keeps its lock. Before the queue, a process waiting in
// Redis had no place in any: the releasing process's next update, which
// tries at once, took the key back nearly every time (one update of
// another process was overtaken by up to 17,887 updates and waited up to
// 1.8 s). Figures with two processes and one hot key are in BENCHMARKS.md;
// TestAttackOtherProcessGetsATurn checks the bound.
//
// The queue changes the value a lock key holds (see scripts.go). Replicas
// of this version and of a version before it still exclude each other,
// but an older replica's release fails while a newer one waits (the value
// is no longer its bare token), so the key stays locked until the older
// replica's lease ends: during a rolling deploy, expect waits of up to
// Lease on keys that both versions update.
//
// Every script touches one key, so the Locker works on a single node and
// on a Redis Cluster (*redis.ClusterClient) alike: the lock keys spread
// over the masters, and a PUBLISH reaches subscribers on any node.
//
// # A lease is not a guarantee
//
// A replica that crashes holding a lock keeps the key locked until the
// lease runs out (Lease, 10 s by default): the others wait that long. A
// replica that stalls for longer than the lease (a stop-the-world pause, a
// network partition that stops its renewals) loses the lock without
// knowing it, and another replica may take it and run the same user's
// update meanwhile. The lock alone cannot prevent that; compare-and-swap
// in the store does: the stalled handler's save is refused with
// session.ErrConflict and writes nothing (the tests arrange exactly this),
// and [Options].OnError hears [ErrLeaseLost]. So use a store with
// compare-and-swap (every store of this module has it) and treat the lock
// as what makes conflicts rare, not as what makes them impossible.
//
// # Figures
//
// One update through the middleware on a redisstore on the same machine
// (load, increment, compare-and-swap), median of five runs of
// go test -bench Update -count 5 on a 2-core VM shared with other work
// (runs varied by a factor of two; take them as orders of magnitude):
//
//	                       no lock     LockTable   redislock
//	sequential, 1 user     76 µs       74 µs       155 µs
//	64 in flight, 8 users  66 µs       59 µs       126 µs   (per update)
//	conflicts per update   0.79        0           0
//
// The lock adds two round trips (the acquire and the release scripts) to
// the two of an update (a read and a compare-and-swap), and they lie on
// the path of each key's chain of updates, so an update costs about twice
// as much; "no lock" in parallel refuses 79% of the updates instead.
package redislock
