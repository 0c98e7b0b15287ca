// Package replicatest runs the two-process tests of the distributed
// lockers (middleware/redislock, middleware/pglock): the test binary is
// started again as replicas, each of which sends updates of a few users
// through its own middleware with the locker under test, and reports every
// update it starts and finishes on a pipe, so that the parent can count
// what was acknowledged even of a replica it SIGKILLed.
//
// A test package wires it up in its TestMain:
//
//	func TestMain(m *testing.M) {
//		if replicatest.IsReplica() {
//			replicatest.RunReplica(buildReplica) // never returns
//		}
//		os.Exit(m.Run())
//	}
package replicatest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/middleware"
)

// envConfig holds the JSON of a replica's Config; its presence makes the
// test binary a replica.
const envConfig = "TYPEDSESSION_REPLICATEST"

// Counter is the session of the tests: one counter per user.
type Counter struct {
	N int `json:"n"`
}

// Update is one update of one user. Hold makes the handler report that it
// holds the user's lock and then block forever (until the process is
// killed).
type Update struct {
	User string
	Hold bool
}

// Key is the middleware's KeyFunc: the update's user.
func Key(_ context.Context, u *Update) (string, error) { return u.User, nil }

// Config is what one replica does.
type Config struct {
	Goroutines int               // sending updates at once
	Users      int               // user IDs "u0".."u<Users-1>", shared by every replica
	Updates    int               // per goroutine
	HoldAt     int               // > 0: goroutine 0's update number HoldAt holds its lock forever
	Timeout    time.Duration     // of each update's context
	Env        map[string]string // settings of the test package (addresses, prefixes)
}

// IsReplica reports whether this process was started as a replica.
func IsReplica() bool { return os.Getenv(envConfig) != "" }

// Replica is the running replica, handed to the test package's build
// function.
type Replica struct {
	Config Config
	out    *os.File
	mu     sync.Mutex
}

// Env returns the test package's setting name.
func (r *Replica) Env(name string) string { return r.Config.Env[name] }

// line writes one report line; one write per line keeps lines whole on
// the pipe.
func (r *Replica) line(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	s = strings.ReplaceAll(s, "\n", " ") + "\n"
	r.mu.Lock()
	r.out.WriteString(s)
	r.mu.Unlock()
}

// OnError is the middleware's Options.OnError: it reports conflicts
// (which count separately from errors) to the parent.
func (r *Replica) OnError(_ context.Context, op, key string, err error) {
	if errors.Is(err, session.ErrConflict) {
		r.line("C %s", key)
	}
}

// Handler increments the user's counter; for an update with Hold it
// reports "holding" and blocks forever.
func (r *Replica) Handler(ctx context.Context, u *Update) error {
	s, err := session.From[Counter](ctx)
	if err != nil {
		return err
	}
	s.Data.N++
	if u.Hold {
		r.line("H %s", u.User)
		select {}
	}
	return nil
}

// RunReplica runs the replica this process was started as and exits: it
// builds the handler with build (the middleware with the locker under test
// around r.Handler, with r.OnError), sends the updates, and reports on fd
// 3: "S user" for an update started, "A user" acknowledged, "E user error"
// failed, "C user" a conflict, "H user" holding, "D" done.
func RunReplica(build func(r *Replica) (middleware.Handler[*Update], error)) {
	var cfg Config
	if err := json.Unmarshal([]byte(os.Getenv(envConfig)), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "replica config:", err)
		os.Exit(2)
	}
	r := &Replica{Config: cfg, out: os.NewFile(3, "report")}
	h, err := build(r)
	if err != nil {
		r.line("E - build: %v", err)
		os.Exit(2)
	}
	var wg sync.WaitGroup
	for g := range cfg.Goroutines {
		wg.Go(func() {
			for i := range cfg.Updates {
				u := &Update{User: "u" + strconv.Itoa((g+i)%cfg.Users)}
				u.Hold = cfg.HoldAt > 0 && g == 0 && i == cfg.HoldAt
				ctx, cancel := context.WithTimeout(context.Background(), cfg.Timeout)
				r.line("S %s", u.User)
				err := h(ctx, u)
				cancel()
				if err != nil {
					r.line("E %s %v", u.User, err)
				} else {
					r.line("A %s", u.User)
				}
			}
		})
	}
	wg.Wait()
	r.line("D")
	os.Exit(0)
}

