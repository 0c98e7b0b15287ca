// Command chi is a small web app on the chi router with typed cookie
// sessions: chi's middleware has net/http's shape, so the session
// middleware of github.com/typedsession/session/middleware plugs into
// r.Use as it is, with no adapter.
//
//	go run . -addr localhost:8080
//	curl -c jar -b jar http://localhost:8080/                       # (with -insecure-cookie)
//	curl -c jar -b jar -X POST 'http://localhost:8080/login?user=ann'
//	curl -c jar -b jar -X POST 'http://localhost:8080/notes?text=hello'
//	curl -c jar -b jar http://localhost:8080/notes
//	curl -c jar -b jar -X POST http://localhost:8080/logout
//
// Sessions live in memory and, with -snapshot FILE, survive a restart
// (memstore writes the file every minute and on exit). The cookie is
// Secure; browsers accept it on http://localhost. For plain HTTP on
// another host, or curl, pass -insecure-cookie.
package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"net/http"
	"os"
	"os/signal"
	"time"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/store/memstore"
)

func main() {
	addr := flag.String("addr", "localhost:8080", "address to listen on")
	snapshot := flag.String("snapshot", "", "file that keeps the sessions across restarts (empty: memory only)")
	insecure := flag.Bool("insecure-cookie", false, "send the session cookie over plain HTTP (development only)")
	flag.Parse()

	st, err := memstore.New(memstore.Options{BackupPath: *snapshot, BackupInterval: time.Minute})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	const idle = 7 * 24 * time.Hour
	m, err := session.New(session.Config[Visit]{Store: st, Namespace: "visit", TTL: idle})
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{
		Addr: *addr,
		Handler: newApp(m, middleware.HTTPOptions{
			CookieMaxAge: idle,
			Insecure:     *insecure,
			Options: middleware.Options{OnError: func(_ context.Context, op, _ string, err error) {
				log.Printf("session %s: %v", op, err)
			}},
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	log.Printf("chi example: listening on http://%s/", *addr)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
