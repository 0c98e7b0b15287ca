// Package webtest holds the tests of the web features of the middleware
// (absolute timeout, token rotation, remember-me, the index of devices and
// log out everywhere, flash, cookie attributes) as bodies that run on any
// store and through any framework: package middleware runs them on
// memstore and Redis through net/http, the sqlstore module on PostgreSQL
// and SQLite, the adapters through Echo, Gin and Fiber and examples/chi
// through chi, so that the core's tests import no SQL driver and no
// framework.
//
// A framework's test registers the routes of [Routes], each answered by
// [Serve] with the framework's own functions ([Framework]), and gives
// [Run] an [Env].
package webtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/store"
)

// Visit is the session type of the tests.
type Visit struct {
	Web   middleware.Web         `json:"web"`
	Flash middleware.Flash[Note] `json:"flash,omitempty"`
	N     int                    `json:"n"`
}

// Note is a flash message.
type Note struct {
	Text string `json:"text"`
}

// Namespaces of the sessions and of their index.
const (
	SessionNS = "visit"
	DevicesNS = "visit-devices"
)

// Framework is how a route reaches the session and the middleware's
// functions in one framework; C is the framework's request context
// (*http.Request, echo.Context, *gin.Context, *fiber.Ctx).
type Framework[C any] struct {
	From      func(c C) (*session.Session[Visit], error)
	Form      func(c C, name string) string // a query parameter
	Login     func(c C, user string, opts middleware.LoginOptions) error
	Renew     func(c C) error
	Destroy   func(c C) error
	List      func(c C) ([]middleware.Device, error)
	End       func(c C, id string) error
	EndOthers func(c C) error
	EndAll    func(c C) error
}

// Routes are the routes every framework's app serves, as "METHOD /path":
//
//	GET  /show          "user|id|n" of the session
//	POST /count         n++, answers n
//	POST /login         ?user=u&remember=1: Login
//	POST /renew         Renew
//	POST /logout        Destroy
//	POST /flash         ?text=t: adds a flash message, 303 to /flash
//	GET  /flash         takes the messages, answers their texts joined by ","
//	GET  /flash-fail    takes the messages, then fails with a 500
//	GET  /devices       the user's devices as JSON
//	POST /end           ?id=x: EndDevice
//	POST /end-others    EndOtherDevices
//	POST /end-all       EndAllDevices
var Routes = []string{
	"GET /show", "POST /count", "POST /login", "POST /renew", "POST /logout",
	"POST /flash", "GET /flash", "GET /flash-fail",
	"GET /devices", "POST /end", "POST /end-others", "POST /end-all",
}

// Reply is a route's answer: a status, a body, and for a redirect its
// Location.
type Reply struct {
	Status   int
	Body     string
	Location string
}

// Serve answers route (one of Routes) for the request c of framework fw.
func Serve[C any](fw Framework[C], route string, c C) Reply {
	fail := func(err error) Reply { return Reply{Status: http.StatusInternalServerError, Body: err.Error()} }
	ok := func(body string) Reply { return Reply{Status: http.StatusOK, Body: body} }
	var s *session.Session[Visit]
	switch route {
	case "GET /show", "POST /count", "POST /flash", "GET /flash", "GET /flash-fail":
		var err error
		if s, err = fw.From(c); err != nil {
			return fail(err)
		}
	}
	switch route {
	case "GET /show":
		return ok(fmt.Sprintf("%s|%s|%d", s.Data.Web.User, s.Data.Web.ID, s.Data.N))
	case "POST /count":
		s.Data.N++
		return ok(strconv.Itoa(s.Data.N))
	case "POST /login":
		if err := fw.Login(c, fw.Form(c, "user"), middleware.LoginOptions{Remember: fw.Form(c, "remember") == "1"}); err != nil {
			return fail(err)
		}
		return ok("ok")
	case "POST /renew":
		if err := fw.Renew(c); err != nil {
			return fail(err)
		}
		return ok("ok")
	case "POST /logout":
		if err := fw.Destroy(c); err != nil {
			return fail(err)
		}
		return ok("ok")
	case "POST /flash":
		s.Data.Flash.Add(Note{Text: fw.Form(c, "text")})
		return Reply{Status: http.StatusSeeOther, Location: "/flash"}
	case "GET /flash":
		var texts []string
		for _, n := range s.Data.Flash.Take() {
			texts = append(texts, n.Text)
		}
		return ok(strings.Join(texts, ","))
	case "GET /flash-fail":
		s.Data.Flash.Take()
		return Reply{Status: http.StatusInternalServerError, Body: "failed after taking the messages"}
	case "GET /devices":
		list, err := fw.List(c)
		if err != nil {
			return fail(err)
		}
		b, _ := json.Marshal(list)
		return ok(string(b))
	case "POST /end":
		if err := fw.End(c, fw.Form(c, "id")); err != nil {
			return fail(err)
		}
		return ok("ok")
	case "POST /end-others":
		if err := fw.EndOthers(c); err != nil {
			return fail(err)
		}
		return ok("ok")
	case "POST /end-all":
		if err := fw.EndAll(c); err != nil {
			return fail(err)
		}
		return ok("ok")
	}
	return Reply{Status: http.StatusNotFound, Body: "no route " + route}
}