// Proc is a replica started by the parent test.
type Proc struct {
	cmd     *exec.Cmd
	stderr  strings.Builder
	holding chan string
	eof     chan struct{}

	mu  sync.Mutex
	res Result
}

// Result is what a replica reported.
type Result struct {
	Started   map[string]int // by user
	Acked     map[string]int // by user
	Errors    []string
	Conflicts int
	Done      bool  // the replica finished all its updates
	ExitErr   error // of the process
	Stderr    string
}

// InFlight is the number of updates of user started and neither
// acknowledged nor failed: at most that many may have been stored without
// an acknowledgement when the replica was killed.
func (r Result) InFlight(user string) int {
	failed := 0
	for _, e := range r.Errors {
		if u, _, _ := strings.Cut(e, " "); u == user {
			failed++
		}
	}
	return r.Started[user] - r.Acked[user] - failed
}

// Start runs the test binary as a replica with cfg. It is killed (if still
// running) when tb ends.
func Start(tb testing.TB, cfg Config) *Proc {
	tb.Helper()
	js, err := json.Marshal(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	rd, wr, err := os.Pipe()
	if err != nil {
		tb.Fatal(err)
	}
	p := &Proc{holding: make(chan string, 1), eof: make(chan struct{})}
	p.res.Acked = map[string]int{}
	p.res.Started = map[string]int{}
	p.cmd = exec.Command(os.Args[0], "-test.run=^$")
	p.cmd.Env = append(os.Environ(), envConfig+"="+string(js))
	p.cmd.ExtraFiles = []*os.File{wr}
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		rd.Close()
		wr.Close()
		tb.Fatal(err)
	}
	wr.Close() // the child holds the write end: EOF when it exits
	go p.read(rd)
	tb.Cleanup(func() {
		p.cmd.Process.Kill()
		p.Wait()
	})
	return p
}

func (p *Proc) read(rd *os.File) {
	defer close(p.eof)
	defer rd.Close()
	sc := bufio.NewScanner(rd)
	for sc.Scan() {
		kind, rest, _ := strings.Cut(sc.Text(), " ")
		p.mu.Lock()
		switch kind {
		case "S":
			p.res.Started[rest]++
		case "A":
			p.res.Acked[rest]++
		case "E":
			p.res.Errors = append(p.res.Errors, rest)
		case "C":
			p.res.Conflicts++
		case "D":
			p.res.Done = true
		case "H":
			select {
			case p.holding <- rest:
			default:
			}
		}
		p.mu.Unlock()
	}
}

// Holding waits until the replica reports that it holds a lock forever,
// and returns the user; false when ctx ends or the replica exits first.
func (p *Proc) Holding(ctx context.Context) (string, bool) {
	select {
	case u := <-p.holding:
		return u, true
	case <-p.eof:
		return "", false
	case <-ctx.Done():
		return "", false
	}
}

// Kill sends SIGKILL.
func (p *Proc) Kill() { p.cmd.Process.Kill() }

// Wait waits for the replica to exit and its reports to end, and returns
// them. It may be called more than once.
func (p *Proc) Wait() Result {
	<-p.eof
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd.ProcessState == nil {
		p.res.ExitErr = p.cmd.Wait()
		p.res.Stderr = p.stderr.String()
	}
	r := p.res
	r.Acked = maps.Clone(p.res.Acked)
	r.Started = maps.Clone(p.res.Started)
	r.Errors = slices.Clone(p.res.Errors)
	return r
}

