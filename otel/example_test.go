package otel_test

import (
	"context"
	"fmt"
	"slices"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	session "github.com/typedsession/session"
	sessionotel "github.com/typedsession/session/otel"
	"github.com/typedsession/session/store/memstore"
)

func ExampleNewHook() {
	ctx := context.Background()
	// In an application: the SDK's meter provider with an exporter
	// (Prometheus, OTLP), usually set as the global one.
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(ctx)

	hook, err := sessionotel.NewHook(sessionotel.WithMeterProvider(mp))
	if err != nil {
		panic(err)
	}
	st, _ := memstore.New(memstore.Options{})
	defer st.Close()
	m, err := session.New(session.Config[Quiz]{Store: st, Namespace: "quiz", Hook: hook})
	if err != nil {
		panic(err)
	}
	m.Update(ctx, "42", func(q *Quiz) error { q.Score++; return nil })

	var rm metricdata.ResourceMetrics
	reader.Collect(ctx, &rm)
	var names []string
	for _, m := range rm.ScopeMetrics[0].Metrics {
		names = append(names, m.Name+" "+m.Unit)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Println(n)
	}
	// Output:
	// typedsession.operation.duration s
	// typedsession.operations {operation}
	// typedsession.size By
}
