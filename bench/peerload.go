package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/middleware/redislock"
	"github.com/typedsession/session/store/redisstore"
)

// This file is the -peers run: the workload of the shared peer benchmark
// (../shared/peers/go/main.go: a ~400-byte session, one counter increment
// per Telegram-like update, modes seq, conc64, conc64x8 and 2proc-x8) for
// our generic middleware and Manager.Update, in configurations that
// harness cannot express: the Redis client (plain or go-redis's
// AutoPipeliner) and the middleware's Locker (its own LockTable, or
// middleware/redislock across processes).

// PeerConfig is what a -peers run measures.
type PeerConfig struct {
	RedisURL string // "" starts a redis-server of the run's own (see redisFor)
	N        int    // updates per measured run of one case in one mode
	K        int    // chats of the seq and conc modes
	Conc     int    // updates in flight in the conc modes (split over the processes in 2proc)
	Hot      int    // chats of the hot modes
	Rounds   int    // measured runs of every case in every mode, interleaved
	Warmup   int    // updates per case and mode before the measured rounds
	Pool     int    // go-redis PoolSize; 0 means go-redis's default (10 per GOMAXPROCS)
	Client   string // "plain" (*redis.Client), "autopipeline" (its AutoPipeline()) or "store" (plain, with redisstore.Options.AutoPipeline)
	Locker   string // the middleware's: "table" (its own LockTable) or "redis" (middleware/redislock)
	// APDelay and APFullDuplex set the client's redis.AutoPipelineOptions
	// (MaxFlushDelay, FullDuplex) for the autopipeline and store clients;
	// zero values keep go-redis's defaults.
	APDelay      time.Duration
	APFullDuplex bool
	Cases        []string
	Modes        []string
	Verbose      bool
}

// Peer case ids.
const (
	PeerMiddleware = "mw"
	PeerUpdate     = "upd"
	PeerBaseline   = "base"
)

// PeerRow is one line of the -peers table: medians over the rounds, and
// totals of the counts.
type PeerRow struct {
	Case, Mode string
	UsPerOp    float64 // wall µs per update
	Ratio      float64 // median over rounds of UsPerOp / the baseline's in the same mode and round; 0 without a baseline
	CPUUsOp    float64 // client CPU µs per update (2proc: both child processes)
	RedisCPU   float64 // redis-server CPU µs per update (INFO cpu)
	RedisUsec  float64 // commandstats µs per update, top-level commands
	CmdsPerOp  float64
	RTsPerOp   float64
	AllocsOp   float64
	OK         int64 // updates acknowledged (handler returned nil), all rounds
	Errors     int64 // updates that returned an error, all rounds
	Conflicts  int64 // Update: retried compare-and-swap conflicts; middleware: ErrConflict errors
	Lost       int64 // acknowledged minus the sum of score in Redis, all rounds
	FirstErr   string
	runs       []peerMeasure
}

// PeerResult is what RunPeers measured.
type PeerResult struct {
	Rows []PeerRow
	// Lost sums the lost updates of our cases (the baseline loses updates
	// under contention by design and is not counted here).
	Lost int64
}

// Row returns the row of case id in mode, or nil.
func (r *PeerResult) Row(id, mode string) *PeerRow {
	for i := range r.Rows {
		if r.Rows[i].Case == id && r.Rows[i].Mode == mode {
			return &r.Rows[i]
		}
	}
	return nil
}

// ---- the session and the update (as in the shared peer benchmark) ------

type peerPrefs struct {
	Lang         string `json:"lang"`
	Tz           string `json:"tz"`
	Notify       bool   `json:"notify"`
	Theme        string `json:"theme"`
	Digest       string `json:"digest"`
	Level        int    `json:"level"`
	Units        string `json:"units"`
	Nickname     string `json:"nickname"`
	Sound        bool   `json:"sound"`
	Difficulty   string `json:"difficulty"`
	LastCategory string `json:"lastCategory"`
}

// PeerSess is the shared benchmark's session: its JSON is the bytes that
// bench.mjs's JSON.stringify gives.
type PeerSess struct {
	Score    int       `json:"score"`
	Question int       `json:"question"`
	Answers  []string  `json:"answers"`
	Prefs    peerPrefs `json:"prefs"`
}

