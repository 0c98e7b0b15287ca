//go:build darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd

package filestore

import (
	"context"
	"errors"
	"syscall"
	"time"
)

const locksSupported = true

// flockContext takes an exclusive flock(2) on fd, polling with a short
// backoff so that it can give up when ctx ends. A blocking flock cannot be
// interrupted by ctx, which is why it is not used.
func flockContext(ctx context.Context, fd int) error {
	delay := 20 * time.Microsecond
	var timer *time.Timer
	for {
		err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, syscall.EINTR):
			continue
		case !errors.Is(err, syscall.EWOULDBLOCK):
			return err
		}
		if timer == nil {
			timer = time.NewTimer(delay)
			defer timer.Stop()
		} else {
			timer.Reset(delay)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		}
		if delay < 2*time.Millisecond {
			delay *= 2
		}
	}
}

func funlock(fd int) error {
	for {
		err := syscall.Flock(fd, syscall.LOCK_UN)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// isReadOnly reports an error from a write to a read-only file system.
func isReadOnly(err error) bool { return errors.Is(err, syscall.EROFS) }
