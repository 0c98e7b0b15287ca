package natsstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The tests run against the NATS server named by NATS_URL. When it is
// unset, TestMain starts a nats-server of its own (the binary on PATH or
// in /usr/sbin, Debian's package nats-server) on a free loopback port,
// with JetStream in a temporary folder and a max_payload of 2 MB: the
// conformance suite stores a 1 MiB value with an expiry header, more than
// the default max_payload of 1 MiB carries. Without a server the tests
// skip with a message, and fail under CI=true.

var (
	natsURL  string // the server the tests use
	noServer string // why there is none
)

func TestMain(m *testing.M) {
	if helperMode() {
		os.Exit(m.Run())
	}
	natsURL = os.Getenv("NATS_URL")
	var stop func()
	if natsURL == "" {
		var err error
		natsURL, stop, err = startServer()
		if err != nil {
			noServer = err.Error()
		}
	}
	code := m.Run()
	if stop != nil {
		stop()
	}
	os.Exit(code)
}

// startServer starts a nats-server with JetStream on a free loopback port.
func startServer() (url string, stop func(), err error) {
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		if _, statErr := os.Stat("/usr/sbin/nats-server"); statErr != nil {
			return "", nil, fmt.Errorf("NATS_URL is unset and there is no nats-server binary to start (apt-get install nats-server)")
		}
		bin = "/usr/sbin/nats-server"
	}
	dir, err := os.MkdirTemp("", "natsstore-test-")
	if err != nil {
		return "", nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	conf := filepath.Join(dir, "nats.conf")
	err = os.WriteFile(conf, []byte(fmt.Sprintf(`listen: "127.0.0.1:%d"
max_payload: 2MB
jetstream {
  store_dir: %q
  max_memory_store: 256MB
  max_file_store: 2GB
}
`, port, filepath.Join(dir, "js"))), 0o600)
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(bin, "-c", conf)
	logFile, err := os.Create(filepath.Join(dir, "nats.log"))
	if err != nil {
		return "", nil, err
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop = func() {
		cmd.Process.Kill()
		cmd.Wait()
		logFile.Close()
		os.RemoveAll(dir)
	}
	url = fmt.Sprintf("nats://127.0.0.1:%d", port)
	deadline := time.Now().Add(15 * time.Second)
	for {
		nc, err := nats.Connect(url)
		if err == nil {
			nc.Close()
			return url, stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("the nats-server started for the tests did not answer at %s: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// connect returns a JetStream context on the test server, closed when tb
// ends, or skips (fails under CI=true) when there is no server.
func connect(tb testing.TB) jetstream.JetStream {
	tb.Helper()
	if noServer != "" {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("CI=true, so this fails: %s", noServer)
		}
		tb.Skipf("skipping: %s", noServer)
	}
	nc, err := nats.Connect(natsURL, nats.ReconnectBufSize(-1))
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("CI=true, so this fails: no NATS server at %s: %v", natsURL, err)
		}
		tb.Skipf("skipping: no NATS server at %s: %v", natsURL, err)
	}
	tb.Cleanup(nc.Close)
	// JetStream's default API timeout, 5 s, is a guess at the machine's
	// speed: creating a bucket took longer on a busy 2-core machine. The
	// tests' calls that need a bound have a context of their own.
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(time.Minute))
	if err != nil {
		tb.Fatal(err)
	}
	return js
}

// bucketName returns a bucket name of its own for one test.
func bucketName(tb testing.TB) string {
	var b [6]byte
	rand.Read(b[:])
	name := strings.NewReplacer("/", "_", " ", "_", "#", "_", "=", "_", ".", "_", ",", "_").Replace(tb.Name())
	if len(name) > 40 {
		name = name[:40]
	}
	return "t_" + name + "_" + hex.EncodeToString(b[:])
}

// newTestStore returns a store on a new bucket of its own, which is
// deleted when tb ends.
func newTestStore(tb testing.TB, opts Options) (*Store, jetstream.JetStream) {
	tb.Helper()
	js := connect(tb)
	if opts.Bucket == "" {
		opts.Bucket = bucketName(tb)
	}
	if opts.Storage == 0 {
		opts.Storage = jetstream.MemoryStorage // the tests need no disk; RunPersistent uses files
	}
	s, err := New(context.Background(), js, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		s.Close()
		js.DeleteKeyValue(context.Background(), opts.Bucket)
	})
	return s, js
}
