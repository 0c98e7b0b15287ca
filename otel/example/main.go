// Command example exposes the session metrics of typedsession/otel to
// Prometheus: a small counter app whose sessions live in memory, with
// the OpenTelemetry SDK's Prometheus exporter serving /metrics.
//
//	go run . -addr 127.0.0.1:2112
//	curl -s 127.0.0.1:2112/hit?user=alice       # one session update
//	curl -s 127.0.0.1:2112/metrics | grep ^session_
//
// With -load the program also updates a few sessions every 100 ms, so that
// the metrics move on their own.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	session "github.com/typedsession/session"
	sessionotel "github.com/typedsession/session/otel"
	"github.com/typedsession/session/store/memstore"
)

// Visits is the session of the example: a counter per user.
type Visits struct {
	Hits int `json:"hits" validate:"gte=0"`
}

// app is the example's HTTP handler and the meter provider behind it.
type app struct {
	mux *http.ServeMux
	m   *session.Manager[Visits]
	mp  *sdkmetric.MeterProvider
	st  *memstore.Store
}

// newApp wires a Prometheus registry, the OTel Prometheus exporter, the
// session hook and a manager on a memory store.
func newApp() (*app, error) {
	reg := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, err
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	hook, err := sessionotel.NewHook(sessionotel.WithMeterProvider(mp))
	if err != nil {
		return nil, err
	}
	st, err := memstore.New(memstore.Options{})
	if err != nil {
		return nil, err
	}
	m, err := session.New(session.Config[Visits]{Store: st, Namespace: "visits", TTL: time.Hour, Hook: hook})
	if err != nil {
		st.Close()
		return nil, err
	}
	a := &app{mux: http.NewServeMux(), m: m, mp: mp, st: st}
	a.mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	a.mux.HandleFunc("GET /hit", func(w http.ResponseWriter, r *http.Request) {
		user := r.URL.Query().Get("user")
		if user == "" {
			http.Error(w, "give ?user=NAME", http.StatusBadRequest)
			return
		}
		v, err := m.Update(r.Context(), user, func(v *Visits) error { v.Hits++; return nil })
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "%s: %d hits\n", user, v.Hits)
	})
	return a, nil
}

func (a *app) close(ctx context.Context) error {
	return errors.Join(a.mp.Shutdown(ctx), a.st.Close())
}

func main() {
	addr := flag.String("addr", "127.0.0.1:2112", "address to serve /hit and /metrics on")
	load := flag.Bool("load", false, "update a few sessions every 100 ms")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	a, err := newApp()
	if err != nil {
		log.Fatal(err)
	}
	defer a.close(context.Background())
	if *load {
		go func() {
			for i := 0; ctx.Err() == nil; i++ {
				a.m.Update(ctx, fmt.Sprintf("user%d", i%5), func(v *Visits) error { v.Hits++; return nil })
				time.Sleep(100 * time.Millisecond)
			}
		}()
	}
	srv := &http.Server{Addr: *addr, Handler: a.mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Shutdown(context.Background())
	}()
	log.Printf("serving /hit?user=NAME and /metrics on http://%s", *addr)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
