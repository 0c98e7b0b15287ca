package webtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/typedsession/session/middleware"
)

// Run runs every test of the web features on env, each as a subtest:
// AbsoluteTimeout, RememberMe, Rotation, RotationRacesLogout, Devices,
// DevicesSeen, DevicesLimit, DevicesExpiredEntries, LogoutEverywhereRaces
// (the interleavings of a login, a rotation and log out everywhere),
// LogoutEverywhereConcurrent, Flash, FlashConcurrent, Cookie.
func Run(t *testing.T, env Env) {
	tests := []struct {
		name string
		fn   func(*testing.T, Env)
	}{
		{"AbsoluteTimeout", AbsoluteTimeout},
		{"RememberMe", RememberMe},
		{"Rotation", Rotation},
		{"RotationRacesLogout", RotationRacesLogout},
		{"Devices", Devices},
		{"DevicesSeen", DevicesSeen},
		{"DevicesLimit", DevicesLimit},
		{"DevicesExpiredEntries", DevicesExpiredEntries},
		{"DevicesIndexExpired", DevicesIndexExpired},
		{"LogoutEverywhereRaces", LogoutEverywhereRaces},
		{"LogoutEverywhereConcurrent", LogoutEverywhereConcurrent},
		{"Flash", Flash},
		{"FlashConcurrent", FlashConcurrent},
		{"Cookie", Cookie},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, env) })
	}
}

// AbsoluteTimeout: a session ends AbsoluteTimeout after it began however
// active it is; Renew (scs's RenewToken resets the lifetime) keeps its
// beginning, so renewing never extends it; a Login begins it anew. The
// ended session is deleted, leaves the index, and its cookie is expired.
func AbsoluteTimeout(t *testing.T, env Env) {
	const limit = 8 * time.Hour
	w := newWorld(t, env, middleware.HTTPOptions{AbsoluteTimeout: limit}, &middleware.DevicesOptions{})
	a := w.device("A", 0)
	w.login(a, "ann")
	v, _ := w.stored(a.key())
	if v.Web.Created.IsZero() || time.Since(v.Web.Created) > time.Minute {
		t.Fatalf("Web.Created after the login = %v, want about now", v.Web.Created)
	}
	if e, ok := w.entry("ann", a.key()); !ok || e.Until.Before(v.Web.Created.Add(limit)) || e.Until.After(v.Web.Created.Add(limit+time.Second)) {
		t.Errorf("index entry %+v (listed %v), want Until = Created + %v, rounded up to the second", e, ok, limit)
	}

	// Seven hours in, the session renews its token: the beginning stays.
	w.age(a.key(), func(v *Visit) { v.Web.Created = v.Web.Created.Add(-7 * time.Hour) })
	began, _ := w.stored(a.key())
	old := a.key()
	if r := a.do("POST", "/renew"); r.StatusCode != http.StatusOK || a.key() == old {
		t.Fatalf("renew: %d %q, key changed %v", r.StatusCode, r.body, a.key() != old)
	}
	v, _ = w.stored(a.key())
	if !v.Web.Created.Equal(began.Web.Created) {
		t.Errorf("Renew changed Web.Created from %v to %v; it must keep the session's beginning", began.Web.Created, v.Web.Created)
	}
	if _, ok := w.stored(old); ok {
		t.Error("the token before Renew still names a session")
	}
	w.loggedIn(a, "ann", "7 h after the login, renewed")

	// Past the timeout: ended, however active.
	w.age(a.key(), func(v *Visit) { v.Web.Created = v.Web.Created.Add(-limit + 7*time.Hour - time.Minute) })
	key := a.key()
	r := a.do("GET", "/show")
	if r.StatusCode != http.StatusOK || !strings.HasPrefix(r.body, "||") {
		t.Errorf("past the absolute timeout: %d %q, want a new session", r.StatusCode, r.body)
	}
	if c := setCookie(r); c == nil || c.MaxAge >= 0 {
		t.Errorf("past the absolute timeout the cookie was not expired: %v", c)
	}
	if _, ok := w.stored(key); ok {
		t.Error("the session past its absolute timeout is still stored")
	}
	if ix := w.index("ann"); len(ix.Sessions) != 0 {
		t.Errorf("the index still lists %d sessions", len(ix.Sessions))
	}

	// A new login begins anew.
	w.login(a, "ann")
	w.loggedIn(a, "ann", "logged in again")
	w.checkListed("ann")
}

