package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/typedsession/session/store"
)

// lostReplyProxy loses the reply of one request, through a Proxy: armed
// with a marker (bytes of a key), it forwards the first request that
// carries the marker, drops everything the server answers on that
// connection, lets another writer act once the server has run the request,
// then cuts the connection. It counts the requests that carry the marker,
// so a resend (by the client library, on this or a new connection) shows
// as a second one.
type lostReplyProxy struct {
	*Proxy
	mu     sync.Mutex
	marker []byte
	after  func()
	seen   int
}

func startLostReplyProxy(tb testing.TB, target string) *lostReplyProxy {
	tb.Helper()
	lp := &lostReplyProxy{Proxy: StartProxy(tb, target)}
	lp.Proxy.mu.Lock()
	lp.Proxy.inspect = lp.inspect
	lp.Proxy.mu.Unlock()
	return lp
}

// inspect is the Proxy's look at each request (see Proxy.inspect).
func (p *lostReplyProxy) inspect(chunk []byte) (drop bool, then func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.marker == nil || !bytes.Contains(chunk, p.marker) {
		return false, nil
	}
	p.seen++
	after := p.after
	p.after = nil
	if after == nil {
		return false, nil
	}
	return true, func() {
		time.Sleep(200 * time.Millisecond) // the server runs the request
		after()
	}
}

// arm makes the next request carrying marker lose its reply, with after
// run once the server has run it; it resets the count.
func (p *lostReplyProxy) arm(marker []byte, after func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.marker, p.after, p.seen = marker, after, 0
}

func (p *lostReplyProxy) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seen
}

// errAnswered is a conditional write's answer (true or false) where an
// error was due.
var errAnswered = errors.New("answered")

// LostReplies checks the store contract's rule for lost replies against a
// real server: a write whose reply is lost is never sent again by the
// store or its client library, and a conditional write then returns an
// error, never true or false. open returns the store under test through
// a proxy at the given address (the server's address replaced by it) and
// a second store that talks to the server directly, the other writer.
// target is the server's host:port. Each case writes a value, loses its
// reply after the server ran it, lets the other writer change the key,
// and checks that the other writer's value stands, that a blind write
// went out once, and that a conditional one reports an open outcome. marker, when not nil, gives the bytes that mark the write
// of a key on the wire (and no other request), if not the key itself.
func LostReplies(t *testing.T, target string, open func(t *testing.T, proxyAddr string) (viaProxy, direct store.Store), marker func(key string) []byte) {
	if marker == nil {
		marker = func(key string) []byte { return []byte(key) }
	}
	p := startLostReplyProxy(t, target)
	st, direct := open(t, p.Addr())
	sw, _ := st.(store.Swapper)
	del, _ := st.(store.Deleter)
	ctx := context.Background()
	setDirect := func(t *testing.T, key string, v []byte) {
		if err := direct.Set(ctx, key, v, time.Hour); err != nil {
			t.Errorf("the other writer's Set: %v", err)
		}
	}
	type tc struct {
		name string
		run  func(key string) error // the write whose reply is lost
		skip bool
		// once: the write must go out once. A blind write must; a
		// conditional one may be resent by the store (the contract's
		// resend rule), which must then report its outcome open.
		once bool
	}
	cases := []tc{
		{"Set", func(key string) error { return st.Set(ctx, key, []byte("lost-reply-new"), time.Hour) }, false, true},
		{"Delete", func(key string) error { return st.Delete(ctx, key) }, false, true},
		{"CompareAndSwap", func(key string) error {
			ok, err := sw.CompareAndSwap(ctx, key, []byte("lost-reply-old"), []byte("lost-reply-new"), time.Hour)
			if err == nil {
				return fmt.Errorf("%w: %v", errAnswered, ok)
			}
			return err
		}, sw == nil, false},
		{"CompareAndDelete", func(key string) error {
			ok, err := del.CompareAndDelete(ctx, key, []byte("lost-reply-old"))
			if err == nil {
				return fmt.Errorf("%w: %v", errAnswered, ok)
			}
			return err
		}, del == nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.skip {
				t.Skip("the store does not have it")
			}
			key := "lostreply-" + c.name + "-" + time.Now().Format("150405.000000000")
			setDirect(t, key, []byte("lost-reply-old"))
			// The client is connected again after the last case's cut.
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				if _, err := st.Get(ctx, key); err == nil {
					break
				} else if time.Now().After(deadline) {
					t.Fatalf("the store does not read through the proxy: %v", err)
				}
			}
			p.arm(marker(key), func() { setDirect(t, key, []byte("lost-reply-other")) })
			err := c.run(key)
			time.Sleep(100 * time.Millisecond) // a resend on a new connection would pass the proxy again
			n := p.count()
			p.arm(nil, nil)
			if err == nil || errors.Is(err, errAnswered) {
				t.Errorf("%s after its reply was lost: %v; want an error (the outcome is open)", c.name, err)
			} else if errors.Is(err, store.ErrInvalidKey) || errors.Is(err, store.ErrTooLarge) || errors.Is(err, store.ErrClosed) || errors.Is(err, store.ErrCorrupt) {
				t.Errorf("%s after a lost reply: %v, which says nothing was written", c.name, err)
			}
			got, gerr := direct.Get(ctx, key)
			if gerr != nil || string(got) != "lost-reply-other" {
				t.Errorf("after %s lost its reply and the other writer wrote the key: %q, %v; want the other writer's value (a resend undid it)", c.name, got, gerr)
			}
			if n != 1 && (c.once || n == 0) {
				t.Errorf("%s went out %d times, want once", c.name, n)
			}
			_ = direct.Delete(ctx, key)
		})
	}
}