func initialPeerSess() PeerSess {
	return PeerSess{
		Answers: []string{
			"the quick brown fox jumps",
			"over the lazy dog again",
			"lorem ipsum dolor sit amet",
			"consectetur adipiscing elit",
			"sed do eiusmod tempor",
		},
		Prefs: peerPrefs{
			Lang: "en", Tz: "Europe/Berlin", Notify: true, Theme: "dark", Digest: "weekly",
			Level: 3, Units: "metric", Nickname: "player-one", Sound: false,
			Difficulty: "medium", LastCategory: "science-and-nature",
		},
	}
}

func touchPeer(s *PeerSess) {
	s.Score++
	s.Question = (s.Question + 1) % 10
}

const (
	peerTTL = 3600 * time.Second
	chat0   = 900_000_000 // chat ids chat0 .. chat0+K-1
	procs   = 2           // processes of the 2proc mode
)

type tgChat struct {
	ID        int64  `json:"id"`
	Type      string `json:"type"`
	FirstName string `json:"first_name"`
}

type tgUser struct {
	ID        int64  `json:"id"`
	IsBot     bool   `json:"is_bot"`
	FirstName string `json:"first_name"`
}

type tgMessage struct {
	MessageID int     `json:"message_id"`
	Date      int64   `json:"date"`
	Chat      tgChat  `json:"chat"`
	From      *tgUser `json:"from"`
	Text      string  `json:"text"`
}

type tgUpdate struct {
	UpdateID int        `json:"update_id"`
	Message  *tgMessage `json:"message"`
}

func makeUpdate(i int, chat int64) *tgUpdate {
	return &tgUpdate{UpdateID: i + 1, Message: &tgMessage{
		MessageID: i + 1, Date: 1_700_000_000,
		Chat: tgChat{ID: chat, Type: "private", FirstName: "u"},
		From: &tgUser{ID: chat, FirstName: "u"}, Text: "hi",
	}}
}

func chatKey(_ context.Context, u *tgUpdate) (string, error) {
	if u.Message == nil {
		return "", middleware.ErrNoKey
	}
	return strconv.FormatInt(u.Message.Chat.ID, 10), nil
}

// ---- cases --------------------------------------------------------------

type peerCase struct {
	id, name string
	prefix   string // the Redis key of chat c is prefix + c
	handle   func(ctx context.Context, u *tgUpdate) error
	attempts *atomic.Int64 // runs of Update's change function, nil elsewhere
	rc       *redisCounter
	// sum returns the sum of score over the first chats keys and how many
	// of them exist.
	sum   func(ctx context.Context, chats int) (sum, present int64, err error)
	close func()
}