// RememberMe: a login asked to be remembered gets a persistent cookie for
// RememberFor and lasts that long on the server; one that is not gets a
// browser-session cookie and the absolute timeout.
func RememberMe(t *testing.T, env Env) {
	w := newWorld(t, env, middleware.HTTPOptions{AbsoluteTimeout: 8 * time.Hour, RememberFor: 30 * 24 * time.Hour}, nil)
	a, b := w.device("A", 0), w.device("B", 0)
	c := setCookie(w.login(a, "ann"))
	if c == nil || c.MaxAge != 0 || !c.Expires.IsZero() {
		t.Errorf("a login not remembered: cookie %v, want one without Max-Age and Expires", c)
	}
	c = setCookie(w.login(b, "ann", "remember", "1"))
	want := int((30 * 24 * time.Hour).Seconds())
	if c == nil || c.MaxAge < want-60 || c.MaxAge > want {
		t.Errorf("a remembered login: cookie %v, want Max-Age %d s", c, want)
	}
	// Nine hours in: the remembered session lives, the other does not.
	for _, d := range []*device{a, b} {
		w.age(d.key(), func(v *Visit) { v.Web.Created = v.Web.Created.Add(-9 * time.Hour) })
	}
	w.anonymous(a, "a login not remembered, 9 h in")
	w.loggedIn(b, "ann", "a remembered login, 9 h in")
	// Its cookie's Max-Age counts from the login: a new token (Renew) gets
	// what is left.
	r := b.do("POST", "/renew")
	if c := setCookie(r); c == nil || c.MaxAge > want-9*3600 || c.MaxAge < want-9*3600-60 {
		t.Errorf("renewed 9 h after a remembered login: cookie %v, want Max-Age %d s", c, want-9*3600)
	}
	w.age(b.key(), func(v *Visit) { v.Web.Created = v.Web.Created.Add(-30 * 24 * time.Hour) })
	w.anonymous(b, "a remembered login, 30 days and 9 h in")
}

// Rotation: with RenewalTimeout, the first response after it moves the
// session to a new token; the old token reaches the session for
// RenewalGrace (no cookie is set then), and nothing after it; the
// forwarding entry is deleted by the first response after the grace. The
// beginning and the index follow the new token.
func Rotation(t *testing.T, env Env) {
	w := newWorld(t, env, middleware.HTTPOptions{RenewalTimeout: 15 * time.Minute, RenewalGrace: time.Minute}, &middleware.DevicesOptions{})
	a := w.device("A", 0)
	w.login(a, "ann")
	a.do("POST", "/count")
	t1, k1 := a.token(), a.key()
	w.age(k1, func(v *Visit) {
		v.Web.Issued = v.Web.Issued.Add(-16 * time.Minute)
		v.Web.Created = v.Web.Created.Add(-time.Hour)
	})
	began, _ := w.stored(k1)
	if r := a.do("POST", "/count"); r.body != "2" || setCookie(r) == nil {
		t.Fatalf("the request after the renewal timeout: %d %q, cookie %v; want 2 and a new cookie", r.StatusCode, r.body, setCookie(r))
	}
	k2 := a.key()
	if k2 == k1 {
		t.Fatal("the token did not change")
	}
	fwd, ok := w.stored(k1)
	if !ok || fwd.Web.Moved != k2 || fwd.N != 0 {
		t.Errorf("under the old key: %+v (stored %v), want a forwarding entry to the new key", fwd, ok)
	}
	v, _ := w.stored(k2)
	if v.N != 2 || v.Web.Prev != k1 || !v.Web.Created.Equal(began.Web.Created) || v.Web.User != "ann" {
		t.Errorf("under the new key: %+v, want N 2, Prev the old key, the beginning kept, ann", v)
	}
	if e, ok := w.entry("ann", k2); !ok || !slices.Equal(e.Keys, []string{k2, k1}) {
		t.Errorf("index entry %+v, want keys [new old]", e)
	}

	// The old token within the grace: the same session, no cookie.
	old := a.withToken(t1)
	if r := old.do("POST", "/count"); r.body != "3" || setCookie(r) != nil {
		t.Errorf("the old token within the grace: %d %q, cookie %v; want 3 and no cookie", r.StatusCode, r.body, setCookie(r))
	}
	if r := a.do("GET", "/show"); !strings.HasSuffix(r.body, "|3") {
		t.Errorf("the new token after a count through the old one: %q, want 3", r.body)
	}

	// After the grace: the next response deletes the forwarding entry,
	// and the old token is worth nothing.
	w.age(k1, func(v *Visit) { v.Web.Issued = v.Web.Issued.Add(-2 * time.Minute) })
	w.age(k2, func(v *Visit) { v.Web.Issued = v.Web.Issued.Add(-2 * time.Minute) })
	w.loggedIn(a, "ann", "after the grace, the new token")
	if _, ok := w.stored(k1); ok {
		t.Error("the forwarding entry outlived the grace")
	}
	if v, _ := w.stored(k2); v.Web.Prev != "" {
		t.Errorf("Web.Prev = %q after the grace, want empty", v.Web.Prev)
	}
	w.anonymous(old, "the old token after the grace")
	w.loggedIn(a, "ann", "the new token, at the end")
	w.checkListed("ann")

	// Past the grace with the forwarding entry still there: worthless too.
	b := w.device("B", 1)
	w.login(b, "bob")
	tb := b.token()
	w.age(b.key(), func(v *Visit) { v.Web.Issued = v.Web.Issued.Add(-16 * time.Minute) })
	b.do("GET", "/show")
	w.age(KeyOf(tb), func(v *Visit) { v.Web.Issued = v.Web.Issued.Add(-2 * time.Minute) })
	w.anonymous(b.withToken(tb), "an old token whose forwarding entry is past the grace")
	if _, ok := w.stored(KeyOf(tb)); ok {
		t.Error("a forwarding entry past its grace was not deleted when its token came back")
	}
	w.loggedIn(b, "bob", "the new token of B")
}

