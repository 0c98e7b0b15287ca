package session_test

import (
	"strings"
	"testing"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/store/memstore"
)

type atk4Data struct {
	N int `json:"n"`
}

// TestAttackNewRefusesNilStoreInInterface: a nil *memstore.Store (what
// `st, _ := memstore.New(...)` gives when New fails, as in the README's
// quick start) is a non-nil store.Store: New accepted it, and the first
// Load panicked with a nil pointer dereference deep inside the store. New
// refuses it, naming the field and the type.
func TestAttackNewRefusesNilStoreInInterface(t *testing.T) {
	var st *memstore.Store
	_, err := session.New(session.Config[atk4Data]{Store: st})
	if err == nil || !strings.Contains(err.Error(), "Config.Store") || !strings.Contains(err.Error(), "*memstore.Store") {
		t.Fatalf("New with a nil *memstore.Store: err = %v, want an error naming Config.Store and *memstore.Store", err)
	}
}

// TestAttackNewRefusesNamespaceNoKeyFits: a Namespace that no store key can
// begin with (a NUL byte, invalid UTF-8, longer than store.MaxKeyLen) was
// accepted by New, and then every Load, Save and Update failed with
// "store: invalid key: key contains a NUL byte", which names neither the
// namespace nor the option. New refuses it, naming Config.Namespace.
func TestAttackNewRefusesNamespaceNoKeyFits(t *testing.T) {
	st := newMem(t)
	for name, ns := range map[string]string{
		"NUL":          "quiz\x00",
		"invalid UTF8": "quiz\xff",
		"too long":     strings.Repeat("n", 1023),
	} {
		_, err := session.New(session.Config[atk4Data]{Store: st, Namespace: ns})
		if err == nil || !strings.Contains(err.Error(), "Config.Namespace") {
			t.Errorf("%s: New: err = %v, want an error naming Config.Namespace", name, err)
		}
	}
	// The longest namespace that leaves room for a one-byte key is fine.
	m, err := session.New(session.Config[atk4Data]{Store: st, Namespace: strings.Repeat("n", 1022)})
	if err != nil {
		t.Fatalf("New with a 1022-byte namespace: %v", err)
	}
	if _, err := m.Update(t.Context(), "k", func(d *atk4Data) error { d.N++; return nil }); err != nil {
		t.Fatalf("Update under a 1022-byte namespace: %v", err)
	}
}

// TestAttackUpdateNilFn: Update with a nil fn took the key's lock, read
// the store, and then panicked with a nil pointer dereference; Retry with
// a nil attempt did the same at once. Both are a caller's mistake, as a
// Save of a foreign session is: they panic at entry, with a message that
// names the argument, before any I/O.
func TestAttackUpdateNilFn(t *testing.T) {
	st := newMem(t)
	m, err := session.New(session.Config[atk4Data]{Store: st, Namespace: "nilfn"})
	if err != nil {
		t.Fatal(err)
	}
	panics := func(name string, f func()) {
		t.Helper()
		defer func() {
			r := recover()
			msg, _ := r.(string)
			if !strings.Contains(msg, name) {
				t.Errorf("panic = %v, want a message naming %s", r, name)
			}
		}()
		f()
	}
	panics("Update", func() { m.Update(t.Context(), "k", nil) })
	panics("Retry", func() { m.Retry(t.Context(), nil) })
	// The lock of the key was not left held.
	if _, err := m.Update(t.Context(), "k", func(d *atk4Data) error { d.N++; return nil }); err != nil {
		t.Fatal(err)
	}
}