// newPeerCase builds case id on its own client, with its keys under
// runPrefix.
func newPeerCase(cfg PeerConfig, id, runPrefix string) (*peerCase, error) {
	opts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("Redis URL %q: %w", cfg.RedisURL, err)
	}
	if cfg.Pool > 0 {
		opts.PoolSize = cfg.Pool
	}
	if cfg.APDelay > 0 || cfg.APFullDuplex {
		ap := redis.DefaultBlockingAutoPipelineOptions()
		ap.MaxFlushDelay, ap.FullDuplex = cfg.APDelay, cfg.APFullDuplex
		opts.AutoPipelineOptions = ap
	}
	rdb := redis.NewClient(opts)
	c := &peerCase{id: id, prefix: runPrefix + id + ":", rc: new(redisCounter)}
	rdb.AddHook(countHook{c.rc})
	var client redis.UniversalClient = rdb
	if cfg.Client == "autopipeline" {
		ap, err := rdb.AutoPipeline()
		if err != nil {
			rdb.Close()
			return nil, fmt.Errorf("AutoPipeline: %w", err)
		}
		client = ap
	}
	closers := []func(){func() { rdb.Close() }}
	c.close = func() {
		for _, f := range slices.Backward(closers) {
			f()
		}
	}
	var m *session.Manager[PeerSess]
	if id != PeerBaseline {
		st := redisstore.New(client, redisstore.Options{Prefix: c.prefix, AutoPipeline: cfg.Client == "store"})
		if m, err = session.New(session.Config[PeerSess]{Store: st, TTL: peerTTL, Initial: initialPeerSess}); err != nil {
			c.close()
			return nil, err
		}
		c.sum = func(ctx context.Context, chats int) (sum, present int64, err error) {
			for i := range chats {
				s, err := m.Load(ctx, strconv.Itoa(chat0+i))
				if err != nil {
					return 0, 0, err
				}
				if !s.IsNew() {
					sum += int64(s.Data.Score)
					present++
				}
			}
			return sum, present, nil
		}
	}
	switch id {
	case PeerMiddleware:
		var mo middleware.Options
		lockName := "its own LockTable"
		if cfg.Locker == "redis" {
			// The lock's scripts go through the plain client: its
			// subscription for wake-ups needs one. They are counted all
			// the same (the hook is on rdb).
			lk := redislock.New(rdb, redislock.Options{Prefix: runPrefix + "lock:"})
			closers = append(closers, func() { lk.Close() })
			mo.Locker = lk
			lockName = "redislock"
		}
		handle := middleware.New(m, chatKey, mo).Wrap(func(ctx context.Context, u *tgUpdate) error {
			s, err := session.From[PeerSess](ctx)
			if err != nil {
				return err
			}
			touchPeer(&s.Data)
			return nil
		})
		c.name = "typedsession middleware.New(...).Wrap, " + lockName
		c.handle = handle
	case PeerUpdate:
		c.attempts = new(atomic.Int64)
		fn := func(s *PeerSess) error {
			c.attempts.Add(1)
			touchPeer(s)
			return nil
		}
		c.name = "typedsession Manager.Update"
		c.handle = func(ctx context.Context, u *tgUpdate) error {
			_, err := m.Update(ctx, strconv.FormatInt(u.Message.Chat.ID, 10), fn)
			return err
		}
	case PeerBaseline:
		c.name = "baseline: GET, Unmarshal, change, Marshal, SET EX"
		c.handle = func(ctx context.Context, u *tgUpdate) error {
			key := c.prefix + strconv.FormatInt(u.Message.Chat.ID, 10)
			raw, err := client.Get(ctx, key).Bytes()
			var s PeerSess
			switch {
			case errors.Is(err, redis.Nil):
				s = initialPeerSess()
			case err != nil:
				return err
			default:
				if err := json.Unmarshal(raw, &s); err != nil {
					return err
				}
			}
			touchPeer(&s)
			b, err := json.Marshal(&s)
			if err != nil {
				return err
			}
			return client.Set(ctx, key, b, peerTTL).Err()
		}
		c.sum = func(ctx context.Context, chats int) (sum, present int64, err error) {
			for i := 0; i < chats; i += 500 {
				keys := make([]string, 0, 500)
				for j := i; j < min(i+500, chats); j++ {
					keys = append(keys, c.prefix+strconv.Itoa(chat0+j))
				}
				vals, err := rdb.MGet(ctx, keys...).Result()
				if err != nil {
					return 0, 0, err
				}
				for _, v := range vals {
					s, ok := v.(string)
					if !ok {
						continue
					}
					var doc PeerSess
					if err := json.Unmarshal([]byte(s), &doc); err != nil {
						return 0, 0, fmt.Errorf("stored value %.60q: %w", s, err)
					}
					sum += int64(doc.Score)
					present++
				}
			}
			return sum, present, nil
		}
	default:
		c.close()
		return nil, fmt.Errorf("unknown case %q: want %s, %s or %s", id, PeerMiddleware, PeerUpdate, PeerBaseline)
	}
	return c, nil
}

// ---- drivers ------------------------------------------------------------

