package conversation_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/typedsession/session/internal/convtest"
	"github.com/typedsession/session/internal/testenv"
	"github.com/typedsession/session/store/redisstore"
)

// childPrefixEnv names the Redis prefix a sweeper child process sweeps.
const childPrefixEnv = "CONVERSATION_SWEEPER_CHILD_PREFIX"

// TestSweeperProcess is the child of TestTwoProcessesOneKilled: it sweeps
// the flow under the prefix it is given until it is killed. Without the
// variable it does nothing.
func TestSweeperProcess(t *testing.T) {
	prefix := os.Getenv(childPrefixEnv)
	if prefix == "" {
		t.Skip("the child process of TestTwoProcessesOneKilled")
	}
	st := redisstore.New(testenv.Redis(t), redisstore.Options{Prefix: prefix})
	clk := convtest.NewClock()
	clk.Advance(convtest.AgeTimeout)
	p := convtest.NewProc(t, st, clk, nil)
	fmt.Println("sweeping")
	for {
		p.Flow.Sweep(context.Background())
	}
}

// TestTwoProcessesOneKilled: two processes sweep the same Redis at once
// and one is killed (SIGKILL) at a random moment of its sweeps; every
// timeout is then saved exactly once.
func TestTwoProcessesOneKilled(t *testing.T) {
	c := testenv.Redis(t)
	prefix := testenv.Prefix(t, "conv")
	testenv.CleanupPrefix(t, c, prefix)
	st := redisstore.New(c, redisstore.Options{Prefix: prefix})
	const n = 50
	clk := convtest.NewClock()
	p := convtest.NewProc(t, st, clk, nil)
	p.AtAgeAll(t, n)
	clk.Advance(convtest.AgeTimeout)

	cmd := exec.Command(os.Args[0], "-test.run=^TestSweeperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), childPrefixEnv+"="+prefix)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	buf := make([]byte, len("sweeping"))
	if _, err := io.ReadFull(out, buf); err != nil {
		t.Fatalf("the child did not start: %v", err)
	}
	// Both sweep; the child is killed at a random moment.
	killed := make(chan struct{})
	time.AfterFunc(time.Duration(rand.N(30_000))*time.Microsecond, func() {
		cmd.Process.Kill()
		close(killed)
	})
	for done := false; !done; {
		select {
		case <-killed:
			done = true
		default:
		}
		if _, err := p.Flow.Sweep(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	cmd.Wait()
	for range 2 {
		convtest.Sweep(t, p)
	}
	fired := 0
	for i := range n {
		key := fmt.Sprint(i)
		got := p.Load(t, key)
		if got.Fired != 1 || got.Conv.Active() {
			t.Fatalf("key %s: Fired %d, state %+v; want the timeout saved once", key, got.Fired, got.Conv)
		}
		fired += p.Effects.Get(key)
	}
	t.Logf("this process ran %d of the %d timeouts' Do functions", fired, n)
}
