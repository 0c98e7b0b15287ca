// Package natsstore is a [store.Store] on a NATS JetStream key-value
// bucket (github.com/nats-io/nats.go, JetStream on NATS 2.9 or later):
//
//	nc, _ := nats.Connect(nats.DefaultURL, nats.ReconnectBufSize(-1))
//	js, _ := jetstream.New(nc)
//	st, err := natsstore.New(ctx, js, natsstore.Options{Bucket: "sessions"})
//	defer st.Close()
//	m, _ := session.New(session.Config[Cart]{Store: st, Namespace: "cart", TTL: 24 * time.Hour})
//
// It implements [store.Swapper], [store.Deleter], [store.Toucher],
// [store.TTLGetter] and [store.Scanner], and passes store/storetest,
// including its cross-process counting test.
//
// # The bucket
//
// New uses the bucket Options.Bucket, creating it when absent (history 1,
// no bucket TTL). Each key is one subject of the bucket's stream, and the
// last message on it is the key's state. The value is the message body as
// it is, so `nats kv get <bucket> <key>` shows it; the expiry, for a value
// written with a TTL, is the message header [ExpiresHeader] (Unix
// nanoseconds).
//
// NATS keys are subject tokens, limited to letters, digits and "-/_=.",
// so the store encodes every other byte of a key as "=" and two hex
// digits ("quiz:42" is stored as "quiz=3A42"); see encodeKey in keys.go.
// Every valid store key (store.CheckKey: up to 1,024 bytes of UTF-8)
// fits. Keys put into the bucket by other means that the encoding cannot
// have made are not the store's: Scan skips them.
//
// # Expiry on NATS 2.9 and 2.10
//
// Until 2.11 a JetStream bucket has one TTL for all its keys (MaxAge), and
// the time since a key's last write is all it measures. Sessions need a TTL
// per key, so the store keeps the expiry with the value and:
//
//   - filters on read: Get, GetWithTTL, CompareAndSwap, CompareAndDelete,
//     Touch and Scan treat a key whose expiry has passed as absent, at
//     once, whether or not it has been removed yet (the expiry is compared
//     with this machine's clock: keep the clocks of the processes that
//     share a bucket in sync);
//   - sweeps: every Options.SweepInterval (a minute by default) a
//     background sweep deletes the expired keys, each only if it has not
//     been rewritten since the sweep read it, and reclaims delete markers
//     older than [MarkerAge]; see [Store.Sweep];
//   - touches by rewriting: Touch reads the value and writes it again with
//     the new expiry (two round trips and a new revision), so the store
//     offers no [store.Refresher]. The session manager uses GetWithTTL and
//     touches only when a session is near expiry, so a steady session
//     costs one read per update.
//
// Do not give the bucket a MaxAge shorter than the sessions' TTL: JetStream
// would remove keys that are still live.
//
// # Compare-and-swap
//
// JetStream compares revisions, not values. CompareAndSwap reads the key's
// last message, compares its value with old, and publishes the new value
// on the condition that the subject's last sequence is still the one it
// read (the header Nats-Expected-Last-Subject-Sequence); if another writer
// came in between, the publish is refused and it reads and compares again.
// A publish whose reply is lost returns its error: the store never sends a
// conditional write twice, so false always means the swap did not happen.
// CompareAndDelete writes the bucket's delete marker on the same
// condition.
//
// # Lost connections
//
// By default nats.go keeps what is published while its connection is
// down (nats.ReconnectBufSize, 8 MiB) and sends it once it has
// reconnected. The call that published it has by then returned its error
// (its context or the JetStream timeout ended), and its caller was told
// the outcome is open; a write that lands after that can erase what
// another writer did and was told was done in between (a Manager.Delete
// made during the outage deleted a session another process had since
// saved). New therefore refuses a connection that buffers: connect with
// nats.ReconnectBufSize(-1), so that a publish fails at once while the
// connection is down (the session manager then reports
// session.ErrOutcomeUnknown, or retries nothing), or with
// nats.NoReconnect(). What was written to the socket before the
// connection broke is never sent again: nats.go starts each new
// connection with empty buffers.
//
// # Size
//
// A value and its headers must fit in the server's max_payload (1 MiB by
// default): a value of exactly 1 MiB with a TTL does not, and gets an
// error matching [store.ErrTooLarge]. Raise max_payload (up to 8 MB) in
// the server's configuration to store larger sessions; the tests run a
// server with 2 MB.
//
// # What NATS 2.11 would change
//
// NATS 2.11 adds a TTL per message (the Nats-TTL header, on a stream with
// AllowMsgTTL; nats.go's KeyTTL and LimitMarkerTTL for buckets) and
// subject delete markers. On 2.11 the store could send Nats-TTL with every
// write that has a TTL, and the server would remove expired keys itself:
// the sweep of expired keys would go, and with LimitMarkerTTL a watcher
// would see expiries as deletions. Three things would stay: Nats-TTL has a
// precision of a second (a TTL under a second cannot be said; the
// conformance suite uses 150 ms), so the store would still write its own
// expiry and filter on read for exactness, and GetWithTTL would still read
// it; extending an expiry is still a new message, so Touch still rewrites
// the value; and compare-and-swap is still by revision. A bucket made on
// 2.9 has AllowMsgTTL off and must be updated to use it. This version
// targets 2.9 and does not send Nats-TTL.
package natsstore