// peerRun is what one run of n updates did, in one process.
type peerRun struct {
	OK        int64  `json:"ok"`
	Errors    int64  `json:"errors"`
	Conflicts int64  `json:"conflicts"` // errors that are session.ErrConflict
	Attempts  int64  `json:"attempts"`  // runs of Update's change function
	FirstErr  string `json:"firstErr,omitempty"`
	// Set by child processes only: their own client figures.
	CPUUs   int64  `json:"cpuUs"`
	Mallocs uint64 `json:"mallocs"`
	Bytes   uint64 `json:"bytes"`
	Counts  counts `json:"counts"`
}

func (r *peerRun) add(o peerRun) {
	r.OK += o.OK
	r.Errors += o.Errors
	r.Conflicts += o.Conflicts
	r.Attempts += o.Attempts
	if r.FirstErr == "" {
		r.FirstErr = o.FirstErr
	}
	r.CPUUs += o.CPUUs
	r.Mallocs += o.Mallocs
	r.Bytes += o.Bytes
	r.Counts = r.Counts.plus(o.Counts)
}

// runUpdates runs n updates with workers goroutines sharing one counter,
// so that exactly n updates run with workers in flight. chatsOf(w) are the
// chats worker w cycles through.
func runUpdates(ctx context.Context, c *peerCase, n, workers, offset int, chatsOf func(w int) []int64) peerRun {
	var next atomic.Int64
	var mu sync.Mutex
	var total peerRun
	var wg sync.WaitGroup
	for w := range workers {
		own := chatsOf(w)
		wg.Go(func() {
			var r peerRun
			for j := 0; ; j++ {
				i := int(next.Add(1) - 1)
				if i >= n {
					break
				}
				err := c.handle(ctx, makeUpdate(offset+i, own[j%len(own)]))
				switch {
				case err == nil:
					r.OK++
				default:
					r.Errors++
					if errors.Is(err, session.ErrConflict) {
						r.Conflicts++
					}
					if r.FirstErr == "" {
						r.FirstErr = err.Error()
					}
				}
			}
			mu.Lock()
			total.add(r)
			mu.Unlock()
		})
	}
	wg.Wait()
	return total
}

// peerMode is one way of driving the updates.
type peerMode struct {
	name  string
	chats int  // keys it touches: chat0 .. chat0+chats-1
	multi bool // runs in child processes
	run   func(ctx context.Context, c *peerCase, n, offset int) peerRun
}

func peerModes(cfg PeerConfig) []peerMode {
	distinct := func(workers int) func(int) []int64 {
		return func(w int) []int64 {
			var own []int64
			for c := w; c < cfg.K; c += workers {
				own = append(own, int64(chat0+c))
			}
			if len(own) == 0 {
				own = []int64{int64(chat0 + w%cfg.K)}
			}
			return own
		}
	}
	hot := func(w int) []int64 { return []int64{int64(chat0 + w%cfg.Hot)} }
	return []peerMode{
		{name: "seq", chats: cfg.K, run: func(ctx context.Context, c *peerCase, n, off int) peerRun {
			// One worker cycling through every chat: chat i % K.
			return runUpdates(ctx, c, n, 1, off, distinct(1))
		}},
		{name: fmt.Sprintf("conc%d", cfg.Conc), chats: cfg.K, run: func(ctx context.Context, c *peerCase, n, off int) peerRun {
			return runUpdates(ctx, c, n, cfg.Conc, off, distinct(cfg.Conc))
		}},
		{name: fmt.Sprintf("conc%dx%d", cfg.Conc, cfg.Hot), chats: cfg.Hot, run: func(ctx context.Context, c *peerCase, n, off int) peerRun {
			return runUpdates(ctx, c, n, cfg.Conc, off, hot)
		}},
		{name: fmt.Sprintf("%dproc-x%d", procs, cfg.Hot), chats: cfg.Hot, multi: true, run: func(ctx context.Context, c *peerCase, n, off int) peerRun {
			return runUpdates(ctx, c, n, max(cfg.Conc/procs, 1), off, hot)
		}},
	}
}

// ---- child processes (the 2proc mode) -----------------------------------

// peerChildEnv names the environment variable that makes this binary (or
// the test binary) a child of the 2proc mode: its value is the JSON of a
// peerChildSpec.
const peerChildEnv = "TSBENCH_PEERS_CHILD"

