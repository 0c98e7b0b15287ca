package mysqltest

import (
	"bytes"
	"testing"
	"time"

	"github.com/typedsession/session/store/sqlstore"
)

// BenchmarkMariaDB measures the common calls with a 500-byte value, with
// the driver's default (server-side prepared statements: a prepare, an
// execute and a close per call) and with interpolateParams=true (one round
// trip), the setting the package documentation recommends.
func BenchmarkMariaDB(b *testing.B) {
	for _, mode := range []struct {
		name string
		opts map[string]string
	}{
		{"Prepared", nil},
		{"Interpolated", map[string]string{"interpolateParams": "true"}},
	} {
		b.Run(mode.name, func(b *testing.B) {
			db := openDB(b, mode.opts)
			value := bytes.Repeat([]byte("x"), 500)
			other := bytes.Repeat([]byte("y"), 500)
			const key = "quiz:123456789"
			b.Run("Get", func(b *testing.B) {
				s := newTestStore(b, db, sqlstore.Options{CleanupInterval: -1})
				if err := s.Set(b.Context(), key, value, time.Hour); err != nil {
					b.Fatal(err)
				}
				for b.Loop() {
					if _, err := s.Get(b.Context(), key); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("GetWithTTL", func(b *testing.B) {
				s := newTestStore(b, db, sqlstore.Options{CleanupInterval: -1})
				if err := s.Set(b.Context(), key, value, time.Hour); err != nil {
					b.Fatal(err)
				}
				for b.Loop() {
					if _, _, err := s.GetWithTTL(b.Context(), key); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("GetAndTouch", func(b *testing.B) {
				s := newTestStore(b, db, sqlstore.Options{CleanupInterval: -1})
				if err := s.Set(b.Context(), key, value, time.Hour); err != nil {
					b.Fatal(err)
				}
				for b.Loop() {
					if _, err := s.GetAndTouch(b.Context(), key, time.Hour); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("Set", func(b *testing.B) {
				s := newTestStore(b, db, sqlstore.Options{CleanupInterval: -1})
				for b.Loop() {
					if err := s.Set(b.Context(), key, value, time.Hour); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("CompareAndSwap", func(b *testing.B) {
				s := newTestStore(b, db, sqlstore.Options{CleanupInterval: -1})
				if err := s.Set(b.Context(), key, value, time.Hour); err != nil {
					b.Fatal(err)
				}
				old, next := value, other
				for b.Loop() {
					ok, err := s.CompareAndSwap(b.Context(), key, old, next, time.Hour)
					if err != nil || !ok {
						b.Fatalf("CompareAndSwap = %v, %v", ok, err)
					}
					old, next = next, old
				}
			})
			b.Run("CompareAndSwapNew", func(b *testing.B) {
				// A new session's first save: nil old on an absent key.
				s := newTestStore(b, db, sqlstore.Options{CleanupInterval: -1})
				for b.Loop() {
					b.StopTimer()
					if err := s.Delete(b.Context(), key); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					ok, err := s.CompareAndSwap(b.Context(), key, nil, value, time.Hour)
					if err != nil || !ok {
						b.Fatalf("CompareAndSwap = %v, %v", ok, err)
					}
				}
			})
		})
	}
}
