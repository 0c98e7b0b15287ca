package middleware

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/internal/managercaps"
	"github.com/typedsession/session/store"
)

// Devices is the per-user index of logged-in sessions behind "your
// devices" and "log out everywhere": for each user, one value in the
// sessions' store that lists that user's sessions (logged in with
// [Login] through an [HTTP] middleware whose HTTPOptions.Devices is this
// index) with when each logged in, when it was last seen and, optionally,
// its browser's User-Agent. Listing or ending a user's sessions reads that
// one value; nothing scans the store. It is kept with compare-and-swap, so
// a store without it is refused. A Devices is safe for concurrent use.
//
// # The index's rules
//
// One value per user, under DevicesOptions.Namespace and the user's ID,
// holds at most DevicesOptions.Max entries (default 20, about 300 bytes
// each with a User-Agent): a login beyond that ends the least recently
// seen session. Each entry lists the session keys of its session (the
// current one, and the forwarding entry of a token rotation during its
// grace). Every change of the index is a compare-and-swap of the whole
// value, and obeys two rules that make "log out everywhere" leave no
// session alive behind it:
//
//   - A session key leaves the index only after the session under it was
//     deleted: ending a session (End, EndOthers, EndAll, the expiry of
//     entries, the limit) deletes its keys, then removes its entry; if
//     the index changed in between, it reads it again and deletes again.
//   - A session's cookie goes out only after the index lists it: a login,
//     a Renew or a rotation writes the session first, then lists its new
//     key, and only then sets the cookie. A session the index never listed
//     is one whose token nobody was given.
//
// So a session that the index listed when an EndAll replaced the index
// was deleted before, and one listed after was listed after its last
// write: a login racing "log out everywhere" is either listed (and ended),
// or lists itself after it. EndAll and EndOthers also advance the index's
// generation, and a login refuses to list itself in a generation other
// than the one it began in (it deletes its session and fails with
// session.ErrConflict, a 500 without a cookie): so a login that began
// before "log out everywhere" finished is ended or never accepted, and
// only one that began after it survives.
//
// Entries of sessions that are gone are dropped at the index's next
// change: an entry counts as gone once its session's absolute timeout
// (HTTPOptions.AbsoluteTimeout, or RememberFor) has passed, or when it was
// last seen longer ago than the sessions' idle timeout (their Manager's
// TTL) plus SeenEvery plus a minute. The rule deletes the entry's keys
// first, like any removal, so a session judged gone by a wrong clock is
// ended, never left unlisted. The index value expires (the store's TTL)
// the sessions' TTL plus twice SeenEvery after its last change, and every
// live session changes it at least once per SeenEvery of use; with
// sessions that never expire (TTL 0) it never expires either, and only
// the absolute timeout ends entries. A session can outlive its index value
// without changing it (its requests fail: a 5xx commits nothing, but the
// load extends the session's expiry; or the app keeps it alive with
// Manager.Update): its next request finds it not seen for longer than the
// rule above allows and ends it, as the index's next change would have,
// before any handler sees it; so the index's expiry never leaves a
// session that log out everywhere cannot end.
//
// # What it costs
//
// A request of a logged-in session costs nothing more, except once per
// SeenEvery (default 5 minutes) of its use, when the index records it as
// seen before the session is saved: a read and a compare-and-swap of the
// index, and a write of the session. A login costs a read of the index
// before the session is written and a compare-and-swap after; a logout
// (Destroy) a read and a compare-and-swap after the delete. BENCHMARKS.md
// has the measured round trips and bytes.
type Devices struct {
	ix        *session.Manager[deviceIndex]
	del       func(ctx context.Context, key string) error // the sessions' Manager.Delete
	owner     any                                         // the sessions' *session.Manager[T]
	namespace string
	ttl       time.Duration // the sessions' idle timeout
	max       int
	seenEvery time.Duration
	agent     bool
}

