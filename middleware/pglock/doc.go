// Package pglock is a [middleware.Locker] on PostgreSQL advisory locks, for
// applications that keep their sessions (or at least a database) there:
// the updates of one session key run one after the other across every
// replica that shares the database.
//
//	pool, err := pgxpool.New(ctx, "postgres://app@db/app")
//	...
//	lock := pglock.New(pool, pglock.Options{})
//	defer lock.Close()
//	mw := middleware.New(quizzes, userKey, middleware.Options{Locker: lock})
//
// The three levels of concurrency (one process; many processes with
// compare-and-swap only; many processes with a distributed lock) are
// explained in the documentation of the sibling package
// [github.com/typedsession/session/middleware/redislock]; this package is
// the third level without Redis.
//
// # How it works
//
// Lock first takes key's lock in an in-process [middleware.LockTable], so
// that a replica never has two goroutines trying one key. Then it takes a
// connection of the pool and runs pg_try_advisory_lock(Class, Hash(key)):
// the two-integer form, whose first integer is a class of our own
// ([DefaultClass], the bytes "tses"), so that our locks never collide with
// the application's own advisory locks (the one-bigint form, or two
// integers with another class). The second integer is a 32-bit hash of the
// key: two keys with the same hash share one lock, which only serializes
// them together.
//
// An advisory lock belongs to the connection that took it, so a lock taken
// keeps its connection until unlock; [Options].MaxConns caps how many
// connections the locks use at once: half the pool's MaxConns by default
// (2 on pgxpool's default pool of 4), at most 8, and always below the
// pool's MaxConns (New panics otherwise), so that handlers holding locks
// still find connections for their own queries. Unlock runs
// pg_advisory_unlock and pg_notify in one statement and gives the
// connection back.
//
// A replica that finds the lock taken does not block a connection on it
// (pg_advisory_lock would hold one connection per waiter): it gives the
// connection back and waits for a notification on [Options].Channel,
// received by one listening connection per Locker (opened by the first
// wait, separate from the pool), then tries again; it wakes at the latest
// after Poll (250 ms by default), and gives up when its ctx ends.
//
// # No lease
//
// An advisory lock has no lease: it lasts as long as the connection. A
// replica that crashes, or whose connection is cut, loses its locks as soon
// as the server notices the connection is gone (at once for a process
// that dies on the same network; after the TCP keepalive for a host that
// vanishes), and the waiters notice within Poll, since no notification is
// sent then. A handler that runs for an hour holds the lock for an hour. A
// connection that ends under a handler that is still running (a network
// cut, a server restart, pg_terminate_backend) releases its lock while the
// handler runs; another replica may then update the same user, and
// compare-and-swap in the store refuses the stale save with
// session.ErrConflict (the tests arrange exactly this). The same happens
// without any stall when a replica dies just after sending its save: the
// lock ends the moment its connection closes, but the save, sent on the
// store's own connection, may still be executed after another replica
// loaded the session, whose save is then refused (once in 50 runs of the
// test that SIGKILLs a replica: 1 conflict, nothing lost). A lock is not a
// guarantee; compare-and-swap is.
//
// # pgxpool, not database/sql
//
// New takes a *pgxpool.Pool rather than a *sql.DB: the lock needs a
// connection held for the whole update and a connection that waits for
// notifications (pgx's WaitForNotification), which database/sql offers
// only through driver-specific Raw calls, tying it to pgx anyway. An
// application whose sessions are in a sqlstore on a *sql.DB opens a pool
// of the same URL for the locks (pgxpool.New).
//
// # Figures
//
// Taking and releasing an uncontended lock costs about 80-150 µs on the
// test machine (two statements; 82 µs per pair with 8 keys in parallel).
// One update through the middleware on a sqlstore on PostgreSQL (load,
// increment, compare-and-swap), median of three runs of
// go test -bench Update -count 3 on a 2-core VM shared with other work,
// where the store's own commits (their WAL flushes) dominate and runs
// varied by a factor of three:
//
//	                       no lock     LockTable   pglock
//	sequential, 1 user     0.65 ms     1.75 ms     1.82 ms
//	64 in flight, 8 users  0.33 ms     0.22 ms     1.27 ms  (per update)
//	conflicts per update   0.70        0           0
//
// In parallel the advisory lock costs what any two more statements per
// update cost there: a stand-in Locker that only ran SELECT 1 on a pool
// connection before and after each update measured 0.85 ms per update,
// against 0.19 ms for the LockTable alone and 1.23 ms for pglock in the
// same run. The store's commits wait for WAL flushes, and longer per-key
// chains of statements batch fewer commits into one flush. Prefer
// redislock where a Redis is at hand.
package pglock
