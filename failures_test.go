package session_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/typedsession/session"
	"github.com/typedsession/session/codec"
	"github.com/typedsession/session/internal/format"
	"github.com/typedsession/session/migrate"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/memstore"
)

// A failure of the table in doc.go ("# Failures"), as the code makes it.
type failure struct {
	// run makes the failure on st (a fresh memstore, holding nothing) with
	// Config.Quarantine as given, and returns the error and the store key
	// whose bytes the row speaks of ("" for a row about a write that had
	// nothing stored before).
	run func(t *testing.T, st *memstore.Store, quarantine bool) (error, string)
}

// failures are the rows of the table, by their first column.
var failures = map[string]failure{
	"in: the store's read fails": {func(t *testing.T, st *memstore.Store, q bool) (error, string) {
		m := newManager(t, session.Config[Quiz]{Store: failingGet{st}, Namespace: "q", Quarantine: q})
		_, err := m.Load(t.Context(), "k")
		if !errors.Is(err, errDiskOnFire) {
			t.Errorf("Load = %v, want the store's error", err)
		}
		return err, ""
	}},
	"in: longer than any value within Config.MaxBytes":         {loadOf(strings.Repeat(" ", 5000), session.Config[Quiz]{MaxBytes: 100})},
	"in: not a value of a codec read (not JSON, bad envelope)": {loadOf("\x00\xffgarbage", session.Config[Quiz]{})},
	"in: written with a codec not read (Config.ReadCodecs)":    {loadOf(string(format.Append(nil, false, &format.Envelope{Version: 1, Codec: "cbor", Payload: []byte{0xa0}})), session.Config[Quiz]{})},
	"in: a layer or dictionary the manager lacks": {func(t *testing.T, st *memstore.Store, q bool) (error, string) {
		// A compressor the manager lacks, then a dictionary its
		// compressor lacks: both are this binary's, not damage.
		err, sk := loadOf(`{"typedsession":1,"layers":["deflate"],"data":"AA=="}`, session.Config[Quiz]{})(t, st, q)
		if !errors.Is(err, session.ErrUnsupportedCodec) {
			return err, sk
		}
		return loadOf(`{"typedsession":1,"layers":["deflate"],"dict":"d1","data":"AA=="}`, session.Config[Quiz]{Compressor: codec.Deflate{}})(t, st, q)
	}},
	"in: sealed with a key Config.Keyring lacks": {func(t *testing.T, st *memstore.Store, q bool) (error, string) {
		other := newManager(t, session.Config[Quiz]{Store: st, Namespace: "q", Keyring: keyring(t, testKey(t, "k9"))})
		if _, err := other.Update(t.Context(), "k", func(d *Quiz) error { d.Score = 1; return nil }); err != nil {
			t.Fatal(err)
		}
		m := newManager(t, session.Config[Quiz]{Store: st, Namespace: "q", Keyring: keyring(t, testKey(t, "k1")), Quarantine: q})
		_, err := m.Load(t.Context(), "k")
		return err, "q:k"
	}},
	"in: a seal that does not open (damaged, edited, moved)": {func(t *testing.T, st *memstore.Store, q bool) (error, string) {
		// Issue 27, example 4: the version of a sealed value edited by
		// hand must not make a step run again.
		ctx := t.Context()
		cfg := session.Config[Quiz]{Store: st, Namespace: "q", Keyring: keyring(t, testKey(t, "k1")), Migrations: twoVersions()}
		w := newManager(t, cfg)
		if _, err := w.Update(ctx, "k", func(d *Quiz) error { d.Score = 3; return nil }); err != nil {
			t.Fatal(err)
		}
		raw, _ := st.Get(ctx, "q:k")
		edited := bytes.Replace(raw, []byte(`"typedsession":2`), []byte(`"typedsession":1`), 1)
		if bytes.Equal(edited, raw) {
			t.Fatalf("no version to edit in %s", raw)
		}
		st.Set(ctx, "q:k", edited, 0)
		cfg.Quarantine = q
		s, err := newManager(t, cfg).Load(ctx, "k")
		if err == nil && !s.IsNew() {
			t.Errorf("an edited header loaded: score %d (the step 1→2 ran again)", s.Data.Score)
		}
		return err, "q:k"
	}},
	"in: compressed data that does not decompress": {loadOf(`{"typedsession":2,"layers":["deflate"],"data":"`+base64.StdEncoding.EncodeToString([]byte("not deflate at all"))+`"}`, session.Config[Quiz]{Compressor: codec.Deflate{}})},
	"in: the payload is over Config.MaxBytes": {func(t *testing.T, st *memstore.Store, q bool) (error, string) {
		// Issue 27, example 1: a compressed value whose payload is over
		// the limit (written by a binary with a larger limit) is too
		// large for this one, not corrupt, and never quarantined.
		ctx := t.Context()
		big := newManager(t, session.Config[Quiz]{Store: st, Namespace: "q", Compressor: codec.Deflate{}, MaxBytes: 4 << 20, SkipTagValidation: true})
		if _, err := big.Update(ctx, "k", func(d *Quiz) error { d.Answers = []string{strings.Repeat("a", 2<<20)}; return nil }); err != nil {
			t.Fatal(err)
		}
		m := newManager(t, session.Config[Quiz]{Store: st, Namespace: "q", Compressor: codec.Deflate{}, MaxBytes: 1 << 20, SkipTagValidation: true, Quarantine: q})
		_, err := m.Load(ctx, "k")
		return err, "q:k"
	}},
	"in: a schema version above the latest":         {loadOf(`{"typedsession":3,"data":{}}`, session.Config[Quiz]{Migrations: twoVersions()})},
	"in: no migration step from the stored version": {loadOf(`{"score":1}`, session.Config[Quiz]{Migrations: twoVersions()})},
	"in: a migration step fails or panics": {func(t *testing.T, st *memstore.Store, q bool) (error, string) {
		err, sk := loadOf(`{"typedsession":1,"data":{"fail":true}}`, session.Config[Quiz]{Migrations: twoVersions()})(t, st, q)
		if !errors.Is(err, session.ErrMigration) {
			return err, sk
		}
		return loadOf(`{"typedsession":1,"data":{"panic":true}}`, session.Config[Quiz]{Migrations: twoVersions()})(t, st, q)
	}},
	"in: the data does not decode into T":          {loadOf(`{"typedsession":1,"data":{"score":"three"}}`, session.Config[Quiz]{})},
	"in: members T lacks, with RejectExtra":        {loadOf(`{"typedsession":1,"data":{"extra":1}}`, session.Config[Quiz]{ExtraMembers: session.RejectExtra})},
	"in: validation fails or panics":               {loadOf(`{"typedsession":1,"data":{"question":99}}`, session.Config[Quiz]{})},
	"out: validation fails or panics":              {saveOf(session.Config[Quiz]{}, func(d *Quiz) { d.Question = 99 })},
	"out: a value the codec cannot store as it is": {saveOf(session.Config[Quiz]{}, func(d *Quiz) { d.Answers = []string{"\xff"} })},
	"out: the payload is over Config.MaxBytes": {saveOf(session.Config[Quiz]{Compressor: codec.Deflate{}, MaxBytes: 1 << 10, SkipTagValidation: true}, func(d *Quiz) {
		d.Answers = []string{strings.Repeat("a", 4<<10)} // compresses to a few bytes: the payload is what counts
	})},
	"out: a step down fails or does not invert its step up": {saveOf(session.Config[Quiz]{WriteVersion: 1, Migrations: migrate.MustNew(
		migrate.RawReversible(1, func(map[string]any) error { return nil }, func(doc map[string]any) error { doc["score"] = 0; return nil }),
	)}, func(d *Quiz) { d.Score = 5 })},
	"out: another writer saved first": {func(t *testing.T, st *memstore.Store, q bool) (error, string) {
		ctx := t.Context()
		m := newManager(t, session.Config[Quiz]{Store: st, Namespace: "q"})
		m.Update(ctx, "k", func(d *Quiz) error { d.Score = 1; return nil })
		s, _ := m.Load(ctx, "k")
		if _, err := m.Update(ctx, "k", func(d *Quiz) error { d.Score = 2; return nil }); err != nil {
			t.Fatal(err)
		}
		before, _ := st.Get(ctx, "q:k")
		s.Data.Score = 3
		err := m.Save(ctx, s)
		if after, _ := st.Get(ctx, "q:k"); !bytes.Equal(before, after) {
			t.Error("a conflicting save changed the stored value")
		}
		return err, ""
	}},
	"out: the store refuses the value for sure (its size cap)": {func(t *testing.T, _ *memstore.Store, q bool) (error, string) {
		st, err := memstore.New(memstore.Options{MaxValueBytes: 60})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		m := newManager(t, session.Config[Quiz]{Store: st, Namespace: "q"})
		_, err = m.Update(t.Context(), "k", func(d *Quiz) error { d.Answers = []string{strings.Repeat("a", 100)}; return nil })
		if _, gerr := st.Get(t.Context(), "q:k"); !errors.Is(gerr, store.ErrNotFound) {
			t.Error("a value the store refused is stored")
		}
		return err, ""
	}},
	"out: the store can no longer read the value it holds": {func(t *testing.T, st *memstore.Store, q bool) (error, string) {
		// The store reports store.ErrCorrupt for the value it holds and
		// leaves it in place: nothing was written, for sure.
		ctx := t.Context()
		m0 := newManager(t, session.Config[Quiz]{Store: st, Namespace: "q"})
		if _, err := m0.Update(ctx, "k", func(d *Quiz) error { d.Score = 1; return nil }); err != nil {
			t.Fatal(err)
		}
		m := newManager(t, session.Config[Quiz]{Store: &damagedWrites{Store: st}, Namespace: "q", Quarantine: q})
		_, err := m.Update(ctx, "k", func(d *Quiz) error { d.Score = 2; return nil })
		return err, "q:k"
	}},
	"out: the write's outcome cannot be learned": {func(t *testing.T, st *memstore.Store, q bool) (error, string) {
		ctx, cancel := context.WithTimeout(t.Context(), 0)
		defer cancel()
		m := newManager(t, session.Config[Quiz]{Store: lostReplies{st}, Namespace: "q"})
		s, err := m.NewSession("k")
		if err != nil {
			t.Fatal(err)
		}
		s.Data.Score = 1
		return m.Save(ctx, s), ""
	}},
}

