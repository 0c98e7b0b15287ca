package otel_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/migrate"
	sessionotel "github.com/typedsession/session/otel"
	"github.com/typedsession/session/store/memstore"
)

type Quiz struct {
	Score int `json:"score"`
}

// rig is a hook on the SDK's in-memory span exporter and manual reader.
type rig struct {
	spans  *tracetest.InMemoryExporter
	reader *sdkmetric.ManualReader
	hook   func(context.Context, session.Event)
	st     *memstore.Store
}

func newRig(t *testing.T, opts ...sessionotel.Option) *rig {
	t.Helper()
	r := &rig{spans: tracetest.NewInMemoryExporter(), reader: sdkmetric.NewManualReader()}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(r.spans))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r.reader))
	t.Cleanup(func() { tp.Shutdown(context.Background()); mp.Shutdown(context.Background()) })
	hook, err := sessionotel.NewHook(append([]sessionotel.Option{sessionotel.WithTracerProvider(tp), sessionotel.WithMeterProvider(mp)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	r.hook = hook
	st, err := memstore.New(memstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r.st = st
	return r
}

func manager[T any](t *testing.T, r *rig, plan *migrate.Plan) *session.Manager[T] {
	t.Helper()
	m, err := session.New(session.Config[T]{Store: r.st, Namespace: "quiz", Migrations: plan, Hook: r.hook})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// span is what a test checks of a span.
type span struct {
	Name   string
	Attrs  string
	Status codes.Code
	Events int // recorded errors
}

func attrText(kvs []attribute.KeyValue) string {
	parts := make([]string, len(kvs))
	for i, kv := range kvs {
		parts[i] = string(kv.Key) + "=" + kv.Value.Emit()
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

// takeSpans returns the spans ended since the last call.
func (r *rig) takeSpans() []span {
	var out []span
	for _, s := range r.spans.GetSpans() {
		out = append(out, span{Name: s.Name, Attrs: attrText(s.Attributes), Status: s.Status.Code, Events: len(s.Events)})
	}
	r.spans.Reset()
	return out
}

// points returns every metric point as "name{attrs}" → value: the sum of a
// counter, the count and sum of a histogram (for durations, only the
// count).
func (r *rig) points(t *testing.T) map[string]string {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != sessionotel.ScopeName {
			t.Errorf("scope %q, want %q", sm.Scope.Name, sessionotel.ScopeName)
		}
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					out[m.Name+"{"+attrText(p.Attributes.ToSlice())+"}"] = fmt.Sprint(p.Value)
				}
			case metricdata.Histogram[int64]:
				for _, p := range d.DataPoints {
					out[m.Name+"{"+attrText(p.Attributes.ToSlice())+"}"] = fmt.Sprintf("count=%d sum=%d", p.Count, p.Sum)
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					out[m.Name+"{"+attrText(p.Attributes.ToSlice())+"}"] = fmt.Sprintf("count=%d", p.Count)
				}
			default:
				t.Errorf("metric %s: unexpected data %T", m.Name, m.Data)
			}
		}
	}
	return out
}

func TestScenarios(t *testing.T) {
	ctx := context.Background()
	plan2, err := migrate.New(migrate.Raw(1, func(map[string]any) error { return nil }))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("load of a new session", func(t *testing.T) {
		r := newRig(t)
		manager[Quiz](t, r, nil).Load(ctx, "u1")
		check(t, r, []span{
			{Name: "typedsession.load", Attrs: "typedsession.namespace=quiz typedsession.operation=load typedsession.outcome=new typedsession.stored_version=1 typedsession.version=1"},
		}, map[string]string{
			"typedsession.operation.duration{typedsession.namespace=quiz typedsession.operation=load typedsession.outcome=new}": "count=1",
			"typedsession.operations{typedsession.namespace=quiz typedsession.operation=load typedsession.outcome=new}":         "1",
		})
	})

	t.Run("load, changed save, unchanged save", func(t *testing.T) {
		r := newRig(t)
		m := manager[Quiz](t, r, nil)
		s, _ := m.Load(ctx, "u1")
		s.Data.Score = 1
		if err := m.Save(ctx, s); err != nil {
			t.Fatal(err)
		}
		if err := m.Save(ctx, s); err != nil {
			t.Fatal(err)
		}
		s, _ = m.Load(ctx, "u1")
		n := len(mustGet(t, r, "quiz:u1"))
		check(t, r, []span{
			{Name: "typedsession.load", Attrs: "typedsession.namespace=quiz typedsession.operation=load typedsession.outcome=new typedsession.stored_version=1 typedsession.version=1"},
			{Name: "typedsession.save", Attrs: fmt.Sprintf("typedsession.namespace=quiz typedsession.operation=save typedsession.outcome=written typedsession.size=%d typedsession.stored_version=1 typedsession.version=1", n)},
			{Name: "typedsession.save", Attrs: "typedsession.namespace=quiz typedsession.operation=save typedsession.outcome=unchanged typedsession.stored_version=1 typedsession.version=1"},
			{Name: "typedsession.load", Attrs: fmt.Sprintf("typedsession.namespace=quiz typedsession.operation=load typedsession.outcome=found typedsession.size=%d typedsession.stored_version=1 typedsession.version=1", n)},
		}, map[string]string{
			"typedsession.operation.duration{typedsession.namespace=quiz typedsession.operation=load typedsession.outcome=new}":       "count=1",
			"typedsession.operation.duration{typedsession.namespace=quiz typedsession.operation=load typedsession.outcome=found}":     "count=1",
			"typedsession.operation.duration{typedsession.namespace=quiz typedsession.operation=save typedsession.outcome=written}":   "count=1",
			"typedsession.operation.duration{typedsession.namespace=quiz typedsession.operation=save typedsession.outcome=unchanged}": "count=1",
			"typedsession.operations{typedsession.namespace=quiz typedsession.operation=load typedsession.outcome=new}":               "1",
			"typedsession.operations{typedsession.namespace=quiz typedsession.operation=load typedsession.outcome=found}":             "1",
			"typedsession.operations{typedsession.namespace=quiz typedsession.operation=save typedsession.outcome=written}":           "1",
			"typedsession.operations{typedsession.namespace=quiz typedsession.operation=save typedsession.outcome=unchanged}":         "1",
			"typedsession.size{typedsession.namespace=quiz typedsession.operation=save}":                                              fmt.Sprintf("count=1 sum=%d", n),
			"typedsession.size{typedsession.namespace=quiz typedsession.operation=load}":                                              fmt.Sprintf("count=1 sum=%d", n),
		})
	})

	t.Run("conflict with retry", func(t *testing.T) {
		r := newRig(t)
		m := manager[Quiz](t, r, nil)
		other, err := session.New(session.Config[Quiz]{Store: r.st, Namespace: "quiz"}) // no hook
		if err != nil {
			t.Fatal(err)
		}
		calls := 0
		_, err = m.Update(ctx, "u1", func(q *Quiz) error {
			calls++
			if calls == 1 { // another writer saves in between: the first swap conflicts
				if _, err := other.Update(ctx, "u1", func(q *Quiz) error { q.Score = 10; return nil }); err != nil {
					return err
				}
			}
			q.Score++
			return nil
		})
		if err != nil || calls != 2 {
			t.Fatalf("Update: %v after %d calls, want a retry", err, calls)
		}
		n := len(mustGet(t, r, "quiz:u1"))
		check(t, r, []span{
			{Name: "typedsession.update", Attrs: fmt.Sprintf("typedsession.attempts=2 typedsession.conflicts=1 typedsession.namespace=quiz typedsession.operation=update typedsession.outcome=written typedsession.size=%d typedsession.stored_version=1 typedsession.version=1", n)},
		}, map[string]string{
			"typedsession.operation.duration{typedsession.namespace=quiz typedsession.operation=update typedsession.outcome=written}": "count=1",
			"typedsession.operations{typedsession.namespace=quiz typedsession.operation=update typedsession.outcome=written}":         "1",
			"typedsession.conflicts{typedsession.namespace=quiz typedsession.operation=update}":                                       "1",
			"typedsession.retries{typedsession.namespace=quiz typedsession.operation=update}":                                         "1",
			"typedsession.size{typedsession.namespace=quiz typedsession.operation=update}":                                            fmt.Sprintf("count=1 sum=%d", n),
		})
	})

	t.Run("conflict returned by save", func(t *testing.T) {
		r := newRig(t)
		m := manager[Quiz](t, r, nil)
		a, _ := m.Load(ctx, "u1")
		b, _ := m.Load(ctx, "u1")
		b.Data.Score = 2
		m.Save(ctx, b)
		a.Data.Score = 1
		if err := m.Save(ctx, a); err == nil {
			t.Fatal("the second save did not conflict")
		}
		spans := r.takeSpans()
		last := spans[len(spans)-1]
		if last.Status != codes.Error || last.Events != 1 || !strings.Contains(last.Attrs, "error.type=conflict") || !strings.Contains(last.Attrs, "typedsession.outcome=conflict") {
			t.Errorf("span of the conflicting save: %+v", last)
		}
		p := r.points(t)
		if p["typedsession.conflicts{typedsession.namespace=quiz typedsession.operation=save}"] != "1" ||
			p["typedsession.operations{error.type=conflict typedsession.namespace=quiz typedsession.operation=save typedsession.outcome=conflict}"] != "1" {
			t.Errorf("points: %v", p)
		}
	})

	t.Run("migration", func(t *testing.T) {
		r := newRig(t)
		v1 := manager[Quiz](t, r, nil)
		if _, err := v1.Update(ctx, "u1", func(q *Quiz) error { q.Score = 3; return nil }); err != nil {
			t.Fatal(err)
		}
		r.takeSpans()
		r.points(t)
		r2 := newRig(t) // fresh instruments, same store
		r2.st = r.st
		v2 := manager[Quiz](t, r2, plan2)
		s, err := v2.Load(ctx, "u1")
		if err != nil {
			t.Fatal(err)
		}
		s.Data.Score = 4
		if err := v2.Save(ctx, s); err != nil {
			t.Fatal(err)
		}
		n := len(mustGet(t, r2, "quiz:u1"))
		spans := r2.takeSpans()
		if len(spans) != 2 || !strings.Contains(spans[0].Attrs, "typedsession.stored_version=1 typedsession.version=2") ||
			spans[1].Attrs != fmt.Sprintf("typedsession.namespace=quiz typedsession.operation=save typedsession.outcome=written typedsession.size=%d typedsession.stored_version=1 typedsession.version=2", n) {
			t.Errorf("spans: %+v", spans)
		}
		p := r2.points(t)
		for _, k := range []string{
			"typedsession.migrations{typedsession.namespace=quiz typedsession.operation=load typedsession.stored_version=1 typedsession.version=2}",
			"typedsession.migrations{typedsession.namespace=quiz typedsession.operation=save typedsession.stored_version=1 typedsession.version=2}",
		} {
			if p[k] != "1" {
				t.Errorf("%s = %q, want 1; points: %v", k, p[k], p)
			}
		}
	})

	t.Run("corrupt value", func(t *testing.T) {
		r := newRig(t)
		r.st.Set(ctx, "quiz:bad", []byte(`{"typedsession":1,"data":{"score":"x"}}`), 0)
		if _, err := manager[Quiz](t, r, nil).Load(ctx, "bad"); err == nil {
			t.Fatal("no error")
		}
		check(t, r, []span{
			{Name: "typedsession.load", Attrs: "error.type=corrupt typedsession.namespace=quiz typedsession.operation=load typedsession.outcome=error typedsession.stored_version=0 typedsession.version=0", Status: codes.Error, Events: 1},
		}, map[string]string{
			"typedsession.operation.duration{error.type=corrupt typedsession.namespace=quiz typedsession.operation=load typedsession.outcome=error}": "count=1",
			"typedsession.operations{error.type=corrupt typedsession.namespace=quiz typedsession.operation=load typedsession.outcome=error}":         "1",
		})
	})

	t.Run("keys only on spans, only with WithKeys", func(t *testing.T) {
		r := newRig(t, sessionotel.WithKeys())
		// Without Config.LogKeys the manager hands the hook no key.
		manager[Quiz](t, r, nil).Load(ctx, "user-42")
		if spans := r.takeSpans(); len(spans) != 1 || strings.Contains(spans[0].Attrs, "typedsession.key") {
			t.Errorf("spans with WithKeys, without Config.LogKeys: %+v", spans)
		}
		m, err := session.New(session.Config[Quiz]{Store: r.st, Namespace: "quiz", Hook: r.hook, LogKeys: true})
		if err != nil {
			t.Fatal(err)
		}
		m.Load(ctx, "user-42")
		spans := r.takeSpans()
		if len(spans) != 1 || !strings.Contains(spans[0].Attrs, "typedsession.key=user-42") {
			t.Errorf("spans with WithKeys and Config.LogKeys: %+v", spans)
		}
		for k := range r.points(t) {
			if strings.Contains(k, "user-42") {
				t.Errorf("a metric carries the key: %s", k)
			}
		}
	})
}

func mustGet(t *testing.T, r *rig, key string) []byte {
	t.Helper()
	b, err := r.st.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func check(t *testing.T, r *rig, spans []span, points map[string]string) {
	t.Helper()
	if diff := cmp.Diff(spans, r.takeSpans()); diff != "" {
		t.Errorf("spans (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(points, r.points(t)); diff != "" {
		t.Errorf("metric points (-want +got):\n%s", diff)
	}
}
