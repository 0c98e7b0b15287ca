package session_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-playground/validator/v10"
	"github.com/google/go-cmp/cmp"

	"github.com/typedsession/session"
	"github.com/typedsession/session/internal/binding"
	"github.com/typedsession/session/migrate"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/memstore"
	"github.com/typedsession/session/store/storetest"
)

func newManager[T any](t testing.TB, cfg session.Config[T]) *session.Manager[T] {
	t.Helper()
	m, err := session.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m
}

func TestNewRejectsBadConfig(t *testing.T) {
	st := newMem(t)
	down := migrate.Typed(1, func(q Quiz) (Quiz, error) { return q, nil })
	plan := migrate.MustNew(down)
	tests := []struct {
		name string
		cfg  session.Config[Quiz]
		want string
	}{
		{"no store", session.Config[Quiz]{}, "Config.Store is nil"},
		{"negative TTL", session.Config[Quiz]{Store: st, TTL: -time.Second}, "TTL is negative"},
		{"negative attempts", session.Config[Quiz]{Store: st, MaxAttempts: -1}, "MaxAttempts is negative"},
		{"write version above latest", session.Config[Quiz]{Store: st, WriteVersion: 3}, "newer than the latest"},
		{"write version without down step", session.Config[Quiz]{Store: st, Migrations: plan, WriteVersion: 1}, "no down function"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := session.New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestLoadSaveRoundTrip(t *testing.T) {
	ctx := t.Context()
	st := newMem(t)
	m := newManager(t, session.Config[Quiz]{Store: st, Namespace: "quiz"})
	s, err := m.Load(ctx, "42")
	if err != nil {
		t.Fatal(err)
	}
	if !s.IsNew() || s.Key() != "42" {
		t.Fatalf("Load of an absent key: IsNew=%v Key=%q, want true, %q", s.IsNew(), s.Key(), "42")
	}
	s.Data = Quiz{Active: true, Question: 3, Score: 2, Answers: []string{"a", "b"}}
	if err := m.Save(ctx, s); err != nil {
		t.Fatal(err)
	}
	raw, err := st.Get(ctx, "quiz:42")
	if err != nil {
		t.Fatalf("the session is not stored under Namespace:key: %v", err)
	}
	if want := `{"typedsession":1,"data":{"active":true,"question":3,"score":2,"answers":["a","b"]}}`; stripWrites(raw) != want {
		t.Fatalf("stored value\n got %s\nwant %s", raw, want)
	}
	s2, err := m.Load(ctx, "42")
	if err != nil {
		t.Fatal(err)
	}
	if s2.IsNew() {
		t.Fatal("second Load: IsNew = true")
	}
	if diff := cmp.Diff(s.Data, s2.Data); diff != "" {
		t.Fatalf("Load() mismatch (-saved +loaded):\n%s", diff)
	}
}

func TestEmptyNamespace(t *testing.T) {
	st := newMem(t)
	m := newManager(t, session.Config[Quiz]{Store: st})
	if _, err := m.Update(t.Context(), "chat:7", func(q *Quiz) error { q.Score = 1; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(t.Context(), "chat:7"); err != nil {
		t.Fatalf("with an empty Namespace the store key must be the key itself: %v", err)
	}
}

func TestInitial(t *testing.T) {
	st := newCounting(newMem(t))
	m := newManager(t, session.Config[Quiz]{Store: st, Initial: func() Quiz { return Quiz{Answers: []string{}} }})
	s, err := m.Load(t.Context(), "u")
	if err != nil {
		t.Fatal(err)
	}
	if s.Data.Answers == nil {
		t.Fatal("a new session does not hold the Initial value")
	}
	if err := m.Save(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	if st.Writes() != 0 {
		t.Fatalf("a new session nobody changed was written (%d writes)", st.Writes())
	}
	s.Data.Score = 1
	if err := m.Save(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	s.Reset()
	if s.Data.Score != 0 || s.Data.Answers == nil {
		t.Fatalf("Reset gave %+v, want the Initial value", s.Data)
	}
}

func TestUnchangedSaveWritesNothing(t *testing.T) {
	ctx := t.Context()
	for _, tc := range []struct {
		name  string
		store func(*storetest.Counter) store.Store
		ttl   time.Duration
		want  map[string]int // calls for one Load and one Save of an unchanged session
	}{
		{"no TTL", func(c *storetest.Counter) store.Store { return c }, 0, map[string]int{"Get": 1}},
		{"TTL on a TTLGetter", func(c *storetest.Counter) store.Store { return c }, time.Hour, map[string]int{"GetWithTTL": 1}},
		{"TTL on a Refresher", func(c *storetest.Counter) store.Store { return refresherOnly{c, c} }, time.Hour, map[string]int{"GetAndTouch": 1}},
		{"TTL on a Toucher", func(c *storetest.Counter) store.Store { return touchOnly{c, c} }, time.Hour, map[string]int{"Get": 1, "Touch": 1}},
		// Without a conditional write an unchanged session is never
		// written back: a blind Set could revert another writer's newer
		// value (issue 22, example 2).
		{"TTL on a basic store", func(c *storetest.Counter) store.Store { return basic{c} }, time.Hour, map[string]int{"Get": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCounting(newMem(t))
			m := newManager(t, session.Config[Quiz]{Store: tc.store(c), Namespace: "q", TTL: tc.ttl})
			if _, err := m.Update(ctx, "u", func(q *Quiz) error { q.Score = 5; return nil }); err != nil {
				t.Fatal(err)
			}
			c.Reset()
			s, err := m.Load(ctx, "u")
			if err != nil {
				t.Fatal(err)
			}
			if err := m.Save(ctx, s); err != nil {
				t.Fatal(err)
			}
			if err := m.Save(ctx, s); err != nil { // a second Save has nothing left to do
				t.Fatal(err)
			}
			got := map[string]int{}
			for _, op := range []string{"Get", "GetAndTouch", "GetWithTTL", "Set", "CompareAndSwap", "Touch", "Delete"} {
				if n := c.Calls(op); n > 0 {
					got[op] = n
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("store calls for Load + unchanged Save (-want +got):\n%s", diff)
			}
		})
	}
}

func TestChangedSaveUsesOneCompareAndSwap(t *testing.T) {
	c := newCounting(newMem(t))
	m := newManager(t, session.Config[Quiz]{Store: c, TTL: time.Hour})
	if _, err := m.Update(t.Context(), "u", func(q *Quiz) error { q.Score = 1; return nil }); err != nil {
		t.Fatal(err)
	}
	c.Reset()
	if _, err := m.Update(t.Context(), "u", func(q *Quiz) error { q.Score++; return nil }); err != nil {
		t.Fatal(err)
	}
	if got := c.Calls(); got != 2 || c.Calls("GetWithTTL") != 1 || c.Calls("CompareAndSwap") != 1 {
		t.Fatalf("changed Update made %d store calls (%v), want GetWithTTL + CompareAndSwap", got, c.Snapshot())
	}
}

func TestConcurrentUpdatesLoseNothing(t *testing.T) {
	st := newMem(t)
	cfg := session.Config[Quiz]{Store: st, Namespace: "quiz", TTL: time.Hour}
	managers := []*session.Manager[Quiz]{newManager(t, cfg), newManager(t, cfg)}
	const goroutines, increments = 16, 25
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		m := managers[g%2]
		wg.Go(func() {
			for range increments {
				if _, err := m.Update(t.Context(), "shared", func(q *Quiz) error { q.Score++; return nil }); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	s, err := managers[0].Load(t.Context(), "shared")
	if err != nil {
		t.Fatal(err)
	}
	if s.Data.Score != goroutines*increments {
		t.Fatalf("final score %d, want %d: updates were lost", s.Data.Score, goroutines*increments)
	}
}

func TestSaveConflict(t *testing.T) {
	ctx := t.Context()
	st := newMem(t)
	m := newManager(t, session.Config[Quiz]{Store: st})
	a, _ := m.Load(ctx, "k")
	b, _ := m.Load(ctx, "k")
	a.Data.Score = 1
	b.Data.Score = 2
	if err := m.Save(ctx, a); err != nil {
		t.Fatal(err)
	}
	err := m.Save(ctx, b)
	if !errors.Is(err, session.ErrConflict) {
		t.Fatalf("second Save of a stale session = %v, want ErrConflict", err)
	}
	s, _ := m.Load(ctx, "k")
	if s.Data.Score != 1 {
		t.Fatalf("the conflicting Save changed the value to %d", s.Data.Score)
	}
}

func TestInvalidSaveWritesNothing(t *testing.T) {
	ctx := t.Context()
	st := newMem(t)
	m := newManager(t, session.Config[Quiz]{Store: st, Namespace: "quiz"})
	if _, err := m.Update(ctx, "u", func(q *Quiz) error { q.Question = 7; return nil }); err != nil {
		t.Fatal(err)
	}
	before, _ := st.Get(ctx, "quiz:u")
	s, _ := m.Load(ctx, "u")
	s.Data.Question = 51
	err := m.Save(ctx, s)
	if !errors.Is(err, session.ErrInvalid) {
		t.Fatalf("Save = %v, want ErrInvalid", err)
	}
	var verrs validator.ValidationErrors
	if !errors.As(err, &verrs) || verrs[0].Field() != "Question" {
		t.Fatalf("Save error does not wrap the validator's errors naming Question: %v", err)
	}
	for _, want := range []string{"save", `"u"`, "Quiz.Question", "lte=50", "51"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	after, _ := st.Get(ctx, "quiz:u")
	if !bytes.Equal(before, after) {
		t.Fatalf("an invalid Save changed the stored value:\nbefore %s\nafter  %s", before, after)
	}
	if _, err := m.Update(ctx, "u", func(q *Quiz) error { q.Answers = make([]string, 51); return nil }); !errors.Is(err, session.ErrInvalid) {
		t.Fatalf("Update with invalid data = %v, want ErrInvalid", err)
	}
	after, _ = st.Get(ctx, "quiz:u")
	if !bytes.Equal(before, after) {
		t.Fatal("an invalid Update changed the stored value")
	}
}

type Account struct {
	Balance int `json:"balance"`
	Limit   int `json:"limit"`
}

func (a Account) Validate() error {
	if a.Balance < -a.Limit {
		return fmt.Errorf("balance %d is below the limit -%d", a.Balance, a.Limit)
	}
	return nil
}

func TestValidateMethod(t *testing.T) {
	ctx := t.Context()
	st := newMem(t)
	m := newManager(t, session.Config[Account]{Store: st})
	_, err := m.Update(ctx, "a", func(a *Account) error { a.Balance = -5; return nil })
	if !errors.Is(err, session.ErrInvalid) || !strings.Contains(err.Error(), "below the limit") {
		t.Fatalf("Update = %v, want ErrInvalid from Validate", err)
	}
	// Stored data that fails validation is refused on Load too.
	st.Set(ctx, "b", []byte(`{"typedsession":1,"data":{"balance":-5,"limit":1}}`), 0)
	if _, err := m.Load(ctx, "b"); !errors.Is(err, session.ErrInvalid) {
		t.Fatalf("Load of invalid stored data = %v, want ErrInvalid", err)
	}
}

func TestLoadOrderOfErrors(t *testing.T) {
	ctx := t.Context()
	plan := migrate.MustNew(migrate.Raw(1, func(doc map[string]any) error {
		if doc["fail"] == true {
			return errors.New("step refuses")
		}
		return nil
	}))
	closed, _ := memstore.New(memstore.Options{})
	closed.Close()
	tests := []struct {
		name   string
		stored string // "" means absent
		store  store.Store
		want   error // nil means a session
		isNew  bool
	}{
		{name: "store error", store: closed, want: store.ErrClosed},
		{name: "absent", isNew: true},
		{name: "not JSON", stored: "\x00\xffgarbage", want: session.ErrCorrupt},
		{name: "truncated envelope", stored: `{"typedsession":2,"data":{"score":`, want: session.ErrCorrupt},
		{name: "envelope version 0", stored: `{"typedsession":0,"data":{}}`, want: session.ErrCorrupt},
		{name: "no envelope, no step from 0", stored: `{"score":3}`, want: session.ErrMigration},
		{name: "future version", stored: `{"typedsession":3,"data":{"score":"not even a number"}}`, want: session.ErrFutureVersion},
		{name: "failing step", stored: `{"typedsession":1,"data":{"fail":true}}`, want: session.ErrMigration},
		{name: "does not fit T", stored: `{"typedsession":2,"data":{"score":"three"}}`, want: session.ErrCorrupt},
		{name: "invalid", stored: `{"typedsession":2,"data":{"question":99}}`, want: session.ErrInvalid},
		{name: "current", stored: `{"typedsession":2,"data":{"score":3}}`},
		{name: "migrated", stored: `{"typedsession":1,"data":{"score":3}}`},
		{name: "reformatted envelope", stored: `{"typedsession":2 , "data" : {"score":3} }`},
		{name: "envelope with an unknown member", stored: `{"typedsession":2 , "data" : {"score":3} , "note":"edited by hand" }`, want: session.ErrCorrupt},
		{name: "members reordered", stored: `{"data":{"score":3},"typedsession":2}`},
		{name: "duplicate version", stored: `{"typedsession":2,"data":{"score":3},"typedsession":1}`, want: session.ErrCorrupt},
		{name: "future version with a bad envelope", stored: `{"typedsession":3,"data":{},"x":1}`, want: session.ErrCorrupt},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.store
			if st == nil {
				mem := newMem(t)
				if tc.stored != "" {
					mem.Set(ctx, "k", []byte(tc.stored), 0)
				}
				st = mem
			}
			m := newManager(t, session.Config[Quiz]{Store: st, Migrations: plan})
			s, err := m.Load(ctx, "k")
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("Load = %v, want %v", err, tc.want)
				}
				var serr *session.Error
				if !errors.As(err, &serr) || serr.Op != "load" || serr.Key != "k" {
					t.Fatalf("Load error %v does not name the operation and key", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if s.IsNew() != tc.isNew {
				t.Fatalf("IsNew = %v, want %v", s.IsNew(), tc.isNew)
			}
			if !tc.isNew && s.Data.Score != 3 {
				t.Fatalf("Score = %d, want 3", s.Data.Score)
			}
		})
	}
}

func TestCorruptSurvivesUpdate(t *testing.T) {
	ctx := t.Context()
	st := newMem(t)
	m := newManager(t, session.Config[Quiz]{Store: st, Namespace: "quiz"})
	corrupt := []byte(`{"typedsession":1,"data":{"score":`)
	st.Set(ctx, "quiz:u", corrupt, 0)
	called := false
	_, err := m.Update(ctx, "u", func(q *Quiz) error { called = true; return nil })
	if !errors.Is(err, session.ErrCorrupt) {
		t.Fatalf("Update of corrupt data = %v, want ErrCorrupt", err)
	}
	if called {
		t.Fatal("Update ran fn on a corrupt session")
	}
	got, _ := st.Get(ctx, "quiz:u")
	if !bytes.Equal(got, corrupt) {
		t.Fatalf("corrupt bytes were overwritten with %s", got)
	}
}

func TestTooLarge(t *testing.T) {
	ctx := t.Context()
	st := newMem(t)
	m := newManager(t, session.Config[Quiz]{Store: st, MaxBytes: 100})
	_, err := m.Update(ctx, "u", func(q *Quiz) error { q.Answers = []string{strings.Repeat("x", 100)}; return nil })
	if !errors.Is(err, session.ErrTooLarge) {
		t.Fatalf("Update of an oversize session = %v, want ErrTooLarge", err)
	}
	if _, err := st.Get(ctx, "u"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("an oversize session was written")
	}
	// Load applies the rule Save applies, to the same measure: the
	// payload. A stored value too long to hold a payload within the
	// limit is refused before it is parsed; a shorter one whose payload
	// is over the limit once read is refused too; neither is corrupt.
	st.Set(ctx, "big", bytes.Repeat([]byte(" "), 2000), 0)
	if _, err := m.Load(ctx, "big"); !errors.Is(err, session.ErrTooLarge) || errors.Is(err, session.ErrCorrupt) {
		t.Fatalf("Load of an oversize value = %v, want ErrTooLarge", err)
	}
	st.Set(ctx, "big", []byte(`{"typedsession":1,"data":{"answers":["`+strings.Repeat("x", 150)+`"]}}`), 0)
	if _, err := m.Load(ctx, "big"); !errors.Is(err, session.ErrTooLarge) || errors.Is(err, session.ErrCorrupt) {
		t.Fatalf("Load of a value whose payload is over the limit = %v, want ErrTooLarge", err)
	}
}

func TestTTLExpiry(t *testing.T) {
	ctx := t.Context()
	st := newMem(t)
	m := newManager(t, session.Config[Quiz]{Store: st, TTL: 200 * time.Millisecond})
	if _, err := m.Update(ctx, "u", func(q *Quiz) error { q.Score = 9; return nil }); err != nil {
		t.Fatal(err)
	}
	// An idle timeout: a Load inside the TTL extends it.
	for range 3 {
		time.Sleep(100 * time.Millisecond)
		s, err := m.Load(ctx, "u")
		if err != nil || s.IsNew() {
			t.Fatalf("Load within the idle timeout: IsNew=%v, %v", s != nil && s.IsNew(), err)
		}
	}
	time.Sleep(600 * time.Millisecond)
	s, err := m.Load(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	if !s.IsNew() || s.Data.Score != 0 {
		t.Fatalf("after the TTL: IsNew=%v Score=%d, want a new session", s.IsNew(), s.Data.Score)
	}
}

func TestDestroy(t *testing.T) {
	ctx := t.Context()
	st := newMem(t)
	m := newManager(t, session.Config[Quiz]{Store: st, Namespace: "quiz"})
	m.Update(ctx, "u", func(q *Quiz) error { q.Score = 3; return nil })
	s, _ := m.Load(ctx, "u")
	s.Destroy()
	if err := m.Save(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(ctx, "quiz:u"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after Destroy and Save the key is still stored: %v", err)
	}
	if !s.IsNew() || s.Data.Score != 0 {
		t.Fatalf("after Destroy the session is IsNew=%v Score=%d, want a new one", s.IsNew(), s.Data.Score)
	}
	if err := m.Save(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(ctx, "quiz:u"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("saving the destroyed, unchanged session wrote it again")
	}
	if err := m.Delete(ctx, "never-there"); err != nil {
		t.Fatalf("Delete of an absent key: %v", err)
	}
}

func TestUpdateFnErrorWritesNothing(t *testing.T) {
	ctx := t.Context()
	st := newCounting(newMem(t))
	m := newManager(t, session.Config[Quiz]{Store: st})
	boom := errors.New("boom")
	_, err := m.Update(ctx, "u", func(q *Quiz) error { q.Score = 1; return boom })
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), `update "u"`) {
		t.Fatalf("Update = %v, want fn's error named with op and key", err)
	}
	if st.Writes() != 0 {
		t.Fatal("Update wrote after fn failed")
	}
}

func TestUpdateHonoursContext(t *testing.T) {
	st := newMem(t)
	m := newManager(t, session.Config[Quiz]{Store: st})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := m.Update(ctx, "u", func(q *Quiz) error { q.Score = 1; return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Update with a cancelled context = %v, want context.Canceled", err)
	}
}

func TestEmptyKey(t *testing.T) {
	m := newManager(t, session.Config[Quiz]{Store: newMem(t)})
	if _, err := m.Load(t.Context(), ""); err == nil {
		t.Fatal("Load of an empty key succeeded")
	}
}

func TestExpiring(t *testing.T) {
	type Login struct {
		Code session.Expiring[string] `json:"code"`
	}
	ctx := t.Context()
	m := newManager(t, session.Config[Login]{Store: newMem(t)})
	m.Update(ctx, "u", func(l *Login) error { l.Code.Set("493817", 150*time.Millisecond); return nil })
	s, _ := m.Load(ctx, "u")
	if v, ok := s.Data.Code.Get(); !ok || v != "493817" {
		t.Fatalf("Get within the TTL = %q, %v", v, ok)
	}
	time.Sleep(300 * time.Millisecond)
	if v, ok := s.Data.Code.Get(); ok {
		t.Fatalf("Get after the TTL = %q, true; want it forgotten", v)
	}
	var forever session.Expiring[int]
	forever.Set(7, 0)
	if v, ok := forever.Get(); !ok || v != 7 {
		t.Fatal("a value set with ttl 0 must not expire")
	}
	forever.Clear()
	if _, ok := forever.Get(); ok {
		t.Fatal("Clear did not forget the value")
	}
}

func TestFrom(t *testing.T) {
	ctx := t.Context()
	m := newManager(t, session.Config[Quiz]{Store: newMem(t)})
	if _, err := session.From[Quiz](ctx); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("From without a binding = %v, want ErrNoSession", err)
	}
	loads := 0
	ctx2, b := binding.Bind(ctx, func(ctx context.Context) (*session.Session[Quiz], error) {
		loads++
		return m.Load(ctx, "u")
	})
	if _, ok := b.Loaded(); ok {
		t.Fatal("a lazy binding reports a session before anyone asked")
	}
	s1, err := session.From[Quiz](ctx2)
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := session.From[Quiz](ctx2)
	if s1 != s2 || loads != 1 {
		t.Fatalf("From loaded %d times, want once, the same session", loads)
	}
	if _, err := session.From[Account](ctx2); !errors.Is(err, session.ErrNoSession) {
		t.Fatal("a binding for Quiz answered From[Account]")
	}
	if _, err := session.From[Quiz](bindNone(ctx2)); !errors.Is(err, session.ErrNoSession) {
		t.Fatal("Bind(ctx, nil) did not hide the outer binding")
	}
}

// bindNone binds "no session" for Quiz, hiding an outer binding.
func bindNone(ctx context.Context) context.Context {
	ctx, _ = binding.Bind[*session.Session[Quiz]](ctx, nil)
	return ctx
}
