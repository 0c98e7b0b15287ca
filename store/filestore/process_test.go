package filestore

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/storetest"
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
		t.Skip("child process of TestCrossProcessCAS and TestCrashDuringWrites; runs only when they start it")
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

func casChild(dir, nStr string) error {
	n, err := strconv.Atoi(nStr)
	if err != nil {
		return err
	}
	s, err := New(dir, Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	for range n {
		if err := storetest.Increment(context.Background(), s, counterKey); err != nil {
			return err
		}
	}
	return s.Close()
}

func TestCrossProcessCAS(t *testing.T) {
	const children, perChild = 2, 150
	dir := t.TempDir()
	cmds := make([]*exec.Cmd, children)
	outs := make([]*bytes.Buffer, children)
	for i := range cmds {
		cmds[i] = helperCommand(t.Context(), "cas", dir, perChild)
		outs[i] = new(bytes.Buffer)
		cmds[i].Stdout, cmds[i].Stderr = outs[i], outs[i]
		if err := cmds[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	// The parent joins in too, so the counter sees three writers.
	s := openStore(t, dir)
	for range perChild {
		if err := storetest.Increment(t.Context(), s, counterKey); err != nil {
			t.Fatal(err)
		}
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child %d: %v\n%s", i, err, outs[i])
		}
	}
	got, err := s.Get(t.Context(), counterKey)
	if err != nil {
		t.Fatal(err)
	}
	if want := strconv.Itoa((children + 1) * perChild); string(got) != want {
		t.Fatalf("counter = %s after %d processes each added %d, want %s", got, children+1, perChild, want)
	}
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
	if testing.Short() {
		t.Skip("kills 20 child processes; skipped with -short")
	}
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
