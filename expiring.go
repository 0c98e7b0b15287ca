package session

import "time"

// Expiring holds a value that forgets itself after its own TTL: the typed
// answer to a per-field expiry, such as a one-time code inside a session
// that lives for days. Its zero value holds nothing.
//
// Its fields are exported so that codecs can store them; use Set, Get and
// Clear rather than the fields.
//
//	type Login struct {
//		Code session.Expiring[string] `json:"code"`
//	}
//	s.Data.Code.Set("493817", 5*time.Minute)
//	code, ok := s.Data.Code.Get() // ok is false after five minutes
type Expiring[V any] struct {
	Value V `json:"value"`
	// Expires is when Value is forgotten; the zero time means never.
	Expires time.Time `json:"expires,omitzero"`
	// Valid reports that Value was set and not cleared.
	Valid bool `json:"valid,omitempty"`
}

// Set stores v for ttl from now. A ttl of zero or less keeps it until
// Clear. For a value that must be gone at a given instant, such as a
// deadline that may already have passed, use SetUntil: a ttl computed as
// time.Until(deadline) for a past deadline would keep v forever here.
func (e *Expiring[V]) Set(v V, ttl time.Duration) {
	e.Value, e.Valid, e.Expires = v, true, time.Time{}
	if ttl > 0 {
		e.Expires = time.Now().Add(ttl).UTC()
	}
}

// SetUntil stores v until deadline. A deadline that is not after now
// leaves the field not set (as Clear does); the zero deadline is in the
// past too.
func (e *Expiring[V]) SetUntil(v V, deadline time.Time) {
	if !time.Now().Before(deadline) {
		e.Clear()
		return
	}
	e.Value, e.Valid, e.Expires = v, true, deadline.UTC()
}

// Get returns the value and true while it is set and has not expired, and
// the zero V and false otherwise. A Get after expiry clears the field, so the
// stale value leaves the store with the next Save: a handler that only
// reads an expired field therefore changes the session, and its Save
// writes.
func (e *Expiring[V]) Get() (V, bool) {
	if e.Valid && !e.Expires.IsZero() && !time.Now().Before(e.Expires) {
		e.Clear()
	}
	if !e.Valid {
		var zero V
		return zero, false
	}
	return e.Value, true
}

// Clear forgets the value.
func (e *Expiring[V]) Clear() { *e = Expiring[V]{} }
