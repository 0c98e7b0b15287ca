package middleware

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/store"
)

// prefs is the session of a web form with validated fields.
type prefs struct {
	Name  string `json:"name" validate:"max=20"`
	Theme string `json:"theme" validate:"oneof=light dark"`
}

// prefsForm stores the posted name and theme in the session, as a form
// handler does, and answers 200; the middleware's save validates them.
func prefsForm(w http.ResponseWriter, r *http.Request) {
	s, err := session.From[prefs](r.Context())
	if err != nil {
		http.Error(w, "no session", http.StatusInternalServerError)
		return
	}
	s.Data.Name, s.Data.Theme = r.FormValue("name"), r.FormValue("theme")
	w.WriteHeader(http.StatusOK)
}

// records captures slog records as JSON objects.
type records struct{ buf bytes.Buffer }

func (r *records) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(&r.buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (r *records) all(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(r.buf.Bytes()), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, rec)
	}
	return out
}

// captureDefault points slog.Default at a buffer until the test ends. The
// tests that use it do not run in parallel: slog.Default is global.
func captureDefault(t *testing.T) *records {
	t.Helper()
	r := &records{}
	prev := slog.Default()
	slog.SetDefault(r.logger())
	t.Cleanup(func() { slog.SetDefault(prev) })
	return r
}

