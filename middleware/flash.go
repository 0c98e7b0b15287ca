package middleware

// Flash holds messages of type F that one request leaves for a later one:
// "Saved." after a form's POST, shown by the page its redirect leads to
// (Post/Redirect/Get). It is a field of the session type, so a message is
// typed, validated and stored like the rest of the session:
//
//	type Visitor struct {
//		Web   middleware.Web            `json:"web"`
//		Flash middleware.Flash[Notice]  `json:"flash,omitempty"`
//		Prefs Prefs                     `json:"prefs"`
//	}
//
//	s.Data.Flash.Add(Notice{Kind: "ok", Text: "Saved."}) // in POST /prefs, then 303 to /
//	notices := s.Data.Flash.Take()                      // in GET /: shown once
//
// Add and Take change the session, so they are saved with it, when the
// response starts, like any change (see [HTTP]): a message is set only if
// the request that set it succeeds, and taken (gone) only if the request
// that took it succeeds: a page that fails with a 500 leaves it for the
// next one. Messages are never lost to a concurrent request of the same
// user: requests of one session run one after the other through one
// middleware value, and across processes the compare-and-swap of the save
// makes the later of two conflicting requests fail instead of overwriting
// the other's message (session.ErrConflict, a 500), so a message reported
// as set (a 303) is there for the next Take. Only handlers that call Take
// consume messages: an image, a script or a polling request of the same
// visitor that does not call it leaves them in place.
//
// A Flash holds at most [MaxFlash] messages: Add drops the oldest beyond
// that (messages nobody took for that many requests are stale). The zero
// value is empty and ready to use; it encodes as a JSON array, or nothing
// with omitempty.
type Flash[F any] []F

// MaxFlash is the most messages a [Flash] holds.
const MaxFlash = 16

// Add appends v to the messages, dropping the oldest when there are
// MaxFlash already.
func (f *Flash[F]) Add(v F) {
	if len(*f) >= MaxFlash {
		*f = append((*f)[:0:0], (*f)[len(*f)-MaxFlash+1:]...)
	}
	*f = append(*f, v)
}

// Take returns the messages, oldest first, and leaves the Flash empty. It
// returns nil when there are none (and then changes nothing, so a page
// that only looks for messages costs no write).
func (f *Flash[F]) Take() []F {
	msgs := *f
	if len(msgs) == 0 {
		return nil
	}
	*f = nil
	return msgs
}
