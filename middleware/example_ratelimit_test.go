package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/store/memstore"
)

// RateWindow is a rate limit kept in the session: a fixed window of one
// minute and the number of requests in it.
type RateWindow struct {
	Start time.Time `json:"start"`
	Count int       `json:"count" validate:"gte=0"`
}

var errTooMany = errors.New("too many requests, try again later")

// Allow counts one request at now and reports whether it is within limit
// per minute.
func (w *RateWindow) Allow(now time.Time, limit int) bool {
	if now.Sub(w.Start) >= time.Minute {
		w.Start, w.Count = now, 0
	}
	if w.Count >= limit {
		return false
	}
	w.Count++
	return true
}

// A rate limit from session state: the counter is saved with the session,
// and the per-key lock makes the count exact for concurrent requests of one
// user. A refused request returns an error, so nothing is saved for it.
func Example_rateLimit() {
	st, _ := memstore.New(memstore.Options{})
	defer st.Close()
	limits, _ := session.New(session.Config[RateWindow]{Store: st, Namespace: "rate", TTL: 2 * time.Minute})

	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC) // a clock of the example's own
	userOf := func(ctx context.Context, u *Update) (string, error) { return fmt.Sprint(u.UserID), nil }
	limit := middleware.New(limits, userOf, middleware.Options{})
	handle := limit.Wrap(func(ctx context.Context, u *Update) error {
		s, err := session.From[RateWindow](ctx)
		if err != nil {
			return err
		}
		if !s.Data.Allow(now, 3) {
			return errTooMany
		}
		fmt.Printf("%s: served %q\n", now.Format("15:04:05"), u.Text)
		return nil
	})

	for i, text := range []string{"a", "b", "c", "d", "e"} {
		now = now.Add(time.Duration(i) * time.Second)
		if err := handle(context.Background(), &Update{UserID: 1, Text: text}); err != nil {
			fmt.Printf("%s: %q refused: %v\n", now.Format("15:04:05"), text, err)
		}
	}
	now = now.Add(time.Minute)
	handle(context.Background(), &Update{UserID: 1, Text: "f"})
	// Output:
	// 12:00:00: served "a"
	// 12:00:01: served "b"
	// 12:00:03: served "c"
	// 12:00:06: "d" refused: too many requests, try again later
	// 12:00:10: "e" refused: too many requests, try again later
	// 12:01:10: served "f"
}
