package redisstore_test

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	session "github.com/typedsession/session"
)

// The manager benchmarks put the session Manager over Redis beside the
// code a handler would write by hand for the same job: GET, json.Unmarshal,
// change a field, json.Marshal, SET EX. Each uses its own client from
// newClient (the same options for all), the same session value (about 500
// bytes of JSON) and a one-hour TTL, and reports the Redis commands it sent
// per operation (cmds/op), counted by a go-redis hook. They need REDIS_URL
// (default redis://127.0.0.1:6379/0) and skip without it.

// benchProfile is the session of the manager benchmarks: a bot user's
// profile, a dialogue state and a small cart. Its JSON is about 500 bytes
// (checked by newBenchProfile); validate tags make the Manager do what it
// does for a real session type.
type benchProfile struct {
	UserID   int64       `json:"user_id" validate:"gt=0"`
	Name     string      `json:"name" validate:"max=64"`
	Language string      `json:"language" validate:"len=2"`
	Step     string      `json:"step"`
	Visits   int         `json:"visits" validate:"gte=0"`
	Tags     []string    `json:"tags" validate:"max=20"`
	Cart     []benchItem `json:"cart" validate:"max=50,dive"`
	Notes    string      `json:"notes" validate:"max=200"`
}

type benchItem struct {
	SKU      string `json:"sku" validate:"required"`
	Quantity int    `json:"quantity" validate:"gte=1"`
	Cents    int64  `json:"cents" validate:"gte=0"`
}

func newBenchProfile(b *testing.B) benchProfile {
	b.Helper()
	p := benchProfile{
		UserID:   1234567890123,
		Name:     "Ada Lovelace",
		Language: "en",
		Step:     "checkout:confirm-address",
		Visits:   42,
		Tags:     []string{"beta", "newsletter", "premium", "eu", "mobile"},
		Notes:    "Prefers delivery after 6 pm; leave parcels with the concierge on the ground floor.",
	}
	for i := range 4 {
		p.Cart = append(p.Cart, benchItem{SKU: "SKU-2024-000" + strconv.Itoa(i+1) + "-BLUE-XL", Quantity: i + 1, Cents: 1999 + int64(i)*100})
	}
	data, err := json.Marshal(p)
	if err != nil {
		b.Fatal(err)
	}
	if n := len(data); n < 475 || n > 525 {
		b.Fatalf("benchProfile's JSON is %d bytes, want about 500", n)
	}
	return p
}

// benchManagerSetup returns a client with a command counter, a manager of
// benchProfile on a fresh prefix of that client with a one-hour TTL, the
// Redis key of session "u" ("bench:u" under the prefix), and the session
// already stored.
func benchManagerSetup(b *testing.B) (*redis.Client, *cmdCounter, *session.Manager[benchProfile], string) {
	b.Helper()
	st, prefix, client := benchStore(b)
	m, err := session.New(session.Config[benchProfile]{Store: st, Namespace: "bench", TTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	p := newBenchProfile(b)
	// Twice, so the compare-and-swap script is in the server's cache.
	for range 2 {
		if _, err := m.Update(ctx, "u", func(q *benchProfile) error { *q = p; q.Visits++; return nil }); err != nil {
			b.Fatal(err)
		}
	}
	return client, countCommands(client), m, prefix + "bench:u"
}

// reportCommands reports the commands counted since before, per operation.
func reportCommands(b *testing.B, counter *cmdCounter, before int64, ops int) {
	b.Helper()
	if ops > 0 {
		b.ReportMetric(float64(counter.n.Load()-before)/float64(ops), "cmds/op")
	}
}

// BenchmarkBaselineHandWritten is what a handler does without the library:
// GET, json.Unmarshal, change a field, json.Marshal, SET EX.
func BenchmarkBaselineHandWritten(b *testing.B) {
	client, counter, _, key := benchManagerSetup(b)
	ctx := b.Context()
	data, err := json.Marshal(newBenchProfile(b))
	if err != nil {
		b.Fatal(err)
	}
	if err := client.Set(ctx, key, data, time.Hour).Err(); err != nil {
		b.Fatal(err)
	}
	ops, before := 0, counter.n.Load()
	b.ReportAllocs()
	for b.Loop() {
		raw, err := client.Get(ctx, key).Bytes()
		if err != nil {
			b.Fatal(err)
		}
		var p benchProfile
		if err := json.Unmarshal(raw, &p); err != nil {
			b.Fatal(err)
		}
		p.Visits++
		out, err := json.Marshal(&p)
		if err != nil {
			b.Fatal(err)
		}
		if err := client.Set(ctx, key, out, time.Hour).Err(); err != nil {
			b.Fatal(err)
		}
		ops++
	}
	reportCommands(b, counter, before, ops)
}

// BenchmarkManagerLoadSaveChanged is Load (GETEX), a change and Save
// (compare-and-swap script): decode, validation and encoding included.
func BenchmarkManagerLoadSaveChanged(b *testing.B) {
	_, counter, m, _ := benchManagerSetup(b)
	ctx := b.Context()
	ops, before := 0, counter.n.Load()
	b.ReportAllocs()
	for b.Loop() {
		s, err := m.Load(ctx, "u")
		if err != nil {
			b.Fatal(err)
		}
		s.Data.Visits++
		if err := m.Save(ctx, s); err != nil {
			b.Fatal(err)
		}
		ops++
	}
	reportCommands(b, counter, before, ops)
}

// BenchmarkManagerLoadSaveUnchanged is Load and Save of a session the
// handler did not change: the GETEX of Load refreshes the TTL and Save
// writes nothing.
func BenchmarkManagerLoadSaveUnchanged(b *testing.B) {
	_, counter, m, _ := benchManagerSetup(b)
	ctx := b.Context()
	ops, before := 0, counter.n.Load()
	b.ReportAllocs()
	for b.Loop() {
		s, err := m.Load(ctx, "u")
		if err != nil {
			b.Fatal(err)
		}
		if err := m.Save(ctx, s); err != nil {
			b.Fatal(err)
		}
		ops++
	}
	reportCommands(b, counter, before, ops)
}

// BenchmarkManagerUpdate is Manager.Update without contention.
func BenchmarkManagerUpdate(b *testing.B) {
	_, counter, m, _ := benchManagerSetup(b)
	ctx := b.Context()
	ops, before := 0, counter.n.Load()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Update(ctx, "u", func(p *benchProfile) error { p.Visits++; return nil }); err != nil {
			b.Fatal(err)
		}
		ops++
	}
	reportCommands(b, counter, before, ops)
}
