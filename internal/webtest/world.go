package webtest

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/middleware"
)

// TTL is the idle timeout of the tests' sessions.
const TTL = 24 * time.Hour

// world is one test's store, manager, index and two app instances (two
// processes: each its own middleware value and lock table).
type world struct {
	t    testing.TB
	env  Env
	tap  *Tap
	m    *session.Manager[Visit]
	d    *middleware.Devices // nil without an index
	ix   *session.Manager[indexDoc]
	opts middleware.HTTPOptions
	apps [2]Doer
}

// newWorld builds a world; dopts, when not nil, makes an index of
// devices (its Store and Namespace are filled in).
func newWorld(t testing.TB, env Env, opts middleware.HTTPOptions, dopts *middleware.DevicesOptions) *world {
	t.Helper()
	tap := NewTap(env.NewStore(t))
	m, err := session.New(session.Config[Visit]{Store: tap, Namespace: SessionNS, TTL: TTL})
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, env: env, tap: tap, m: m}
	if dopts != nil {
		o := *dopts
		o.Store, o.Namespace = tap, DevicesNS
		if w.d, err = middleware.NewDevices(m, o); err != nil {
			t.Fatal(err)
		}
		opts.Devices = w.d
	}
	// The index's own TTL with SeenEvery 5 minutes (see Devices), so that
	// the tests' changes leave its expiry as the middleware's would.
	if w.ix, err = session.New(session.Config[indexDoc]{Store: tap, Namespace: DevicesNS, TTL: TTL + 2*5*time.Minute + time.Minute}); err != nil {
		t.Fatal(err)
	}
	if opts.OnError == nil {
		opts.OnError = func(_ context.Context, op, _ string, err error) { t.Logf("OnError %s: %v", op, err) }
	}
	w.opts = opts
	w.apps = [2]Doer{env.NewApp(t, m, opts), env.NewApp(t, m, opts)}
	t.Cleanup(func() { tap.SetHook(nil) })
	return w
}

// stats returns the tap's counts since the last call.
func (w *world) stats() map[string]Stat { return w.tap.Stats() }

// device returns a new browser that talks to app instance inst.
func (w *world) device(name string, inst int) *device { return newDevice(w.t, name, w.apps[inst]) }

// login logs d in as user and fails the test unless it worked.
func (w *world) login(d *device, user string, params ...string) response {
	w.t.Helper()
	r := d.do("POST", "/login", append([]string{"user", user}, params...)...)
	if r.StatusCode != http.StatusOK || d.token() == "" {
		w.t.Fatalf("%s: login as %s: %d %q, token %q", d.name, user, r.StatusCode, r.body, d.token())
	}
	return r
}

// stored returns the session stored under key and whether there is one.
func (w *world) stored(key string) (Visit, bool) {
	w.t.Helper()
	if key == "" {
		return Visit{}, false
	}
	s, err := w.m.Load(bg, key)
	if err != nil {
		w.t.Fatalf("Load %s: %v", key, err)
	}
	return s.Data, !s.IsNew()
}

// age changes the session stored under key (to move its times back).
func (w *world) age(key string, fn func(*Visit)) {
	w.t.Helper()
	if _, err := w.m.Update(bg, key, func(v *Visit) error { fn(v); return nil }); err != nil {
		w.t.Fatal(err)
	}
}

// index returns the stored index of user.
func (w *world) index(user string) indexDoc {
	w.t.Helper()
	s, err := w.ix.Load(bg, user)
	if err != nil {
		w.t.Fatal(err)
	}
	return s.Data
}

// ageIndex changes the stored index of user.
func (w *world) ageIndex(user string, fn func(*indexDoc)) {
	w.t.Helper()
	if _, err := w.ix.Update(bg, user, func(d *indexDoc) error { fn(d); return nil }); err != nil {
		w.t.Fatal(err)
	}
}

// entry returns the index entry of user that lists key.
func (w *world) entry(user, key string) (indexEntry, bool) {
	for _, e := range w.index(user).Sessions {
		if slices.Contains(e.Keys, key) {
			return e, true
		}
	}
	return indexEntry{}, false
}

// alive returns the keys of the live sessions of user in the store (not
// forwarding entries): of every session key the test wrote, those that
// hold one.
func (w *world) alive(user string) []string {
	w.t.Helper()
	var out []string
	for _, k := range w.tap.Written() {
		if kind(k) != "session" {
			continue
		}
		k = strings.TrimPrefix(k, SessionNS+":")
		if v, ok := w.stored(k); ok && v.Web.User == user && v.Web.Moved == "" {
			out = append(out, k)
		}
	}
	return out
}

// checkListed fails the test for a live session of user that the user's
// index does not list: one that log out everywhere would miss.
func (w *world) checkListed(user string) {
	w.t.Helper()
	listed := map[string]bool{}
	for _, e := range w.index(user).Sessions {
		for _, k := range e.Keys {
			listed[k] = true
		}
	}
	for _, k := range w.alive(user) {
		if !listed[k] {
			w.t.Errorf("the session %.12s… of %s is alive and not listed in the index: log out everywhere would miss it", k, user)
		}
	}
}

// anonymous fails the test unless d's next request finds no logged-in
// session.
func (w *world) anonymous(d *device, why string) {
	w.t.Helper()
	if r := d.do("GET", "/show"); r.StatusCode != http.StatusOK || !strings.HasPrefix(r.body, "||") {
		w.t.Errorf("%s: %s: GET /show = %d %q, want a session nobody logged in", d.name, why, r.StatusCode, r.body)
	}
}

// loggedIn fails the test unless d's next request finds its session
// logged in as user.
func (w *world) loggedIn(d *device, user, why string) {
	w.t.Helper()
	if r := d.do("GET", "/show"); r.StatusCode != http.StatusOK || !strings.HasPrefix(r.body, user+"|") {
		w.t.Errorf("%s: %s: GET /show = %d %q, want logged in as %s", d.name, why, r.StatusCode, r.body, user)
	}
}

// once returns a hook that runs fn at the first operation for which
// match holds, and never again.
func once(match func(Op) bool, fn func()) func(Op) {
	var done atomic.Bool
	return func(op Op) {
		if match(op) && done.CompareAndSwap(false, true) {
			fn()
		}
	}
}

// isNewSessionWrite matches the write of a session under a new key (the
// first half of a move or a rotation) other than except.
func isNewSessionWrite(except string) func(Op) bool {
	return func(op Op) bool {
		return op.Name == "CompareAndSwap" && op.OldIsNil && op.OK && kind(op.Key) == "session" && op.Key != SessionNS+":"+except
	}
}

// isIndexWrite matches a successful compare-and-swap of an index.
func isIndexWrite(op Op) bool {
	return op.Name == "CompareAndSwap" && op.OK && kind(op.Key) == "index"
}

// isIndexRead matches a read of an index.
func isIndexRead(op Op) bool {
	return (op.Name == "Get" || op.Name == "GetWithTTL" || op.Name == "GetAndTouch") && kind(op.Key) == "index"
}