// DevicesOptions configures [NewDevices]. Store and Namespace are required;
// the other fields' zero values mean their defaults.
type DevicesOptions struct {
	// Store is where the index lives: the sessions' store, which must
	// have compare-and-swap (store.Swapper), as must the store of the
	// Manager given to NewDevices (the ending of a session rests on it).
	// Required.
	Store store.Store

	// Namespace is the namespace of the index's values (one per user,
	// under the user's ID). Required; give each session type's index its
	// own, different from every session Namespace in the store (say
	// "prefs-devices" next to "prefs"). It may not contain ':'.
	Namespace string

	// Max is the most sessions one user has at a time: a login beyond it
	// ends that user's least recently seen session. Zero means 20; at
	// most 1000.
	Max int

	// SeenEvery is the precision of an entry's last-seen time: a request
	// of a logged-in session records it in the index when the last record
	// is at least that old. Zero means 5 minutes.
	SeenEvery time.Duration

	// UserAgent records the User-Agent header of the request that logged
	// in (and of the last one recorded as seen), its first 256 bytes, in
	// the entry. False (the default) records none.
	UserAgent bool
}

// Device is one logged-in session of a user, as the index lists it.
type Device struct {
	// ID identifies the session (its Web.ID); pass it to End or EndDevice.
	ID string
	// Created is when it logged in.
	Created time.Time
	// Seen is when it was last seen, to DevicesOptions.SeenEvery.
	Seen time.Time
	// UserAgent is the User-Agent header last recorded; empty unless
	// DevicesOptions.UserAgent.
	UserAgent string
	// Remember says the login asked to be remembered (LoginOptions).
	Remember bool
	// Current marks the session of the request that asked ([ListDevices]).
	Current bool
}

// deviceIndex is the stored index of one user. Gen advances at every
// EndAll and EndOthers.
type deviceIndex struct {
	Gen      uint64        `json:"gen,omitempty"`
	Sessions []deviceEntry `json:"sessions,omitempty"`
}

// deviceEntry is one session of the index: Keys are its session keys
// (the current one first).
type deviceEntry struct {
	ID       string    `json:"id"`
	Keys     []string  `json:"keys"`
	Created  time.Time `json:"created"`
	Seen     time.Time `json:"seen"`
	Until    time.Time `json:"until,omitzero"` // the end of its lifetime; zero: none
	Agent    string    `json:"agent,omitempty"`
	Remember bool      `json:"remember,omitempty"`
}

// Defaults of DevicesOptions.
const (
	defaultMaxDevices = 20
	maxMaxDevices     = 1000
	defaultSeenEvery  = 5 * time.Minute
)

