package browsertest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// chromiumPath is where Debian's chromium package puts the browser;
// CHROMIUM overrides it.
func chromiumPath(t *testing.T) string {
	path := os.Getenv("CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := os.Stat(path); err != nil {
		msg := fmt.Sprintf("no Chromium at %s (install Debian's chromium package, or set CHROMIUM): %v", path, err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip("skipping: " + msg)
	}
	return path
}

// buildApp builds examples/preferences from the repository once per test
// binary.
func buildApp(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "preferences")
	cmd := exec.Command("go", "build", "-o", bin, "./examples/preferences")
	cmd.Dir = filepath.Join("..", "..", "..") // the repository root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./examples/preferences: %v\n%s", err, out)
	}
	return bin
}

// app is a running examples/preferences process.
type app struct {
	cmd *exec.Cmd
	url string // http://127.0.0.1:port/
}

var listening = regexp.MustCompile(`listening on (http://\S+/)`)

// startApp runs the binary on a free loopback port with its sessions in
// stateDir, and waits until it listens.
func startApp(t *testing.T, bin, stateDir string) *app {
	t.Helper()
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0", "-state-dir", stateDir)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	a := &app{cmd: cmd}
	t.Cleanup(func() { a.stop(t) })
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			t.Logf("app: %s", sc.Text())
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	select {
	case a.url = <-found:
	case <-time.After(30 * time.Second):
		t.Fatal("the app did not say where it listens")
	}
	return a
}

// stop ends the app as a service manager does (SIGTERM: the server shuts
// down and the store closes) and waits for it.
func (a *app) stop(t *testing.T) {
	if a.cmd.ProcessState != nil {
		return
	}
	a.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- a.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("app exit: %v", err)
		}
	case <-time.After(15 * time.Second):
		a.cmd.Process.Kill()
		<-done
		t.Error("the app did not stop within 15 s of SIGTERM")
	}
}

// newBrowser starts headless Chromium with an empty profile and the flags
// this machine needs (no sandbox as root, no background connections to a
// network that is closed).
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(900, 1000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("starting Chromium: %v", err)
	}
	return ctx
}

// run runs the steps in the browser, failing the test with what on error.
func run(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// get runs one action that returns a value.
func get[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// waitFor waits until the JavaScript condition holds on the page, which may
// be navigating meanwhile (an evaluation interrupted by the navigation is
// tried again).
func waitFor(t *testing.T, ctx context.Context, cond string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](cond))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %v", cond, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cookies returns the browser's cookies for url.
func cookies(t *testing.T, ctx context.Context, url string) []*network.Cookie {
	t.Helper()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{url}})
	if err != nil {
		t.Fatalf("reading cookies: %v", err)
	}
	return res.Cookies
}

// pageState is what the test reads off the page.
type pageState struct {
	ThemeClass string // class of <html>
	Background string // computed background colour of <body>
	SignedIn   string // text of #signed-in, "" when signed out
	Theme      string // value of the theme select
}

func readPage(t *testing.T, ctx context.Context) pageState {
	t.Helper()
	run(t, ctx, "waiting for the page", chromedp.WaitReady(chromedp.CSS("#save")))
	return pageState{
		ThemeClass: get(t, ctx, "reading the theme class", chromedp.Evaluate[string](`document.documentElement.className`)),
		Background: get(t, ctx, "reading the background", chromedp.Evaluate[string](`getComputedStyle(document.body).backgroundColor`)),
		SignedIn:   get(t, ctx, "reading the account", chromedp.Evaluate[string](`(document.getElementById("signed-in") || {textContent: ""}).textContent`)),
		Theme:      get(t, ctx, "reading the theme field", chromedp.Value(chromedp.CSS("#theme"))),
	}
}

