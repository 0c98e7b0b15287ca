package middleware

import (
	"errors"
	"net/http"

	session "github.com/typedsession/session"
)

// errNoDevices says that HTTPOptions.Devices is not set.
var errNoDevices = errors.New("session/middleware: HTTPOptions.Devices is not set; make an index with NewDevices")

// loggedIn returns the request's state, the Web field of its session of
// type T and the index of devices, or an error: session.ErrNoSession when
// no HTTP middleware for T bound the request, an error when it keeps no
// index, the load's error, ErrCommitted after the commit, ErrNotLoggedIn
// for a session no Login logged in.
func loggedIn[T any](r *http.Request) (*httpState[T], *Web, *Devices, error) {
	st, err := state[T](r)
	if err != nil {
		return nil, nil, nil, err
	}
	d := st.mw.opts.Devices
	if d == nil {
		return nil, nil, nil, errNoDevices
	}
	s, err := session.From[T](r.Context())
	if err != nil {
		if st.isCommitted() {
			return nil, nil, nil, ErrCommitted
		}
		return nil, nil, nil, err
	}
	w := st.mw.web.of(s)
	if w.User == "" || w.ID == "" {
		return nil, nil, nil, ErrNotLoggedIn
	}
	return st, w, d, nil
}

// ListDevices returns the sessions of the user that the request's session
// of type T is logged in as ("your devices"), the most recently seen
// first, with Current set on the request's own. It reads the user's index
// ([Devices]) once. It returns ErrNotLoggedIn for a session no [Login]
// logged in, an error when HTTPOptions.Devices is not set, the load's
// error, and ErrCommitted after the commit.
func ListDevices[T any](r *http.Request) ([]Device, error) {
	_, w, d, err := loggedIn[T](r)
	if err != nil {
		return nil, err
	}
	list, err := d.List(r.Context(), w.User)
	if err != nil {
		return nil, err
	}
	for i := range list {
		list[i].Current = list[i].ID == w.ID
	}
	return list, nil
}

// EndDevice ends the session id (a [Device].ID) of the user that the
// request's session of type T is logged in as, at once (see
// [Devices.End]). The request's own ID is [Destroy]. An ID the user's
// index does not list is not an error. Errors as [ListDevices].
func EndDevice[T any](r *http.Request, id string) error {
	_, w, d, err := loggedIn[T](r)
	if err != nil {
		return err
	}
	if id == w.ID {
		return Destroy[T](r)
	}
	return d.End(r.Context(), w.User, id)
}

// EndOtherDevices ends, at once, every session of the user that the
// request's session of type T is logged in as, except the request's own
// ("log out other devices"; see [Devices.EndOthers]). Errors as
// [ListDevices].
func EndOtherDevices[T any](r *http.Request) error {
	_, w, d, err := loggedIn[T](r)
	if err != nil {
		return err
	}
	return d.EndOthers(r.Context(), w.User, w.ID)
}

// EndAllDevices ends, at once, every session of the user that the
// request's session of type T is logged in as ("log out everywhere"; see
// [Devices.EndAll]), and destroys the request's own at the commit, as
// [Destroy] does (its cookie is expired; HTTPOptions.ClearSiteData is
// sent). Errors as [ListDevices].
func EndAllDevices[T any](r *http.Request) error {
	st, w, d, err := loggedIn[T](r)
	if err != nil {
		return err
	}
	if err := d.EndAll(r.Context(), w.User); err != nil {
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.committed {
		return ErrCommitted
	}
	st.destroy, st.renew, st.login = true, false, nil
	return nil
}
