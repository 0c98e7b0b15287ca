package middleware

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/internal/hijacktest"
	"github.com/typedsession/session/store/memstore"
)

// hijackApp serves, under the HTTP middleware for counter:
//
//	/inc     adds one and answers with the count
//	/count   answers with the count
//	/sse     adds one, flushes (an event stream starts), adds one more
//	         (never saved), and keeps the stream open
//	/ws      adds one, then takes the connection over (as a WebSocket
//	         upgrade does): it answers 101 itself, with the headers of
//	         w.Header(), reports what session.From says after the hijack,
//	         adds one more to the session it holds (never saved), and
//	         keeps the connection until the client closes it.
//
// ws101, when set, writes the 101 status before the hijack, as
// coder/websocket's Accept does; conflict makes another writer change the
// session before the hijack, so that the commit fails.
type hijackApp struct {
	m        *session.Manager[counter]
	ws101    bool
	conflict bool
	after    chan error // session.From's error after the hijack, or the hijack's
}

func (a *hijackApp) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/inc", func(w http.ResponseWriter, r *http.Request) {
		s, err := session.From[counter](r.Context())
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		s.Data.N++
		fmt.Fprint(w, s.Data.N)
	})
	mux.HandleFunc("/count", func(w http.ResponseWriter, r *http.Request) {
		s, err := session.From[counter](r.Context())
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprint(w, s.Data.N)
	})
	mux.HandleFunc("/sse", func(w http.ResponseWriter, r *http.Request) {
		s, err := session.From[counter](r.Context())
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		s.Data.N++
		w.Header().Set("Content-Type", "text/event-stream")
		http.NewResponseController(w).Flush() // the stream starts: committed here
		s.Data.N++                            // too late: not saved
		fmt.Fprint(w, "data: started\n\n")
		http.NewResponseController(w).Flush()
		<-r.Context().Done() // an event stream that stays open
	})
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		s, err := session.From[counter](r.Context())
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		s.Data.N++
		if a.conflict {
			key, _ := KeyFrom[counter](r.Context())
			a.m.Update(r.Context(), key, func(c *counter) error { c.Note = "elsewhere"; return nil })
		}
		if a.ws101 {
			w.WriteHeader(http.StatusSwitchingProtocols)
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			a.after <- err
			return
		}
		defer conn.Close()
		if !a.ws101 {
			brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: test\r\n")
			for k, vs := range w.Header() { // as gorilla/websocket writes its response header: after the hijack
				for _, v := range vs {
					fmt.Fprintf(brw, "%s: %s\r\n", k, v)
				}
			}
			brw.WriteString("\r\n")
			brw.Flush()
		}
		_, err = session.From[counter](r.Context())
		s.Data.N++ // too late: committed at the hijack
		a.after <- err
		io.Copy(io.Discard, brw) // until the client closes the connection
	})
	return HTTP(a.m, HTTPOptions{Insecure: true})(mux)
}

// newHijackServer serves app on a real listener.
func newHijackServer(t *testing.T, app *hijackApp) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(app.handler())
	t.Cleanup(srv.Close)
	return srv
}

