package conversation_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/conversation"
	"github.com/typedsession/session/internal/testenv"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/memstore"
	"github.com/typedsession/session/store/redisstore"
)

// Bot is the session type of the tests: a sign-up conversation and what
// it leaves behind.
type Bot struct {
	Conv    conversation.State `json:"conv"`
	Results []Signup           `json:"results,omitempty"`
	// Fired counts the timeouts run and saved: exactly once means 1.
	Fired int `json:"fired,omitempty"`
	// Seen counts the updates applied: once per update means one each.
	Seen int `json:"seen,omitempty"`
}

// Msg is an update: a message's text.
type Msg struct{ Text string }

// Signup is the sign-up flow's result.
type Signup struct {
	Name string
	Age  int
	City string
}

// Address is the address sub-conversation's result.
type Address struct{ City, Street string }

// The steps of the sign-up flow.
type (
	AskName struct{}
	AskAge  struct{ Name string }
	Confirm struct {
		Name string
		Age  int
		City string
	}
)

// The steps of the address flow.
type (
	AskCity   struct{}
	AskStreet struct{ City string }
)

// clock is a fake clock shared by the flows of a test.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// stores runs fn on a fresh memstore and on a fresh prefix of Redis.
func stores(t *testing.T, fn func(t *testing.T, st store.Store)) {
	t.Run("memstore", func(t *testing.T) {
		st, err := memstore.New(memstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		fn(t, st)
	})
	t.Run("redis", func(t *testing.T) {
		fn(t, redisStore(t))
	})
}

func redisStore(t testing.TB) store.Store {
	c := testenv.Redis(t)
	prefix := testenv.Prefix(t, "conv")
	testenv.CleanupPrefix(t, c, prefix)
	return redisstore.New(c, redisstore.Options{Prefix: prefix})
}

// counters counts the Do functions run, per key.
type counters struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counters) inc(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[key]++
}

func (c *counters) get(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[key]
}

// proc is one process of a bot: its manager and flows over a store.
type proc struct {
	m       *session.Manager[Bot]
	flow    *conversation.Flow[Bot, Msg, Signup]
	address *conversation.Flow[Bot, Msg, Address]
	effects *counters // timeouts' Do functions run
}

const ageTimeout = time.Minute

