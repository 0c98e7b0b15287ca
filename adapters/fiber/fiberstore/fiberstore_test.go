package fiberstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	fiberredis "github.com/gofiber/storage/redis/v3"
	"github.com/google/go-cmp/cmp"

	"github.com/typedsession/session/adapters/fiber/fiberstore"
	"github.com/typedsession/session/internal/testenv"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/storetest"
)

// v2Only hides the context methods of a driver: the Store then takes the
// plain Fiber v2 path.
type v2Only struct{ fiber.Storage }

// TestConformance runs the store suite over Fiber's Redis driver on the
// Redis server of the tests, through the driver's context methods and
// through the plain Fiber v2 methods.
func TestConformance(t *testing.T) {
	rc := testenv.Redis(t)
	drv := fiberredis.NewFromConnection(rc) // not closed: that would close rc
	for _, tc := range []struct {
		name string
		s    fiber.Storage
	}{
		{"context", drv},
		{"v2", v2Only{drv}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) store.Store {
				prefix := testenv.Prefix(t, "fiberstore")
				testenv.CleanupPrefix(t, rc, prefix)
				return fiberstore.New(tc.s, fiberstore.Options{Prefix: prefix})
			})
		})
	}
}

// TestStoredForm: a value that does not start with NUL is stored as it is
// (a session stays readable in the storage); an empty value, or one that
// starts with NUL, gets one NUL byte in front, because the driver skips
// empty values and reads a missing key as nil.
func TestStoredForm(t *testing.T) {
	rc := testenv.Redis(t)
	prefix := testenv.Prefix(t, "fiberstore")
	testenv.CleanupPrefix(t, rc, prefix)
	st := fiberstore.New(fiberredis.NewFromConnection(rc), fiberstore.Options{Prefix: prefix})
	ctx := context.Background()
	for _, tc := range []struct {
		name          string
		value, stored string
	}{
		{"json", `{"typedsession":1}`, `{"typedsession":1}`},
		{"empty", "", "\x00"},
		{"nul first", "\x00a", "\x00\x00a"},
	} {
		if err := st.Set(ctx, tc.name, []byte(tc.value), 0); err != nil {
			t.Fatal(err)
		}
		raw, err := rc.Get(ctx, prefix+tc.name).Result()
		if err != nil {
			t.Fatal(err)
		}
		got, err := st.Get(ctx, tc.name)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{tc.stored, tc.value}, []string{raw, string(got)}); diff != "" {
			t.Errorf("%s: stored and read back mismatch (-want +got):\n%s", tc.name, diff)
		}
	}
	// An empty value in the storage (written by someone else) reads as missing.
	if err := rc.Set(ctx, prefix+"blank", "", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(ctx, "blank"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get of an empty stored value: %v, want store.ErrNotFound", err)
	}
}

// TestEndedContext: a call whose context has ended does not reach a v2
// driver, which could not be stopped.
func TestEndedContext(t *testing.T) {
	rc := testenv.Redis(t)
	prefix := testenv.Prefix(t, "fiberstore")
	testenv.CleanupPrefix(t, rc, prefix)
	st := fiberstore.New(v2Only{fiberredis.NewFromConnection(rc)}, fiberstore.Options{Prefix: prefix})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := st.Set(ctx, "k", []byte("v"), time.Minute); !errors.Is(err, context.Canceled) {
		t.Errorf("Set with an ended ctx: %v, want context.Canceled", err)
	}
	if n, _ := rc.Exists(context.Background(), prefix+"k").Result(); n != 0 {
		t.Error("Set with an ended ctx wrote the key")
	}
}