var errDiskOnFire = errors.New("disk on fire")

// failingGet is a store whose reads fail.
type failingGet struct{ *memstore.Store }

func (failingGet) Get(context.Context, string) ([]byte, error) { return nil, errDiskOnFire }

// lostReplies is a store whose compare-and-swaps land and lose their reply.
type lostReplies struct{ *memstore.Store }

func (l lostReplies) CompareAndSwap(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error) {
	l.Store.CompareAndSwap(context.Background(), key, old, value, ttl)
	return false, errors.New("connection reset by peer")
}

// twoVersions is a plan 1→2 whose step refuses {"fail":true} and panics
// on {"panic":true}.
func twoVersions() *migrate.Plan {
	return migrate.MustNew(migrate.Raw(1, func(doc map[string]any) error {
		if doc["fail"] == true {
			return errors.New("cannot migrate this shape")
		}
		if doc["panic"] == true {
			panic("a step that panics")
		}
		delete(doc, "fail")
		return nil
	}))
}

// loadOf returns a failure that stores raw under the key and loads it with
// cfg.
func loadOf(raw string, cfg session.Config[Quiz]) func(*testing.T, *memstore.Store, bool) (error, string) {
	return func(t *testing.T, st *memstore.Store, q bool) (error, string) {
		st.Set(t.Context(), "q:k", []byte(raw), 0)
		cfg.Store, cfg.Namespace, cfg.Quarantine = st, "q", q
		_, err := newManager(t, cfg).Load(t.Context(), "k")
		return err, "q:k"
	}
}

