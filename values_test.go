package session_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/typedsession/session"
	"github.com/typedsession/session/internal/testenv"
	"github.com/typedsession/session/migrate"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/redisstore"
)

// eachStore runs fn on memstore and on Redis (a server store), each with
// a fresh key space.
func eachStore(t *testing.T, fn func(t *testing.T, st store.Store)) {
	t.Run("memstore", func(t *testing.T) { fn(t, newMem(t)) })
	t.Run("redis", func(t *testing.T) {
		c := testenv.Redis(t)
		prefix := testenv.Prefix(t, "values")
		testenv.CleanupPrefix(t, c, prefix)
		fn(t, redisstore.New(c, redisstore.Options{Prefix: prefix}))
	})
}

// Chat holds untyped fields, as bots keep data from the Bot API.
type Chat struct {
	Name  string         `json:"name"`
	Extra map[string]any `json:"extra"`
	Any   any            `json:"any"`
}

func TestLargeIntegersInInterfacesStayExact(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		ctx := t.Context()
		c := newCounting(st)
		m := newManager(t, session.Config[Chat]{Store: c, Namespace: "chat"})
		const id = int64(1265476890672672808)
		if _, err := m.Update(ctx, "1", func(d *Chat) error {
			d.Extra = map[string]any{"chat_id": id}
			d.Any = id
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		s, err := m.Load(ctx, "1")
		if err != nil {
			t.Fatal(err)
		}
		want := Chat{Extra: map[string]any{"chat_id": json.Number("1265476890672672808")}, Any: json.Number("1265476890672672808")}
		if diff := cmp.Diff(want, s.Data); diff != "" {
			t.Fatalf("Load mismatch (-want +got):\n%s", diff)
		}
		c.Reset()
		if err := m.Save(ctx, s); err != nil {
			t.Fatal(err)
		}
		if n := c.Calls("CompareAndSwap") + c.Calls("Set"); n != 0 {
			t.Fatalf("an unchanged Save wrote %d times", n)
		}
		raw, _ := st.Get(ctx, "chat:1")
		if !strings.Contains(string(raw), `"chat_id":1265476890672672808`) {
			t.Fatalf("stored %s, want the exact chat ID", raw)
		}
	})
}

func TestRawStepKeepsLargeIntegerIntoAny(t *testing.T) {
	ctx := t.Context()
	st := newMem(t)
	st.Set(ctx, "chat:1", []byte(`{"chat":9007199254740993}`), 0)
	plan := migrate.MustNew(migrate.Raw(0, func(doc map[string]any) error {
		doc["any"] = doc["chat"]
		delete(doc, "chat")
		return nil
	}))
	m := newManager(t, session.Config[Chat]{Store: st, Namespace: "chat", Migrations: plan})
	got, err := m.Update(ctx, "1", func(*Chat) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if got.Any != json.Number("9007199254740993") {
		t.Fatalf("Any = %#v, want json.Number(\"9007199254740993\")", got.Any)
	}
	if raw, _ := st.Get(ctx, "chat:1"); !strings.Contains(string(raw), `"any":9007199254740993`) {
		t.Fatalf("stored %s", raw)
	}
}

func deepArray(n int) any {
	var v any = []any{}
	for range n {
		v = []any{v}
	}
	return v
}

func TestSaveRefusesWhatLoadCannotRead(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		ctx := t.Context()
		m := newManager(t, session.Config[Chat]{Store: st, Namespace: "chat"})
		if _, err := m.Update(ctx, "1", func(d *Chat) error { d.Name = "before"; return nil }); err != nil {
			t.Fatal(err)
		}
		before, _ := st.Get(ctx, "chat:1")
		for _, tc := range []struct {
			name string
			fn   func(*Chat)
			want string
		}{
			{"nested 20,000 deep", func(d *Chat) { d.Any = deepArray(20000) }, "nested"},
			{"invalid UTF-8 in a field", func(d *Chat) { d.Name = "a\xffb" }, "Name"},
			{"invalid UTF-8 in a map value", func(d *Chat) { d.Extra = map[string]any{"k": "a\xffb"} }, `Extra["k"]`},
			{"invalid UTF-8 in a map key", func(d *Chat) { d.Extra = map[string]any{"\xff": 1} }, "map key"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := m.Update(ctx, "1", func(d *Chat) error { tc.fn(d); return nil })
				if !errors.Is(err, session.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("Update = %v, want ErrInvalid naming %q", err, tc.want)
				}
				if after, _ := st.Get(ctx, "chat:1"); string(after) != string(before) {
					t.Fatalf("a refused Save changed the store:\n%s\n%s", before, after)
				}
				if s, err := m.Load(ctx, "1"); err != nil || s.Data.Name != "before" {
					t.Fatalf("Load after a refused Save = %+v, %v", s, err)
				}
			})
		}
		// A legitimate U+FFFD is not invalid.
		got, err := m.Update(ctx, "1", func(d *Chat) error { d.Name = "a\ufffdb"; return nil })
		if err != nil || got.Name != "a\ufffdb" {
			t.Fatalf("Update with U+FFFD = %+v, %v", got, err)
		}
	})
}

