package logsafe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/go-playground/validator/v10"
)

var (
	errKind    = errors.New("session: invalid")
	errUnknown = errors.New("session: outcome unknown")
)

type form struct {
	Theme string `validate:"oneof=light dark"`
	Age   int    `validate:"lte=150"`
}

func TestDescribe(t *testing.T) {
	verr := validator.New().Struct(form{Theme: "secret-value", Age: 151})
	dial := &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 6379}, Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	path := &os.PathError{Op: "open", Path: "/var/sessions/quiz%3Auser-42", Err: syscall.ENOSPC}
	kinds, also := []error{errKind, errUnknown}, []error{errUnknown}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"validation: fields and rules, no values", fmt.Errorf(`session: save "user-42": %w`, errors.Join(errKind, verr)),
			`session: invalid: form.Theme failed "oneof=light dark"; form.Age failed "lte=150"`},
		{"a kind without a validator error: its message only", fmt.Errorf("save %q: %w", "user-42", errors.Join(errKind, errors.New("Validate: name user-42 is taken"))),
			"session: invalid"},
		{"store error: the network error, not the wrappers with the key", fmt.Errorf(`redisstore: get "quiz:user-42": %w`, dial),
			"dial tcp 127.0.0.1:6379: connect: connection refused"},
		{"store error: the innermost below a path", fmt.Errorf(`filestore: set "quiz:user-42": %w`, path),
			"no space left on device"},
		{"a kind whose cause is named", fmt.Errorf(`save "user-42": %w`, errors.Join(errUnknown, fmt.Errorf(`redisstore: cas "quiz:user-42": %w`, context.DeadlineExceeded))),
			"session: outcome unknown: context deadline exceeded"},
		{"a kind alone", fmt.Errorf(`save "user-42": %w`, errUnknown), "session: outcome unknown"},
	} {
		if got := Describe(tc.err, kinds, also); got != tc.want {
			t.Errorf("%s: Describe = %q, want %q", tc.name, got, tc.want)
		}
	}
}
