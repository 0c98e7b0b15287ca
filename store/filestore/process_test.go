package filestore

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/typedsession/session/internal/testenv"
	"github.com/typedsession/session/store"
)

// The tests in this file re-execute the test binary as child processes.
// TestHelperProcess is the child's entry point; helperEnv selects its job.
const (
	helperEnv    = "FILESTORE_TEST_HELPER"
	helperDirEnv = "FILESTORE_TEST_DIR"
	helperNEnv   = "FILESTORE_TEST_N"
)

func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("child process of TestCrossProcessCAS, TestCrossProcessCASKilledWriter and TestCrashDuringWrites; runs only when they start it")
	}
	var err error
	switch mode {
	case "cas":
		err = casChild(os.Getenv(helperDirEnv), os.Getenv(helperNEnv))
	case "crash":
		err = crashChild(os.Getenv(helperDirEnv), os.Getenv(helperNEnv))
	default:
		err = fmt.Errorf("unknown helper mode %q", mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func helperCommand(ctx context.Context, mode, dir string, n int) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, helperDirEnv+"="+dir, helperNEnv+"="+strconv.Itoa(n))
	return cmd
}

// ---- cross-process compare-and-swap ----

const counterKey = "counter:shared"

// logIncrement appends id to the log stored under key through
// CompareAndSwap, reading again and retrying until its swap lands. The
// value is the ids of every write so far, one a line, so the count is the
// number of lines and every value written is unique, as the session
// manager's are. (storetest.Increment writes bare counts: under the resend
// rule a swap of "5" to "6" that finds another writer's "6" reports true,
// so bare counts cannot show a lost update.)
func logIncrement(ctx context.Context, s *Store, key, id string) error {
	for {
		old, err := s.Get(ctx, key)
		if errors.Is(err, store.ErrNotFound) {
			old, err = nil, nil
		}
		if err != nil {
			return err
		}
		value := append(slices.Clip(old), id+"\n"...)
		ok, err := s.CompareAndSwap(ctx, key, old, value, time.Hour)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
	}
}

// casChild makes n log increments (n < 0: until it is killed), printing
// "try <id>" before each and "ack <id>" once its swap has returned true.
func casChild(dir, nStr string) error {
	n, err := strconv.Atoi(nStr)
	if err != nil {
		return err
	}
	s, err := New(dir, Options{CleanupInterval: -1})
	if err != nil {
		return err
	}
	defer s.Close()
	for i := 0; n < 0 || i < n; i++ {
		id := fmt.Sprintf("p%d-%d", os.Getpid(), i)
		fmt.Println("try", id)
		if err := logIncrement(context.Background(), s, counterKey, id); err != nil {
			return err
		}
		fmt.Println("ack", id)
	}
	return s.Close()
}

// casLog collects the try and ack lines of casChild processes.
type casLog struct {
	mu    sync.Mutex
	tried map[string]bool
	acked map[string]bool
}

func (l *casLog) read(t *testing.T, r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		op, id, ok := strings.Cut(sc.Text(), " ")
		l.mu.Lock()
		switch {
		case ok && op == "try":
			l.tried[id] = true
		case ok && op == "ack":
			l.acked[id] = true
		default:
			t.Errorf("child printed %q", sc.Text())
		}
		l.mu.Unlock()
	}
}