// Users returns the user IDs of cfg: "u0".."u<Users-1>".
func Users(cfg Config) []string {
	us := make([]string, cfg.Users)
	for i := range us {
		us[i] = "u" + strconv.Itoa(i)
	}
	return us
}

// Check compares what the replicas reported with what is stored. Every
// replica that was not killed must have finished all its updates.
//
// With no replica killed, no update may fail or conflict, and for each
// user the stored count must equal the updates acknowledged, which must be
// every update sent.
//
// With killed replicas, for each user acknowledged <= stored <=
// acknowledged + the killed replicas' updates in flight. The survivors may
// see conflicts, but only as many as the killed replicas had updates in
// flight, and no other error: a save that a replica sent just before it
// died can still land after its lock ended (PostgreSQL ends an advisory
// lock as soon as the lock's connection closes, while the save, sent on
// another connection, is still being executed), and the survivor that took
// the lock meanwhile then has its own save refused: compare-and-swap at
// work, reported, nothing lost.
func Check(t *testing.T, cfgs []Config, results []Result, killed []bool, stored func(user string) int) {
	t.Helper()
	anyKilled, inflightAll, survivorConflicts := false, 0, 0
	for i, r := range results {
		if killed[i] {
			anyKilled = true
			for _, u := range Users(cfgs[0]) {
				inflightAll += r.InFlight(u)
			}
		}
	}
	want := map[string]int{}
	for i, r := range results {
		if killed[i] {
			if r.Conflicts != 0 || len(r.Errors) != 0 {
				t.Errorf("killed replica %d: %d conflicts, errors %q before the kill, want none", i, r.Conflicts, r.Errors)
			}
			continue
		}
		if r.ExitErr != nil || !r.Done {
			t.Errorf("replica %d: exit %v, finished %v; stderr:\n%s", i, r.ExitErr, r.Done, r.Stderr)
		}
		if anyKilled {
			survivorConflicts += r.Conflicts
			for _, e := range r.Errors {
				if !strings.Contains(e, "conflict") {
					t.Errorf("replica %d: error %q, want none but conflicts", i, e)
				}
			}
			if len(r.Errors) != r.Conflicts {
				t.Errorf("replica %d: %d errors, %d conflicts; want every error a conflict", i, len(r.Errors), r.Conflicts)
			}
			continue
		}
		if r.Conflicts != 0 {
			t.Errorf("replica %d: %d conflicts, want 0", i, r.Conflicts)
		}
		if len(r.Errors) != 0 {
			t.Errorf("replica %d: %d errors, want 0: %q", i, len(r.Errors), r.Errors[:min(len(r.Errors), 5)])
		}
		cfg := cfgs[i]
		for g := range cfg.Goroutines {
			for j := range cfg.Updates {
				want["u"+strconv.Itoa((g+j)%cfg.Users)]++
			}
		}
	}
	if anyKilled {
		if survivorConflicts > inflightAll {
			t.Errorf("survivors saw %d conflicts, more than the %d updates in flight at the kill", survivorConflicts, inflightAll)
		} else if survivorConflicts > 0 {
			t.Logf("survivors saw %d conflicts (a save of the killed replica landed after its lock ended); %d updates were in flight at the kill", survivorConflicts, inflightAll)
		}
	}
	for _, u := range Users(cfgs[0]) {
		acked, inflight := 0, 0
		for i, r := range results {
			acked += r.Acked[u]
			if killed[i] {
				inflight += r.InFlight(u)
			}
		}
		got := stored(u)
		if !anyKilled {
			if got != acked || acked != want[u] {
				t.Errorf("user %s: stored %d, acknowledged %d, sent %d; want all equal", u, got, acked, want[u])
			}
			continue
		}
		if got < acked || got > acked+inflight {
			t.Errorf("user %s: stored %d, want acknowledged (%d) <= stored <= acknowledged + in flight at the kill (%d)", u, got, acked, acked+inflight)
		}
	}
}