// Profile is the newer type: Language was "lang" before, without a step.
type Profile struct {
	Language string `json:"language"`
	Visits   int    `json:"visits"`
}

func TestUnknownMembersAreKept(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		ctx := t.Context()
		st.Set(ctx, "p:1", []byte(`{"typedsession":1,"data":{"lang":"fr","visits":1,"nested":{"x":[1,2]}}}`), 0)
		c := newCounting(st)
		m := newManager(t, session.Config[Profile]{Store: c, Namespace: "p"})
		s, err := m.Load(ctx, "1")
		if err != nil {
			t.Fatal(err)
		}
		if s.Data != (Profile{Visits: 1}) {
			t.Fatalf("Data = %+v", s.Data)
		}
		c.Reset()
		if err := m.Save(ctx, s); err != nil { // unchanged: nothing to write
			t.Fatal(err)
		}
		if n := c.Calls("CompareAndSwap"); n != 0 {
			t.Fatalf("an unchanged Save of a value with unknown members wrote %d times", n)
		}
		if _, err := m.Update(ctx, "1", func(p *Profile) error { p.Visits++; return nil }); err != nil {
			t.Fatal(err)
		}
		raw, _ := st.Get(ctx, "p:1")
		if want := `{"typedsession":1,"data":{"lang":"fr","visits":2,"nested":{"x":[1,2]},"language":""}}`; stripWrites(raw) != want {
			t.Fatalf("stored after a change\n got %s\nwant %s", stripWrites(raw), want)
		}
		// A step added later still finds the renamed field.
		plan := migrate.MustNew(migrate.Raw(1, func(doc map[string]any) error {
			doc["language"] = doc["lang"]
			delete(doc, "lang")
			return nil
		}))
		m2 := newManager(t, session.Config[Profile]{Store: st, Namespace: "p", Migrations: plan})
		got, err := m2.Update(ctx, "1", func(*Profile) error { return nil })
		if err != nil || got.Language != "fr" || got.Visits != 2 {
			t.Fatalf("after the step: %+v, %v", got, err)
		}
		// Strict mode refuses, naming the members.
		st.Set(ctx, "p:2", []byte(`{"typedsession":1,"data":{"lang":"fr"}}`), 0)
		strict := newManager(t, session.Config[Profile]{Store: st, Namespace: "p", ExtraMembers: session.RejectExtra})
		if _, err := strict.Load(ctx, "2"); !errors.Is(err, session.ErrCorrupt) || !strings.Contains(err.Error(), "lang") {
			t.Fatalf("strict Load = %v, want ErrCorrupt naming lang", err)
		}
	})
}

