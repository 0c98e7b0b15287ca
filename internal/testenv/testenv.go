// Package testenv finds the servers the integration tests run against, with
// one rule for every package: a test uses the server named by REDIS_URL or
// DATABASE_URL (loopback defaults), skips with a message saying so when none
// answers, and fails instead under CI=true, where a missing server is a
// broken build.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultRedisURL and DefaultDatabaseURL are used when REDIS_URL and
// DATABASE_URL are unset: the services of the development machine and CI.
const (
	DefaultRedisURL    = "redis://127.0.0.1:6379/0"
	DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
)

// SkipOrFail skips tb with the message, or fails it when CI=true.
func SkipOrFail(tb testing.TB, format string, args ...any) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf("CI=true, so this fails: "+format, args...)
	}
	tb.Skipf("skipping: "+format, args...)
}

// RedisURL returns REDIS_URL, or DefaultRedisURL when it is unset.
func RedisURL() string {
	if u := os.Getenv("REDIS_URL"); u != "" {
		return u
	}
	return DefaultRedisURL
}

// DatabaseURL returns DATABASE_URL, or DefaultDatabaseURL when it is unset.
func DatabaseURL() string {
	if u := os.Getenv("DATABASE_URL"); u != "" {
		return u
	}
	return DefaultDatabaseURL
}

// Redis returns a client of the server at RedisURL, closed when tb ends, or
// skips (fails under CI=true) when no server answers there.
func Redis(tb testing.TB) *redis.Client {
	tb.Helper()
	url := RedisURL()
	opts, err := redis.ParseURL(url)
	if err != nil {
		tb.Fatalf("REDIS_URL %q: %v", url, err)
	}
	opts.ContextTimeoutEnabled = true // the client configuration the README recommends
	c := redis.NewClient(opts)
	tb.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		SkipOrFail(tb, "no Redis answers at %s (set REDIS_URL): %v", url, err)
	}
	return c
}

// Prefix returns name + ":" + 16 random hex digits + ":", a key prefix no
// other test run uses.
func Prefix(tb testing.TB, name string) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return name + ":" + hex.EncodeToString(b) + ":"
}

// CleanupPrefix deletes every key under prefix from c when tb ends, with
// SCAN (never KEYS).
func CleanupPrefix(tb testing.TB, c *redis.Client, prefix string) {
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		iter := c.Scan(ctx, 0, escapeGlob(prefix)+"*", 500).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
	})
}

// escapeGlob escapes the characters SCAN MATCH treats as a pattern.
func escapeGlob(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\':
			out = append(out, '\\')
		}
		out = append(out, s[i])
	}
	return string(out)
}
