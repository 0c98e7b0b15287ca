package middleware

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestKeyFrom: a handler sees the key its session was bound under, without
// loading it (Lazy: no store call), and none for an update without a key,
// even inside an outer binding of the same type by another manager.
func TestKeyFrom(t *testing.T) {
	st := newCountingStore(t)
	m := newManager[counter](t, st, "c")
	other := newManager[counter](t, st, "o")
	type seen struct {
		key string
		ok  bool
	}
	var got []seen
	record := func(ctx context.Context, _ *update) error {
		k, ok := KeyFrom[counter](ctx)
		got = append(got, seen{k, ok})
		return nil
	}
	inner := Handle(other, userKey, record, Options{Lazy: true})
	outer := Handle(m, func(context.Context, *update) (string, error) { return "outer", nil }, inner, Options{Lazy: true})
	if err := Handle(m, userKey, record, Options{Lazy: true})(context.Background(), &update{User: "42"}); err != nil {
		t.Fatal(err)
	}
	if err := outer(context.Background(), &update{}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != (seen{"42", true}) || got[1] != (seen{"", false}) {
		t.Errorf("KeyFrom saw %+v; want 42 for the keyed update, nothing for the one without a key inside another binding", got)
	}
	if n := st.Calls(); n != 0 {
		t.Errorf("%d store calls; KeyFrom must not load the session", n)
	}
	if k, ok := KeyFrom[counter](context.Background()); ok {
		t.Errorf("KeyFrom outside a middleware = %q, true; want false", k)
	}

	// A cookie session: the SHA-256 of the token.
	var httpKey string
	h := HTTP(m, HTTPOptions{Insecure: true})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpKey, _ = KeyFrom[counter](r.Context())
	}))
	tok := newToken()
	req := httptest.NewRequest("GET", "/", nil)
	req.AddCookie(&http.Cookie{Name: "session", Value: tok})
	h.ServeHTTP(httptest.NewRecorder(), req)
	if httpKey != tokenKey(tok) {
		t.Errorf("KeyFrom in a cookie session = %q, want the token's SHA-256 %q", httpKey, tokenKey(tok))
	}
}