// NewDevices returns the index of the sessions of m, kept in opts.Store
// (m's store). It returns an error for a store without compare-and-swap
// (opts.Store, or m's own: one matching errors.ErrUnsupported),
// an empty or invalid Namespace or m's own, a negative or too large Max,
// or a negative SeenEvery.
func NewDevices[T any](m *session.Manager[T], opts DevicesOptions) (*Devices, error) {
	if m == nil {
		return nil, errors.New("session/middleware: NewDevices with a nil *session.Manager")
	}
	if opts.Store == nil {
		return nil, errors.New("session/middleware: DevicesOptions.Store is nil; give it the sessions' store")
	}
	if _, ok := opts.Store.(store.Swapper); !ok {
		return nil, fmt.Errorf("session/middleware: DevicesOptions.Store (%T) has no compare-and-swap (store.Swapper); the index of a user's sessions needs it", opts.Store)
	}
	if !managercaps.Swaps(m) {
		// Ending a session (End, EndAll, EndOthers) deletes it, and a
		// request of it still running must then fail to save it back:
		// that is the compare-and-swap of the sessions' own store.
		return nil, fmt.Errorf("session/middleware: the sessions' store (the Manager's) has no compare-and-swap (store.Swapper), so a request running across a log-out from another device would save its session back: %w; give the Manager a store with compare-and-swap (a wrapper of a store must forward CompareAndSwap too)", errors.ErrUnsupported)
	}
	if opts.Namespace == "" {
		return nil, errors.New(`session/middleware: DevicesOptions.Namespace is empty; name the index's namespace (say "prefs-devices")`)
	}
	if opts.Namespace == m.Namespace() {
		return nil, fmt.Errorf("session/middleware: DevicesOptions.Namespace %q is the sessions' own namespace; the index's values would be taken for sessions (MigrateAll, tsinspect): give it one of its own", opts.Namespace)
	}
	if opts.Max < 0 || opts.Max > maxMaxDevices {
		return nil, fmt.Errorf("session/middleware: DevicesOptions.Max is %d; use 1 to %d (0: %d)", opts.Max, maxMaxDevices, defaultMaxDevices)
	}
	if opts.SeenEvery < 0 {
		return nil, fmt.Errorf("session/middleware: DevicesOptions.SeenEvery is negative (%v)", opts.SeenEvery)
	}
	d := &Devices{del: m.Delete, owner: m, namespace: opts.Namespace, ttl: m.TTL(), max: opts.Max, seenEvery: opts.SeenEvery, agent: opts.UserAgent}
	if d.max == 0 {
		d.max = defaultMaxDevices
	}
	if d.seenEvery == 0 {
		d.seenEvery = defaultSeenEvery
	}
	var ixTTL time.Duration
	if d.ttl > 0 {
		ixTTL = addSat(d.unseenAfter(), d.seenEvery)
	}
	ix, err := session.New(session.Config[deviceIndex]{Store: opts.Store, Namespace: opts.Namespace, TTL: ixTTL})
	if err != nil {
		return nil, fmt.Errorf("session/middleware: DevicesOptions: %w", err)
	}
	d.ix = ix
	return d, nil
}

// checkUser returns an error for a user ID that cannot name an index
// value.
func (d *Devices) checkUser(user string) error {
	if user == "" {
		return errors.New("session/middleware: an empty user ID")
	}
	if err := store.CheckKey(d.namespace + ":" + user); err != nil {
		return fmt.Errorf("session/middleware: user ID: %w", err)
	}
	return nil
}

// List returns the user's live sessions, the most recently seen first. It
// reads the user's index once (a read that, like every Load, extends the
// value's expiry when it is near), and writes nothing else.
func (d *Devices) List(ctx context.Context, user string) ([]Device, error) {
	if err := d.checkUser(user); err != nil {
		return nil, err
	}
	s, err := d.ix.Load(ctx, user)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	var out []Device
	for _, e := range s.Data.Sessions {
		if !d.gone(e, now) {
			out = append(out, Device{ID: e.ID, Created: e.Created, Seen: e.Seen, UserAgent: e.Agent, Remember: e.Remember})
		}
	}
	slices.SortStableFunc(out, func(a, b Device) int { return b.Seen.Compare(a.Seen) })
	return out, nil
}

// End ends the user's session id: its session is deleted from the store,
// then its entry removed. An id the index does not list (ended already) is
// not an error. A request of that session that is running may still
// answer, but what it saves fails with session.ErrConflict.
func (d *Devices) End(ctx context.Context, user, id string) error {
	if err := d.checkUser(user); err != nil {
		return err
	}
	return d.remove(ctx, user, id, "")
}

// remove removes the entry id from the user's index, deleting its keys
// first except deleted, a key the caller has just deleted ("": none).
func (d *Devices) remove(ctx context.Context, user, id, deleted string) error {
	return d.mutate(ctx, user, nil, deleted, func(ix *deviceIndex, _ time.Time) error {
		ix.Sessions = slices.DeleteFunc(ix.Sessions, func(e deviceEntry) bool { return e.ID == id })
		return nil
	})
}