// TestCookieFlow drives the real page in headless Chromium: sign in,
// change a preference, reload, see a refused value with its message,
// restart the app on the same state folder, sign out; and a form posted
// from another site is refused.
func TestCookieFlow(t *testing.T) {
	ctx := newBrowser(t)
	bin := buildApp(t)
	state := t.TempDir()
	a := startApp(t, bin, state)

	run(t, ctx, "opening the page", chromedp.Navigate(a.url))
	p := readPage(t, ctx)
	if p.ThemeClass != "theme-light" || p.SignedIn != "" {
		t.Fatalf("first visit: %+v, want light and signed out", p)
	}
	if cs := cookies(t, ctx, a.url); len(cs) != 0 {
		t.Errorf("cookies after only reading the page: %d, want none", len(cs))
	}

	// Sign in.
	run(t, ctx, "signing in",
		chromedp.SendKeys(chromedp.CSS("#name"), "Ann"),
		chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#signed-in")),
	)
	cs := cookies(t, ctx, a.url)
	if len(cs) != 1 || cs[0].Name != "__Host-prefs" || !cs[0].HTTPOnly || !cs[0].Secure || cs[0].SameSite != network.CookieSameSiteLax || cs[0].Path != "/" || !cs[0].Session {
		t.Fatalf("cookies after sign-in: %+v, want one HttpOnly, Secure, SameSite=Lax browser-session cookie named __Host-prefs with Path /", cs)
	}
	token := cs[0].Value

	// Change a preference: the dark theme.
	run(t, ctx, "choosing dark",
		chromedp.SetValue(chromedp.CSS("#theme"), "dark"),
		chromedp.Click(chromedp.CSS("#save")),
		chromedp.WaitVisible(chromedp.CSS("#saved")),
	)
	p = readPage(t, ctx)
	if p.ThemeClass != "theme-dark" || p.Background != "rgb(20, 23, 28)" || p.Theme != "dark" {
		t.Fatalf("after choosing dark: %+v, want the dark page (background rgb(20, 23, 28))", p)
	}

	// Reload: the browser sends the cookie, the server finds the session;
	// the notice "Saved." was a flash, shown once.
	run(t, ctx, "reloading", chromedp.Reload())
	p = readPage(t, ctx)
	if p.ThemeClass != "theme-dark" || !strings.Contains(p.SignedIn, "Ann") {
		t.Fatalf("after reload: %+v, want dark and signed in as Ann", p)
	}
	if get(t, ctx, "looking for the notice", chromedp.Evaluate[bool](`document.getElementById("saved") !== null`)) {
		t.Error("the notice Saved. is shown again after a reload")
	}

	// A refused value: its message next to the field, the value kept in it.
	run(t, ctx, "sending 500 items per page",
		chromedp.SetValue(chromedp.CSS("#per_page"), "500"),
		chromedp.Click(chromedp.CSS("#save")),
		chromedp.WaitVisible(chromedp.CSS("#per_page-msg")),
	)
	msg := get(t, ctx, "reading the message", chromedp.Text(chromedp.CSS("#per_page-msg")))
	echoed := get(t, ctx, "reading the field", chromedp.Value(chromedp.CSS("#per_page")))
	if msg != "Enter a whole number from 5 to 100; 500 is too many." || echoed != "500" {
		t.Errorf("refused 500: message %q, field %q; want the plain-words message and 500 kept", msg, echoed)
	}

	// Restart the app on the same state folder (a new port: cookies do
	// not depend on the port): the session is still there.
	a.stop(t)
	a = startApp(t, bin, state)
	run(t, ctx, "opening the restarted app", chromedp.Navigate(a.url))
	p = readPage(t, ctx)
	if p.ThemeClass != "theme-dark" || !strings.Contains(p.SignedIn, "Ann") {
		t.Fatalf("after a restart: %+v, want dark and signed in as Ann", p)
	}

	// A form on another site (localhost is another site than 127.0.0.1)
	// that posts to the app: the browser says so in Sec-Fetch-Site and
	// the app refuses it.
	evil := evilSite(t, a.url)
	run(t, ctx, "posting from another site",
		chromedp.Navigate(evil),
		chromedp.WaitVisible(chromedp.CSS("#go")),
		chromedp.Click(chromedp.CSS("#go")),
	)
	// The form's answer replaces the page; wait until it is the app's.
	waitFor(t, ctx, `document.location.href.startsWith("`+a.url+`") && document.readyState === "complete"`)
	body := get(t, ctx, "reading the answer", chromedp.Evaluate[string](`document.body.innerText`))
	if !strings.Contains(body, "Refused: this form was sent from another site.") {
		t.Errorf("a form posted from another site got %q, want the refusal", body)
	}
	run(t, ctx, "opening the page again", chromedp.Navigate(a.url))
	if p = readPage(t, ctx); p.ThemeClass != "theme-dark" {
		t.Fatalf("after the cross-site post: %+v, want the theme unchanged (dark)", p)
	}

	// Sign out: the session is deleted and the cookie expired.
	run(t, ctx, "signing out",
		chromedp.Click(chromedp.CSS("#logout")),
		chromedp.WaitVisible(chromedp.CSS("#login")),
	)
	p = readPage(t, ctx)
	if p.ThemeClass != "theme-light" || p.SignedIn != "" {
		t.Fatalf("after sign-out: %+v, want light and signed out", p)
	}
	for _, c := range cookies(t, ctx, a.url) {
		if c.Name == "__Host-prefs" {
			t.Errorf("cookie prefs still set after sign-out (value changed: %v)", c.Value != token)
		}
	}
}