func TestRollingDeployKeepsTheNewField(t *testing.T) {
	type Old struct {
		A int `json:"a"`
	}
	type New struct {
		A    int    `json:"a"`
		Lang string `json:"lang"`
	}
	eachStore(t, func(t *testing.T, st store.Store) {
		ctx := t.Context()
		newer := newManager(t, session.Config[New]{Store: st, Namespace: "r"})
		older := newManager(t, session.Config[Old]{Store: st, Namespace: "r"})
		if _, err := newer.Update(ctx, "1", func(d *New) error { d.A, d.Lang = 1, "fr"; return nil }); err != nil {
			t.Fatal(err)
		}
		if _, err := older.Update(ctx, "1", func(d *Old) error { d.A++; return nil }); err != nil {
			t.Fatal(err)
		}
		got, err := newer.Update(ctx, "1", func(d *New) error { d.A++; return nil })
		if err != nil || got != (New{A: 3, Lang: "fr"}) {
			t.Fatalf("after old and new binaries: %+v, %v", got, err)
		}
	})
}

func TestCaseInsensitiveMembersAreKnown(t *testing.T) {
	ctx := t.Context()
	st := newMem(t)
	st.Set(ctx, "p:1", []byte(`{"typedsession":1,"data":{"Language":"fr","VISITS":1}}`), 0)
	m := newManager(t, session.Config[Profile]{Store: st, Namespace: "p", ExtraMembers: session.RejectExtra})
	got, err := m.Update(ctx, "1", func(p *Profile) error { p.Visits++; return nil })
	if err != nil || got != (Profile{Language: "fr", Visits: 2}) {
		t.Fatalf("Update = %+v, %v", got, err)
	}
	raw, _ := st.Get(ctx, "p:1")
	if want := `{"typedsession":1,"data":{"language":"fr","visits":2}}`; stripWrites(raw) != want {
		t.Fatalf("stored %s, want %s", stripWrites(raw), want)
	}
}

func TestNamespacesNeverShareKeys(t *testing.T) {
	st := newMem(t)
	if _, err := session.New(session.Config[Profile]{Store: st, Namespace: "shop:eu"}); err == nil || !strings.Contains(err.Error(), "':'") {
		t.Fatalf("New with Namespace shop:eu = %v, want an error about ':'", err)
	}
	raw := newManager(t, session.Config[Profile]{Store: st})
	if _, err := raw.MigrateAll(t.Context(), session.MigrateOptions{}); err == nil || !strings.Contains(err.Error(), "AllKeys") {
		t.Fatalf("MigrateAll without a Namespace = %v, want a refusal naming AllKeys", err)
	}
	if _, err := raw.MigrateAll(t.Context(), session.MigrateOptions{AllKeys: true}); err != nil {
		t.Fatal(err)
	}
	// Keys stay free-form.
	m := newManager(t, session.Config[Profile]{Store: st, Namespace: "shop"})
	if _, err := m.Update(t.Context(), "eu:1", func(p *Profile) error { p.Visits = 1; return nil }); err != nil {
		t.Fatal(err)
	}
}

// Pair is the session type of the reformatted-envelope tests.
type Pair struct {
	A int    `json:"a"`
	B string `json:"b"`
}

