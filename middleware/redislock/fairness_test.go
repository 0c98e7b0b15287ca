package redislock_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/typedsession/session/internal/testenv"
	"github.com/typedsession/session/middleware/redislock"
)

// The lock's fairness across processes, measured: two processes contend
// for one hot key, and each update records how long its Lock waited and
// when it was granted, so that the grants of the other process during
// each wait can be counted (wall clock, one machine). BENCHMARKS.md quotes
// the figures of
//
//	REDISLOCK_FAIRNESS=1 go test -run TestFairnessFigures -v ./middleware/redislock
//
// It is a measurement, not a check (TestAttackOtherProcessGetsATurn
// checks the bound), and only runs when asked.

const fairnessChildEnv = "REDISLOCK_FAIRNESS_CHILD" // JSON of fairnessRole

// fairnessRole is what one child process does: goroutines that each take
// the lock of the key in a loop for dur, holding it for hold, pausing
// pause between two updates.
type fairnessRole struct {
	URL, Prefix string
	Goroutines  int
	Hold, Pause time.Duration
	Dur         time.Duration
}

// grant is one update of a child: when its Lock began and returned, in
// Unix nanoseconds.
type grant struct{ Start, Got int64 }

// runFairnessChild runs the role in fairnessChildEnv and writes its grants
// as JSON on stdout.
func runFairnessChild() {
	var r fairnessRole
	if err := json.Unmarshal([]byte(os.Getenv(fairnessChildEnv)), &r); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	opts, err := redis.ParseURL(r.URL)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	c := redis.NewClient(opts)
	l := redislock.New(c, redislock.Options{Prefix: r.Prefix})
	var (
		mu     sync.Mutex
		grants []grant
		wg     sync.WaitGroup
	)
	end := time.Now().Add(r.Dur)
	for range r.Goroutines {
		wg.Go(func() {
			for time.Now().Before(end) {
				start := time.Now().UnixNano()
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				u, err := l.Lock(ctx, "hot")
				cancel()
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(1)
				}
				got := time.Now().UnixNano()
				time.Sleep(r.Hold)
				u()
				mu.Lock()
				grants = append(grants, grant{start, got})
				mu.Unlock()
				time.Sleep(r.Pause)
			}
		})
	}
	wg.Wait()
	json.NewEncoder(os.Stdout).Encode(grants)
	os.Exit(0)
}

// fairnessRun starts one child per role at once and returns their grants.
func fairnessRun(t *testing.T, roles ...fairnessRole) [][]grant {
	t.Helper()
	type result struct {
		out []byte
		err error
	}
	done := make([]chan result, len(roles))
	for i, r := range roles {
		js, _ := json.Marshal(r)
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), fairnessChildEnv+"="+string(js))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		done[i] = make(chan result, 1)
		go func() {
			out, err := cmd.Output()
			if err != nil {
				err = fmt.Errorf("%w: %s", err, stderr.String())
			}
			done[i] <- result{out, err}
		}()
	}
	all := make([][]grant, len(roles))
	for i := range roles {
		r := <-done[i]
		if r.err != nil {
			t.Fatalf("child %d: %v", i, r.err)
		}
		if err := json.Unmarshal(r.out, &all[i]); err != nil {
			t.Fatalf("child %d: %v", i, err)
		}
	}
	return all
}

// fairnessFigures summarizes the grants of process i against those of
// process j: updates, median and worst wait, and the most grants of j
// during one wait of i.
func fairnessFigures(all [][]grant, i, j int) string {
	var waits []time.Duration
	other := make([]int64, 0, len(all[j]))
	for _, g := range all[j] {
		other = append(other, g.Got)
	}
	slices.Sort(other)
	overtaken := 0
	for _, g := range all[i] {
		waits = append(waits, time.Duration(g.Got-g.Start))
		lo, _ := slices.BinarySearch(other, g.Start)
		hi, _ := slices.BinarySearch(other, g.Got)
		overtaken = max(overtaken, hi-lo)
	}
	if len(waits) == 0 {
		return "no updates"
	}
	slices.Sort(waits)
	return fmt.Sprintf("%d updates, wait median %v, p99 %v, worst %v; overtaken by at most %d updates of the other process",
		len(waits), waits[len(waits)/2].Round(10*time.Microsecond), waits[len(waits)*99/100].Round(10*time.Microsecond), waits[len(waits)-1].Round(10*time.Microsecond), overtaken)
}

func TestFairnessFigures(t *testing.T) {
	if os.Getenv("REDISLOCK_FAIRNESS") == "" {
		t.Skip("a measurement: set REDISLOCK_FAIRNESS=1 to run it")
	}
	c := testenv.Redis(t)
	dur := 5 * time.Second
	if d, err := time.ParseDuration(os.Getenv("REDISLOCK_FAIRNESS_DUR")); err == nil {
		dur = d
	}
	for _, tc := range []struct {
		name  string
		roles [2]fairnessRole
	}{
		{"both busy (4 goroutines each)", [2]fairnessRole{
			{Goroutines: 4, Hold: 200 * time.Microsecond},
			{Goroutines: 4, Hold: 200 * time.Microsecond},
		}},
		{"busy (4 goroutines) against one update every 5 ms", [2]fairnessRole{
			{Goroutines: 4, Hold: 200 * time.Microsecond},
			{Goroutines: 1, Hold: 200 * time.Microsecond, Pause: 5 * time.Millisecond},
		}},
	} {
		prefix := newPrefix(t, c)
		roles := tc.roles
		for i := range roles {
			roles[i].URL, roles[i].Prefix, roles[i].Dur = testenv.RedisURL(), prefix, dur
		}
		all := fairnessRun(t, roles[0], roles[1])
		t.Logf("%s, %v, MaxHandoffs %d:", tc.name, dur, redislock.DefaultMaxHandoffs)
		t.Logf("  process A: %s", fairnessFigures(all, 0, 1))
		t.Logf("  process B: %s", fairnessFigures(all, 1, 0))
	}
}