func newHijackApp(t *testing.T) *hijackApp {
	t.Helper()
	st, err := memstore.New(memstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &hijackApp{m: newManager[counter](t, st, "c"), after: make(chan error, 2)}
}

// TestHijackCommits (issue 23): a handler that takes the connection over
// (http.NewResponseController(w).Hijack(), a WebSocket upgrade) kept the
// user's session lock for the whole connection, so a plain request with
// the same cookie waited until the socket closed (it timed out after 20 s
// here). A hijack starts the response: the session is committed there
// (the change made before it saved, the lock released); the connection has
// no session after it (session.From reports ErrNoSession, later changes
// are not saved). A plain request is answered while the socket is still
// open, with the count the upgrade committed. The same check runs against
// the Echo, Gin and Fiber adapters (internal/hijacktest).
func TestHijackCommits(t *testing.T) {
	for _, ws101 := range []bool{false, true} {
		t.Run(map[bool]string{false: "hijack", true: "status 101 first"}[ws101], func(t *testing.T) {
			app := newHijackApp(t)
			app.ws101 = ws101
			srv := newHijackServer(t, app)
			hijacktest.Run(t, srv.URL)
			if err := <-app.after; !errors.Is(err, session.ErrNoSession) {
				t.Errorf("session.From after the hijack = %v, want ErrNoSession", err)
			}
		})
	}
}

// TestStreamCommitsAtFirstFlush: a long-lived streamed response (server-sent
// events) is committed at its first flush, like any response: the user's
// lock is free while the stream stays open, and a plain request sees the
// change made before the flush, not the one after.
func TestStreamCommitsAtFirstFlush(t *testing.T) {
	app := newHijackApp(t)
	srv := newHijackServer(t, app)
	_, cookie := hijacktest.Get(t, srv.URL, "/inc", "")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/sse", nil)
	req.Header.Set("Cookie", cookie)
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	line, err := bufio.NewReader(res.Body).ReadString('\n')
	if err != nil || line != "data: started\n" {
		t.Fatalf("first line of the stream = %q, %v", line, err)
	}
	if body, _ := hijacktest.Get(t, srv.URL, "/count", cookie); body != "2" {
		t.Errorf("/count while the stream is open = %q, want 2", body)
	}
}

// TestHijackNewSessionCookie: a new visitor's first request is an upgrade;
// the session it stores at the hijack gets its cookie in w.Header() at the
// hijack, which a handshake that writes w.Header() sends.
func TestHijackNewSessionCookie(t *testing.T) {
	app := newHijackApp(t)
	srv := newHijackServer(t, app)
	conn, up := hijacktest.Upgrade(t, srv.URL, "")
	<-app.after
	cookie := hijacktest.SetCookie(up)
	if body, _ := hijacktest.Get(t, srv.URL, "/count", cookie); cookie == "" || body != "1" {
		t.Errorf("/count with the cookie %q of the upgrade = %q, want 1", cookie, body)
	}
	conn.Close()
}

// TestHijackCommitFails: when the commit at the hijack fails (another
// writer changed the session since the load: session.ErrConflict), Hijack
// returns the error, the client gets a 500, and nothing is saved.
func TestHijackCommitFails(t *testing.T) {
	app := newHijackApp(t)
	srv := newHijackServer(t, app)
	_, cookie := hijacktest.Get(t, srv.URL, "/inc", "")
	app.conflict = true
	_, up := hijacktest.Upgrade(t, srv.URL, cookie)
	if err := <-app.after; !errors.Is(err, errCommitFailed) || !errors.Is(err, session.ErrConflict) {
		t.Errorf("Hijack = %v, want an error matching errCommitFailed and session.ErrConflict", err)
	}
	if up.StatusCode != http.StatusInternalServerError {
		t.Errorf("/ws answered %s, want 500", up.Status)
	}
	if body, _ := hijacktest.Get(t, srv.URL, "/count", cookie); body != "1" {
		t.Errorf("/count = %q, want 1: the failed upgrade's change must not be saved", body)
	}
}

// TestHijackBuffered: in buffered mode a hijack commits too, and the
// status the handler wrote (101) goes out before the connection is handed
// over.
func TestHijackBuffered(t *testing.T) {
	st, err := memstore.New(memstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	m := newManager[counter](t, st, "c")
	h := HTTP(m, HTTPOptions{Insecure: true, Buffered: true})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := session.From[counter](r.Context())
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		if r.URL.Path == "/count" {
			fmt.Fprint(w, s.Data.N)
			return
		}
		s.Data.N++
		if r.URL.Path != "/ws" {
			fmt.Fprint(w, s.Data.N)
			return
		}
		w.WriteHeader(http.StatusSwitchingProtocols)
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		s.Data.N++
		io.Copy(io.Discard, brw)
	}))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	hijacktest.Run(t, srv.URL)
}

// TestHijackerInterface: the writer the handler gets is an http.Hijacker,
// for libraries that assert it (gorilla/websocket before v1.5.1 did).
func TestHijackerInterface(t *testing.T) {
	var w http.ResponseWriter = &responseWriter{}
	if _, ok := w.(http.Hijacker); !ok {
		t.Error("the middleware's writer is not an http.Hijacker")
	}
}

// TestHijackNotSupported: where the connection cannot be taken over
// (HTTP/2, a recorder), Hijack fails before committing anything, so that
// the handler's answer still decides what is saved.
func TestHijackNotSupported(t *testing.T) {
	app := newHijackApp(t)
	rec := httptest.NewRecorder()
	app.handler().ServeHTTP(rec, httptest.NewRequest("GET", "/ws", nil))
	if err := <-app.after; !errors.Is(err, http.ErrNotSupported) {
		t.Errorf("Hijack on a recorder = %v, want http.ErrNotSupported", err)
	}
	// The handler returned without answering: committed then, as any
	// response, its change saved under a new cookie.
	if rec.Code != http.StatusOK || sessionCookie(rec.Result()) == nil {
		t.Errorf("status %d, want 200 with the session's cookie", rec.Code)
	}
}