// saveOf returns a failure that stores a session, then saves it again
// changed by change, with cfg.
func saveOf(cfg session.Config[Quiz], change func(*Quiz)) func(*testing.T, *memstore.Store, bool) (error, string) {
	return func(t *testing.T, st *memstore.Store, q bool) (error, string) {
		ctx := t.Context()
		cfg.Store, cfg.Namespace, cfg.Quarantine = st, "q", q
		m := newManager(t, cfg)
		if _, err := m.Update(ctx, "k", func(d *Quiz) error { d.Active = true; return nil }); err != nil {
			t.Fatal(err)
		}
		_, err := m.Update(ctx, "k", func(d *Quiz) error { change(d); return nil })
		return err, "q:k"
	}
}

// TestFailureTable walks the failure table in doc.go: for every row, the
// failure made as the code makes it gives the row's error, leaves the
// stored bytes as the row says, and is quarantined exactly when the row
// says so; and every failure the test knows has a row.
func TestFailureTable(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	sentinels := map[string]error{
		"ErrTooLarge": session.ErrTooLarge, "ErrCorrupt": session.ErrCorrupt, "ErrUnsupportedCodec": session.ErrUnsupportedCodec,
		"ErrNoSealingKey": session.ErrNoSealingKey, "ErrFutureVersion": session.ErrFutureVersion, "ErrMigration": session.ErrMigration,
		"ErrInvalid": session.ErrInvalid, "ErrConflict": session.ErrConflict, "ErrOutcomeUnknown": session.ErrOutcomeUnknown,
		"the store's error": errDiskOnFire,
	}
	seen := map[string]bool{}
	in := false
	for line := range strings.Lines(string(doc)) {
		line = strings.TrimRight(strings.TrimPrefix(line, "//\t"), "\n")
		if strings.HasPrefix(line, "failure ") {
			in = true
			continue
		}
		if !in {
			continue
		}
		if !strings.HasPrefix(line, "in: ") && !strings.HasPrefix(line, "out: ") {
			break
		}
		cols := splitColumns(line)
		if len(cols) != 4 {
			t.Fatalf("row %q: %d columns, want 4", line, len(cols))
		}
		name, wantErr, bytesCol, quarantined := cols[0], sentinels[cols[1]], cols[2], cols[3]
		seen[name] = true
		f, ok := failures[name]
		if !ok {
			t.Errorf("row %q: no failure in the test makes it", name)
			continue
		}
		if wantErr == nil {
			t.Errorf("row %q: unknown error %q", name, cols[1])
			continue
		}
		for _, q := range []bool{false, true} {
			t.Run(name+map[bool]string{false: "", true: " (Quarantine on)"}[q], func(t *testing.T) {
				st := newMem(t)
				err, sk := f.run(t, st, q)
				if quarantined == "yes" && q && err == nil {
					// Moved aside: the caller gets a new session, the
					// hook the error.
				} else if !errors.Is(err, wantErr) {
					t.Fatalf("error %v, want %v", err, cols[1])
				}
				moved := quarantinedKeys(t, st)
				switch {
				case quarantined == "yes" && q:
					if len(moved) != 1 {
						t.Fatalf("%d values quarantined, want 1", len(moved))
					}
					if _, err := st.Get(t.Context(), sk); !errors.Is(err, store.ErrNotFound) {
						t.Error("the quarantined value is still under its key")
					}
					return
				case len(moved) > 0:
					t.Fatalf("quarantined %v; the table says %s", moved, quarantined)
				}
				if bytesCol == "stay" && sk != "" {
					if _, err := st.Get(t.Context(), sk); err != nil {
						t.Errorf("the stored bytes did not stay: %v", err)
					}
				}
			})
		}
	}
	for name := range failures {
		if !seen[name] {
			t.Errorf("failure %q has no row in doc.go's table", name)
		}
	}
}

// splitColumns splits a table row at runs of two or more spaces.
func splitColumns(line string) []string {
	var cols []string
	for _, c := range strings.Split(line, "  ") {
		if c = strings.TrimSpace(c); c != "" {
			cols = append(cols, c)
		}
	}
	return cols
}

func quarantinedKeys(t *testing.T, st *memstore.Store) []string {
	var keys []string
	st.Scan(t.Context(), session.QuarantinePrefix, func(k string) error { keys = append(keys, k); return nil })
	return keys
}