// RotationRacesLogout: a session deleted while a rotation is under way
// (a logout on another instance, log out everywhere) is not brought back
// under the new token: the rotation replaces the old key by compare-and-
// swap, fails, and removes the new key again.
func RotationRacesLogout(t *testing.T, env Env) {
	for _, devices := range []bool{false, true} {
		t.Run(fmt.Sprintf("devices=%v", devices), func(t *testing.T) {
			var dopts *middleware.DevicesOptions
			if devices {
				dopts = &middleware.DevicesOptions{}
			}
			w := newWorld(t, env, middleware.HTTPOptions{RenewalTimeout: 15 * time.Minute}, dopts)
			a := w.device("A", 0)
			w.login(a, "ann")
			k1 := a.key()
			w.age(k1, func(v *Visit) { v.Web.Issued = v.Web.Issued.Add(-16 * time.Minute) })
			w.tap.SetHook(once(isNewSessionWrite(k1), func() {
				var err error
				if devices {
					err = w.d.EndAll(bg, "ann")
				} else {
					err = w.m.Delete(bg, k1)
				}
				if err != nil {
					t.Error(err)
				}
			}))
			if r := a.do("POST", "/count"); r.StatusCode != http.StatusInternalServerError {
				t.Errorf("a rotation whose session was deleted meanwhile: %d %q, want 500", r.StatusCode, r.body)
			}
			w.tap.SetHook(nil)
			if keys := w.alive("ann"); len(keys) != 0 {
				t.Errorf("%d sessions of ann alive after the logout, want none (the rotation brought one back)", len(keys))
			}
			w.anonymous(a, "after the logout")
		})
	}
}

