package middleware

import (
	"math"
	"testing"
	"time"
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
