package webtest

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/typedsession/session/store"
)

// Tap wraps a store: after each operation it calls the hook (to run
// something at an exact point of another operation), and it counts the
// round trips and bytes of each kind of key (sessions, index). It forwards
// every capability the tests' stores have (compare-and-swap and -delete,
// Touch, GetAndTouch, GetWithTTL, Scan); one the wrapped store lacks
// returns an error. A Tap is safe for concurrent use.
type Tap struct {
	inner store.Store

	mu      sync.Mutex
	hook    func(Op)
	stats   map[string]*Stat
	written map[string]bool // every key a write was sent for
}

// Op is an operation the Tap saw, after it returned.
type Op struct {
	Name     string // the store method
	Key      string
	Old      []byte // CompareAndSwap's and CompareAndDelete's old
	OldIsNil bool   // CompareAndSwap's "only if absent"
	OK       bool   // CompareAndSwap's and CompareAndDelete's result
	Err      error
}

// Stat counts the operations on one kind of key: round trips, bytes sent
// (values written, and the old value of a compare) and bytes received.
type Stat struct {
	Calls    int
	Sent     int
	Received int
}

// NewTap wraps st.
func NewTap(st store.Store) *Tap {
	return &Tap{inner: st, stats: map[string]*Stat{}, written: map[string]bool{}}
}

// Written returns every key a Set or CompareAndSwap was sent for, in no
// order: the keys that may hold a value, found without a scan.
func (t *Tap) Written() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	keys := make([]string, 0, len(t.written))
	for k := range t.written {
		keys = append(keys, k)
	}
	return keys
}

// SetHook sets the function called after every operation (nil: none). It
// runs on the goroutine of the operation, before the operation returns.
func (t *Tap) SetHook(f func(Op)) {
	t.mu.Lock()
	t.hook = f
	t.mu.Unlock()
}

// Stats returns the counts by kind of key ("session", "index", "other")
// since the last Reset, and resets them.
func (t *Tap) Stats() map[string]Stat {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]Stat{}
	for k, v := range t.stats {
		out[k] = *v
	}
	t.stats = map[string]*Stat{}
	return out
}

func kind(key string) string {
	switch {
	case strings.HasPrefix(key, SessionNS+":"):
		return "session"
	case strings.HasPrefix(key, DevicesNS+":"):
		return "index"
	}
	return "other"
}

func (t *Tap) done(op Op, sent, received int) {
	t.mu.Lock()
	s := t.stats[kind(op.Key)]
	if s == nil {
		s = &Stat{}
		t.stats[kind(op.Key)] = s
	}
	s.Calls++
	if op.Name == "Set" || op.Name == "CompareAndSwap" {
		t.written[op.Key] = true
	}
	s.Sent += sent + len(op.Key)
	s.Received += received
	hook := t.hook
	t.mu.Unlock()
	if hook != nil {
		hook(op)
	}
}

var errMissing = errors.New("webtest: the wrapped store lacks this method")

func (t *Tap) Get(ctx context.Context, key string) ([]byte, error) {
	v, err := t.inner.Get(ctx, key)
	t.done(Op{Name: "Get", Key: key, Err: err}, 0, len(v))
	return v, err
}

func (t *Tap) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	err := t.inner.Set(ctx, key, value, ttl)
	t.done(Op{Name: "Set", Key: key, Err: err}, len(value), 0)
	return err
}

func (t *Tap) Delete(ctx context.Context, key string) error {
	err := t.inner.Delete(ctx, key)
	t.done(Op{Name: "Delete", Key: key, Err: err}, 0, 0)
	return err
}

func (t *Tap) CompareAndSwap(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error) {
	s, ok := t.inner.(store.Swapper)
	if !ok {
		return false, errMissing
	}
	swapped, err := s.CompareAndSwap(ctx, key, old, value, ttl)
	t.done(Op{Name: "CompareAndSwap", Key: key, Old: old, OldIsNil: old == nil, OK: swapped, Err: err}, len(old)+len(value), 0)
	return swapped, err
}

func (t *Tap) CompareAndDelete(ctx context.Context, key string, old []byte) (bool, error) {
	s, ok := t.inner.(store.Deleter)
	if !ok {
		return false, errMissing
	}
	deleted, err := s.CompareAndDelete(ctx, key, old)
	t.done(Op{Name: "CompareAndDelete", Key: key, Old: old, OK: deleted, Err: err}, len(old), 0)
	return deleted, err
}

func (t *Tap) Touch(ctx context.Context, key string, ttl time.Duration) error {
	s, ok := t.inner.(store.Toucher)
	if !ok {
		return errMissing
	}
	err := s.Touch(ctx, key, ttl)
	t.done(Op{Name: "Touch", Key: key, Err: err}, 0, 0)
	return err
}

func (t *Tap) GetAndTouch(ctx context.Context, key string, ttl time.Duration) ([]byte, error) {
	s, ok := t.inner.(store.Refresher)
	if !ok {
		return nil, errMissing
	}
	v, err := s.GetAndTouch(ctx, key, ttl)
	t.done(Op{Name: "GetAndTouch", Key: key, Err: err}, 0, len(v))
	return v, err
}

func (t *Tap) GetWithTTL(ctx context.Context, key string) ([]byte, time.Duration, error) {
	s, ok := t.inner.(store.TTLGetter)
	if !ok {
		return nil, 0, errMissing
	}
	v, left, err := s.GetWithTTL(ctx, key)
	t.done(Op{Name: "GetWithTTL", Key: key, Err: err}, 0, len(v))
	return v, left, err
}

func (t *Tap) Scan(ctx context.Context, prefix string, fn func(key string) error) error {
	s, ok := t.inner.(store.Scanner)
	if !ok {
		return errMissing
	}
	return s.Scan(ctx, prefix, fn)
}