type peerChildSpec struct {
	Config    PeerConfig `json:"config"`
	Case      string     `json:"case"`
	RunPrefix string     `json:"runPrefix"`
}

// peerChild serves "run <n> <offset>" lines on stdin: each runs n updates
// of the 2proc mode and answers one JSON line (a peerRun with this
// process's CPU, allocations and Redis counts). It is what the binary does
// when peerChildEnv is set.
func peerChild(spec string) error {
	var sp peerChildSpec
	if err := json.Unmarshal([]byte(spec), &sp); err != nil {
		return fmt.Errorf("%s: %w", peerChildEnv, err)
	}
	c, err := newPeerCase(sp.Config, sp.Case, sp.RunPrefix)
	if err != nil {
		return err
	}
	defer c.close()
	var mode peerMode
	for _, m := range peerModes(sp.Config) {
		if m.multi {
			mode = m
		}
	}
	ctx := context.Background()
	fmt.Println("ready")
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		var n, off int
		if _, err := fmt.Sscanf(sc.Text(), "run %d %d", &n, &off); err != nil {
			return fmt.Errorf("bad command %q", sc.Text())
		}
		runtime.GC()
		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		var att0 int64
		if c.attempts != nil {
			att0 = c.attempts.Load()
		}
		c0 := c.rc.snapshot()
		cpu0 := cpuUs()
		r := mode.run(ctx, c, n, off)
		r.CPUUs = cpuUs() - cpu0
		r.Counts = c.rc.snapshot().sub(c0)
		runtime.ReadMemStats(&ms1)
		r.Mallocs = ms1.Mallocs - ms0.Mallocs
		r.Bytes = ms1.TotalAlloc - ms0.TotalAlloc
		if c.attempts != nil {
			r.Attempts = c.attempts.Load() - att0
		}
		b, _ := json.Marshal(r)
		fmt.Println(string(b))
	}
	return sc.Err()
}

type peerChildProc struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

func startPeerChildren(cfg PeerConfig, id, runPrefix string) ([]*peerChildProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	spec, _ := json.Marshal(peerChildSpec{Config: cfg, Case: id, RunPrefix: runPrefix})
	var cs []*peerChildProc
	for range procs {
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(), peerChildEnv+"="+string(spec))
		cmd.Stderr = os.Stderr
		in, err := cmd.StdinPipe()
		if err != nil {
			return cs, err
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			return cs, err
		}
		if err := cmd.Start(); err != nil {
			return cs, err
		}
		ch := &peerChildProc{cmd: cmd, in: in, out: bufio.NewReader(out)}
		cs = append(cs, ch)
		if line, err := ch.out.ReadString('\n'); err != nil || strings.TrimSpace(line) != "ready" {
			return cs, fmt.Errorf("child process of case %s: %q %v", id, line, err)
		}
	}
	return cs, nil
}

func stopPeerChildren(cs []*peerChildProc) {
	for _, ch := range cs {
		ch.in.Close()
		ch.cmd.Wait()
	}
}

// runChildren runs n updates split over the child processes, all started
// at once.
func runChildren(cs []*peerChildProc, n, offset int) (peerRun, error) {
	per := n / len(cs)
	for p, ch := range cs {
		if _, err := fmt.Fprintf(ch.in, "run %d %d\n", per, offset+p*per); err != nil {
			return peerRun{}, err
		}
	}
	var total peerRun
	for _, ch := range cs {
		line, err := ch.out.ReadString('\n')
		if err != nil {
			return peerRun{}, fmt.Errorf("child process: %w", err)
		}
		var r peerRun
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return peerRun{}, fmt.Errorf("child process: %q: %w", line, err)
		}
		total.add(r)
	}
	return total, nil
}

// ---- measuring ----------------------------------------------------------

// peerMeasure is one measured run of one case in one mode.
type peerMeasure struct {
	s                sample // per update
	ok, errs, confl  int64
	lost, present, n int64
	firstErr         string
}

type peerRunner struct {
	cfg       PeerConfig
	admin     *redis.Client
	runPrefix string
	children  map[string][]*peerChildProc
}

