package middleware_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/internal/testenv"
	"github.com/typedsession/session/internal/webtest"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/memstore"
	"github.com/typedsession/session/store/redisstore"
)

// netHTTPApp is the app of the web tests on net/http.
func netHTTPApp(t testing.TB, m *session.Manager[webtest.Visit], opts middleware.HTTPOptions) webtest.Doer {
	return webtest.Serving(webtest.NetHTTPApp(m, opts))
}

// TestWebMemstore runs the web features' tests (internal/webtest) through
// net/http on memstore.
func TestWebMemstore(t *testing.T) {
	webtest.Run(t, webtest.Env{NewApp: netHTTPApp, NewStore: memStore})
}

// TestWebRedis runs them on Redis (REDIS_URL, default 127.0.0.1:6379),
// each test under a prefix of its own.
func TestWebRedis(t *testing.T) {
	c := testenv.Redis(t)
	prefix := testenv.Prefix(t, "web")
	testenv.CleanupPrefix(t, c, prefix) // one scan for all the tests
	var n atomic.Int64
	webtest.Run(t, webtest.Env{NewApp: netHTTPApp, NewStore: func(t testing.TB) store.Store {
		return redisstore.New(c, redisstore.Options{Prefix: fmt.Sprintf("%s%d:", prefix, n.Add(1))})
	}})
}

// memStore returns a fresh memstore.
func memStore(t testing.TB) store.Store {
	st, err := memstore.New(memstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// BenchmarkWeb measures what the index of devices costs a request (round
// trips and bytes per operation; see webtest.Bench) on memstore and Redis:
//
//	go test -run '^$' -bench BenchmarkWeb ./middleware/
func BenchmarkWeb(b *testing.B) {
	b.Run("memstore", func(b *testing.B) {
		webtest.Bench(b, webtest.Env{NewApp: netHTTPApp, NewStore: memStore})
	})
	b.Run("redis", func(b *testing.B) {
		c := testenv.Redis(b)
		prefix := testenv.Prefix(b, "webbench")
		testenv.CleanupPrefix(b, c, prefix)
		var n atomic.Int64
		webtest.Bench(b, webtest.Env{NewApp: netHTTPApp, NewStore: func(t testing.TB) store.Store {
			return redisstore.New(c, redisstore.Options{Prefix: fmt.Sprintf("%s%d:", prefix, n.Add(1))})
		}})
	})
}
