package session_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/typedsession/session"
	"github.com/typedsession/session/migrate"
)

// recorder keeps the events a hook receives.
type recorder struct {
	mu     sync.Mutex
	events []session.Event
}

func (r *recorder) hook(_ context.Context, e session.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) take() []session.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.events
	r.events = nil
	return out
}

func TestHookSeesEveryOperation(t *testing.T) {
	ctx := t.Context()
	st := newMem(t)
	var r recorder
	plan := migrate.MustNew(migrate.Raw(1, func(map[string]any) error { return nil }))
	m := newManager(t, session.Config[Quiz]{Store: st, Namespace: "q", Migrations: plan, Hook: r.hook, LogKeys: true})
	ignore := cmpopts.IgnoreFields(session.Event{}, "Duration", "Err", "Bytes")

	s, _ := m.Load(ctx, "u")
	s.Data.Score = 1
	m.Save(ctx, s)
	m.Save(ctx, s) // unchanged
	want := []session.Event{
		{Op: "load", Namespace: "q", Key: "u", Outcome: session.OutcomeNew, StoredVersion: 2, Version: 2},
		{Op: "save", Namespace: "q", Key: "u", Outcome: session.OutcomeWritten, StoredVersion: 2, Version: 2},
		{Op: "save", Namespace: "q", Key: "u", Outcome: session.OutcomeUnchanged, StoredVersion: 2, Version: 2},
	}
	got := r.take()
	if diff := cmp.Diff(want, got, ignore); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
	if got[1].Bytes == 0 || got[1].Duration <= 0 {
		t.Fatalf("a written save reports %d bytes in %v", got[1].Bytes, got[1].Duration)
	}

	// A migration: stored at 1, loaded and written at 2.
	st.Set(ctx, "q:old", []byte(`{"typedsession":1,"data":{"score":3}}`), 0)
	m.Update(ctx, "old", func(q *Quiz) error { q.Score++; return nil })
	want = []session.Event{{Op: "update", Namespace: "q", Key: "old", Outcome: session.OutcomeWritten, StoredVersion: 1, Version: 2, Attempts: 1}}
	if diff := cmp.Diff(want, r.take(), ignore); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}

	// A corrupt value and a delete.
	st.Set(ctx, "q:bad", []byte(`{"typedsession":2,"data":{"score":"x"}}`), 0)
	m.Load(ctx, "bad")
	m.Delete(ctx, "bad")
	got = r.take()
	if len(got) != 2 || got[0].Outcome != session.OutcomeError || !errors.Is(got[0].Err, session.ErrCorrupt) || got[1].Op != "delete" || got[1].Outcome != session.OutcomeDeleted {
		t.Fatalf("events %+v", got)
	}

	// Conflicts retried by Update are counted.
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				if _, err := m.Update(ctx, "hot", func(q *Quiz) error { q.Score++; return nil }); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	attempts, conflicts := 0, 0
	for _, e := range r.take() {
		if e.Op == "update" {
			attempts += e.Attempts
			conflicts += e.Conflicts
		}
	}
	if attempts != 80+conflicts {
		t.Fatalf("80 updates: %d attempts, %d conflicts; want attempts = 80 + conflicts", attempts, conflicts)
	}
	t.Logf("80 contended updates: %d conflicts retried", conflicts)
}