// EndOthers ends every session of the user but keep ("log out other
// devices"), as End does, and advances the index's generation, so that a
// login of the user that began before it and is still running is refused.
func (d *Devices) EndOthers(ctx context.Context, user, keep string) error {
	if err := d.checkUser(user); err != nil {
		return err
	}
	return d.mutate(ctx, user, nil, "", func(ix *deviceIndex, _ time.Time) error {
		ix.Gen++
		ix.Sessions = slices.DeleteFunc(ix.Sessions, func(e deviceEntry) bool { return e.ID != keep })
		return nil
	})
}

// EndAll ends every session of the user ("log out everywhere"), as End
// does, and advances the index's generation, so that a login of the user
// that began before it and is still running is refused. After a password
// change, call it from wherever the change is made.
func (d *Devices) EndAll(ctx context.Context, user string) error {
	if err := d.checkUser(user); err != nil {
		return err
	}
	return d.mutate(ctx, user, nil, "", func(ix *deviceIndex, _ time.Time) error {
		ix.Gen++
		ix.Sessions = nil
		return nil
	})
}

// errEnded says that the index no longer lists a session: it was ended.
// It does not match session.ErrConflict, which mutate's retry would take
// for a reason to try again; conflictError turns it into one for the
// commit.
var errEnded = errors.New("the session was ended (logged out from another device) while the request ran")

// errOvertaken says that a login was overtaken by "log out everywhere"
// (see errEnded on matching).
var errOvertaken = errors.New("the user was logged out everywhere while this login ran; log in again")

// conflictError returns err, or, for errEnded and errOvertaken, an error
// matching session.ErrConflict that says so.
func conflictError(err error) error {
	if errors.Is(err, errEnded) || errors.Is(err, errOvertaken) {
		return fmt.Errorf("%w: %w", session.ErrConflict, err)
	}
	return err
}

// begin reads the user's index before a login writes its session: the
// generation it begins in.
func (d *Devices) begin(ctx context.Context, user string) (*session.Session[deviceIndex], error) {
	return d.ix.Load(ctx, user)
}

// add lists e, the session a login wrote, in the user's index that begin
// read as first, in place of the entry replace (the session's previous
// login, ""). It fails with errOvertaken when EndAll or EndOthers changed
// the generation since.
func (d *Devices) add(ctx context.Context, user string, first *session.Session[deviceIndex], e deviceEntry, replace string) error {
	gen := first.Data.Gen
	return d.mutate(ctx, user, first, "", func(ix *deviceIndex, now time.Time) error {
		if ix.Gen != gen {
			return errOvertaken
		}
		ix.Sessions = slices.DeleteFunc(ix.Sessions, func(o deviceEntry) bool { return o.ID == e.ID || (replace != "" && o.ID == replace) })
		ix.Sessions = d.live(ix.Sessions, now)
		if extra := len(ix.Sessions) - (d.max - 1); extra > 0 {
			// The limit: end the least recently seen.
			slices.SortStableFunc(ix.Sessions, func(a, b deviceEntry) int { return a.Seen.Compare(b.Seen) })
			ix.Sessions = slices.Delete(ix.Sessions, 0, extra)
		}
		e.Created, e.Seen = e.Created.UTC().Truncate(time.Second), e.Seen.UTC().Truncate(time.Second)
		if !e.Until.IsZero() { // rounded up: never before the session's end
			e.Until = e.Until.UTC().Add(time.Second - time.Nanosecond).Truncate(time.Second)
		}
		ix.Sessions = append(ix.Sessions, e)
		return nil
	})
}