func TestReformattedEnvelopeIsAnEnvelope(t *testing.T) {
	plan := migrate.MustNew(migrate.Raw(0, func(map[string]any) error { return nil }))
	eachStore(t, func(t *testing.T, st store.Store) {
		ctx := t.Context()
		m := newManager(t, session.Config[Pair]{Store: st, Namespace: "e", Migrations: plan})
		for _, tc := range []struct {
			name, stored string
			want         Pair
			err          error
		}{
			{"members reordered (JSONB)", `{"data": {"a": 42, "b": "real"}, "typedsession": 1}`, Pair{A: 43, B: "real"}, nil},
			{"spaces", `{ "typedsession" : 1 , "data" : {"a":42,"b":"real"} }`, Pair{A: 43, B: "real"}, nil},
			{"extra member after data", `{"typedsession":1,"data":{"a":1},"note":"x"}`, Pair{}, session.ErrCorrupt},
			{"duplicate version", `{"typedsession":1,"data":{"a":1},"typedsession":1}`, Pair{}, session.ErrCorrupt},
			{"data null", `{"typedsession":1,"data":null}`, Pair{}, session.ErrCorrupt},
		} {
			t.Run(tc.name, func(t *testing.T) {
				st.Set(ctx, "e:k", []byte(tc.stored), 0)
				got, err := m.Update(ctx, "k", func(p *Pair) error { p.A++; return nil })
				if tc.err != nil {
					if !errors.Is(err, tc.err) {
						t.Fatalf("Update = %+v, %v; want %v", got, err, tc.err)
					}
					if raw, _ := st.Get(ctx, "e:k"); string(raw) != tc.stored {
						t.Fatalf("a refused value was changed to %s", raw)
					}
					return
				}
				if err != nil || got != tc.want {
					t.Fatalf("Update = %+v, %v; want %+v", got, err, tc.want)
				}
			})
		}
	})
}

func TestNullDataOnlyForNullableTypes(t *testing.T) {
	ctx := t.Context()
	st := newMem(t)
	st.Set(ctx, "m:k", []byte(`{"typedsession":1,"data":null}`), 0)
	m := newManager(t, session.Config[map[string]int]{Store: st, Namespace: "m"})
	s, err := m.Load(ctx, "k")
	if err != nil || s.Data != nil || s.IsNew() {
		t.Fatalf("Load of null into a map = %v, %v", s, err)
	}
}

// Money is the euros → cents schema change of a rolling deploy.
type Money struct {
	Cents int `json:"cents"`
}

