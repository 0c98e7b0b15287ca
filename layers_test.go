package session_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/typedsession/session"
	"github.com/typedsession/session/codec"
	"github.com/typedsession/session/internal/testenv"
	"github.com/typedsession/session/migrate"
	"github.com/typedsession/session/seal"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/redisstore"
)

func testKey(t testing.TB, id string) seal.Key {
	t.Helper()
	return seal.Key{ID: id, Secret: bytes.Repeat([]byte(id[len(id)-1:]), seal.KeySize)}
}

func keyring(t testing.TB, keys ...seal.Key) *seal.Keyring {
	t.Helper()
	r, err := seal.New(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSealedSessionsRoundTrip(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		ctx := t.Context()
		c := newCounting(st)
		ring := keyring(t, testKey(t, "k1"))
		m := newManager(t, session.Config[Chat]{Store: c, Namespace: "s", Keyring: ring})
		saved, err := m.Update(ctx, "u", func(d *Chat) error {
			d.Name, d.Extra = "Alice secret", map[string]any{"phone": "+33 6 12 34 56 78"}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := st.Get(ctx, "s:u")
		if bytes.Contains(raw, []byte("Alice")) || bytes.Contains(raw, []byte("+33")) {
			t.Fatalf("the sealed value shows the data: %s", raw)
		}
		var env map[string]json.RawMessage
		if err := json.Unmarshal(raw, &env); err != nil || string(env["kid"]) != `"k1"` || string(env["layers"]) != `["aes-256-gcm"]` {
			t.Fatalf("stored %s: want a JSON envelope with kid k1 and the aes-256-gcm layer", raw)
		}
		s, err := m.Load(ctx, "u")
		if err != nil || s.Data.Name != saved.Name || s.Data.Extra["phone"] != "+33 6 12 34 56 78" {
			t.Fatalf("Load = %+v, %v", s, err)
		}
		c.Reset()
		if err := m.Save(ctx, s); err != nil {
			t.Fatal(err)
		}
		if n := c.Calls("CompareAndSwap"); n != 0 {
			t.Fatalf("an unchanged sealed session was written %d times (a fresh nonce must not count as a change)", n)
		}
	})
}

func TestSealedValuesRefuseTampering(t *testing.T) {
	ctx := t.Context()
	st := newMem(t)
	k1, k2 := testKey(t, "k1"), testKey(t, "k2")
	m := newManager(t, session.Config[Quiz]{Store: st, Namespace: "s", Keyring: keyring(t, k1, k2)})
	if _, err := m.Update(ctx, "alice", func(q *Quiz) error { q.Score = 7; return nil }); err != nil {
		t.Fatal(err)
	}
	good, _ := st.Get(ctx, "s:alice")
	var env map[string]any
	json.Unmarshal(good, &env)
	data := env["data"].(string)
	reframe := func(change func(map[string]any)) []byte {
		e := map[string]any{}
		for k, v := range env {
			e[k] = v
		}
		change(e)
		b, _ := json.Marshal(e)
		return b
	}
	flip := []byte(data)
	flip[len(flip)/2] ^= 'A' ^ 'B'
	for _, tc := range []struct {
		name  string
		key   string
		value []byte
		ring  *seal.Keyring
		want  error
	}{
		{"a flipped bit", "alice", reframe(func(e map[string]any) { e["data"] = string(flip) }), nil, session.ErrCorrupt},
		{"truncated", "alice", reframe(func(e map[string]any) { e["data"] = data[:16] }), nil, session.ErrCorrupt},
		{"swapped key ID", "alice", reframe(func(e map[string]any) { e["kid"] = "k2" }), nil, session.ErrCorrupt},
		{"moved to another key", "bob", good, nil, session.ErrCorrupt},
		{"a key this binary lacks", "alice", good, keyring(t, k2), session.ErrNoSealingKey},
		{"no keyring at all", "alice", good, nil, session.ErrNoSealingKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st.Set(ctx, "s:"+tc.key, tc.value, 0)
			mm := m
			if tc.ring != nil || tc.name == "no keyring at all" {
				mm = newManager(t, session.Config[Quiz]{Store: st, Namespace: "s", Keyring: tc.ring})
			}
			if _, err := mm.Load(ctx, tc.key); !errors.Is(err, tc.want) {
				t.Fatalf("Load = %v, want %v", err, tc.want)
			}
			if _, err := mm.Update(ctx, tc.key, func(q *Quiz) error { q.Score = 0; return nil }); !errors.Is(err, tc.want) {
				t.Fatalf("Update = %v, want %v", err, tc.want)
			}
			if raw, _ := st.Get(ctx, "s:"+tc.key); !bytes.Equal(raw, tc.value) {
				t.Fatal("the refused value was overwritten")
			}
		})
	}
}

// TestKeyRotation is the documented procedure on Redis with 10,000
// sessions (1,000, still four chunks of MigrateAll, outside the slow
// suite): seal with k1; add k2 and seal with it; MigrateAll with Reseal;
// then a binary with k2 alone opens every session.
func TestKeyRotation(t *testing.T) {
	ctx := t.Context()
	c := testenv.Redis(t)
	prefix := testenv.Prefix(t, "rotation")
	testenv.CleanupPrefix(t, c, prefix)
	st := redisstore.New(c, redisstore.Options{Prefix: prefix})
	k1, k2 := testKey(t, "k1"), testKey(t, "k2")
	old := newManager(t, session.Config[Quiz]{Store: st, Namespace: "q", Keyring: keyring(t, k1)})
	n := 1000
	if testenv.SlowBuild() {
		n = 10000
	}
	for i := range n {
		if _, err := old.Update(ctx, fmt.Sprint(i), func(q *Quiz) error { q.Score = i + 1; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	// A session stored before encryption was turned on is sealed too.
	plain := newManager(t, session.Config[Quiz]{Store: st, Namespace: "q"})
	plain.Update(ctx, "plain", func(q *Quiz) error { q.Score = 1; return nil })

	rotating := newManager(t, session.Config[Quiz]{Store: st, Namespace: "q", Keyring: keyring(t, k2, k1)})
	r, err := rotating.MigrateAll(ctx, session.MigrateOptions{Reseal: true})
	if err != nil || r.Migrated != n+1 || len(r.Failed) != 0 {
		t.Fatalf("MigrateAll(Reseal) = %+v, %v; want %d migrated", r, err, n+1)
	}
	again, err := rotating.MigrateAll(ctx, session.MigrateOptions{Reseal: true})
	if err != nil || again.Migrated != 0 || again.Current != n+1 {
		t.Fatalf("a second MigrateAll(Reseal) = %+v, %v; want all current", again, err)
	}
	after := newManager(t, session.Config[Quiz]{Store: st, Namespace: "q", Keyring: keyring(t, k2)})
	for _, key := range []string{"0", fmt.Sprint(n / 2), fmt.Sprint(n - 1), "plain"} {
		if _, err := after.Load(ctx, key); err != nil {
			t.Fatalf("after the rotation, Load(%s) = %v", key, err)
		}
	}
	sealedWithK1 := 0
	iter := c.Scan(ctx, 0, prefix+"q:*", 1000).Iterator()
	for iter.Next(ctx) {
		v, _ := c.Get(ctx, iter.Val()).Bytes()
		if bytes.Contains(v, []byte(`"kid":"k1"`)) || !bytes.Contains(v, []byte(`"kid":"k2"`)) {
			sealedWithK1++
		}
	}
	if sealedWithK1 != 0 {
		t.Fatalf("%d values are not sealed with k2 after the rotation", sealedWithK1)
	}
}

func TestCompression(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		ctx := t.Context()
		c := newCounting(st)
		m := newManager(t, session.Config[Quiz]{Store: c, Namespace: "z", Compressor: codec.Deflate{}, CompressAbove: 512, Keyring: keyring(t, testKey(t, "k1"))})
		big := make([]string, 50)
		for i := range big {
			big[i] = strings.Repeat("answer ", 20)
		}
		if _, err := m.Update(ctx, "big", func(q *Quiz) error { q.Answers = big; return nil }); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Update(ctx, "small", func(q *Quiz) error { q.Answers = []string{"a"}; return nil }); err != nil {
			t.Fatal(err)
		}
		rawBig, _ := st.Get(ctx, "z:big")
		rawSmall, _ := st.Get(ctx, "z:small")
		if !bytes.Contains(rawBig, []byte(`"layers":["deflate","aes-256-gcm"]`)) || len(rawBig) > 1500 {
			t.Fatalf("a 7 KB session stored as %d bytes: %.120s", len(rawBig), rawBig)
		}
		if !bytes.Contains(rawSmall, []byte(`"layers":["aes-256-gcm"]`)) {
			t.Fatalf("a small session was compressed: %s", rawSmall)
		}
		s, err := m.Load(ctx, "big")
		if err != nil || len(s.Data.Answers) != 50 || s.Data.Answers[49] != big[49] {
			t.Fatalf("Load = %v", err)
		}
		c.Reset()
		m.Save(ctx, s)
		if n := c.Calls("CompareAndSwap"); n != 0 {
			t.Fatalf("an unchanged compressed session was written %d times", n)
		}
	})
}

func TestQuarantine(t *testing.T) {
	ctx := t.Context()
	st := newMem(t)
	var r recorder
	plan := migrate.MustNew(migrate.Raw(1, func(doc map[string]any) error {
		if doc["fail"] == true {
			return errors.New("cannot migrate this shape")
		}
		return nil
	}))
	m := newManager(t, session.Config[Quiz]{Store: st, Namespace: "q", Migrations: plan, Quarantine: true, Hook: r.hook, Keyring: keyring(t, testKey(t, "k1"))})
	other := newManager(t, session.Config[Quiz]{Store: st, Namespace: "q", Migrations: plan, Keyring: keyring(t, testKey(t, "k9"))})
	other.Update(ctx, "otherkey", func(q *Quiz) error { q.Score = 1; return nil })
	for _, tc := range []struct {
		name, key, stored string
		moved             bool
		want              error
	}{
		{"not JSON", "a", "\x00\xffgarbage", true, nil},
		{"does not fit T", "b", `{"typedsession":2,"data":{"score":"three"}}`, false, session.ErrCorrupt},
		{"a step fails on its content", "c", `{"typedsession":1,"data":{"fail":true}}`, false, session.ErrMigration},
		{"a seal that does not open", "f", `{"typedsession":2,"layers":["aes-256-gcm"],"kid":"k1","data":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`, true, nil},
		{"a newer schema", "d", `{"typedsession":3,"data":{}}`, false, session.ErrFutureVersion},
		{"invalid", "e", `{"typedsession":2,"data":{"question":99}}`, false, session.ErrInvalid},
		{"sealed with a key this binary lacks", "otherkey", "", false, session.ErrNoSealingKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.stored != "" {
				st.Set(ctx, "q:"+tc.key, []byte(tc.stored), 0)
			}
			before, _ := st.Get(ctx, "q:"+tc.key)
			r.take()
			s, err := m.Load(ctx, tc.key)
			if !tc.moved {
				if !errors.Is(err, tc.want) {
					t.Fatalf("Load = %v, want %v", err, tc.want)
				}
				if raw, _ := st.Get(ctx, "q:"+tc.key); !bytes.Equal(raw, before) {
					t.Fatal("a value that must not be quarantined was moved")
				}
				return
			}
			if err != nil || !s.IsNew() {
				t.Fatalf("Load = %v, %v; want a new session", s, err)
			}
			if _, err := st.Get(ctx, "q:"+tc.key); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("the damaged value is still under its key: %v", err)
			}
			var moved []string
			st.Scan(ctx, session.QuarantinePrefix, func(k string) error {
				if strings.HasSuffix(k, ":q:"+tc.key) {
					moved = append(moved, k)
				}
				return nil
			})
			if len(moved) != 1 {
				t.Fatalf("quarantined copies: %v", moved)
			}
			if raw, _ := st.Get(ctx, moved[0]); !bytes.Equal(raw, before) {
				t.Fatalf("the quarantined copy differs: %q", raw)
			}
			ev := r.take()
			if len(ev) != 1 || ev[0].Outcome != session.OutcomeQuarantined || ev[0].Err == nil {
				t.Fatalf("events %+v, want one quarantined load with its error", ev)
			}
		})
	}
	// The namespace's MigrateAll does not see quarantined values.
	rep, err := m.MigrateAll(ctx, session.MigrateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Failed {
		if strings.HasPrefix(f.Key, session.QuarantinePrefix) {
			t.Fatalf("MigrateAll visited a quarantined value: %v", f)
		}
	}
}

// TestSealedBeforeHeaderAuthentication: values sealed before the
// envelope's header was authenticated (testdata/release2, written by the
// previous code with key k1 under quiz:u1 and quiz:u2) keep loading, count
// as stale for MigrateOptions.Reseal, and are rewritten with the header
// authenticated; after that, an edited version no longer opens.
func TestSealedBeforeHeaderAuthentication(t *testing.T) {
	ctx := t.Context()
	st := newMem(t)
	for key, file := range map[string]string{"u1": "sealed.json", "u2": "sealed_deflate.json"} {
		raw, err := os.ReadFile(filepath.Join("testdata", "release2", file))
		if err != nil {
			t.Fatal(err)
		}
		st.Set(ctx, "quiz:"+key, bytes.TrimSpace(raw), 0)
	}
	m := newManager(t, session.Config[Quiz]{Store: st, Namespace: "quiz", Keyring: keyring(t, testKey(t, "k1")), Compressor: codec.Deflate{}, CompressAbove: 1})
	for key, want := range map[string]int{"u1": 3, "u2": 4} {
		s, err := m.Load(ctx, key)
		if err != nil {
			t.Fatalf("a value sealed before header authentication does not load: %v", err)
		}
		if s.Data.Score != want {
			t.Fatalf("%s: score %d, want %d", key, s.Data.Score, want)
		}
	}
	r, err := m.MigrateAll(ctx, session.MigrateOptions{Reseal: true})
	if err != nil || r.Migrated != 2 {
		t.Fatalf("MigrateAll with Reseal = %+v, %v; want both legacy seals rewritten", r, err)
	}
	raw, _ := st.Get(ctx, "quiz:u1")
	edited := bytes.Replace(raw, []byte(`"typedsession":1`), []byte(`"typedsession":2`), 1)
	st.Set(ctx, "quiz:u1", edited, 0)
	if _, err := m.Load(ctx, "u1"); !errors.Is(err, session.ErrCorrupt) {
		t.Fatalf("Load of a resealed value with an edited version = %v, want ErrCorrupt", err)
	}
	if r, _ := m.MigrateAll(ctx, session.MigrateOptions{Reseal: true}); r.Migrated != 0 || r.Current != 1 {
		t.Errorf("a second Reseal = %+v, want nothing left to reseal (u2 current, u1 failed)", r)
	}
}
