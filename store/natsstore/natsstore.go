package natsstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/typedsession/session/internal/storeutil"
	"github.com/typedsession/session/store"
)

// DefaultBucket is the bucket a [Store] uses when Options.Bucket is empty.
const DefaultBucket = "typedsession"

// DefaultSweepInterval is how often a [Store] removes expired keys when
// Options.SweepInterval is zero.
const DefaultSweepInterval = time.Minute

// ExpiresHeader is the message header that holds a key's expiry: the Unix
// time in nanoseconds, in decimal. A message without it never expires.
const ExpiresHeader = "Typedsession-Expires"

// Headers of the NATS key-value format that mark a key as deleted.
const (
	kvOperationHeader = "KV-Operation"       // "DEL" or "PURGE" (nats.go's kv.Delete and kv.Purge)
	markerHeader      = "Nats-Marker-Reason" // a server-written marker (NATS 2.11+)
)

const backend = "natsstore"

// Options configures a [Store]. The zero value is valid and means defaults.
type Options struct {
	// Bucket is the JetStream key-value bucket that holds the keys: its
	// name is letters, digits, "_" and "-". New creates it when it does
	// not exist (history 1, no bucket TTL) and uses it as it is when it
	// does. Default: [DefaultBucket].
	Bucket string

	// Storage is where a bucket that New creates keeps its data.
	// Default: jetstream.FileStorage.
	Storage jetstream.StorageType

	// Replicas is the replica count of a bucket that New creates, for a
	// clustered server. Default (0): 1.
	Replicas int

	// SweepInterval is how often the store deletes expired keys (and the
	// delete markers of keys deleted more than 30 minutes earlier) in the
	// background. Expired keys are invisible at once whether or not a
	// sweep has run: the sweep only reclaims their space. Each process
	// sharing the bucket may sweep; their sweeps never delete a key that
	// was rewritten after they read it. Default (0):
	// [DefaultSweepInterval]; negative: no background sweep (call
	// [Store.Sweep] yourself).
	SweepInterval time.Duration

	// OnError receives the errors of the background sweep. Default: they
	// are dropped.
	OnError func(error)
}

// Store is a [store.Store] on a NATS JetStream key-value bucket. It also
// implements [store.Swapper], [store.Deleter], [store.Toucher],
// [store.TTLGetter] and [store.Scanner]; it has no [store.Refresher],
// since extending a key's expiry takes a read and a write (see the package
// doc). A Store is safe for concurrent use. It does not own the NATS
// connection: close the connection after [Store.Close].
type Store struct {
	js     jetstream.JetStream
	kv     jetstream.KeyValue
	stream jetstream.Stream
	bucket string
	pre    string // subject prefix of the bucket's keys: "$KV.<bucket>."
	sweep  *storeutil.Loop

	mu      sync.Mutex
	closed  bool
	running int           // calls in progress
	idle    chan struct{} // closed when running drops to 0 after Close
}

// Compile-time checks of the capabilities.
var (
	_ store.Store     = (*Store)(nil)
	_ store.Swapper   = (*Store)(nil)
	_ store.Deleter   = (*Store)(nil)
	_ store.Toucher   = (*Store)(nil)
	_ store.TTLGetter = (*Store)(nil)
	_ store.Scanner   = (*Store)(nil)
)

var validBucket = regexp.MustCompile(`\A[a-zA-Z0-9_-]+\z`)

