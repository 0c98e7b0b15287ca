// Command preferences is a small web app that keeps each visitor's name,
// theme, language and page size in a typed cookie session. Sessions are
// files in a state folder, so they survive a restart.
//
//	go run ./examples/preferences
//	go run ./examples/preferences -addr localhost:8080 -state-dir /var/lib/preferences
//
// Open http://localhost:8080/ for the page, or use the JSON endpoint:
//
//	curl -c jar -b jar http://localhost:8080/api/prefs
//	curl -c jar -b jar -X PUT -d '{"theme":"dark"}' http://localhost:8080/api/prefs
//
// The sessions live in -state-dir, by default typedsession-preferences in
// $XDG_STATE_HOME (~/.local/state when unset). The session cookie is
// Secure; browsers accept it on http://localhost. For plain HTTP on another
// host (or curl, which keeps Secure cookies for https only), pass
// -insecure-cookie.
//
// Signing in ("remember me" or not), the notice after saving, the page
// of your devices with "sign out other devices", and the session's
// lifetimes are the web features of the session middleware; see options.
// The forms are protected against cross-site requests by the standard
// library's http.CrossOriginProtection (see newApp).
package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/store/filestore"
)

// idle is how long a session lives without a visit (the idle timeout).
const idle = 30 * 24 * time.Hour

func main() {
	addr := flag.String("addr", "localhost:8080", "address to listen on (port 0: any free port)")
	stateDir := flag.String("state-dir", defaultStateDir(), "folder that keeps the sessions across restarts")
	insecure := flag.Bool("insecure-cookie", false, "send the session cookie over plain HTTP (development only)")
	flag.Parse()

	st, m, devices, err := openSessions(*stateDir)
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	opts := options(devices)
	opts.Insecure = *insecure
	app := newApp(m, opts)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: app, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	log.Printf("preferences: listening on http://%s/ (sessions in %s)", ln.Addr(), *stateDir)
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

// options are the session middleware's options: the cookie "prefs"
// (sent as __Host-prefs over HTTPS), a browser-session cookie unless the
// visitor asks to be remembered (30 days), sessions that end 12 hours
// after they began (OWASP's absolute timeout) and get a new token every
// 15 minutes, the index of each user's devices, and Clear-Site-Data when
// a session is signed out.
func options(devices *middleware.Devices) middleware.HTTPOptions {
	return middleware.HTTPOptions{
		CookieName:      "prefs",
		AbsoluteTimeout: 12 * time.Hour,
		RememberFor:     30 * 24 * time.Hour,
		RenewalTimeout:  15 * time.Minute,
		Devices:         devices,
		ClearSiteData:   []string{"cache", "storage"},
	}
}

// openSessions opens the file store in dir (creating it), the session
// manager on it, and the index of each user's sessions.
func openSessions(dir string) (*filestore.Store, *session.Manager[Visitor], *middleware.Devices, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, nil, err
	}
	st, err := filestore.New(dir, filestore.Options{})
	if err != nil {
		return nil, nil, nil, err
	}
	m, err := session.New(session.Config[Visitor]{Store: st, Namespace: "prefs", TTL: idle, Initial: defaults})
	if err == nil {
		var d *middleware.Devices
		if d, err = middleware.NewDevices(m, middleware.DevicesOptions{Store: st, Namespace: "prefs-devices", UserAgent: true}); err == nil {
			return st, m, d, nil
		}
	}
	st.Close()
	return nil, nil, nil, err
}

// defaultStateDir is typedsession-preferences in $XDG_STATE_HOME, or in
// ~/.local/state, or in the temporary folder when there is no home.
func defaultStateDir() string {
	base := os.Getenv("XDG_STATE_HOME")
	if base == "" {
		if home, err := os.UserHomeDir(); err == nil {
			base = filepath.Join(home, ".local", "state")
		} else {
			base = os.TempDir()
		}
	}
	return filepath.Join(base, "typedsession-preferences")
}
