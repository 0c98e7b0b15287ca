package middleware

import (
	"context"
	"encoding/json"
	session "github.com/typedsession/session"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"
)

// visit is a session type with a Web field.
type visit struct {
	Web   Web           `json:"web"`
	Flash Flash[string] `json:"flash,omitempty"`
}

// twoWebs has two Web fields.
type twoWebs struct {
	A Web `json:"a"`
	B Web `json:"b"`
}

// TestHTTPWebOptionsPanic: options of the web features that cannot work
// panic when the middleware is built, with a message that names the
// option.
func TestHTTPWebOptionsPanic(t *testing.T) {
	st := newCountingStore(t)
	m := newManager[visit](t, st, "v")
	other := newManager[visit](t, st, "w")
	plain := newManager[cart](t, st, "c")
	otherDevices, err := NewDevices(other, DevicesOptions{Store: st, Namespace: "w-devices"})
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]func(){
		"AbsoluteTimeout without a Web field": func() { HTTP(plain, HTTPOptions{AbsoluteTimeout: time.Hour}) },
		"RenewalTimeout without a Web field":  func() { HTTP(plain, HTTPOptions{RenewalTimeout: time.Hour}) },
		"negative AbsoluteTimeout":            func() { HTTP(m, HTTPOptions{AbsoluteTimeout: -time.Hour}) },
		"RenewalTimeout within the grace":     func() { HTTP(m, HTTPOptions{RenewalTimeout: time.Minute, RenewalGrace: time.Minute}) },
		"RenewalTimeout with Key": func() {
			HTTP(m, HTTPOptions{RenewalTimeout: time.Hour, Key: func(*http.Request) (string, error) { return "k", nil }})
		},
		"Devices of another manager": func() { HTTP(m, HTTPOptions{Devices: otherDevices}) },
		"unknown Clear-Site-Data":    func() { HTTP(m, HTTPOptions{ClearSiteData: []string{"everything"}}) },
		"Partitioned with Insecure":  func() { HTTP(m, HTTPOptions{Partitioned: true, Insecure: true}) },
		"__Host- with a Domain":      func() { HTTP(m, HTTPOptions{CookieName: "__Host-s", CookieDomain: "example.com"}) },
		"__Host- with a Path":        func() { HTTP(m, HTTPOptions{CookieName: "__Host-s", CookiePath: "/app"}) },
		"__Host- with Insecure":      func() { HTTP(m, HTTPOptions{CookieName: "__Host-s", Insecure: true}) },
		"__Secure- with Insecure":    func() { HTTP(m, HTTPOptions{CookieName: "__Secure-s", Insecure: true}) },
		// Browsers match the prefixes case-insensitively (RFC 6265bis,
		// section 4.1.3), so they refuse these cookies as well.
		"__host- with a Domain":              func() { HTTP(m, HTTPOptions{CookieName: "__host-s", CookieDomain: "example.com"}) },
		"__HOST- with a Path":                func() { HTTP(m, HTTPOptions{CookieName: "__HOST-s", CookiePath: "/app"}) },
		"__secure- with Insecure":            func() { HTTP(m, HTTPOptions{CookieName: "__secure-s", Insecure: true}) },
		"two Web fields in the session type": func() { HTTP(newManager[twoWebs](t, st, "t"), HTTPOptions{}) },
	}
	for name, build := range cases {
		t.Run(name, func(t *testing.T) {
			defer func() {
				p := recover()
				msg, _ := p.(string)
				if !strings.HasPrefix(msg, "session/middleware: ") {
					t.Errorf("panic %v, want a message of the middleware", p)
				}
			}()
			build()
		})
	}
}

// TestHTTPHostPrefix: the cookie is named with __Host- when it is Secure,
// host-only and for Path /, and only then.
func TestHTTPHostPrefix(t *testing.T) {
	cases := []struct {
		opts HTTPOptions
		want string
	}{
		{HTTPOptions{}, "__Host-session"},
		{HTTPOptions{CookieName: "prefs"}, "__Host-prefs"},
		{HTTPOptions{CookieName: "__Host-prefs"}, "__Host-prefs"},
		{HTTPOptions{CookieName: "__Secure-prefs"}, "__Secure-prefs"},
		{HTTPOptions{CookieName: "__host-prefs"}, "__host-prefs"},
		{HTTPOptions{NoHostPrefix: true}, "session"},
		{HTTPOptions{Insecure: true}, "session"},
		{HTTPOptions{CookieDomain: "example.com"}, "session"},
		{HTTPOptions{CookiePath: "/app"}, "session"},
	}
	for _, tc := range cases {
		e := newHTTPEnv(t, tc.opts)
		resp := e.do("/add?item=x", "")
		var names []string
		for _, c := range resp.Cookies() {
			names = append(names, c.Name)
		}
		if len(names) != 1 || names[0] != tc.want {
			t.Errorf("%+v: cookies %v, want one named %s", tc.opts, names, tc.want)
		}
	}
}