// New returns a store on the key-value bucket Options.Bucket of js,
// creating the bucket when it does not exist. The server needs JetStream
// (NATS 2.9 or later). It returns an error for an invalid bucket name,
// when the bucket cannot be found or created, and for a connection that
// buffers what is published while it reconnects: connect with
// nats.ReconnectBufSize(-1) (or nats.NoReconnect()); see "Lost
// connections" in the package documentation. Call [Store.Close] when
// done; it does not close js's connection.
func New(ctx context.Context, js jetstream.JetStream, opts Options) (*Store, error) {
	if js == nil {
		panic("natsstore: New called with a nil jetstream.JetStream; pass jetstream.New(nc)")
	}
	if nc := js.Conn(); nc != nil && nc.Opts.AllowReconnect && nc.Opts.ReconnectBufSize >= 0 {
		return nil, fmt.Errorf("%s: the NATS connection buffers what is published while it reconnects (its ReconnectBufSize is %d, 0 meaning 8 MiB) and sends it once reconnected, after the call that published it has returned its error: a delete or write would then land later than its caller was told, and could erase another writer's acknowledged write; connect with nats.ReconnectBufSize(-1), so that a publish fails at once while the connection is down, or with nats.NoReconnect()",
			backend, nc.Opts.ReconnectBufSize)
	}
	bucket := opts.Bucket
	if bucket == "" {
		bucket = DefaultBucket
	}
	if !validBucket.MatchString(bucket) {
		return nil, fmt.Errorf("%s: invalid bucket name %q: use letters, digits, _ and -", backend, bucket)
	}
	kv, err := js.KeyValue(ctx, bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		replicas := opts.Replicas
		if replicas <= 0 {
			replicas = 1
		}
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      bucket,
			Description: "typedsession sessions",
			History:     1,
			Storage:     opts.Storage,
			Replicas:    replicas,
		})
		if errors.Is(err, jetstream.ErrBucketExists) { // another process made it first
			kv, err = js.KeyValue(ctx, bucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: bucket %q: %w", backend, bucket, err)
	}
	stream, err := js.Stream(ctx, "KV_"+bucket)
	if err != nil {
		return nil, fmt.Errorf("%s: stream of bucket %q: %w", backend, bucket, err)
	}
	s := &Store{js: js, kv: kv, stream: stream, bucket: bucket, pre: "$KV." + bucket + "."}
	interval := opts.SweepInterval
	if interval == 0 {
		interval = DefaultSweepInterval
	}
	s.sweep = storeutil.StartLoop(interval, func(ctx context.Context) error {
		_, err := s.Sweep(ctx)
		return err
	}, opts.OnError)
	return s, nil
}

// Bucket returns the name of the store's bucket.
func (s *Store) Bucket() string { return s.bucket }

// enter counts a call in, or returns ErrClosed after Close.
func (s *Store) enter(op, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return storeutil.Wrap(backend, op, key, store.ErrClosed)
	}
	s.running++
	return nil
}

func (s *Store) leave() {
	s.mu.Lock()
	s.running--
	if s.running == 0 && s.closed {
		close(s.idle)
	}
	s.mu.Unlock()
}

// begin checks the key, counts the call in and checks ctx: what every
// method does before any I/O.
func (s *Store) begin(ctx context.Context, op, key string) error {
	if err := store.CheckKey(key); err != nil {
		return storeutil.Wrap(backend, op, key, err)
	}
	if err := s.enter(op, key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		s.leave()
		return storeutil.Wrap(backend, op, key, err)
	}
	return nil
}

// Close stops the background sweep, waits for the calls in progress to
// return, and makes every later call return an error matching
// store.ErrClosed (a second Close too). Every write that returned nil was
// acknowledged by JetStream, so it is as durable as the bucket's storage
// and replicas make it. Close does not close the NATS connection.
func (s *Store) Close() error {
	// Stop the sweep first (Stop waits for a sweep in progress, which the
	// end of its ctx cuts short), so that no sweep meets ErrClosed.
	s.sweep.Stop()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return storeutil.Wrap(backend, "close", "", store.ErrClosed)
	}
	s.closed = true
	s.idle = make(chan struct{})
	if s.running == 0 {
		close(s.idle)
	}
	s.mu.Unlock()
	<-s.idle
	return nil
}

// entry is the state of one key as the last message on its subject says.
type entry struct {
	rev     uint64 // stream sequence of the last message; 0: none
	live    bool   // a value that has not expired
	value   []byte
	expires time.Time // zero: no expiry
}