// runCASProcesses runs survivors child processes of perChild increments
// each on one key, and, alongside them, victims child processes one after
// another, each SIGKILLed at a random moment of its run. Then it checks
// the log by the measure of "Stores I": acknowledged <= stored <=
// acknowledged + in flight, no write applied twice, none lost, none
// invented.
func runCASProcesses(t *testing.T, survivors, perChild, victims int) {
	dir := t.TempDir()
	log := &casLog{tried: map[string]bool{}, acked: map[string]bool{}}
	start := func(n int) (*exec.Cmd, *bytes.Buffer, chan struct{}) {
		cmd := helperCommand(t.Context(), "cas", dir, n)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		stderr := new(bytes.Buffer)
		cmd.Stderr = stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { defer close(done); log.read(t, stdout) }()
		return cmd, stderr, done
	}
	type child struct {
		cmd    *exec.Cmd
		stderr *bytes.Buffer
		done   chan struct{}
	}
	var steady []child
	for range survivors {
		cmd, stderr, done := start(perChild)
		steady = append(steady, child{cmd, stderr, done})
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 11))
	killed := 0
	for v := range victims {
		cmd, stderr, done := start(-1)
		time.Sleep(time.Duration(20+rng.IntN(80)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-done
		err := cmd.Wait()
		ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("victim %d ended with %v before it was killed\n%s", v, err, stderr)
		}
		killed++
	}
	for i, c := range steady {
		<-c.done
		if err := c.cmd.Wait(); err != nil {
			t.Fatalf("child %d: %v\n%s", i, err, c.stderr)
		}
	}

	s := openStore(t, dir)
	v, err := s.Get(t.Context(), counterKey)
	if err != nil {
		t.Fatal(err)
	}
	stored := strings.Split(strings.TrimSuffix(string(v), "\n"), "\n")
	seen := map[string]bool{}
	for _, id := range stored {
		if seen[id] {
			t.Errorf("write %s applied twice", id)
		}
		seen[id] = true
		if !log.tried[id] {
			t.Errorf("write %s stored, but no child tried it", id)
		}
	}
	for id := range log.acked {
		if !seen[id] {
			t.Errorf("write %s acknowledged, but not stored", id)
		}
	}
	acked, inFlight := len(log.acked), len(log.tried)-len(log.acked)
	t.Logf("%d processes (%d killed): %d acknowledged, %d in flight at a kill, %d stored", survivors+killed, killed, acked, inFlight, len(stored))
	if len(stored) < acked || len(stored) > acked+inFlight {
		t.Errorf("stored %d, want acknowledged (%d) <= stored <= acknowledged + in flight (%d)", len(stored), acked, acked+inFlight)
	}
	if min := survivors * perChild; acked < min {
		t.Errorf("%d acknowledged, fewer than the survivors' %d", acked, min)
	}
}

// Three processes increment one key: none of the 450 increments is lost.
func TestCrossProcessCAS(t *testing.T) {
	runCASProcesses(t, 3, 150, 0)
}

// Processes SIGKILLed while others run compare-and-swap increments on the
// same key: no acknowledged write lost, none applied twice, and the
// killed writer's last write is either whole or absent. A kill while a
// process holds a stripe's flock must not wedge the others: the kernel
// drops the lock with the process.
func TestCrossProcessCASKilledWriter(t *testing.T) {
	testenv.Slow(t)
	runCASProcesses(t, 3, 150, 5)
}

// ---- crash during writes ----

// crashKeys are the keys the crash child writes: short ones and a long one
// that takes the hashed file name.
var crashKeys = []string{"a", "b", "c", "quiz:1", "quiz:2", "empty-at-times", "x", strings.Repeat("long-", 60)}

// makeValue builds a self-checking value of n filler bytes:
//
//	4 bytes filler length, 1 byte key index, 8 bytes sequence,
//	n bytes each equal to byte(seq), 32 bytes SHA-256 of all of the above.
func makeValue(keyIdx int, seq uint64, n int) []byte {
	b := make([]byte, 13, 13+n+sha256.Size)
	binary.BigEndian.PutUint32(b, uint32(n))
	b[4] = byte(keyIdx)
	binary.BigEndian.PutUint64(b[5:], seq)
	b = append(b, bytes.Repeat([]byte{byte(seq)}, n)...)
	sum := sha256.Sum256(b)
	return append(b, sum[:]...)
}

func checkValue(keyIdx int, v []byte) error {
	if len(v) < 13+sha256.Size {
		return fmt.Errorf("%d bytes, too short", len(v))
	}
	body, sum := v[:len(v)-sha256.Size], v[len(v)-sha256.Size:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
		return errors.New("checksum mismatch")
	}
	n := int(binary.BigEndian.Uint32(body))
	seq := binary.BigEndian.Uint64(body[5:])
	switch {
	case len(body) != 13+n:
		return fmt.Errorf("length field %d, body holds %d", n, len(body)-13)
	case int(body[4]) != keyIdx:
		return fmt.Errorf("value of key %d stored under key %d", body[4], keyIdx)
	case bytes.Count(body[13:], []byte{byte(seq)}) != n:
		return errors.New("filler bytes differ")
	}
	return nil
}