// Devices: the list of a user's sessions (created, seen, User-Agent, the
// current one marked), ending one, all others, all; logout removes a
// session from the list; users' lists are apart.
func Devices(t *testing.T, env Env) {
	w := newWorld(t, env, middleware.HTTPOptions{ClearSiteData: []string{"cache", "storage"}}, &middleware.DevicesOptions{UserAgent: true})
	a, b, c := w.device("A", 0), w.device("B", 1), w.device("C", 0)
	w.login(a, "ann")
	w.login(b, "ann")
	w.login(c, "bob")
	list := devices(t, a)
	if len(list) != 2 {
		t.Fatalf("ann's devices: %+v, want 2", list)
	}
	va, _ := w.stored(a.key())
	vb, _ := w.stored(b.key())
	for _, d := range list {
		want := map[string]string{va.Web.ID: "Browser/A", vb.Web.ID: "Browser/B"}[d.ID]
		if want == "" || d.UserAgent != want || d.Current != (d.ID == va.Web.ID) || d.Created.IsZero() || d.Seen.IsZero() {
			t.Errorf("device %+v: want ID of A or B, its User-Agent, Current only for A, times set", d)
		}
	}
	if l := devices(t, c); len(l) != 1 || !l[0].Current {
		t.Errorf("bob's devices: %+v, want his one", l)
	}
	if r := w.device("X", 0).do("GET", "/devices"); r.StatusCode != http.StatusInternalServerError || !strings.Contains(r.body, "not logged in") {
		t.Errorf("devices of a visitor who did not log in: %d %q, want the not-logged-in error", r.StatusCode, r.body)
	}

	// End one.
	if r := a.do("POST", "/end", "id", vb.Web.ID); r.StatusCode != http.StatusOK {
		t.Fatalf("end B: %d %q", r.StatusCode, r.body)
	}
	w.anonymous(b, "ended from A")
	if l := devices(t, a); len(l) != 1 || l[0].ID != va.Web.ID {
		t.Errorf("after ending B: %+v, want only A", l)
	}

	// End all others.
	w.login(b, "ann")
	e := w.device("E", 1)
	w.login(e, "ann")
	if r := a.do("POST", "/end-others"); r.StatusCode != http.StatusOK {
		t.Fatalf("end others: %d %q", r.StatusCode, r.body)
	}
	w.anonymous(b, "others ended from A")
	w.anonymous(e, "others ended from A")
	w.loggedIn(a, "ann", "A after ending the others")
	w.loggedIn(c, "bob", "another user's session")

	// Log out (this device): its entry goes.
	w.login(b, "ann")
	if r := b.do("POST", "/logout"); r.StatusCode != http.StatusOK {
		t.Fatal(r.body)
	}
	if l := devices(t, a); len(l) != 1 {
		t.Errorf("after B logged out: %+v, want only A", l)
	}

	// Log out everywhere: this one too, with Clear-Site-Data.
	w.login(b, "ann")
	r := a.do("POST", "/end-all")
	if r.StatusCode != http.StatusOK {
		t.Fatalf("end all: %d %q", r.StatusCode, r.body)
	}
	if c := setCookie(r); c == nil || c.MaxAge >= 0 {
		t.Errorf("log out everywhere: cookie %v, want it expired", c)
	}
	if got := r.Header.Get("Clear-Site-Data"); got != `"cache", "storage"` {
		t.Errorf("Clear-Site-Data = %q, want %q", got, `"cache", "storage"`)
	}
	w.anonymous(a, "after log out everywhere")
	w.anonymous(b, "after log out everywhere")
	if ix := w.index("ann"); len(ix.Sessions) != 0 {
		t.Errorf("the index lists %d sessions after log out everywhere", len(ix.Sessions))
	}
	if keys := w.alive("ann"); len(keys) != 0 {
		t.Errorf("%d sessions of ann alive after log out everywhere", len(keys))
	}
	w.loggedIn(c, "bob", "another user's session after ann logged out everywhere")

	// A second login of one session as another user leaves the first
	// user's list.
	w.login(a, "ann")
	w.login(a, "amy")
	if ix := w.index("ann"); len(ix.Sessions) != 0 {
		t.Errorf("ann's index after her session logged in as amy: %+v", ix)
	}
	w.checkListed("ann")
	w.checkListed("amy")
}

// devices returns the devices list d's session sees.
func devices(t *testing.T, d *device) []middleware.Device {
	t.Helper()
	r := d.do("GET", "/devices")
	if r.StatusCode != http.StatusOK {
		t.Fatalf("%s: GET /devices: %d %q", d.name, r.StatusCode, r.body)
	}
	var list []middleware.Device
	if err := json.Unmarshal([]byte(r.body), &list); err != nil {
		t.Fatalf("%s: GET /devices: %v in %q", d.name, err, r.body)
	}
	return list
}

// DevicesSeen: a request records its session as seen once per SeenEvery;
// a session whose index entry is gone ends at that record; a session
// logged in before the middleware kept an index ends at once.
func DevicesSeen(t *testing.T, env Env) {
	w := newWorld(t, env, middleware.HTTPOptions{}, &middleware.DevicesOptions{SeenEvery: 5 * time.Minute, UserAgent: true})
	a := w.device("A", 0)
	w.login(a, "ann")
	e, _ := w.entry("ann", a.key())
	w.stats() // reset
	w.loggedIn(a, "ann", "right after the login")
	if n := w.stats()["index"].Calls; n != 0 {
		t.Errorf("a request within SeenEvery made %d index calls, want 0", n)
	}
	w.age(a.key(), func(v *Visit) { v.Web.Seen = v.Web.Seen.Add(-6 * time.Minute) })
	w.ageIndex("ann", func(ix *indexDoc) { ix.Sessions[0].Seen = ix.Sessions[0].Seen.Add(-6 * time.Minute) })
	a.agent = "Browser/A2"
	w.loggedIn(a, "ann", "after SeenEvery")
	if e2, _ := w.entry("ann", a.key()); e2.Seen.Before(e.Seen) || e2.Agent != "Browser/A2" {
		t.Errorf("entry after SeenEvery: %+v, want Seen recorded again (was %v, then aged) and the new User-Agent", e2, e.Seen)
	}

	// An entry gone from the index (logged out elsewhere, say) ends the
	// session at the next record.
	w.ageIndex("ann", func(d *indexDoc) { d.Sessions = nil })
	w.age(a.key(), func(v *Visit) { v.Web.Seen = v.Web.Seen.Add(-6 * time.Minute) })
	key := a.key()
	r := a.do("GET", "/show")
	if c := setCookie(r); c == nil || c.MaxAge >= 0 {
		t.Errorf("a session the index no longer lists: cookie %v, want it expired", c)
	}
	if _, ok := w.stored(key); ok {
		t.Error("a session the index no longer lists is still stored after its next record")
	}

	// A login made while the middleware kept no index: once it keeps one,
	// it ends that session at its next request (log out everywhere could
	// not find it).
	p := newDevice(t, "P", w.env.NewApp(t, w.m, middleware.HTTPOptions{}))
	w.login(p, "ann")
	key = p.key()
	p.app = w.apps[0]
	w.anonymous(p, "logged in without an index, then served with one")
	if _, ok := w.stored(key); ok {
		t.Error("a session logged in without an index is still stored")
	}
	w.checkListed("ann")
}