func (p *peerRunner) clear(ctx context.Context, c *peerCase, chats int) error {
	for i := 0; i < chats; i += 500 {
		keys := make([]string, 0, 500)
		for j := i; j < min(i+500, chats); j++ {
			keys = append(keys, c.prefix+strconv.Itoa(chat0+j))
		}
		if err := p.admin.Del(ctx, keys...).Err(); err != nil {
			return fmt.Errorf("DEL: %w", err)
		}
	}
	return nil
}

func (p *peerRunner) measure(ctx context.Context, c *peerCase, m peerMode, n, offset int) (peerMeasure, error) {
	var cs []*peerChildProc
	if m.multi {
		cs = p.children[c.id]
		if cs == nil {
			var err error
			cs, err = startPeerChildren(p.cfg, c.id, p.runPrefix)
			p.children[c.id] = cs
			if err != nil {
				return peerMeasure{}, err
			}
		}
	}
	if err := p.clear(ctx, c, p.cfg.K); err != nil {
		return peerMeasure{}, err
	}
	var att0 int64
	if c.attempts != nil {
		att0 = c.attempts.Load()
	}
	pr := probe{rc: c.rc, admin: p.admin}
	runtime.GC()
	r0, err := pr.read(ctx, true)
	if err != nil {
		return peerMeasure{}, err
	}
	var r peerRun
	if m.multi {
		r, err = runChildren(cs, n, offset)
		if err != nil {
			return peerMeasure{}, err
		}
	} else {
		r = m.run(ctx, c, n, offset)
		if c.attempts != nil {
			r.Attempts = c.attempts.Load() - att0
		}
	}
	r1, err := pr.read(ctx, false)
	if err != nil {
		return peerMeasure{}, err
	}
	if m.multi {
		// The figures of the processes that did the work: this one only
		// waited. Wall time and the server's figures stay this process's.
		r1.cpu = r0.cpu + r.CPUUs
		r1.ms.Mallocs = r0.ms.Mallocs + r.Mallocs
		r1.ms.TotalAlloc = r0.ms.TotalAlloc + r.Bytes
		r1.counts = r0.counts.plus(r.Counts)
	}
	s := pr.perOp(r0, r1, int64(n))
	sum, present, err := c.sum(ctx, m.chats)
	if err != nil {
		return peerMeasure{}, fmt.Errorf("sum of scores: %w", err)
	}
	pm := peerMeasure{s: s, ok: r.OK, errs: r.Errors, lost: r.OK - sum, present: present, n: int64(n), firstErr: r.FirstErr}
	if c.attempts != nil {
		pm.confl = r.Attempts - r.OK
	} else if c.id == PeerMiddleware {
		pm.confl = r.Conflicts
	} else {
		pm.confl = -1
	}
	return pm, nil
}

