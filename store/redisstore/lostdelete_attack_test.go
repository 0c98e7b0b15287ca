package redisstore_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/internal/testenv"
	"github.com/typedsession/session/store/redisstore"
)

// delTrap is a go-redis dial hook whose connections lose the reply of the
// first DEL they carry: the DEL reaches the server and runs, then, before
// its reply is read, another writer (foreign) writes the key, and the
// connection is cut. The client sees a lost reply.
type delTrap struct {
	mu      sync.Mutex
	fired   bool
	foreign func()
	match   string // the command to trap, lower case; "": del
}

func (d *delTrap) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := next(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &delTrapConn{Conn: conn, d: d}, nil
	}
}

func (d *delTrap) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (d *delTrap) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

type delTrapConn struct {
	net.Conn
	d     *delTrap
	armed bool
}

func (c *delTrapConn) Write(b []byte) (int, error) {
	c.d.mu.Lock()
	match := c.d.match
	if match == "" {
		match = "del"
	}
	if !c.d.fired && bytes.Contains(bytes.ToLower(b), []byte("\r\n"+match+"\r\n")) {
		c.d.fired, c.armed = true, true
	}
	c.d.mu.Unlock()
	return c.Conn.Write(b)
}

func (c *delTrapConn) Read(b []byte) (int, error) {
	if !c.armed {
		return c.Conn.Read(b)
	}
	// The DEL ran: its reply is on the way. Another writer writes the
	// key before the client reads it, and the reply is lost.
	if _, err := c.Conn.Read(b); err != nil {
		return 0, err
	}
	c.d.foreign()
	c.Conn.Close()
	return 0, io.ErrUnexpectedEOF
}

// TestAttackLostDeleteReplyNotResent: Manager.Delete whose DEL landed and
// whose reply was lost must not send the DEL again (internal/protocol:
// DeleteAny is sent once, and its open reply settled by a read): another
// writer created the key after the first DEL, acknowledged, and a resend
// would erase that session. go-redis resends a command whose reply was
// lost on its own (MaxRetries), and the store resent DEL itself too, so
// the protocol's rule was undone below it.
func TestAttackLostDeleteReplyNotResent(t *testing.T) {
	for _, ap := range []bool{false, true} {
		name := "plain"
		if ap {
			name = "autopipeline"
		}
		t.Run(name, func(t *testing.T) {
			direct := testenv.Redis(t)
			opt, err := redis.ParseURL(testenv.RedisURL())
			if err != nil {
				t.Fatal(err)
			}
			opt.ContextTimeoutEnabled = true
			client := redis.NewClient(opt)
			t.Cleanup(func() { client.Close() })
			prefix := testenv.Prefix(t, "lostdel")
			testenv.CleanupPrefix(t, direct, prefix)
			ctx := t.Context()
			foreign := []byte(`{"typedsession":1,"writes":["foreignWrite"],"data":{"n":7}}`)
			trap := &delTrap{foreign: func() {
				// Another process creates the session only if absent (its
				// own NewSession and Save): acknowledged.
				ok, err := direct.SetNX(ctx, prefix+"counter:k", foreign, 0).Result()
				if err != nil || !ok {
					t.Errorf("foreign create: %v %v", ok, err)
				}
			}}
			client.AddHook(trap)
			st := redisstore.New(client, redisstore.Options{Prefix: prefix, AutoPipeline: ap})
			m := newCounterManager(t, st, 0)
			if _, err := m.Update(ctx, "k", increment); err != nil {
				t.Fatal(err)
			}
			err = m.Delete(ctx, "k")
			if !trap.fired {
				t.Fatal("the trap did not fire: no DEL was sent")
			}
			got, gerr := st.Get(ctx, "counter:k")
			if !bytes.Equal(got, foreign) {
				t.Fatalf("after Delete (err %v) the key holds %q (%v); want the foreign session %q, created after the delete landed", err, got, gerr, foreign)
			}
			if !errors.Is(err, session.ErrOutcomeUnknown) {
				t.Fatalf("Delete = %v; want ErrOutcomeUnknown (the read shows another value)", err)
			}
		})
	}
}

// TestAttackResentSwapMeetingDamageIsUnknown: the store resends a
// compare-and-swap whose reply was lost itself. When the resend met a
// key another program had turned into a hash meanwhile (WRONGTYPE, which
// matches store.ErrCorrupt: "nothing written"), the store returned that
// error alone, and the write protocol took it for a definite refusal,
// though the first attempt had landed.
func TestAttackResentSwapMeetingDamageIsUnknown(t *testing.T) {
	direct := testenv.Redis(t)
	opt, err := redis.ParseURL(testenv.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	opt.ContextTimeoutEnabled = true
	client := redis.NewClient(opt)
	t.Cleanup(func() { client.Close() })
	prefix := testenv.Prefix(t, "lostcas")
	testenv.CleanupPrefix(t, direct, prefix)
	ctx := t.Context()
	trap := &delTrap{match: "evalsha", fired: true} // armed below
	client.AddHook(trap)
	st := redisstore.New(client, redisstore.Options{Prefix: prefix})
	m := newCounterManager(t, st, 0)
	if _, err := m.Update(ctx, "k", increment); err != nil {
		t.Fatal(err)
	}
	s, err := m.Load(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	var landed []byte
	trap.mu.Lock()
	trap.fired, trap.foreign = false, func() {
		landed, _ = direct.Get(ctx, prefix+"counter:k").Bytes()
		direct.Del(ctx, prefix+"counter:k")
		direct.HSet(ctx, prefix+"counter:k", "f", "v")
	}
	trap.mu.Unlock()
	s.Data.N++
	err = m.Save(ctx, s)
	if !trap.fired {
		t.Fatal("the trap did not fire")
	}
	if !bytes.Contains(landed, []byte(`"n":2`)) {
		t.Fatalf("the first attempt did not land (the premise): %s", landed)
	}
	if !errors.Is(err, session.ErrOutcomeUnknown) {
		t.Fatalf("Save = %v; want ErrOutcomeUnknown (the first attempt landed)", err)
	}
}