// DevicesLimit: a login beyond DevicesOptions.Max ends the user's least
// recently seen session.
func DevicesLimit(t *testing.T, env Env) {
	w := newWorld(t, env, middleware.HTTPOptions{}, &middleware.DevicesOptions{Max: 3})
	var ds []*device
	for i := range 4 {
		d := w.device(fmt.Sprintf("D%d", i), i%2)
		w.login(d, "ann")
		ds = append(ds, d)
		if i == 2 {
			// D1 was seen last of all, D0 longest ago.
			w.ageIndex("ann", func(ix *indexDoc) {
				for j := range ix.Sessions {
					ix.Sessions[j].Seen = ix.Sessions[j].Seen.Add(-time.Duration(3-j) * time.Minute)
				}
				ix.Sessions[1].Seen = time.Now()
			})
		}
	}
	w.anonymous(ds[0], "the least recently seen session, after a login beyond the limit")
	for _, d := range ds[1:] {
		w.loggedIn(d, "ann", "within the limit")
	}
	if ix := w.index("ann"); len(ix.Sessions) != 3 {
		t.Errorf("the index lists %d sessions, want the limit, 3", len(ix.Sessions))
	}
	w.checkListed("ann")
}

// DevicesExpiredEntries: the index's next change drops the entries of
// sessions whose lifetime is over or that were not seen for longer than
// the idle timeout, deleting their sessions first.
func DevicesExpiredEntries(t *testing.T, env Env) {
	w := newWorld(t, env, middleware.HTTPOptions{AbsoluteTimeout: 8 * time.Hour}, &middleware.DevicesOptions{SeenEvery: 5 * time.Minute})
	a, b, c := w.device("A", 0), w.device("B", 1), w.device("C", 0)
	w.login(a, "ann")
	w.login(b, "ann")
	ka, kb := a.key(), b.key()
	w.ageIndex("ann", func(ix *indexDoc) {
		for j := range ix.Sessions {
			switch {
			case slices.Contains(ix.Sessions[j].Keys, ka):
				ix.Sessions[j].Until = time.Now().Add(-time.Minute)
			case slices.Contains(ix.Sessions[j].Keys, kb):
				ix.Sessions[j].Seen = time.Now().Add(-TTL - 5*time.Minute - 2*time.Minute)
			}
		}
	})
	w.login(c, "ann")
	ix := w.index("ann")
	if len(ix.Sessions) != 1 || !slices.Contains(ix.Sessions[0].Keys, c.key()) {
		t.Errorf("the index after a login: %+v, want only the new session", ix)
	}
	for _, k := range []string{ka, kb} {
		if _, ok := w.stored(k); ok {
			t.Errorf("the session %.12s… of a dropped entry is still stored", k)
		}
	}
	w.checkListed("ann")
}

