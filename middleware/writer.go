package middleware

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
)

// responseWriter commits the session before the response goes out. In the
// default (streaming) mode it commits on the handler's first WriteHeader,
// Write or Flush, and passes everything through after that. In buffered
// mode ([HTTPOptions].Buffered) it holds the status and the body until the
// handler returns, commits then, and writes the response only if the
// commit succeeded.
type responseWriter struct {
	http.ResponseWriter
	commit   func(header http.Header, code int) error
	buffered bool

	wroteHeader bool // the handler's final status is decided
	code        int  // buffered mode: that status
	body        bytes.Buffer
	failed      bool // the commit failed: a 500 went out instead
	hijacked    bool // the handler took the connection over: nothing more to write
}

func (w *responseWriter) WriteHeader(code int) {
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		w.ResponseWriter.WriteHeader(code) // informational: not the final header
		return
	}
	if w.wroteHeader {
		switch {
		case !w.buffered:
			w.ResponseWriter.WriteHeader(code) // let net/http log the superfluous call
		case code >= 500 && w.code < 500:
			// Nothing went out yet: a failure written late still
			// counts, and becomes the response's status.
			w.code = code
		}
		return
	}
	w.wroteHeader = true
	if w.buffered {
		w.code = code
		return
	}
	if err := w.commit(w.Header(), code); err != nil {
		w.fail()
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	switch {
	case w.failed:
		return len(b), nil
	case w.buffered && !w.hijacked:
		return w.body.Write(b)
	}
	return w.ResponseWriter.Write(b)
}

// FlushError commits the session if the headers have not gone out, then
// flushes; http.ResponseController.Flush calls it. In buffered mode it does
// nothing: the response goes out when the handler returns.
func (w *responseWriter) FlushError() error {
	if w.buffered && !w.hijacked {
		return nil
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.failed {
		return nil
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Flush implements http.Flusher.
func (w *responseWriter) Flush() { _ = w.FlushError() }

// Unwrap returns the underlying writer, for http.ResponseController.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack commits the session and then hands the connection to the handler
// (a WebSocket upgrade): a hijack is the start of the response, and the
// connection may live for hours, during which the key's lock must not be
// held. It implements http.Hijacker, which http.ResponseController.Hijack
// finds before it unwraps, so no path around it remains. The commit is
// that of a response with the status written so far (101 Switching
// Protocols if none): saved unless that status is 500 or above. In
// buffered mode the status and body held so far go out first, as
// net/http sends a written status at a hijack. If the commit fails, a 500
// goes out instead and Hijack returns the error, the connection not taken.
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	switch {
	case w.hijacked:
		return nil, nil, http.ErrHijacked
	case w.failed:
		return nil, nil, errCommitFailed
	case !canHijack(w.ResponseWriter):
		// HTTP/2, or a writer that cannot hand its connection over:
		// nothing is committed, and the handler answers as it likes.
		return nil, nil, fmt.Errorf("session/middleware: hijack: %w", http.ErrNotSupported)
	case w.buffered:
		code := http.StatusSwitchingProtocols
		if w.wroteHeader {
			code = w.code
		}
		if err := w.commit(w.Header(), code); err != nil {
			w.fail()
			return nil, nil, fmt.Errorf("%w: %w", errCommitFailed, err)
		}
		if w.wroteHeader {
			w.ResponseWriter.WriteHeader(code)
		}
		if w.body.Len() > 0 {
			w.ResponseWriter.Write(w.body.Bytes())
			w.body.Reset()
		}
		w.wroteHeader = true
	case !w.wroteHeader:
		w.wroteHeader = true
		if err := w.commit(w.Header(), http.StatusSwitchingProtocols); err != nil {
			w.fail()
			return nil, nil, fmt.Errorf("%w: %w", errCommitFailed, err)
		}
	}
	conn, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.hijacked = true
	}
	return conn, rw, err
}

// canHijack reports whether w, or a writer it unwraps to, is an
// http.Hijacker: whether http.ResponseController.Hijack can succeed.
func canHijack(w http.ResponseWriter) bool {
	for {
		if _, ok := w.(http.Hijacker); ok {
			return true
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return false
		}
		w = u.Unwrap()
	}
}

// errCommitFailed is what Hijack returns when the session could not be
// committed (the error is reported to OnError too).
var errCommitFailed = errors.New("session/middleware: the session could not be committed before the hijack; a 500 was sent instead")

// finish runs when the handler has returned (not when it panicked): it
// commits if nothing did yet, and in buffered mode sends the response.
func (w *responseWriter) finish() {
	if w.hijacked {
		return // committed at the hijack; the connection is not HTTP any more
	}
	if !w.buffered {
		if !w.wroteHeader {
			// The handler wrote nothing: the server will send 200
			// once this returns, so the session is committed now.
			w.wroteHeader = true
			if err := w.commit(w.Header(), http.StatusOK); err != nil {
				w.fail()
			}
		}
		return
	}
	code := w.code
	if !w.wroteHeader {
		code = http.StatusOK
	}
	if err := w.commit(w.Header(), code); err != nil {
		w.fail()
		return
	}
	if w.wroteHeader {
		w.ResponseWriter.WriteHeader(code)
	}
	if w.body.Len() > 0 {
		w.ResponseWriter.Write(w.body.Bytes())
	}
}

// fail replaces the response with a 500, dropping the handler's headers
// (but not Vary, which says what the answer depended on); the handler's
// later writes are discarded.
func (w *responseWriter) fail() {
	w.failed = true
	h := w.ResponseWriter.Header()
	vary := h.Values("Vary")
	clear(h)
	for _, v := range vary {
		h.Add("Vary", v)
	}
	internalError(w.ResponseWriter)
}

func internalError(w http.ResponseWriter) {
	http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
}