func TestWriteVersionDoesNotRewriteUnchangedSessions(t *testing.T) {
	ctx := t.Context()
	up := func(doc map[string]any) error {
		n, _ := doc["euros"].(json.Number).Int64()
		doc["cents"] = json.Number(fmt.Sprint(n * 100))
		delete(doc, "euros")
		return nil
	}
	good := migrate.MustNew(migrate.RawReversible(1, up, func(doc map[string]any) error {
		n, _ := doc["cents"].(json.Number).Int64()
		doc["euros"] = json.Number(fmt.Sprint(n / 100))
		delete(doc, "cents")
		return nil
	}))
	forgot := migrate.MustNew(migrate.RawReversible(1, up, func(doc map[string]any) error {
		doc["euros"] = doc["cents"] // the /100 forgotten
		delete(doc, "cents")
		return nil
	}))
	st := newMem(t)
	c := newCounting(st)
	st.Set(ctx, "w:k", []byte(`{"typedsession":1,"data":{"euros":3}}`), 0)

	bad := newManager(t, session.Config[Money]{Store: c, Namespace: "w", Migrations: forgot, WriteVersion: 1})
	if _, err := bad.Load(ctx, "k"); !errors.Is(err, session.ErrMigration) || !strings.Contains(err.Error(), "1→2") {
		t.Fatalf("Load with a down step that does not invert up = %v, want ErrMigration naming 1→2", err)
	}

	m := newManager(t, session.Config[Money]{Store: c, Namespace: "w", Migrations: good, WriteVersion: 1})
	c.Reset()
	for range 3 {
		s, err := m.Load(ctx, "k")
		if err != nil || s.Data.Cents != 300 {
			t.Fatalf("Load = %+v, %v", s, err)
		}
		if err := m.Save(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.Calls("CompareAndSwap"); n != 0 {
		t.Fatalf("3 unchanged Load+Save in WriteVersion mode wrote %d times", n)
	}
	if raw, _ := st.Get(ctx, "w:k"); string(raw) != `{"typedsession":1,"data":{"euros":3}}` {
		t.Fatalf("stored %s", raw)
	}
	// A change is written, at the write version.
	if _, err := m.Update(ctx, "k", func(d *Money) error { d.Cents = 500; return nil }); err != nil {
		t.Fatal(err)
	}
	if raw, _ := st.Get(ctx, "w:k"); stripWrites(raw) != `{"typedsession":1,"data":{"euros":5}}` {
		t.Fatalf("stored %s", raw)
	}
}

func TestExpiringSetUntil(t *testing.T) {
	var e session.Expiring[string]
	e.SetUntil("code", time.Now().Add(-time.Second))
	if v, ok := e.Get(); ok {
		t.Fatalf("SetUntil with a past deadline: Get = %q, true; want not set", v)
	}
	e.SetUntil("code", time.Now().Add(time.Hour))
	if v, ok := e.Get(); !ok || v != "code" {
		t.Fatalf("Get = %q, %v", v, ok)
	}
	e.Set("kept", -time.Second) // Set keeps its meaning: <= 0 is forever
	if _, ok := e.Get(); !ok {
		t.Fatal("Set with a negative ttl no longer keeps the value")
	}
}

type panicky struct {
	N int `json:"n"`
}

func (p panicky) Validate() error {
	if p.N == 13 {
		panic("unlucky")
	}
	return nil
}

type badMarshal struct{}

func (badMarshal) MarshalJSON() ([]byte, error) { panic("marshal bug") }

func TestPanicsInUserCodeBecomeErrors(t *testing.T) {
	ctx := t.Context()
	st := newMem(t)
	st.Set(ctx, "l:legacy", []byte(`{"unexpected":"shape"}`), 0)
	plan := migrate.MustNew(migrate.Raw(0, func(doc map[string]any) error {
		_ = doc["n"].(float64) // the kind of assertion that panics on legacy data
		return nil
	}))
	m := newManager(t, session.Config[panicky]{Store: st, Namespace: "l", Migrations: plan})
	if _, err := m.Load(ctx, "legacy"); !errors.Is(err, session.ErrMigration) || !strings.Contains(err.Error(), "panic") {
		t.Fatalf("a panicking step: Load = %v, want ErrMigration with the panic", err)
	}
	var pe *migrate.PanicError
	if _, err := m.Load(ctx, "legacy"); !errors.As(err, &pe) || len(pe.Stack) == 0 {
		t.Fatalf("the error does not carry a *migrate.PanicError with a stack: %v", err)
	}
	st.Set(ctx, "l:13", []byte(`{"typedsession":1,"data":{"n":13}}`), 0)
	if _, err := m.Load(ctx, "13"); !errors.Is(err, session.ErrInvalid) || !strings.Contains(err.Error(), "unlucky") {
		t.Fatalf("a panicking Validate on Load = %v, want ErrInvalid", err)
	}
	if _, err := m.Update(ctx, "x", func(p *panicky) error { p.N = 13; return nil }); !errors.Is(err, session.ErrInvalid) {
		t.Fatalf("a panicking Validate on Save = %v, want ErrInvalid", err)
	}
	mm := newManager(t, session.Config[Chat]{Store: st, Namespace: "b"})
	if _, err := mm.Update(ctx, "x", func(c *Chat) error { c.Any = badMarshal{}; return nil }); err == nil || !strings.Contains(err.Error(), "marshal bug") {
		t.Fatalf("a panicking MarshalJSON = %v, want an encode error", err)
	}
	if _, err := session.New(session.Config[panicky]{Store: st, Initial: func() panicky { panic("no initial") }}); err == nil || !strings.Contains(err.Error(), "no initial") {
		t.Fatalf("New with a panicking Initial = %v", err)
	}
	if _, err := session.New(session.Config[Quiz]{Store: st, Initial: func() Quiz { return Quiz{Question: 99} }}); !errors.Is(err, session.ErrInvalid) {
		t.Fatalf("New with an invalid Initial = %v, want ErrInvalid", err)
	}
	// Update's fn is the caller's inline code: its panic reaches the caller.
	func() {
		defer func() {
			if p := recover(); p != "fn bug" {
				t.Fatalf("recovered %v, want the fn's panic", p)
			}
		}()
		m.Update(ctx, "y", func(*panicky) error { panic("fn bug") })
	}()
	if _, err := m.Update(ctx, "y", func(p *panicky) error { p.N = 1; return nil }); err != nil {
		t.Fatalf("the key is usable after a panic: %v", err)
	}
}

// lostReply lands a compare-and-swap and then loses its reply, as a
// connection cut after the server executed the command does; meanwhile
// (when then is set) another writer builds on it before the resend.
//
// With lostRequest set, the swap is lost before it reaches the store
// instead, and the other writer's write comes before the resend.
type lostReply struct {
	store.Store
	sw          store.Swapper
	fails       int
	then        func()
	lostRequest bool
}

func (l *lostReply) CompareAndSwap(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error) {
	if l.lostRequest && l.fails > 0 {
		l.fails--
		if l.then != nil {
			then := l.then
			l.then = nil
			then()
		}
		return false, errors.New("connection reset by peer")
	}
	ok, err := l.sw.CompareAndSwap(ctx, key, old, value, ttl)
	if err == nil && l.fails > 0 {
		l.fails--
		if ok && l.then != nil {
			then := l.then
			l.then = nil
			then()
		}
		return false, errors.New("connection reset by peer")
	}
	return ok, err
}

func TestWritesAreAppliedExactlyOnce(t *testing.T) {
	type Counter struct {
		N int `json:"n"`
	}
	eachStore(t, func(t *testing.T, st store.Store) {
		ctx := t.Context()
		other := newManager(t, session.Config[Counter]{Store: st, Namespace: "x"})
		inc := func(c *Counter) error { c.N++; return nil }

		// The reply is lost, the resend finds its own value: success.
		lr := &lostReply{Store: st, sw: st.(store.Swapper), fails: 1}
		m := newManager(t, session.Config[Counter]{Store: lr, Namespace: "x"})
		calls := 0
		got, err := m.Update(ctx, "k", func(c *Counter) error { calls++; return inc(c) })
		if err != nil || got.N != 1 || calls != 1 {
			t.Fatalf("Update through a lost reply = %+v, %v after %d calls of fn; want N=1, one call", got, err, calls)
		}
		// The reply is lost and another writer builds on the write before
		// the resend: the write identities tell that it landed.
		lr.fails, lr.then = 1, func() {
			if _, err := other.Update(ctx, "k", inc); err != nil {
				t.Error(err)
			}
		}
		calls = 0
		if _, err := m.Update(ctx, "k", func(c *Counter) error { calls++; return inc(c) }); err != nil || calls != 1 {
			t.Fatalf("Update = %v after %d calls of fn; want success after one", err, calls)
		}
		if s, _ := other.Load(ctx, "k"); s.Data.N != 3 {
			t.Fatalf("N = %d after three increments, want 3", s.Data.N)
		}
		// The request is lost and another writer replaces the loaded value
		// before the resend: the identities prove a conflict, and Update
		// applies fn again on the new value.
		lr.fails, lr.lostRequest, lr.then = 1, true, func() {
			if _, err := other.Update(ctx, "k", inc); err != nil {
				t.Error(err)
			}
		}
		calls = 0
		if _, err := m.Update(ctx, "k", func(c *Counter) error { calls++; return inc(c) }); err != nil || calls != 2 {
			t.Fatalf("Update = %v after %d calls of fn; want success after two", err, calls)
		}
		if s, _ := other.Load(ctx, "k"); s.Data.N != 5 {
			t.Fatalf("N = %d after five increments, want 5", s.Data.N)
		}
		lr.lostRequest = false
		// A store that never answers: the outcome is unknown and Update
		// does not run fn again.
		lr.fails = 1 << 30
		calls = 0
		_, err = m.Update(ctx, "k", func(c *Counter) error { calls++; return inc(c) })
		if !errors.Is(err, session.ErrOutcomeUnknown) || errors.Is(err, session.ErrConflict) || calls != 1 {
			t.Fatalf("Update = %v after %d calls; want ErrOutcomeUnknown after one", err, calls)
		}
	})
}