// RunPeers measures the peer workload for cfg.Cases in cfg.Modes, the
// rounds interleaved (every round runs every case in every mode; within a
// mode the cases' order rotates from round to round), and prints the
// table to w.
func RunPeers(ctx context.Context, cfg PeerConfig, w io.Writer) (*PeerResult, error) {
	if cfg.N < procs || cfg.K < 1 || cfg.Conc < 1 || cfg.Hot < 1 || cfg.Rounds < 1 || cfg.Warmup < 0 {
		return nil, errors.New("need -n >= 2, -k >= 1, -concurrency >= 1, -hot >= 1, -rounds >= 1, -warmup >= 0")
	}
	if cfg.Client != "plain" && cfg.Client != "autopipeline" && cfg.Client != "store" {
		return nil, fmt.Errorf("-client %q: want plain, autopipeline or store", cfg.Client)
	}
	if cfg.Locker != "table" && cfg.Locker != "redis" {
		return nil, fmt.Errorf("-locker %q: want table or redis", cfg.Locker)
	}
	url, desc, stopOwn, err := redisFor(Config{RedisURL: cfg.RedisURL})
	if err != nil {
		return nil, err
	}
	defer stopOwn()
	cfg.RedisURL = url
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("Redis URL %q: %w", url, err)
	}
	admin := redis.NewClient(opts)
	defer admin.Close()
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	err = admin.Ping(pctx).Err()
	cancel()
	if err != nil {
		return nil, fmt.Errorf("no Redis answers at %s: %w", url, err)
	}
	p := &peerRunner{cfg: cfg, admin: admin, runPrefix: "tsbench:peers:" + randomHex() + ":", children: map[string][]*peerChildProc{}}
	defer func() {
		for _, cs := range p.children {
			stopPeerChildren(cs)
		}
		deletePrefix(context.Background(), admin, p.runPrefix)
	}()

	var cases []*peerCase
	defer func() {
		for _, c := range cases {
			c.close()
		}
	}()
	ids := cfg.Cases
	if len(ids) == 0 {
		ids = []string{PeerMiddleware, PeerUpdate, PeerBaseline}
	}
	for _, id := range ids {
		c, err := newPeerCase(cfg, id, p.runPrefix)
		if err != nil {
			return nil, err
		}
		cases = append(cases, c)
	}
	var modes []peerMode
	for _, m := range peerModes(cfg) {
		if len(cfg.Modes) == 0 || slices.Contains(cfg.Modes, m.name) {
			modes = append(modes, m)
		}
	}
	if len(modes) != len(cfg.Modes) && len(cfg.Modes) != 0 {
		return nil, fmt.Errorf("-modes %q: want some of seq, conc%d, conc%dx%d, %dproc-x%d", cfg.Modes, cfg.Conc, cfg.Conc, cfg.Hot, procs, cfg.Hot)
	}

	sessJSON, _ := json.Marshal(initialPeerSess())
	fmt.Fprintf(w, "peers workload: %d updates per run, %d chats (hot modes: %d), %d in flight, %d rounds interleaved (medians), warm-up %d, session JSON %d bytes\n",
		cfg.N, cfg.K, cfg.Hot, cfg.Conc, cfg.Rounds, cfg.Warmup, len(sessJSON))
	pool := "default PoolSize (10 per GOMAXPROCS)"
	if cfg.Pool > 0 {
		pool = fmt.Sprintf("PoolSize %d", cfg.Pool)
	}
	fmt.Fprintf(w, "client %s (every case, the baseline too), %s; middleware locker %s; %s/%s, GOMAXPROCS %d, %s, load average %s\n",
		cfg.Client, pool, cfg.Locker, runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), runtime.Version(), loadAvg())
	fmt.Fprintln(w, desc)

	offset := 0
	for _, m := range modes {
		for _, c := range cases {
			if cfg.Warmup == 0 {
				continue
			}
			if _, err := p.measure(ctx, c, m, max(cfg.Warmup, procs), offset); err != nil {
				return nil, fmt.Errorf("%s, %s (warm-up): %w", c.id, m.name, err)
			}
			offset += cfg.Warmup
		}
	}
	runs := map[string][]peerMeasure{}
	for round := range cfg.Rounds {
		for _, m := range modes {
			for i := range cases {
				c := cases[(i+round)%len(cases)]
				pm, err := p.measure(ctx, c, m, cfg.N, offset)
				if err != nil {
					return nil, fmt.Errorf("%s, %s: %w", c.id, m.name, err)
				}
				offset += cfg.N
				runs[c.id+"|"+m.name] = append(runs[c.id+"|"+m.name], pm)
			}
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
	}

	res := &PeerResult{}
	for _, m := range modes {
		base := runs[PeerBaseline+"|"+m.name]
		for _, c := range cases {
			rs := runs[c.id+"|"+m.name]
			med := func(f func(sample) float64) float64 {
				return median(rs, func(pm peerMeasure) float64 { return f(pm.s) })
			}
			row := PeerRow{
				Case: c.id, Mode: m.name,
				UsPerOp:   med(func(s sample) float64 { return s.ns / 1000 }),
				CPUUsOp:   med(func(s sample) float64 { return s.cpu }),
				RedisCPU:  med(func(s sample) float64 { return s.redisCPU }),
				RedisUsec: med(func(s sample) float64 { return s.redisUsec }),
				CmdsPerOp: med(func(s sample) float64 { return s.cmds }),
				RTsPerOp:  med(func(s sample) float64 { return s.rts }),
				AllocsOp:  med(func(s sample) float64 { return s.allocs }),
				runs:      rs,
			}
			if base != nil {
				ss, bs := make([]sample, len(rs)), make([]sample, len(base))
				for i := range rs {
					ss[i], bs[i] = rs[i].s, base[i].s
				}
				row.Ratio = medianRatio(ss, bs)
			}
			for _, pm := range rs {
				row.OK += pm.ok
				row.Errors += pm.errs
				row.Conflicts += pm.confl
				row.Lost += pm.lost
				if row.FirstErr == "" {
					row.FirstErr = pm.firstErr
				}
			}
			if c.id != PeerUpdate && c.id != PeerMiddleware {
				row.Conflicts = -1
			} else {
				res.Lost += row.Lost
			}
			res.Rows = append(res.Rows, row)
		}
	}
	printPeers(w, cfg, cases, res)
	return res, nil
}

