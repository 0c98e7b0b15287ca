package otel_test

import (
	"context"
	"testing"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	session "github.com/typedsession/session"
	sessionotel "github.com/typedsession/session/otel"
	"github.com/typedsession/session/store/memstore"
)

// BenchmarkLoad measures a Load of a stored session on memstore without a
// hook, with the hook on no-op providers (OTel API present, no SDK), and
// with the hook on the SDK (a manual reader, spans sampled and dropped).
func BenchmarkLoad(b *testing.B) {
	noopHook, err := sessionotel.NewHook(sessionotel.WithTracerProvider(tracenoop.NewTracerProvider()), sessionotel.WithMeterProvider(metricnoop.NewMeterProvider()))
	if err != nil {
		b.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	defer tp.Shutdown(context.Background())
	defer mp.Shutdown(context.Background())
	sdkHook, err := sessionotel.NewHook(sessionotel.WithTracerProvider(tp), sessionotel.WithMeterProvider(mp))
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		hook func(context.Context, session.Event)
	}{{"no hook", nil}, {"empty hook", func(context.Context, session.Event) {}}, {"noop providers", noopHook}, {"sdk", sdkHook}} {
		b.Run(bc.name, func(b *testing.B) {
			st, _ := memstore.New(memstore.Options{})
			defer st.Close()
			m, err := session.New(session.Config[Quiz]{Store: st, Namespace: "quiz", Hook: bc.hook})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			m.Update(ctx, "u", func(q *Quiz) error { q.Score = 1; return nil })
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Load(ctx, "u"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