// read returns the state of the key whose subject is subj at time now.
func (s *Store) read(ctx context.Context, subj string, now time.Time) (entry, error) {
	m, err := s.stream.GetLastMsgForSubject(ctx, subj)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return entry{}, nil
	}
	if err != nil {
		return entry{}, err
	}
	e := entry{rev: m.Sequence}
	if deleted(m.Header) {
		return e, nil
	}
	exp, err := parseExpiry(m.Header.Get(ExpiresHeader))
	if err != nil {
		return entry{}, err
	}
	e.expires = exp
	e.live = exp.IsZero() || now.Before(exp)
	if e.live {
		e.value = m.Data
		if e.value == nil {
			e.value = []byte{}
		}
	}
	return e, nil
}

// deleted reports whether a message's headers mark its key as deleted.
func deleted(h nats.Header) bool {
	return h.Get(kvOperationHeader) != "" || h.Get(markerHeader) != ""
}

func parseExpiry(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	ns, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ns <= 0 {
		return time.Time{}, fmt.Errorf("%w: header %s is %q, not Unix nanoseconds", store.ErrCorrupt, ExpiresHeader, v)
	}
	return time.Unix(0, ns), nil
}

// publish writes value under subj with the expiry of ttl from now. With
// expect, the write happens only if the subject's last message is still
// the one with that sequence (0: there is none); otherwise it returns an
// error that isWrongRevision recognises.
func (s *Store) publish(ctx context.Context, subj string, value []byte, ttl time.Duration, expect *uint64) error {
	m := &nats.Msg{Subject: subj, Data: value}
	var opts []jetstream.PublishOpt
	if ttl > 0 || expect != nil {
		m.Header = nats.Header{}
	}
	if ttl > 0 {
		m.Header.Set(ExpiresHeader, strconv.FormatInt(store.Deadline(time.Now(), ttl).UnixNano(), 10))
	}
	if expect != nil {
		opts = append(opts, jetstream.WithExpectLastSequencePerSubject(*expect))
	}
	_, err := s.js.PublishMsg(ctx, m, opts...)
	if errors.Is(err, nats.ErrMaxPayload) {
		return fmt.Errorf("%w: %d bytes and headers exceed the server's max_payload of %d bytes: %w",
			store.ErrTooLarge, len(value), s.js.Conn().MaxPayload(), err)
	}
	return err
}

// isWrongRevision reports whether a conditional write failed because the
// key changed since it was read.
func isWrongRevision(err error) bool {
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// Get returns the value of key, or an error matching store.ErrNotFound
// when it is absent, deleted or expired. It is one direct read of the
// subject's last message.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	v, _, err := s.get(ctx, "get", key)
	return v, err
}

// GetWithTTL is Get that also returns the time left before key expires,
// or store.NoExpiry. The time comes from the expiry stored with the value
// and this machine's clock.
func (s *Store) GetWithTTL(ctx context.Context, key string) ([]byte, time.Duration, error) {
	v, exp, err := s.get(ctx, "get with ttl", key)
	if err != nil {
		return nil, 0, err
	}
	if exp.IsZero() {
		return v, store.NoExpiry, nil
	}
	left := time.Until(exp)
	if left <= 0 {
		left = 1 // expired since the read: still the value read
	}
	return v, left, nil
}

func (s *Store) get(ctx context.Context, op, key string) ([]byte, time.Time, error) {
	if err := s.begin(ctx, op, key); err != nil {
		return nil, time.Time{}, err
	}
	defer s.leave()
	e, err := s.read(ctx, s.pre+encodeKey(key), time.Now())
	if err != nil {
		return nil, time.Time{}, storeutil.Wrap(backend, op, key, err)
	}
	if !e.live {
		return nil, time.Time{}, storeutil.Wrap(backend, op, key, store.ErrNotFound)
	}
	return e.value, e.expires, nil
}

// Set stores value under key; a ttl > 0 makes it expire after ttl, a ttl
// <= 0 stores it without expiry. It is one JetStream publish. A value
// whose size, with the expiry header, exceeds the server's max_payload
// (1 MiB by default) gets an error matching store.ErrTooLarge.
func (s *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := s.begin(ctx, "set", key); err != nil {
		return err
	}
	defer s.leave()
	return storeutil.Wrap(backend, "set", key, s.publish(ctx, s.pre+encodeKey(key), value, ttl, nil))
}

