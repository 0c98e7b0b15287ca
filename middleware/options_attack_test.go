package middleware

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	session "github.com/typedsession/session"
)

// largestWholeSeconds is the largest duration of whole seconds.
const largestWholeSeconds = math.MaxInt64 - math.MaxInt64%time.Second

// TestHTTPCookieMaxAgeHuge: HTTP rounded CookieMaxAge up to whole seconds
// by adding the rest of a second, which overflowed for a value within a
// second of the largest duration: the option became negative, and the
// "persistent" cookie went out as a browser-session cookie, without
// Max-Age. It saturates at the largest whole number of seconds.
func TestHTTPCookieMaxAgeHuge(t *testing.T) {
	e := newHTTPEnv(t, HTTPOptions{CookieMaxAge: math.MaxInt64})
	c := sessionCookie(e.do("/add?item=x", ""))
	if c == nil {
		t.Fatal("no cookie")
	}
	if want := int(largestWholeSeconds / time.Second); c.MaxAge != want {
		t.Errorf("Max-Age = %d, want %d", c.MaxAge, want)
	}
}

// TestCookieMaxAgeRememberForHuge: the Max-Age of a remembered login is
// the time left of its RememberFor, rounded up to whole seconds; with a
// RememberFor near the largest duration the rounding overflowed to a
// negative duration, and the cookie of a login asked to be remembered
// lasted one second.
func TestCookieMaxAgeRememberForHuge(t *testing.T) {
	now := time.Now()
	for _, o := range []HTTPOptions{
		{RememberFor: math.MaxInt64},
		{CookieMaxAge: math.MaxInt64},
		{CookieMaxAge: math.MaxInt64, AbsoluteTimeout: math.MaxInt64},
	} {
		for _, remember := range []bool{true, false} {
			w := &Web{Created: now, Remember: remember}
			got := o.cookieMaxAge(w, now)
			want := time.Duration(largestWholeSeconds)
			if !remember && o.CookieMaxAge == 0 {
				want = 0
			}
			if remember && o.RememberFor == 0 {
				continue // RememberFor's default is filled in by HTTP
			}
			if got != want {
				t.Errorf("%+v remember=%v: cookieMaxAge = %v, want %v", o, remember, got, want)
			}
		}
	}
}

// TestAttackDestroyThenFail: the package doc and docs/middleware.md said
// "a session the handler destroys is deleted, on every path", right
// after "a handler that returns an error leaves the stored session as it
// was". The code keeps the second (a failed handler's Destroy is
// discarded, as any other change of it, in the generic wrapper and in
// net/http alike); the docs now say so. This pins it.
func TestAttackDestroyThenFail(t *testing.T) {
	st := newDeleterStore(t)
	m := newManager[counter](t, st, "c")
	h := New(m, userKey, Options{}).Wrap(func(ctx context.Context, u *update) error {
		s, err := session.From[counter](ctx)
		if err != nil {
			return err
		}
		s.Data.N++
		if u.Fail != nil {
			s.Destroy()
		}
		return u.Fail
	})
	ctx := context.Background()
	if err := h(ctx, &update{User: "ann"}); err != nil {
		t.Fatal(err)
	}
	if err := h(ctx, &update{User: "ann", Fail: errors.New("logout, then fail")}); err == nil {
		t.Fatal("the handler's error was not returned")
	}
	if got := stored(t, m, "ann"); got.N != 1 {
		t.Errorf("stored N = %d, want 1: a failed handler's Destroy is discarded", got.N)
	}
}

// TestAttackNilLockerPointer: Options.Locker holding a nil *LockTable (or
// a nil *redislock.Locker whose constructor was skipped) is a non-nil
// Locker: the middleware took it, and the first update panicked deep in
// Lock. New panics at once, naming the option and the type.
func TestAttackNilLockerPointer(t *testing.T) {
	st := newDeleterStore(t)
	m := newManager[counter](t, st, "c")
	defer func() {
		msg := fmt.Sprint(recover())
		if !strings.Contains(msg, "Options.Locker") || !strings.Contains(msg, "*middleware.LockTable") {
			t.Errorf("panic %q, want one naming Options.Locker and *middleware.LockTable", msg)
		}
	}()
	var lt *LockTable
	New(m, userKey, Options{Locker: lt})
}

// TestAttackSameSiteOutOfRange: an HTTPOptions.SameSite that is not one of
// net/http's modes (a constant of another package, a cast integer) made
// net/http write the cookie with no SameSite attribute at all, silently.
// HTTP panics, as it does for its other invalid options, naming the
// option.
func TestAttackSameSiteOutOfRange(t *testing.T) {
	st := newCountingStore(t)
	m := newManager[cart](t, st, "cart")
	defer func() {
		msg := fmt.Sprint(recover())
		if !strings.Contains(msg, "HTTPOptions.SameSite") || !strings.Contains(msg, "9") {
			t.Errorf("panic %q, want one naming HTTPOptions.SameSite and 9", msg)
		}
	}()
	HTTP(m, HTTPOptions{SameSite: 9})
}

// TestAttackCookiePathRelative: a CookiePath that does not start with '/'
// ("app") went out as it was; browsers ignore such a Path and scope the
// cookie to the folder of the request that set it (RFC 6265, 5.2.4), so
// the session was lost on every other page. HTTP panics, naming the
// option and the value.
func TestAttackCookiePathRelative(t *testing.T) {
	st := newCountingStore(t)
	m := newManager[cart](t, st, "cart")
	for _, p := range []string{"app", " /app"} {
		func() {
			defer func() {
				msg := fmt.Sprint(recover())
				if !strings.Contains(msg, "HTTPOptions.CookiePath") || !strings.Contains(msg, fmt.Sprintf("%q", p)) {
					t.Errorf("CookiePath %q: panic %q, want one naming HTTPOptions.CookiePath and the value", p, msg)
				}
			}()
			HTTP(m, HTTPOptions{CookiePath: p})
		}()
	}
}