// DevicesIndexExpired: the index value expires (the store's TTL) the
// sessions' TTL plus twice SeenEvery plus a minute after its last change,
// and a session can outlive that without changing it: its requests
// failed (a 5xx commits nothing, but the load extended the session's
// expiry), or the app kept it alive with Manager.Update (a WebSocket, as
// HTTP's documentation advises). The index then forgets the session
// without deleting it, and "log out everywhere" reads an index that does
// not list it. Such a session was not seen for longer than the index's
// rule for gone entries, so its next request must find it ended, as the
// index's next change would have ended it, and never serve it logged in.
func DevicesIndexExpired(t *testing.T, env Env) {
	const seenEvery = 5 * time.Minute
	w := newWorld(t, env, middleware.HTTPOptions{}, &middleware.DevicesOptions{SeenEvery: seenEvery})
	a, b := w.device("A", 0), w.device("B", 1)
	w.login(a, "ann")
	// A request that fails records nothing in the index, however long
	// ago the session was last recorded as seen.
	w.age(a.key(), func(v *Visit) { v.Web.Seen = v.Web.Seen.Add(-2 * seenEvery) })
	w.stats() // reset
	if r := a.do("GET", "/flash-fail"); r.StatusCode != http.StatusInternalServerError {
		t.Fatalf("GET /flash-fail = %d %q", r.StatusCode, r.body)
	}
	if n := w.stats()["index"].Calls; n != 0 {
		t.Fatalf("a failed request made %d index calls; the test's premise is that it makes none", n)
	}
	// That much time passes with A's session kept alive, and its index
	// value unchanged; then the store expires the index value.
	passed := TTL + 2*seenEvery + time.Minute + time.Second
	w.age(a.key(), func(v *Visit) {
		v.Web.Created = v.Web.Created.Add(-passed)
		v.Web.Issued = v.Web.Issued.Add(-passed)
		v.Web.Seen = v.Web.Seen.Add(-passed)
	})
	if err := w.tap.Delete(bg, DevicesNS+":ann"); err != nil {
		t.Fatal(err)
	}
	// Ann logs in on B and logs out everywhere.
	w.login(b, "ann")
	if r := b.do("POST", "/end-all"); r.StatusCode != http.StatusOK {
		t.Fatalf("end all: %d %q", r.StatusCode, r.body)
	}
	w.anonymous(a, "after log out everywhere, its index entry expired with the index value")
	w.anonymous(b, "after log out everywhere")
	w.checkListed("ann")
}

// LogoutEverywhereRaces runs log out everywhere at each point of a login
// on another device and of a token rotation, and a login inside log out
// everywhere: a session is either listed and ended, or never accepted (no
// cookie), and no live session of the user is left out of the index.
func LogoutEverywhereRaces(t *testing.T, env Env) {
	setup := func(t *testing.T) (*world, *device) {
		w := newWorld(t, env, middleware.HTTPOptions{RenewalTimeout: 15 * time.Minute}, &middleware.DevicesOptions{})
		a := w.device("A", 0)
		w.login(a, "ann")
		return w, a
	}
	endAll := func(t *testing.T, w *world, a *device) func() {
		return func() {
			if r := a.do("POST", "/end-all"); r.StatusCode != http.StatusOK {
				t.Errorf("log out everywhere: %d %q", r.StatusCode, r.body)
			}
		}
	}
	t.Run("after the login's session write", func(t *testing.T) {
		w, a := setup(t)
		b := w.device("B", 1)
		w.tap.SetHook(once(isNewSessionWrite(""), endAll(t, w, a)))
		r := b.do("POST", "/login", "user", "ann")
		w.tap.SetHook(nil)
		if r.StatusCode != http.StatusInternalServerError || b.token() != "" {
			t.Errorf("a login overtaken by log out everywhere: %d %q, token %q; want a 500 and no cookie", r.StatusCode, r.body, b.token())
		}
		if keys := w.alive("ann"); len(keys) != 0 {
			t.Errorf("%d sessions of ann alive, want none", len(keys))
		}
		w.login(b, "ann") // and a login after it works
		w.checkListed("ann")
	})
	t.Run("after the login's listing", func(t *testing.T) {
		w, a := setup(t)
		b := w.device("B", 1)
		w.tap.SetHook(once(isIndexWrite, endAll(t, w, a)))
		r := b.do("POST", "/login", "user", "ann")
		w.tap.SetHook(nil)
		if r.StatusCode != http.StatusOK || b.token() == "" {
			t.Fatalf("a login listed before log out everywhere: %d %q; want accepted", r.StatusCode, r.body)
		}
		w.anonymous(b, "a login listed before log out everywhere")
		if keys := w.alive("ann"); len(keys) != 0 {
			t.Errorf("%d sessions of ann alive, want none", len(keys))
		}
	})
	t.Run("before the login", func(t *testing.T) {
		w, a := setup(t)
		endAll(t, w, a)()
		b := w.device("B", 1)
		w.login(b, "ann")
		w.loggedIn(b, "ann", "a login after log out everywhere")
		w.checkListed("ann")
	})
	t.Run("a login inside log out everywhere", func(t *testing.T) {
		w, a := setup(t)
		b := w.device("B", 1)
		w.tap.SetHook(once(isIndexRead, func() {
			if r := b.do("POST", "/login", "user", "ann"); r.StatusCode != http.StatusOK {
				t.Errorf("the login inside: %d %q", r.StatusCode, r.body)
			}
		}))
		if err := w.d.EndAll(bg, "ann"); err != nil {
			t.Fatal(err)
		}
		w.tap.SetHook(nil)
		w.anonymous(a, "after log out everywhere")
		w.anonymous(b, "a login inside log out everywhere, listed before its end")
		if keys := w.alive("ann"); len(keys) != 0 {
			t.Errorf("%d sessions of ann alive, want none", len(keys))
		}
	})
	t.Run("after a rotation's write", func(t *testing.T) {
		w, a := setup(t)
		k1 := a.key()
		w.age(k1, func(v *Visit) { v.Web.Issued = v.Web.Issued.Add(-16 * time.Minute) })
		w.tap.SetHook(once(isNewSessionWrite(k1), func() {
			if err := w.d.EndAll(bg, "ann"); err != nil {
				t.Error(err)
			}
		}))
		if r := a.do("POST", "/count"); r.StatusCode != http.StatusInternalServerError {
			t.Errorf("a rotation overtaken by log out everywhere: %d %q, want 500", r.StatusCode, r.body)
		}
		w.tap.SetHook(nil)
		w.anonymous(a, "after log out everywhere")
		if keys := w.alive("ann"); len(keys) != 0 {
			t.Errorf("%d sessions of ann alive, want none", len(keys))
		}
	})
	t.Run("after a rotation's forwarding entry", func(t *testing.T) {
		w, a := setup(t)
		k1 := a.key()
		w.age(k1, func(v *Visit) { v.Web.Issued = v.Web.Issued.Add(-16 * time.Minute) })
		// The rotation saves the count under the old key, writes the
		// new key, then the forwarding entry under the old key: after
		// that last one.
		var wroteNew atomic.Bool
		w.tap.SetHook(once(func(op Op) bool {
			if isNewSessionWrite(k1)(op) {
				wroteNew.Store(true)
			}
			return wroteNew.Load() && op.Name == "CompareAndSwap" && op.OK && op.Key == SessionNS+":"+k1
		}, func() {
			if err := w.d.EndAll(bg, "ann"); err != nil {
				t.Error(err)
			}
		}))
		r := a.do("POST", "/count")
		w.tap.SetHook(nil)
		if r.StatusCode != http.StatusInternalServerError {
			t.Errorf("a rotation whose session was ended before its listing: %d %q, want 500", r.StatusCode, r.body)
		}
		w.anonymous(a, "after log out everywhere")
		if keys := w.alive("ann"); len(keys) != 0 {
			t.Errorf("%d sessions of ann alive, want none", len(keys))
		}
	})
}