// NetHTTP is the Framework of net/http (and chi).
var NetHTTP = Framework[*http.Request]{
	From:      func(r *http.Request) (*session.Session[Visit], error) { return session.From[Visit](r.Context()) },
	Form:      func(r *http.Request, name string) string { return r.URL.Query().Get(name) },
	Login:     middleware.Login[Visit],
	Renew:     middleware.Renew[Visit],
	Destroy:   middleware.Destroy[Visit],
	List:      middleware.ListDevices[Visit],
	End:       middleware.EndDevice[Visit],
	EndOthers: middleware.EndOtherDevices[Visit],
	EndAll:    middleware.EndAllDevices[Visit],
}

// Handler returns the net/http handler of route.
func Handler(route string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { Write(w, Serve(NetHTTP, route, r)) }
}

// Write writes a reply to a net/http response.
func Write(w http.ResponseWriter, rep Reply) {
	if rep.Location != "" {
		w.Header().Set("Location", rep.Location)
	}
	w.WriteHeader(rep.Status)
	fmt.Fprint(w, rep.Body)
}

// NetHTTPApp is the app on net/http: Routes on a ServeMux, wrapped in
// middleware.HTTP(m, opts).
func NetHTTPApp(m *session.Manager[Visit], opts middleware.HTTPOptions) http.Handler {
	mux := http.NewServeMux()
	for _, route := range Routes {
		mux.HandleFunc(route, Handler(route))
	}
	return middleware.HTTP(m, opts)(mux)
}

// Doer sends a request to one instance of an app and returns its
// response.
type Doer func(*http.Request) *http.Response

// Serving returns the Doer of a net/http handler.
func Serving(h http.Handler) Doer {
	return func(r *http.Request) *http.Response {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec.Result()
	}
}

// Env is what Run needs from a framework and a store.
type Env struct {
	// NewStore returns an empty store of its own for one test; the store
	// must have compare-and-swap.
	NewStore func(t testing.TB) store.Store
	// NewApp returns one instance of the app over m with opts: a
	// middleware value of its own, as one process of several would have.
	NewApp func(t testing.TB, m *session.Manager[Visit], opts middleware.HTTPOptions) Doer
}

// device is one browser: a cookie jar and a User-Agent.
type device struct {
	t     testing.TB
	name  string
	app   Doer
	mu    sync.Mutex
	jar   map[string]string
	agent string
}

func newDevice(t testing.TB, name string, app Doer) *device {
	return &device{t: t, name: name, app: app, jar: map[string]string{}, agent: "Browser/" + name}
}

// response is a response with its body read.
type response struct {
	*http.Response
	body string
}

// do sends one request with the device's cookies and keeps the cookies
// the response sets.
func (d *device) do(method, target string, params ...string) response {
	d.t.Helper()
	q := url.Values{}
	for i := 0; i+1 < len(params); i += 2 {
		q.Set(params[i], params[i+1])
	}
	u := "https://example.com" + target
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req := httptest.NewRequest(method, u, nil)
	req.Header.Set("User-Agent", d.agent)
	d.mu.Lock()
	for name, v := range d.jar {
		req.AddCookie(&http.Cookie{Name: name, Value: v})
	}
	d.mu.Unlock()
	res := d.app(req)
	b := new(strings.Builder)
	if res.Body != nil {
		buf := make([]byte, 4096)
		for {
			n, err := res.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		res.Body.Close()
	}
	d.mu.Lock()
	for _, c := range res.Cookies() {
		if c.MaxAge < 0 {
			delete(d.jar, c.Name)
		} else {
			d.jar[c.Name] = c.Value
		}
	}
	d.mu.Unlock()
	return response{Response: res, body: b.String()}
}

// token returns the device's session token ("" for none).
func (d *device) token() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.jar[CookieName]
}

// key returns the device's session key (its token's SHA-256 in hex, as
// middleware.HTTP documents), "" without a token.
func (d *device) key() string { return KeyOf(d.token()) }

// withToken returns a device that holds tok (an old token, say).
func (d *device) withToken(tok string) *device {
	o := newDevice(d.t, d.name+"-copy", d.app)
	o.jar[CookieName] = tok
	return o
}

// CookieName is the cookie's name with the default options.
const CookieName = "__Host-session"

// KeyOf returns the session key of a cookie token: its SHA-256 in hex.
func KeyOf(tok string) string {
	if tok == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// setCookie returns the session cookie the response set, or nil.
func setCookie(r response) *http.Cookie {
	for _, c := range r.Cookies() {
		if c.Name == CookieName {
			return c
		}
	}
	return nil
}

// indexDoc mirrors the stored index of a user's sessions, for the tests
// to read it and age its entries: its shape is the index's stored form.
type indexDoc struct {
	Gen      uint64       `json:"gen,omitempty"`
	Sessions []indexEntry `json:"sessions,omitempty"`
}

type indexEntry struct {
	ID       string    `json:"id"`
	Keys     []string  `json:"keys"`
	Created  time.Time `json:"created"`
	Seen     time.Time `json:"seen"`
	Until    time.Time `json:"until,omitzero"`
	Agent    string    `json:"agent,omitempty"`
	Remember bool      `json:"remember,omitempty"`
}

// bg is the context of the tests' own store calls.
var bg = context.Background()