// evilSite serves, on localhost (another site than the app's 127.0.0.1),
// a page with a form that posts to the app and returns its URL.
func evilSite(t *testing.T, appURL string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><form method="post" action="%sprefs">
<input type="hidden" name="theme" value="light"><input type="hidden" name="language" value="en">
<input type="hidden" name="per_page" value="5"><button id="go">Win a prize</button></form>`, appURL)
	}), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return "http://localhost:" + port + "/"
}

// newDevice opens a tab in a browser context of its own (its own cookies:
// another device) in the browser of ctx.
func newDevice(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	dctx, cancel := chromedp.NewContext(ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(dctx); err != nil {
		t.Fatalf("opening a browser context: %v", err)
	}
	return dctx
}

// signIn signs the device in as name, ticking "remember me" or not.
func signIn(t *testing.T, ctx context.Context, url, name string, remember bool) {
	t.Helper()
	steps := []chromedp.Action[chromedp.Void]{
		chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.CSS("#login")),
		chromedp.SendKeys(chromedp.CSS("#name"), name),
	}
	if remember {
		steps = append(steps, chromedp.Click(chromedp.CSS("#remember")))
	}
	steps = append(steps, chromedp.Click(chromedp.CSS("#login")), chromedp.WaitVisible(chromedp.CSS("#signed-in")))
	run(t, ctx, "signing in as "+name, steps...)
}

// deviceCount returns the number of devices the devices page lists.
func deviceCount(t *testing.T, ctx context.Context) int {
	t.Helper()
	return get(t, ctx, "counting devices", chromedp.Evaluate[int](`document.querySelectorAll("li.device").length`))
}

// signedOut waits until the device's page at url shows the sign-in form.
func signedOut(t *testing.T, ctx context.Context, url, why string) {
	t.Helper()
	run(t, ctx, why, chromedp.Navigate(url), chromedp.WaitReady(chromedp.CSS("#save")))
	if p := readPage(t, ctx); p.SignedIn != "" {
		t.Errorf("%s: still %q", why, p.SignedIn)
	}
}

// TestTwoDevices walks "your devices" with two browser contexts, two
// devices of one user: sign in on both (one remembered: a persistent
// cookie; one not: a browser-session cookie), a notice after saving shown
// once, the devices page listing both, "sign out other devices" from the
// first ending the second, and "sign out everywhere" ending both.
func TestTwoDevices(t *testing.T) {
	browser := newBrowser(t)
	bin := buildApp(t)
	a := startApp(t, bin, t.TempDir())
	one, two := newDevice(t, browser), newDevice(t, browser)

	signIn(t, one, a.url, "Ann", true)
	signIn(t, two, a.url, "Ann", false)
	for _, d := range []struct {
		ctx      context.Context
		name     string
		remember bool
	}{{one, "one", true}, {two, "two", false}} {
		cs := cookies(t, d.ctx, a.url)
		if len(cs) != 1 || cs[0].Name != "__Host-prefs" {
			t.Fatalf("device %s: cookies %+v, want __Host-prefs", d.name, cs)
		}
		days := (cs[0].Expires - float64(time.Now().Unix())) / 86400
		if d.remember && (cs[0].Session || days < 29.9 || days > 30.1) {
			t.Errorf("device %s, remembered: cookie %+v expires in %.2f days, want a persistent cookie for 30 days", d.name, cs[0], days)
		}
		if !d.remember && !cs[0].Session {
			t.Errorf("device %s, not remembered: cookie %+v, want a browser-session cookie", d.name, cs[0])
		}
	}

	// A notice after saving, once.
	run(t, one, "saving the dark theme",
		chromedp.SetValue(chromedp.CSS("#theme"), "dark"),
		chromedp.Click(chromedp.CSS("#save")),
		chromedp.WaitVisible(chromedp.CSS("#saved")),
		chromedp.Reload(),
		chromedp.WaitReady(chromedp.CSS("#save")),
	)
	if get(t, one, "looking for the notice", chromedp.Evaluate[bool](`document.getElementById("saved") !== null`)) {
		t.Error("the notice Saved. is shown again after a reload")
	}

	// Your devices: both, this one marked, the browser's User-Agent.
	run(t, one, "opening your devices", chromedp.Click(chromedp.CSS("#devices")), chromedp.WaitVisible(chromedp.CSS("#device-list")))
	if n := deviceCount(t, one); n != 2 {
		t.Fatalf("your devices lists %d, want 2", n)
	}
	this := get(t, one, "reading this device", chromedp.Text(chromedp.CSS("#this-device")))
	if !strings.Contains(this, "This device") || !strings.Contains(this, "remembered") || !strings.Contains(this, "Chrome") {
		t.Errorf("this device's entry: %q, want it marked, remembered, with the browser's User-Agent", this)
	}

	// Sign out the other devices: the second is signed out.
	run(t, one, "signing out the other devices", chromedp.Click(chromedp.CSS("#end-others")), chromedp.WaitVisible(chromedp.CSS("#ended-others")))
	if n := deviceCount(t, one); n != 1 {
		t.Errorf("after signing out the others, your devices lists %d, want 1", n)
	}
	signedOut(t, two, a.url, "the second device after sign out other devices")
	run(t, one, "the first device's page", chromedp.Navigate(a.url), chromedp.WaitVisible(chromedp.CSS("#signed-in")))

	// Sign out everywhere: both.
	signIn(t, two, a.url, "Ann", false)
	run(t, one, "signing out everywhere",
		chromedp.Click(chromedp.CSS("#devices")),
		chromedp.WaitVisible(chromedp.CSS("#end-all")),
		chromedp.Click(chromedp.CSS("#end-all")),
		chromedp.WaitVisible(chromedp.CSS("#login")),
	)
	signedOut(t, two, a.url, "the second device after sign out everywhere")
	signedOut(t, one, a.url, "the first device after sign out everywhere")
	if cs := cookies(t, one, a.url); len(cs) != 0 {
		t.Errorf("the first device keeps cookies after signing out everywhere: %+v", cs)
	}
}
