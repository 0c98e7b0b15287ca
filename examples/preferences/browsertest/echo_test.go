package browsertest

import (
	"fmt"
	"html/template"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/labstack/echo/v4"

	session "github.com/typedsession/session"
	echosession "github.com/typedsession/session/adapters/echo"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/store/memstore"
)

// Visit is the session of the Echo app below.
type Visit struct {
	User  string `json:"user,omitempty"`
	Count int    `json:"count"`
}

var echoPage = template.Must(template.New("p").Parse(`<!doctype html><html><body>
<p id="user">{{.User}}</p><p id="count">{{.Count}}</p>
{{if .User}}<form method="post" action="/logout"><button id="logout">Sign out</button></form>
{{else}}<form method="post" action="/login"><input id="name" name="name"><button id="login">Sign in</button></form>{{end}}
<form method="post" action="/count"><button id="more">+1</button></form>
</body></html>`))

// newEchoApp is a small Echo v4 app on the echosession adapter: the
// cookie flow that Echo's own WrapMiddleware breaks (it drops the cookies
// that net/http middleware sets).
func newEchoApp(t *testing.T) *httptest.Server {
	st, err := memstore.New(memstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	m, err := session.New(session.Config[Visit]{Store: st, Namespace: "visit", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	e.Use(echosession.Middleware(m, middleware.HTTPOptions{}))
	show := func(c echo.Context) error {
		s, err := echosession.From[Visit](c)
		if err != nil {
			return err
		}
		var b strings.Builder
		if err := echoPage.Execute(&b, s.Data); err != nil {
			return err
		}
		return c.HTML(http.StatusOK, b.String())
	}
	e.GET("/", show)
	e.POST("/login", func(c echo.Context) error {
		s, err := echosession.From[Visit](c)
		if err != nil {
			return err
		}
		if err := echosession.Renew[Visit](c); err != nil {
			return err
		}
		s.Data.User = c.FormValue("name")
		return c.Redirect(http.StatusSeeOther, "/")
	})
	e.POST("/count", func(c echo.Context) error {
		s, err := echosession.From[Visit](c)
		if err != nil {
			return err
		}
		s.Data.Count++
		return c.Redirect(http.StatusSeeOther, "/")
	})
	e.POST("/logout", func(c echo.Context) error {
		if err := echosession.Destroy[Visit](c); err != nil {
			return err
		}
		return c.Redirect(http.StatusSeeOther, "/")
	})
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return srv
}

// TestEchoCookieFlow drives the Echo adapter in headless Chromium: sign in
// (a new token), count twice, reload, sign out (no cookie, a fresh
// session).
func TestEchoCookieFlow(t *testing.T) {
	ctx := newBrowser(t)
	srv := newEchoApp(t)
	url := srv.URL + "/"
	text := func(id string) string {
		return get(t, ctx, "reading #"+id, chromedp.Text(chromedp.CSS("#"+id)))
	}

	run(t, ctx, "opening the page", chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS("#login")))
	run(t, ctx, "counting before sign-in",
		chromedp.Click(chromedp.CSS("#more")),
		chromedp.WaitVisible(chromedp.CSS("#login")),
	)
	waitFor(t, ctx, `document.getElementById("count") && document.getElementById("count").textContent === "1"`)
	before := cookies(t, ctx, url)
	if len(before) != 1 {
		t.Fatalf("cookies after the first change: %+v, want one", before)
	}

	run(t, ctx, "signing in",
		chromedp.SendKeys(chromedp.CSS("#name"), "Ann"),
		chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#logout")),
	)
	after := cookies(t, ctx, url)
	if len(after) != 1 || after[0].Value == before[0].Value || !after[0].HTTPOnly {
		t.Fatalf("cookies after sign-in: %+v, want one HttpOnly cookie with a new token", after)
	}
	run(t, ctx, "counting", chromedp.Click(chromedp.CSS("#more")))
	waitFor(t, ctx, `document.getElementById("count") && document.getElementById("count").textContent === "2"`)

	run(t, ctx, "reloading", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#logout")))
	if u, c := text("user"), text("count"); u != "Ann" || c != "2" {
		t.Fatalf("after reload: user %q, count %q; want Ann, 2", u, c)
	}

	run(t, ctx, "signing out", chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#login")))
	if u, c := text("user"), text("count"); u != "" || c != "0" {
		t.Fatalf("after sign-out: user %q, count %q; want a fresh session", u, c)
	}
	if cs := cookies(t, ctx, url); len(cs) != 0 {
		t.Errorf("cookies after sign-out: %s, want none", fmt.Sprint(cs))
	}
}
