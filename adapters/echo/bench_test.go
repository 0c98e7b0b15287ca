package echosession_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	session "github.com/typedsession/session"
	echosession "github.com/typedsession/session/adapters/echo"
	"github.com/typedsession/session/middleware"
)

// BenchmarkUnchanged serves a request that reads its session and changes
// nothing (one store read, no write), through Middleware and, for
// comparison, through middleware.HTTP on a plain net/http handler.
func BenchmarkUnchanged(b *testing.B) {
	m, _ := newManager(b)
	apps := map[string]http.Handler{
		"echo": newApp(echosession.Middleware(m, middleware.HTTPOptions{})),
		"net-http": middleware.HTTP(m, middleware.HTTPOptions{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s, err := session.From[visits](r.Context())
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			fmt.Fprintf(w, "%s|%d", s.Data.User, s.Data.N)
		})),
	}
	c := start(b, apps["echo"])
	for _, name := range []string{"echo", "net-http"} {
		b.Run(name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/show", nil)
			req.AddCookie(c)
			b.ReportAllocs()
			for b.Loop() {
				apps[name].ServeHTTP(httptest.NewRecorder(), req)
			}
		})
	}
}