// LogoutEverywhereConcurrent: logins on six devices through two instances
// race log out everywhere from a seventh. The device logged in before is
// ended; each racing login is refused (no cookie), or ended, or (begun
// after log out everywhere) alive and listed; no live session is left out
// of the index.
func LogoutEverywhereConcurrent(t *testing.T, env Env) {
	w := newWorld(t, env, middleware.HTTPOptions{}, &middleware.DevicesOptions{})
	a := w.device("A", 0)
	w.login(a, "ann")
	const n = 6
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		ds    = make([]*device, n)
		codes = make([]int, n)
	)
	for i := range n {
		ds[i] = w.device(fmt.Sprintf("D%d", i), i%2)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			codes[i] = ds[i].do("POST", "/login", "user", "ann").StatusCode
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-start
		if r := a.do("POST", "/end-all"); r.StatusCode != http.StatusOK {
			t.Errorf("log out everywhere: %d %q", r.StatusCode, r.body)
		}
	}()
	close(start)
	wg.Wait()
	w.anonymous(a, "the device that logged out everywhere")
	listed := map[string]bool{}
	for _, e := range w.index("ann").Sessions {
		for _, k := range e.Keys {
			listed[k] = true
		}
	}
	var refused, ended, alive int
	for i, d := range ds {
		switch {
		case codes[i] != http.StatusOK:
			refused++
			if d.token() != "" {
				t.Errorf("%s: a refused login (%d) set a cookie", d.name, codes[i])
			}
		case d.token() == "":
			t.Errorf("%s: an accepted login set no cookie", d.name)
		default:
			_, ok := w.stored(d.key())
			switch {
			case !ok:
				ended++
			case !listed[d.key()]:
				t.Errorf("%s: an accepted login is alive and not listed", d.name)
			default:
				alive++
			}
		}
	}
	t.Logf("of %d logins racing log out everywhere: %d refused, %d accepted and ended, %d accepted after it and listed", n, refused, ended, alive)
	w.checkListed("ann")
}