func printPeers(w io.Writer, cfg PeerConfig, cases []*peerCase, res *PeerResult) {
	fmt.Fprintln(w, "\ncases:")
	for _, c := range cases {
		fmt.Fprintf(w, "  %-4s %s\n", c.id, c.name)
	}
	fmt.Fprintf(w, "\n%-10s %-4s %9s %7s %7s %7s %8s %7s %6s %7s %9s %7s %6s\n", "mode", "case",
		"wall µs", "× base", "CPU µs", "Redis", "cmdstat", "cmds", "RT", "allocs", "conflicts", "errors", "lost")
	fmt.Fprintf(w, "%-10s %-4s %9s %7s %7s %7s %8s %7s %6s %7s %9s %7s %6s\n", "", "",
		"/update", "", "/update", "CPU µs", "µs", "/update", "/upd", "/update", "", "", "")
	for _, r := range res.Rows {
		ratio := "-"
		if r.Ratio > 0 {
			ratio = fmt.Sprintf("%.2f", r.Ratio)
		}
		conflicts := "-"
		if r.Conflicts >= 0 {
			conflicts = strconv.FormatInt(r.Conflicts, 10)
		}
		fmt.Fprintf(w, "%-10s %-4s %9.1f %7s %7s %7s %8s %7s %6s %7s %9s %7d %6d\n", r.Mode, r.Case,
			r.UsPerOp, ratio, fig(r.CPUUsOp, 1), fig(r.RedisCPU, 1), fig(r.RedisUsec, 1),
			fig(r.CmdsPerOp, 2), fig(r.RTsPerOp, 2), fig(r.AllocsOp, 0), conflicts, r.Errors, r.Lost)
	}
	fmt.Fprintf(w, "\nwall, CPU, Redis, cmds, RT and allocs: medians over %d runs of %d updates; conflicts, errors and lost: totals\n", cfg.Rounds, cfg.N)
	fmt.Fprintln(w, "over them. × base: median of the per-run ratios to the baseline in the same mode and round. CPU µs: the client")
	fmt.Fprintln(w, "processes' getrusage (2proc: both children); Redis CPU µs: INFO cpu of redis-server; cmdstat µs: commandstats")
	fmt.Fprintln(w, "time of the top-level commands. conflicts: Update's retried compare-and-swaps; middleware: ErrConflict errors.")
	fmt.Fprintln(w, "lost: acknowledged updates minus the sum of score in Redis (the baseline loses updates under contention by design).")
	for _, r := range res.Rows {
		if r.FirstErr != "" {
			fmt.Fprintf(w, "first error, %s %s: %s\n", r.Case, r.Mode, r.FirstErr)
		}
	}
	if cfg.Verbose {
		fmt.Fprintln(w, "\nwall µs/update of each run:")
		for _, r := range res.Rows {
			fmt.Fprintf(w, "  %-10s %-4s", r.Mode, r.Case)
			for _, pm := range r.runs {
				fmt.Fprintf(w, " %7.1f", pm.s.ns/1000)
			}
			fmt.Fprintln(w)
		}
	}
}
