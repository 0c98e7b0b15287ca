package sqlstore

import (
	"testing"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/internal/webtest"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/store"
)

// TestWeb runs the web middleware's tests (internal/webtest: absolute
// timeout, rotation, remember-me, the index of devices and log out
// everywhere racing logins, flash, cookies) through net/http on
// PostgreSQL and SQLite (the core runs them on memstore and Redis), each
// test on a table of its own.
func TestWeb(t *testing.T) {
	app := func(t testing.TB, m *session.Manager[webtest.Visit], opts middleware.HTTPOptions) webtest.Doer {
		return webtest.Serving(webtest.NetHTTPApp(m, opts))
	}
	t.Run("postgres", func(t *testing.T) {
		db := postgresDB(t)
		webtest.Run(t, webtest.Env{NewApp: app, NewStore: func(t testing.TB) store.Store {
			return newTestStore(t, db, Options{})
		}})
	})
	t.Run("sqlite", func(t *testing.T) {
		db := sqliteDB(t)
		webtest.Run(t, webtest.Env{NewApp: app, NewStore: func(t testing.TB) store.Store {
			return newTestStore(t, db, Options{})
		}})
	})
}