func postForm(t *testing.T, h http.Handler, cookie *http.Cookie, form url.Values) *http.Response {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "https://example.com/prefs", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if cookie != nil {
		req.AddCookie(cookie)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func newPrefsManager(t *testing.T, st store.Store) *session.Manager[prefs] {
	t.Helper()
	m, err := session.New(session.Config[prefs]{Store: st, Namespace: "prefs", Initial: func() prefs { return prefs{Theme: "light"} }})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestHTTPLogsErrorsByDefault posts an invalid form to net/http middleware
// that has neither OnError nor Logger: the response is a 500, as always,
// and the failed save is logged to slog.Default() with the field and its
// rule, but not the refused value, the session's other data, the token or
// the key.
func TestHTTPLogsErrorsByDefault(t *testing.T) {
	logs := captureDefault(t)
	m := newPrefsManager(t, newCountingStore(t))
	h := HTTP(m, HTTPOptions{})(http.HandlerFunc(prefsForm))

	// A valid post stores a session and gives the visitor a cookie.
	res := postForm(t, h, nil, url.Values{"name": {"Alice Private"}, "theme": {"dark"}})
	if res.StatusCode != http.StatusOK || len(res.Cookies()) != 1 {
		t.Fatalf("valid post: status %d, cookies %v", res.StatusCode, res.Cookies())
	}
	cookie := res.Cookies()[0]
	if got := logs.all(t); len(got) != 0 {
		t.Fatalf("a request that succeeded logged %v", got)
	}

	res = postForm(t, h, cookie, url.Values{"name": {"Alice Private"}, "theme": {"neon-secret-theme"}})
	if res.StatusCode != http.StatusInternalServerError {
		t.Fatalf("invalid post: status %d, want 500", res.StatusCode)
	}
	got := logs.all(t)
	if len(got) != 1 {
		t.Fatalf("invalid post logged %d records, want 1: %s", len(got), logs.buf.String())
	}
	rec := got[0]
	if rec["level"] != "ERROR" || rec["msg"] != "session middleware: save failed" || rec["op"] != "save" {
		t.Errorf("record %v: want level ERROR, msg \"session middleware: save failed\", op save", rec)
	}
	if e, _ := rec["error"].(string); !strings.Contains(e, `invalid: prefs.Theme: failed "oneof=light dark"`) {
		t.Errorf("error attribute %q; want the kind, the field and its rule", e)
	}
	if _, ok := rec["key"]; ok {
		t.Errorf("record %v has a key without LogKeys", rec)
	}
	for _, secret := range []string{"neon-secret-theme", "Alice Private", cookie.Value, tokenKey(cookie.Value)} {
		if strings.Contains(logs.buf.String(), secret) {
			t.Errorf("the log holds %q: %s", secret, logs.buf.String())
		}
	}
	// The stored session is as the valid post left it.
	s, err := m.Load(context.Background(), tokenKey(cookie.Value))
	if err != nil || s.Data.Theme != "dark" {
		t.Errorf("stored session %+v, %v; want the theme of the valid post", s.Data, err)
	}
}

// failingStore is a store whose reads fail with an error that names the
// key, as a store's errors do.
type failingStore struct{ store.Store }

var errDisk = errors.New("disk on fire")

func (f failingStore) Get(_ context.Context, key string) ([]byte, error) {
	return nil, fmt.Errorf("failingstore: get %q: %w", key, errDisk)
}

// TestHTTPLogOptions checks who hears an error: OnError alone, Logger
// alone, or both; LogKeys; and that a store's error is logged by its
// cause, without the key it names.
func TestHTTPLogOptions(t *testing.T) {
	keyOf := func(*http.Request) (string, error) { return "user-4711", nil }
	// Key sessions that fail to load: the handler never runs.
	load := func(t *testing.T, opts HTTPOptions) int {
		t.Helper()
		m := newPrefsManager(t, failingStore{newCountingStore(t)})
		opts.Key = keyOf
		h := HTTP(m, opts)(http.HandlerFunc(prefsForm))
		return postForm(t, h, nil, url.Values{"theme": {"dark"}}).StatusCode
	}

	t.Run("OnError only", func(t *testing.T) {
		def := captureDefault(t)
		var ops []string
		code := load(t, HTTPOptions{Options: Options{OnError: func(_ context.Context, op, _ string, _ error) { ops = append(ops, op) }}})
		if code != http.StatusInternalServerError || len(ops) != 1 || ops[0] != "load" {
			t.Errorf("status %d, OnError saw %v; want 500 and [load]", code, ops)
		}
		if def.buf.Len() != 0 {
			t.Errorf("slog.Default() got %s although OnError is set", def.buf.String())
		}
	})

	t.Run("Logger", func(t *testing.T) {
		def := captureDefault(t)
		var own records
		code := load(t, HTTPOptions{Options: Options{Logger: own.logger()}})
		got := own.all(t)
		if code != http.StatusInternalServerError || len(got) != 1 {
			t.Fatalf("status %d, records %v; want 500 and one record", code, got)
		}
		if e, _ := got[0]["error"].(string); got[0]["op"] != "load" || !strings.HasSuffix(e, "disk on fire") {
			t.Errorf("record %v; want op load and the store's cause, %q", got[0], errDisk)
		}
		if strings.Contains(own.buf.String(), "user-4711") {
			t.Errorf("the log names the key: %s", own.buf.String())
		}
		if def.buf.Len() != 0 {
			t.Errorf("slog.Default() got %s although Logger is set", def.buf.String())
		}
	})

	t.Run("LogKeys", func(t *testing.T) {
		var own records
		load(t, HTTPOptions{Options: Options{Logger: own.logger(), LogKeys: true}})
		if got := own.all(t); len(got) != 1 || got[0]["key"] != "user-4711" {
			t.Errorf("records %v; want one with key user-4711", got)
		}
	})

	t.Run("default slog set later", func(t *testing.T) {
		// The middleware is built before the program sets its default
		// logger; the record still goes to the logger set last.
		m := newPrefsManager(t, failingStore{newCountingStore(t)})
		h := HTTP(m, HTTPOptions{Key: keyOf})(http.HandlerFunc(prefsForm))
		def := captureDefault(t)
		postForm(t, h, nil, url.Values{"theme": {"dark"}})
		if got := def.all(t); len(got) != 1 || !strings.HasSuffix(got[0]["error"].(string), "disk on fire") {
			t.Errorf("records %v; want the load error", got)
		}
	})
}

// TestGenericMiddlewareLogsOnlyWithLogger: the generic wrapper returns
// every error to its caller, so it logs nothing unless Logger is set.
func TestGenericMiddlewareLogsOnlyWithLogger(t *testing.T) {
	def := captureDefault(t)
	m := newManager[counter](t, failingStore{newCountingStore(t)}, "c")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := New(m, userKey, Options{}).Wrap(incr)(ctx, &update{User: "u1"}); !errors.Is(err, errDisk) {
		t.Fatalf("Wrap returned %v, want the store's error", err)
	}
	if def.buf.Len() != 0 {
		t.Errorf("the generic middleware logged %s by default", def.buf.String())
	}
	var own records
	New(m, userKey, Options{Logger: own.logger()}).Wrap(incr)(ctx, &update{User: "u1"})
	if got := own.all(t); len(got) != 1 || got[0]["op"] != "load" {
		t.Errorf("records %v; want one load error", got)
	}
}
