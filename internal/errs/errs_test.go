package errs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
)

// TestRedact: the one redaction rule keeps what tells an operator what
// went wrong (the kind, the field and rule of a validation, a network
// error's address, a system error) and drops values of session data, keys
// in every form an error message holds them, and file names.
func TestRedact(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 6379}, Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	path := &os.PathError{Op: "open", Path: "/var/sessions/kc5q6ut3zcdlr0pr5d8", Err: syscall.ENOSPC}
	invalid := &Error{Kind: Invalid, Msg: `Prefs.Theme: failed "oneof=light dark" (value "secret-value")`, Safe: `Prefs.Theme: failed "oneof=light dark"`}
	for _, tc := range []struct {
		name    string
		err     error
		keys    []string
		want    []string // substrings that must be there
		mustNot []string // substrings that must not
	}{
		{"validation: field and rule, no value", fmt.Errorf(`session: save "user-42": %w`, invalid), []string{"user-42"},
			[]string{`Prefs.Theme: failed "oneof=light dark"`, "session: invalid"}, []string{"secret-value", "user-42"}},
		{"a store error: the address and the cause, no store key", fmt.Errorf(`session: load "ab": %w`, fmt.Errorf(`redisstore: get "quiz:ab": %w`, dial)), []string{"ab"},
			[]string{"127.0.0.1:6379", "connection refused"}, []string{`"ab"`, `"quiz:ab"`}},
		{"a file error: the folder and the cause, no file name", fmt.Errorf(`filestore: set "quiz:user-42": %w`, path), []string{"user-42"},
			[]string{"/var/sessions/<file>", "no space left on device"}, []string{"kc5q6ut3", "user-42"}},
		{"an outcome unknown with its cause", &Error{Kind: OutcomeUnknown, Cause: fmt.Errorf(`redisstore: cas "quiz:user-42": %w`, context.DeadlineExceeded)}, []string{"user-42"},
			[]string{"outcome unknown", "context deadline exceeded"}, []string{"user-42"}},
		{"keys kept when none are given", fmt.Errorf(`session: save "user-42": %w`, invalid), nil,
			[]string{"user-42"}, []string{"secret-value"}},
	} {
		got := Redact(tc.err, tc.keys...)
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: Redact = %q, want it to hold %q", tc.name, got, w)
			}
		}
		for _, w := range tc.mustNot {
			if strings.Contains(got, w) {
				t.Errorf("%s: Redact = %q holds %q", tc.name, got, w)
			}
		}
	}
	if !errors.Is(invalid, Invalid) {
		t.Error("an *Error does not match its kind")
	}
}