// touch records at now that the user's session id, under keys, was seen
// (with the User-Agent agent, when recorded): a rotation or Renew lists
// its new keys with it. It fails with errEnded when the index does not
// list the session.
func (d *Devices) touch(ctx context.Context, user, id string, keys []string, agent string, now time.Time) error {
	return d.mutate(ctx, user, nil, "", func(ix *deviceIndex, _ time.Time) error {
		i := slices.IndexFunc(ix.Sessions, func(e deviceEntry) bool { return e.ID == id })
		if i < 0 {
			return errEnded
		}
		e := &ix.Sessions[i]
		e.Keys, e.Seen = keys, now.UTC().Truncate(time.Second)
		if d.agent && agent != "" {
			e.Agent = agent
		}
		return nil
	})
}

// live returns entries without those that are gone at now.
func (d *Devices) live(entries []deviceEntry, now time.Time) []deviceEntry {
	return slices.DeleteFunc(entries, func(e deviceEntry) bool { return d.gone(e, now) })
}

// gone reports whether the session of e has ended by now: its lifetime is
// over, or it was last seen longer ago than an idle session lives.
func (d *Devices) gone(e deviceEntry, now time.Time) bool {
	if !e.Until.IsZero() && !now.Before(e.Until) {
		return true
	}
	return d.unseen(e.Seen, now)
}

// unseen reports whether a session last recorded as seen at seen is gone
// by now for the index: longer ago than an idle session lives (the
// sessions' TTL) plus SeenEvery plus a minute for the clocks. The index
// drops such an entry (deleting its session) at its next change, and the
// index value itself expires a SeenEvery later still; the load ends such
// a session by the same rule, so that one the index forgot is never
// served.
func (d *Devices) unseen(seen, now time.Time) bool {
	return d.ttl > 0 && now.Sub(seen) > d.unseenAfter()
}

// unseenAfter is the sessions' TTL plus SeenEvery plus a minute, the most
// time.Duration holds when that sum would overflow (a TTL or SeenEvery
// near the largest duration).
func (d *Devices) unseenAfter() time.Duration {
	return addSat(addSat(d.ttl, d.seenEvery), time.Minute)
}

// addSat returns a + b for non-negative a and b, or the largest duration
// when the sum overflows.
func addSat(a, b time.Duration) time.Duration {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// mutate is the one way the index changes: it loads the user's index (or
// takes first, read before), applies fn, drops the entries that are gone,
// deletes every session key that the change removes from the index (but
// deleted, which the caller has just deleted), and only then writes the
// index with compare-and-swap; on a conflict it does it all again (the
// retry policy of session.Manager.Retry). fn's error aborts without a
// write.
func (d *Devices) mutate(ctx context.Context, user string, first *session.Session[deviceIndex], deleted string, fn func(ix *deviceIndex, now time.Time) error) error {
	return d.ix.Retry(ctx, func() error {
		s := first
		first = nil
		if s == nil {
			var err error
			if s, err = d.ix.Load(ctx, user); err != nil {
				return err
			}
		}
		had := keysOf(s.Data.Sessions)
		now := time.Now().UTC().Truncate(time.Second) // the index's precision: short in JSON
		if err := fn(&s.Data, now); err != nil {
			return err
		}
		s.Data.Sessions = d.live(s.Data.Sessions, now)
		for k := range keysOf(s.Data.Sessions) {
			delete(had, k)
		}
		delete(had, deleted)
		if err := d.deleteKeys(ctx, had); err != nil {
			return err
		}
		return d.ix.Save(ctx, s)
	})
}

// keysOf returns the set of session keys the entries list.
func keysOf(entries []deviceEntry) map[string]bool {
	keys := make(map[string]bool)
	for _, e := range entries {
		for _, k := range e.Keys {
			keys[k] = true
		}
	}
	return keys
}

// deleteKeys deletes the sessions under keys, at most 8 at a time, and
// returns the first error.
func (d *Devices) deleteKeys(ctx context.Context, keys map[string]bool) error {
	if len(keys) == 0 {
		return nil
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	slices.Sort(sorted)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sem  = make(chan struct{}, 8)
	)
	for _, k := range sorted {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := d.del(ctx, k); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}
