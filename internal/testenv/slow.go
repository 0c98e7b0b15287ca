package testenv

import "testing"

// SlowTag is the build tag of the slow suite, and SlowCommand the command
// that runs it (README.md, "The two commands").
const (
	SlowTag     = "soak"
	SlowCommand = "go test -tags soak ./..."
)

// Slow marks tb as a test of the slow suite: the fault, restart, cluster
// and soak tests, which start servers or processes of their own, kill, cut
// or stall them, and run for seconds to minutes. It runs in a build with
// -tags soak; in any other build Slow skips tb with a message naming the
// command, under CI=true too (.ci/run runs both suites).
func Slow(tb testing.TB) {
	tb.Helper()
	if !slowBuild {
		tb.Skipf("slow suite (fault, restart, cluster, soak): run with %s", SlowCommand)
	}
}

// SlowBuild reports whether this is a build of the slow suite (-tags
// soak). A test whose size does not change what it checks runs its full
// size there and a smaller one in the quick suite.
func SlowBuild() bool { return slowBuild }