// crashChild writes values of varying length in a loop until it is killed.
// It prints "ready" once its first write has returned, so that the parent
// knows at least one key exists.
func crashChild(dir, seedStr string) error {
	seed, err := strconv.ParseUint(seedStr, 10, 64)
	if err != nil {
		return err
	}
	s, err := New(dir, Options{CleanupInterval: -1})
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(seed, 42))
	ctx := context.Background()
	ready := false
	for seq := uint64(1); ; seq++ {
		i := rng.IntN(len(crashKeys))
		var n int
		switch rng.IntN(3) {
		case 0:
			n = rng.IntN(100)
		case 1:
			n = 1000 + rng.IntN(10_000)
		default:
			n = 100_000 + rng.IntN(400_000)
		}
		v := makeValue(i, seed<<32|seq, n)
		switch rng.IntN(4) {
		case 0: // a read-modify-write, as the session manager does
			old, err := s.Get(ctx, crashKeys[i])
			if errors.Is(err, store.ErrNotFound) {
				old, err = nil, nil
			}
			if err != nil {
				return err
			}
			swapped, err := s.CompareAndSwap(ctx, crashKeys[i], old, v, time.Hour)
			if err != nil {
				return err
			}
			if !swapped {
				return fmt.Errorf("CompareAndSwap(%s) failed with no other writer", quoteKey(crashKeys[i]))
			}
		case 1:
			if err := s.Touch(ctx, crashKeys[i], time.Hour); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			continue
		default:
			if err := s.Set(ctx, crashKeys[i], v, time.Hour); err != nil {
				return err
			}
		}
		if !ready {
			fmt.Println("ready")
			ready = true
		}
	}
}

func TestCrashDuringWrites(t *testing.T) {
	testenv.Slow(t)
	const rounds = 20
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for round := range rounds {
		killAfter := time.Duration(5+rng.IntN(46)) * time.Millisecond
		cmd := helperCommand(t.Context(), "crash", dir, round+1)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil || line != "ready\n" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("round %d: child did not start writing: %q, %v\n%s", round, line, err, stderr.String())
		}
		time.Sleep(killAfter)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		err = cmd.Wait()
		ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child ended with %v before it was killed\n%s", round, err, stderr.String())
		}
		checkAfterCrash(t, dir, round)
	}

	// The temp files of interrupted writes are never keys, and New removes
	// them once they are old.
	var temps []string
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if k, _ := classify(e.Name()); k == tempName {
			temps = append(temps, filepath.Join(dir, e.Name()))
			mustChtime(t, temps[len(temps)-1], time.Now().Add(-time.Hour))
		}
	}
	t.Logf("%d rounds left %d temp files from interrupted writes", rounds, len(temps))
	openStore(t, dir)
	for _, p := range temps {
		if exists(t, p) {
			t.Errorf("New left the stale temp file %s", p)
		}
	}
	checkAfterCrash(t, dir, rounds)
}

// checkAfterCrash opens dir as a new process would and checks that every
// key holds a whole value, that at least one key exists, and that the
// killed child left no lock held.
func checkAfterCrash(t *testing.T, dir string, round int) {
	t.Helper()
	s, err := New(dir, Options{CleanupInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	present := 0
	for i, k := range crashKeys {
		v, err := s.Get(ctx, k)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("round %d: Get(%s) after SIGKILL: %v", round, quoteKey(k), err)
		}
		if err := checkValue(i, v); err != nil {
			t.Fatalf("round %d: Get(%s) after SIGKILL returned a torn value: %v", round, quoteKey(k), err)
		}
		present++
	}
	if present == 0 {
		t.Fatalf("round %d: no key holds a value, though the child had written one", round)
	}
	n := 0
	if err := s.Scan(ctx, "", func(k string) error {
		n++
		if !contains(crashKeys, k) {
			return fmt.Errorf("Scan reported %s, which no one wrote", quoteKey(k))
		}
		return nil
	}); err != nil {
		t.Fatalf("round %d: %v", round, err)
	}
	if n != present {
		t.Fatalf("round %d: Scan reported %d keys, Get found %d", round, n, present)
	}
	// Every stripe lock is free again: the kernel dropped the dead
	// child's flocks. A held one would make this wait until the test's
	// deadline.
	for i, k := range crashKeys {
		if err := s.Set(ctx, k, makeValue(i, 0, i), time.Hour); err != nil {
			t.Fatalf("round %d: Set after SIGKILL: %v", round, err)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