// newProc builds the sign-up flow: /start and /cancel as globals, typed
// steps with back, a one-minute timeout on AskAge, the address
// sub-conversation from AskAge ("address").
func newProc(t testing.TB, st store.Store, clk *clock, edit func(*conversation.Config[Bot])) *proc {
	t.Helper()
	m, err := session.New(session.Config[Bot]{Store: st, Namespace: "bot"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := conversation.Config[Bot]{
		Name:    "signup",
		Manager: m,
		State:   func(b *Bot) *conversation.State { return &b.Conv },
		Store:   st,
		Now:     clk.Now,
	}
	if edit != nil {
		edit(&cfg)
	}
	f, err := conversation.New[Bot, Msg, Signup](cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{m: m, flow: f, effects: &counters{}}
	f.Global(func(t *conversation.Turn[Bot, Msg, Signup]) (conversation.Next, bool, error) {
		u, _ := t.Update()
		switch u.Text {
		case "/start":
			return conversation.Goto(AskName{}), true, nil
		case "/cancel":
			return t.Cancel(), true, nil
		}
		return conversation.Next{}, false, nil
	})
	conversation.On(f, func(t *conversation.Turn[Bot, Msg, Signup], d *AskName) (conversation.Next, error) {
		u, _ := t.Update()
		t.Session().Seen++
		return conversation.Goto(AskAge{Name: u.Text}), nil
	})
	conversation.On(f, func(t *conversation.Turn[Bot, Msg, Signup], d *AskAge) (conversation.Next, error) {
		u, _ := t.Update()
		t.Session().Seen++
		switch u.Text {
		case "back":
			return t.Back(), nil
		case "address":
			return conversation.Call(p.address, AskCity{}), nil
		}
		age, err := strconv.Atoi(u.Text)
		if err != nil {
			return t.Stay(), nil
		}
		return conversation.Goto(Confirm{Name: d.Name, Age: age}), nil
	})
	conversation.OnTimeout(f, ageTimeout, func(t *conversation.Turn[Bot, Msg, Signup], d *AskAge) (conversation.Next, error) {
		t.Session().Fired++
		key := t.Key()
		t.Do(func(context.Context) error { p.effects.inc(key); return nil })
		return t.Cancel(), nil
	})
	conversation.On(f, func(t *conversation.Turn[Bot, Msg, Signup], d *Confirm) (conversation.Next, error) {
		u, _ := t.Update()
		t.Session().Seen++
		switch u.Text {
		case "yes":
			return t.End(Signup{Name: d.Name, Age: d.Age, City: d.City}), nil
		case "no", "back":
			return t.Back(), nil
		}
		return t.Stay(), nil
	})
	f.OnEnd(func(t *conversation.Turn[Bot, Msg, Signup], r Signup) error {
		t.Session().Results = append(t.Session().Results, r)
		return nil
	})

	a, err := conversation.New[Bot, Msg, Address](conversation.Config[Bot]{
		Name:  "address",
		State: func(b *Bot) *conversation.State { return &b.Conv },
		Now:   clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	p.address = a
	conversation.On(a, func(t *conversation.Turn[Bot, Msg, Address], d *AskCity) (conversation.Next, error) {
		u, _ := t.Update()
		return conversation.Goto(AskStreet{City: u.Text}), nil
	})
	conversation.On(a, func(t *conversation.Turn[Bot, Msg, Address], d *AskStreet) (conversation.Next, error) {
		u, _ := t.Update()
		if u.Text == "back" {
			return t.Back(), nil
		}
		return t.End(Address{City: d.City, Street: u.Text}), nil
	})
	conversation.OnReturn(f, a, func(t *conversation.Turn[Bot, Msg, Signup], d *AskAge, r Address) (conversation.Next, error) {
		return conversation.Goto(Confirm{Name: d.Name, Age: 0, City: r.City}), nil
	})
	return p
}

// send handles text as update id for key, failing the test on an error.
func (p *proc) send(t testing.TB, key string, id int64, text string) conversation.Outcome[Signup] {
	t.Helper()
	out, err := p.flow.Handle(context.Background(), key, id, Msg{Text: text})
	if err != nil {
		t.Fatalf("Handle(%q, %d, %q): %v", key, id, text, err)
	}
	return out
}

func (p *proc) load(t testing.TB, key string) Bot {
	t.Helper()
	s, err := p.m.Load(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return s.Data
}

// errKilled is what a killed process's store returns.
var errKilled = errors.New("process killed")

// killable wraps a store, as one process sees it: after limit operations
// every call fails, and the operation at the limit lands but its reply
// is lost (the process died after sending it).
type killable struct {
	st    store.Store
	sw    store.Swapper
	del   store.Deleter
	ops   atomic.Int64
	limit int64
}

func newKillable(st store.Store, limit int64) *killable {
	k := &killable{st: st, limit: limit}
	k.sw = st.(store.Swapper)
	k.del, _ = st.(store.Deleter)
	return k
}

// step reports whether the call may run, and whether its reply is lost.
func (k *killable) step() (run, lost bool) {
	n := k.ops.Add(1)
	return n <= k.limit, n == k.limit
}

func (k *killable) Get(ctx context.Context, key string) ([]byte, error) {
	if run, lost := k.step(); !run || lost {
		return nil, errKilled
	}
	return k.st.Get(ctx, key)
}

func (k *killable) Set(ctx context.Context, key string, v []byte, ttl time.Duration) error {
	run, lost := k.step()
	if !run {
		return errKilled
	}
	err := k.st.Set(ctx, key, v, ttl)
	if lost {
		return errKilled
	}
	return err
}

func (k *killable) Delete(ctx context.Context, key string) error {
	run, lost := k.step()
	if !run {
		return errKilled
	}
	err := k.st.Delete(ctx, key)
	if lost {
		return errKilled
	}
	return err
}

func (k *killable) CompareAndSwap(ctx context.Context, key string, old, v []byte, ttl time.Duration) (bool, error) {
	run, lost := k.step()
	if !run {
		return false, errKilled
	}
	ok, err := k.sw.CompareAndSwap(ctx, key, old, v, ttl)
	if lost {
		return false, errKilled
	}
	return ok, err
}

func (k *killable) CompareAndDelete(ctx context.Context, key string, old []byte) (bool, error) {
	run, lost := k.step()
	if !run {
		return false, errKilled
	}
	ok, err := k.del.CompareAndDelete(ctx, key, old)
	if lost {
		return false, errKilled
	}
	return ok, err
}