func TestLoggerIsQuietByDefaultAndKeepsKeysOut(t *testing.T) {
	ctx := t.Context()
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	st := newMem(t)
	st.Set(ctx, "p:secret-user", []byte(`{"typedsession":1,"data":{"lang":"fr","visits":1}}`), 0)
	m := newManager(t, session.Config[Profile]{Store: st, Namespace: "p", Logger: logger, WarnBytes: 10})
	for range 3 {
		if _, err := m.Update(ctx, "secret-user", func(p *Profile) error { p.Visits++; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	out := buf.String()
	if strings.Contains(out, "secret-user") {
		t.Fatalf("a key reached the log without LogKeys:\n%s", out)
	}
	if n := strings.Count(out, "members that the session type does not have"); n != 1 {
		t.Fatalf("unknown members logged %d times, want once:\n%s", n, out)
	}
	if !strings.Contains(out, "over Config.WarnBytes") || !strings.Contains(out, "op=update") {
		t.Fatalf("log lacks the size warning or the operation:\n%s", out)
	}
	if strings.Contains(out, `"fr"`) || strings.Contains(out, "visits") {
		t.Fatalf("session data reached the log:\n%s", out)
	}
	buf.Reset()
	keyed := newManager(t, session.Config[Profile]{Store: st, Namespace: "p", Logger: logger, LogKeys: true})
	keyed.Load(ctx, "secret-user")
	if !strings.Contains(buf.String(), "secret-user") {
		t.Fatalf("LogKeys did not put the key in the log:\n%s", buf.String())
	}
}

// Payment holds a secret a validation error would quote.
type Payment struct {
	Card  string          `json:"card" validate:"omitempty,credit_card"`
	Notes map[string]Note `json:"notes"`
}

type Note struct {
	Text string `json:"text"`
}

// TestRedaction (issue 27, example 5): with Config.Logger and a Keyring,
// and LogKeys off, a failed Update logs neither the key nor the failing
// field's value, and neither does the Event the hook gets; with LogKeys on
// the key appears, the value never. Member paths leave map keys out.
func TestRedaction(t *testing.T) {
	const key, card = "user-secret-42", "4111111111111112"
	for _, logKeys := range []bool{false, true} {
		ctx := t.Context()
		st := newMem(t)
		var buf bytes.Buffer
		var events []session.Event
		m := newManager(t, session.Config[Payment]{Store: st, Namespace: "pay", Keyring: keyring(t, testKey(t, "k1")), LogKeys: logKeys,
			Logger: slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})),
			Hook:   func(_ context.Context, e session.Event) { events = append(events, e) }})
		_, err := m.Update(ctx, key, func(p *Payment) error { p.Card = card; return nil })
		if !errors.Is(err, session.ErrInvalid) || !strings.Contains(err.Error(), card[:12]) {
			t.Fatalf("Update = %v; want ErrInvalid whose text (for the caller) names the value", err)
		}
		// A stored member T lacks, under a map key that is data.
		raw := []byte(`{"typedsession":1,"data":{"notes":{"bob@example.com":{"text":"x","zzz":1}}}}`)
		st.Set(ctx, "pay:"+key, raw, 0)
		if _, err := m.Update(ctx, key, func(p *Payment) error { p.Notes["bob@example.com"] = Note{Text: "y"}; return nil }); err != nil {
			t.Fatal(err)
		}
		var texts []string
		texts = append(texts, buf.String())
		for _, e := range events {
			if e.Err != nil {
				texts = append(texts, e.Err.Error())
				if !errors.Is(e.Err, session.ErrInvalid) {
					t.Errorf("Event.Err %v does not match ErrInvalid", e.Err)
				}
			}
			texts = append(texts, e.Key, strings.Join(e.Extra, " "))
		}
		all := strings.Join(texts, "\n")
		if strings.Contains(all, card[:12]) {
			t.Errorf("LogKeys %v: the card number is in the logs or events:\n%s", logKeys, all)
		}
		if strings.Contains(all, "bob@example.com") {
			t.Errorf("LogKeys %v: a map key (data) is in a member path:\n%s", logKeys, all)
		}
		if strings.Contains(all, key) != logKeys {
			t.Errorf("LogKeys %v: the key is in the logs or events: %v, want %v:\n%s", logKeys, !logKeys, logKeys, all)
		}
		if !strings.Contains(all, `credit_card`) {
			t.Errorf("the logs do not name the failing rule:\n%s", all)
		}
	}
}
