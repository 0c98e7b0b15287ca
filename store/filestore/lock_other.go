//go:build !(darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd)

package filestore

import "context"

// locksSupported is false where flock(2) is missing; New then refuses to
// open a store rather than give up its cross-process guarantees.
const locksSupported = false

func flockContext(context.Context, int) error { return errNoFlock }

func funlock(int) error { return errNoFlock }

func isReadOnly(error) bool { return false }