// TestNewDevicesRefuses: NewDevices refuses what cannot work.
func TestNewDevicesRefuses(t *testing.T) {
	st := newCountingStore(t)
	m := newManager[visit](t, st, "v")
	cases := map[string]DevicesOptions{
		"no store":                 {Namespace: "d"},
		"no compare-and-swap":      {Store: noSwap{st}, Namespace: "d"},
		"no namespace":             {Store: st},
		"a namespace with a colon": {Store: st, Namespace: "a:b"},
		"a negative Max":           {Store: st, Namespace: "d", Max: -1},
		"Max over 1000":            {Store: st, Namespace: "d", Max: 1001},
		"a negative SeenEvery":     {Store: st, Namespace: "d", SeenEvery: -time.Second},
		"the sessions' namespace":  {Store: st, Namespace: "v"},
	}
	for name, opts := range cases {
		if _, err := NewDevices(m, opts); err == nil {
			t.Errorf("%s: NewDevices accepted %+v", name, opts)
		}
	}
	if _, err := NewDevices[visit](nil, DevicesOptions{Store: st, Namespace: "d"}); err == nil {
		t.Error("NewDevices accepted a nil manager")
	}
	d, err := NewDevices(m, DevicesOptions{Store: st, Namespace: "d"})
	if err != nil {
		t.Fatal(err)
	}
	for _, user := range []string{"", "a\x00b", strings.Repeat("u", 1100)} {
		if err := d.EndAll(context.Background(), user); err == nil {
			t.Errorf("EndAll(%q) accepted a user ID no store key can hold", user)
		}
	}
}

// TestNewDevicesLongestTTL: a sessions' TTL or a SeenEvery near the
// largest duration made the index's lifetime (TTL + 2×SeenEvery + 1 min)
// overflow, and NewDevices refused with a message about a negative TTL;
// the sum saturates now, and a session seen now is not taken for gone.
func TestNewDevicesLongestTTL(t *testing.T) {
	st := newCountingStore(t)
	long := time.Duration(math.MaxInt64 - 1)
	m, err := session.New(session.Config[visit]{Store: st, Namespace: "vl", TTL: long})
	if err != nil {
		t.Fatal(err)
	}
	for _, every := range []time.Duration{0, long} {
		d, err := NewDevices(m, DevicesOptions{Store: st, Namespace: "dl", SeenEvery: every})
		if err != nil {
			t.Fatalf("SeenEvery %v: %v", every, err)
		}
		if now := time.Now(); d.unseen(now.Add(-time.Hour), now) {
			t.Errorf("SeenEvery %v: a session seen an hour ago taken for gone", every)
		}
	}
}

// TestFlash: Add keeps at most MaxFlash messages, the newest; Take empties
// and returns them; a Take of nothing changes nothing (a page that only
// looks costs no write).
func TestFlash(t *testing.T) {
	var f Flash[int]
	if got := f.Take(); got != nil {
		t.Errorf("Take of nothing = %v", got)
	}
	for i := range MaxFlash + 3 {
		f.Add(i)
	}
	got := f.Take()
	if len(got) != MaxFlash || got[0] != 3 || got[MaxFlash-1] != MaxFlash+2 {
		t.Errorf("Take after %d Adds = %v, want the last %d", MaxFlash+3, got, MaxFlash)
	}
	if f != nil {
		t.Errorf("after Take: %v, want empty", f)
	}
	empty := Flash[int]{}
	empty.Take()
	if empty == nil {
		t.Error("Take of an empty, non-nil Flash changed it (its encoding would change: a write)")
	}
	b, _ := json.Marshal(visit{})
	if strings.Contains(string(b), "flash") {
		t.Errorf("an empty Flash with omitempty encodes as %s", b)
	}
}