// Flash: a message set by a POST is read once by the page its redirect
// leads to; a page that fails after taking it leaves it.
func Flash(t *testing.T, env Env) {
	w := newWorld(t, env, middleware.HTTPOptions{}, nil)
	a := w.device("A", 0)
	r := a.do("POST", "/flash", "text", "saved")
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/flash" {
		t.Fatalf("POST /flash: %d, Location %q; want 303 to /flash", r.StatusCode, r.Header.Get("Location"))
	}
	if r := a.do("GET", "/flash"); r.body != "saved" {
		t.Errorf("the page after the redirect: %q, want saved", r.body)
	}
	if r := a.do("GET", "/flash"); r.body != "" {
		t.Errorf("the page again: %q, want no message", r.body)
	}
	a.do("POST", "/flash", "text", "kept")
	if r := a.do("GET", "/flash-fail"); r.StatusCode != http.StatusInternalServerError {
		t.Fatalf("GET /flash-fail: %d", r.StatusCode)
	}
	if r := a.do("GET", "/flash"); r.body != "kept" {
		t.Errorf("after a page that failed: %q, want kept", r.body)
	}
	for i := range middleware.MaxFlash + 2 {
		a.do("POST", "/flash", "text", fmt.Sprint(i))
	}
	if r := a.do("GET", "/flash"); len(strings.Split(r.body, ",")) != middleware.MaxFlash || !strings.HasSuffix(r.body, fmt.Sprint(middleware.MaxFlash+1)) {
		t.Errorf("after %d messages: %q, want the last %d", middleware.MaxFlash+2, r.body, middleware.MaxFlash)
	}
}

// FlashConcurrent: a message set while another request of the same user
// runs is never lost: through one instance both succeed (the key's lock);
// through two (two processes), a request that would overwrite the other's
// change fails with a 500 instead. The message is read exactly once iff
// its POST answered 303.
func FlashConcurrent(t *testing.T, env Env) {
	for _, two := range []bool{false, true} {
		t.Run(fmt.Sprintf("instances=%d", map[bool]int{false: 1, true: 2}[two]), func(t *testing.T) {
			w := newWorld(t, env, middleware.HTTPOptions{}, nil)
			a := w.device("A", 0)
			a.do("POST", "/count")
			other := a.withToken(a.token())
			if two {
				other.app = w.apps[1]
			}
			const rounds = 3
			for i := range rounds {
				var wg sync.WaitGroup
				var flash, count response
				wg.Add(2)
				go func() { defer wg.Done(); flash = a.do("POST", "/flash", "text", fmt.Sprint("m", i)) }()
				go func() { defer wg.Done(); count = other.do("POST", "/count") }()
				wg.Wait()
				if !two && (flash.StatusCode != http.StatusSeeOther || count.StatusCode != http.StatusOK) {
					t.Errorf("round %d through one instance: flash %d, count %d; want both to succeed", i, flash.StatusCode, count.StatusCode)
				}
				want := ""
				if flash.StatusCode == http.StatusSeeOther {
					want = fmt.Sprint("m", i)
				} else if flash.StatusCode != http.StatusInternalServerError {
					t.Errorf("round %d: flash %d, want 303 or a 500", i, flash.StatusCode)
				}
				if r := a.do("GET", "/flash"); r.body != want {
					t.Errorf("round %d (flash %d, count %d): the next page shows %q, want %q", i, flash.StatusCode, count.StatusCode, r.body, want)
				}
				if r := a.do("GET", "/flash"); r.body != "" {
					t.Errorf("round %d: the page after shows %q again", i, r.body)
				}
			}
		})
	}
}

// Cookie: the __Host- prefix by default, Partitioned, Clear-Site-Data on
// logout.
func Cookie(t *testing.T, env Env) {
	w := newWorld(t, env, middleware.HTTPOptions{Partitioned: true, ClearSiteData: []string{"*"}}, nil)
	a := w.device("A", 0)
	r := a.do("POST", "/count")
	c := setCookie(r)
	if c == nil || !c.Secure || !c.HttpOnly || c.Path != "/" || c.Domain != "" || !c.Partitioned || c.SameSite != http.SameSiteLaxMode {
		t.Errorf("cookie %+v (Set-Cookie %q), want __Host-session, Secure, HttpOnly, Path=/, no Domain, Partitioned, SameSite=Lax", c, r.Header.Values("Set-Cookie"))
	}
	r = a.do("POST", "/logout")
	if got := r.Header.Get("Clear-Site-Data"); got != `"*"` {
		t.Errorf("Clear-Site-Data on logout = %q, want %q", got, `"*"`)
	}
	if r := a.do("POST", "/count"); r.Header.Get("Clear-Site-Data") != "" {
		t.Error("Clear-Site-Data on a response that destroys nothing")
	}
}
