package middleware

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/store/memstore"
)

func benchManager[T any](b *testing.B) *session.Manager[T] {
	st, err := memstore.New(memstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	m, err := session.New(session.Config[T]{Store: st, Namespace: "b"})
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// BenchmarkManagerLoadSave is the baseline: Load, change, Save by hand.
func BenchmarkManagerLoadSave(b *testing.B) {
	m := benchManager[counter](b)
	ctx := context.Background()
	for b.Loop() {
		s, err := m.Load(ctx, "ann")
		if err != nil {
			b.Fatal(err)
		}
		s.Data.N++
		if err := m.Save(ctx, s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWrap is the same update through the generic middleware, with
// the per-key lock.
func BenchmarkWrap(b *testing.B) {
	m := benchManager[counter](b)
	h := New(m, userKey, Options{}).Wrap(incr)
	ctx := context.Background()
	u := &update{User: "ann"}
	for b.Loop() {
		if err := h(ctx, u); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWrapLazyUntouched is a handler that never asks for its session.
func BenchmarkWrapLazyUntouched(b *testing.B) {
	m := benchManager[counter](b)
	h := New(m, userKey, Options{Lazy: true}).Wrap(func(context.Context, *update) error { return nil })
	ctx := context.Background()
	u := &update{User: "ann"}
	for b.Loop() {
		if err := h(ctx, u); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWrapParallelKeys runs updates of many keys in parallel through
// one Middleware: the cost of the shared lock table.
func BenchmarkWrapParallelKeys(b *testing.B) {
	m := benchManager[counter](b)
	h := New(m, userKey, Options{}).Wrap(incr)
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		u := &update{User: "u" + strconv.FormatInt(next.Add(1), 10)}
		ctx := context.Background()
		for pb.Next() {
			if err := h(ctx, u); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkHTTPCookie is one request with a known session cookie that
// changes the session, through httptest.
func BenchmarkHTTPCookie(b *testing.B) {
	m := benchManager[counter](b)
	h := HTTP(m, HTTPOptions{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := session.From[counter](r.Context())
		if err != nil {
			b.Fatal(err)
		}
		s.Data.N++
		w.Write([]byte("ok"))
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	c := rec.Result().Cookies()[0]
	req := httptest.NewRequest("GET", "/", nil)
	req.AddCookie(c)
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
	}
}