// Delete removes key: it writes the bucket's delete marker, which replaces
// the value (history 1) and is reclaimed by the sweep after 30 minutes.
// Deleting an absent key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.begin(ctx, "delete", key); err != nil {
		return err
	}
	defer s.leave()
	return storeutil.Wrap(backend, "delete", key, s.kv.Delete(ctx, encodeKey(key)))
}

// CompareAndSwap stores value under key with ttl if the current value
// equals old (nil old: if the key is absent, deleted or expired), and
// reports whether it did; see [store.Swapper], whose resend rule it
// follows. It reads the key's last message and publishes the new value on
// the condition that the subject's last sequence is still the one read
// (JetStream's compare-and-swap by revision); when another writer came in
// between, it reads and compares again. It never publishes twice: a
// publish whose reply is lost returns its error, never false.
func (s *Store) CompareAndSwap(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error) {
	if err := s.begin(ctx, "compare-and-swap", key); err != nil {
		return false, err
	}
	defer s.leave()
	subj := s.pre + encodeKey(key)
	for {
		e, err := s.read(ctx, subj, time.Now())
		if err != nil {
			return false, storeutil.Wrap(backend, "compare-and-swap", key, err)
		}
		switch {
		case old == nil && !e.live:
		case old != nil && e.live && bytes.Equal(e.value, old):
		case e.live && bytes.Equal(e.value, value): // a resent swap finds its own write
		default:
			return false, nil
		}
		err = s.publish(ctx, subj, value, ttl, &e.rev)
		if isWrongRevision(err) {
			continue // changed since the read: compare again
		}
		if err != nil {
			return false, storeutil.Wrap(backend, "compare-and-swap", key, err)
		}
		return true, nil
	}
}

// CompareAndDelete deletes key if its current value equals old, and
// reports whether this call deleted it (an absent, deleted or expired key
// reports false); see [store.Deleter]. The delete marker is written on the
// condition that the key's revision is still the one read.
func (s *Store) CompareAndDelete(ctx context.Context, key string, old []byte) (bool, error) {
	if err := s.begin(ctx, "compare-and-delete", key); err != nil {
		return false, err
	}
	defer s.leave()
	enc := encodeKey(key)
	for {
		e, err := s.read(ctx, s.pre+enc, time.Now())
		if err != nil {
			return false, storeutil.Wrap(backend, "compare-and-delete", key, err)
		}
		if !e.live {
			return false, nil
		}
		if !bytes.Equal(e.value, old) {
			return false, nil
		}
		err = s.kv.Delete(ctx, enc, jetstream.LastRevision(e.rev))
		if isWrongRevision(err) {
			continue
		}
		if err != nil {
			return false, storeutil.Wrap(backend, "compare-and-delete", key, err)
		}
		return true, nil
	}
}

// Touch sets key to expire after ttl from now (ttl <= 0: never). It
// returns an error matching store.ErrNotFound for an absent or expired
// key. A bucket without per-key TTL cannot change an expiry alone, so
// Touch reads the value and writes it again with the new expiry, on the
// condition that the revision is still the one read: two round trips and
// a new revision. The session manager touches only near expiry.
func (s *Store) Touch(ctx context.Context, key string, ttl time.Duration) error {
	if err := s.begin(ctx, "touch", key); err != nil {
		return err
	}
	defer s.leave()
	subj := s.pre + encodeKey(key)
	for {
		e, err := s.read(ctx, subj, time.Now())
		if err != nil {
			return storeutil.Wrap(backend, "touch", key, err)
		}
		if !e.live {
			return storeutil.Wrap(backend, "touch", key, store.ErrNotFound)
		}
		err = s.publish(ctx, subj, e.value, ttl, &e.rev)
		if isWrongRevision(err) {
			continue
		}
		return storeutil.Wrap(backend, "touch", key, err)
	}
}
