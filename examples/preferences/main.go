// Command preferences is a small web app that keeps each visitor's theme,
// language and page size in a typed cookie session on memstore.
//
//	go run ./examples/preferences -addr localhost:8080
//
// Open http://localhost:8080/ for the form, or use the JSON endpoint:
//
//	curl -c jar -b jar http://localhost:8080/api/prefs
//	curl -c jar -b jar -X PUT -d '{"theme":"dark"}' http://localhost:8080/api/prefs
//
// The session cookie is Secure; browsers accept it on http://localhost. For
// plain HTTP on another host (or curl, which keeps Secure cookies for
// https only), pass -insecure-cookie.
package main

import (
	"errors"
	"flag"
	"log"
	"net/http"
	"time"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/store/memstore"
)

func main() {
	addr := flag.String("addr", "localhost:8080", "address to listen on")
	insecure := flag.Bool("insecure-cookie", false, "send the session cookie over plain HTTP (development only)")
	flag.Parse()

	st, err := memstore.New(memstore.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	const idle = 30 * 24 * time.Hour
	m, err := session.New(session.Config[Prefs]{Store: st, Namespace: "prefs", TTL: idle, Initial: defaults})
	if err != nil {
		log.Fatal(err)
	}
	app := newApp(m, middleware.HTTPOptions{
		CookieName:   "prefs",
		CookieMaxAge: idle,
		Insecure:     *insecure,
	})
	srv := &http.Server{Addr: *addr, Handler: app, ReadHeaderTimeout: 10 * time.Second}
	log.Printf("preferences: listening on http://%s/", *addr)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
