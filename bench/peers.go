package main

import (
	"context"
	"encoding/gob"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/alexedwards/scs/goredisstore"
	scsredis "github.com/alexedwards/scs/redisstore"
	"github.com/alexedwards/scs/v2"
	scsmem "github.com/alexedwards/scs/v2/memstore"
	redigo "github.com/gomodule/redigo/redis"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/middleware"
)

// Row names of the HTTP cases.
const (
	RowHTTPOurs           = "http: typedsession middleware, changed"
	RowHTTPOursRead       = "http: typedsession middleware, read only"
	RowHTTPScsGoRedis     = "http: scs + goredisstore, changed"
	RowHTTPScsGoRedisRead = "http: scs + goredisstore, read only"
	RowHTTPScsRedigo      = "http: scs + redisstore (redigo), changed"
	RowHTTPScsMem         = "http: scs + memstore, changed"
	RowHTTPScsMemRead     = "http: scs + memstore, read only"
)

func init() { gob.Register(Sess{}) }

// browser is a client of one handler that keeps the session cookie it
// was given. Each request goes through ServeHTTP with an httptest request
// and recorder: the middleware and the store are measured, not a socket.
type browser struct {
	h      http.Handler
	cookie *http.Cookie
}

func (b *browser) get(path string) error {
	req := httptest.NewRequest(http.MethodGet, "https://example.com"+path, nil)
	if b.cookie != nil {
		req.AddCookie(b.cookie)
	}
	rec := httptest.NewRecorder()
	b.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		return fmt.Errorf("GET %s: status %d: %s", path, rec.Code, rec.Body)
	}
	if b.cookie == nil {
		for _, c := range rec.Result().Cookies() {
			if c.Name == "__Host-session" || c.Name == "session" { // ours, scs's
				b.cookie = c
			}
		}
		if b.cookie == nil {
			return fmt.Errorf("GET %s: no session cookie in the response", path)
		}
	}
	return nil
}

// page is the per-request work both libraries do: read the typed
// session, and on /write change one field; /init stores the full data.
func httpCase(name string, h http.Handler, path string, counter *redisCounter, counted bool) (benchCase, error) {
	b := &browser{h: h}
	if err := b.get("/init"); err != nil {
		return benchCase{}, fmt.Errorf("%s: %w", name, err)
	}
	return benchCase{name: name, counted: counted, counter: counter, op: func(context.Context) error {
		return b.get(path)
	}}, nil
}

// ours is the typedsession net/http middleware on the backend's store.
func ours(b *backend, data Sess) (http.Handler, error) {
	m, err := session.New(session.Config[Sess]{Store: b.st, Namespace: "web", TTL: ttl})
	if err != nil {
		return nil, err
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := session.From[Sess](r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		switch r.URL.Path {
		case "/init":
			s.Data = data
		case "/write":
			s.Data.Score++
		}
		io.WriteString(w, "ok")
	})
	return middleware.HTTP(m, middleware.HTTPOptions{})(h), nil
}

// peer is scs with the given store, doing the same work with the same
// struct (gob-encoded, scs's default codec).
func peer(st scs.Store, data Sess) http.Handler {
	sm := scs.New()
	sm.Store = st
	sm.Lifetime = ttl
	return sm.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := sm.Get(r.Context(), "s").(Sess)
		switch r.URL.Path {
		case "/init":
			sm.Put(r.Context(), "s", data)
		case "/write":
			s.Score++
			sm.Put(r.Context(), "s", s)
		}
		io.WriteString(w, "ok")
	}))
}

// httpCases returns the HTTP cases for the backend: our middleware, and
// scs on the same Redis (both its go-redis and its redigo store) or on
// its own memory store. PostgreSQL gets ours only.
func httpCases(ctx context.Context, cfg Config, b *backend, data Sess) ([]benchCase, func(), error) {
	var cases []benchCase
	closers := []func(){}
	closeAll := func() {
		for _, c := range closers {
			c()
		}
	}
	add := func(c benchCase, err error) error {
		if err != nil {
			return err
		}
		cases = append(cases, c)
		return nil
	}
	oh, err := ours(b, data)
	if err != nil {
		return nil, closeAll, err
	}
	// Two cookies, so that the read-only case never reads what the
	// changing case is writing.
	if err := add(httpCase(RowHTTPOurs, oh, "/write", nil, true)); err != nil {
		return nil, closeAll, err
	}
	if err := add(httpCase(RowHTTPOursRead, oh, "/read", nil, true)); err != nil {
		return nil, closeAll, err
	}
	switch cfg.Store {
	case "redis":
		gh := peer(goredisstore.NewWithPrefix(b.rdb, b.prefix+"scs:"), data)
		if err := add(httpCase(RowHTTPScsGoRedis, gh, "/write", nil, true)); err != nil {
			return nil, closeAll, err
		}
		if err := add(httpCase(RowHTTPScsGoRedisRead, gh, "/read", nil, true)); err != nil {
			return nil, closeAll, err
		}
		n := new(redisCounter)
		pool := &redigo.Pool{
			MaxIdle:     cfg.Concurrency,
			IdleTimeout: time.Minute,
			Dial: func() (redigo.Conn, error) {
				c, err := redigo.DialURL(b.redisURL)
				if err != nil {
					return nil, err
				}
				return &countingConn{Conn: c, n: n}, nil
			},
		}
		closers = append(closers, func() { pool.Close() })
		rh := peer(scsredis.NewWithPrefix(pool, b.prefix+"scsredigo:"), data)
		if err := add(httpCase(RowHTTPScsRedigo, rh, "/write", n, true)); err != nil {
			return nil, closeAll, err
		}
	case "memory":
		// No cleanup goroutine: scs's StopCleanup races with the
		// goroutine's start (it reads a channel the goroutine assigns),
		// and a run is too short for expiry to matter.
		ms := scsmem.NewWithCleanupInterval(0)
		mh := peer(ms, data)
		if err := add(httpCase(RowHTTPScsMem, mh, "/write", nil, false)); err != nil {
			return nil, closeAll, err
		}
		if err := add(httpCase(RowHTTPScsMemRead, mh, "/read", nil, false)); err != nil {
			return nil, closeAll, err
		}
	}
	return cases, closeAll, nil
}

// countingConn counts the commands scs's redigo store sends (each Send of
// a MULTI block counts; the empty flush does not) and its round trips
// (each Do that sends or flushes something: redigo writes pending Sends
// when Do runs). A connection serves one goroutine at a time, so its
// fields need no lock.
type countingConn struct {
	redigo.Conn
	n       *redisCounter
	inMulti bool // between a sent MULTI and its EXEC or DISCARD
	pending bool // Sends not yet flushed
}

func (c *countingConn) count(cmd string) {
	switch strings.ToLower(cmd) {
	case "multi":
		c.n.add("multi", false)
		c.inMulti = true
	case "exec", "discard":
		c.n.add(strings.ToLower(cmd), false)
		c.inMulti = false
	default:
		c.n.add(strings.ToLower(cmd), c.inMulti)
	}
}

func (c *countingConn) Do(cmd string, args ...any) (any, error) {
	if cmd != "" {
		c.count(cmd)
	}
	if cmd != "" || c.pending {
		c.n.rts.Add(1)
	}
	c.pending = false
	return c.Conn.Do(cmd, args...)
}

func (c *countingConn) Send(cmd string, args ...any) error {
	c.count(cmd)
	c.pending = true
	return c.Conn.Send(cmd, args...)
}
