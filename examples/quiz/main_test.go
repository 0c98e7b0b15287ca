package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	session "github.com/typedsession/session"
	"github.com/typedsession/session/internal/testenv"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/filestore"
	"github.com/typedsession/session/store/memstore"
)

// TestMain clears the environment fallbacks of the flags, so that a
// developer's TELEGRAM_BOT_TOKEN or QUIZ_STORE cannot change what the tests
// run (the tests pass every flag they need).
func TestMain(m *testing.M) {
	for _, name := range []string{"QUIZ_STORE", "QUIZ_DIR", "QUIZ_BACKUP", "QUIZ_NAMESPACE", "TELEGRAM_BOT_TOKEN", "TELEGRAM_API_URL"} {
		os.Unsetenv(name)
	}
	os.Exit(m.Run())
}

// runQuiz runs the program once on input and returns what it printed.
func runQuiz(t *testing.T, args []string, input string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out strings.Builder
	if err := run(ctx, args, strings.NewReader(input), &out); err != nil {
		t.Fatalf("run(%q) = %v; output:\n%s", args, err, out.String())
	}
	return out.String()
}

// wantLines fails unless every want line appears in out, in order.
func wantLines(t *testing.T, out string, want ...string) {
	t.Helper()
	rest := out
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Fatalf("output lacks %q (in order); output:\n%s", w, out)
		}
		rest = rest[i+len(w):]
	}
}

// loadQuiz reads the stored session of key from st.
func loadQuiz(t *testing.T, st store.Store, namespace, key string) view {
	t.Helper()
	m, err := newManager(st, namespace)
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.Load(context.Background(), key)
	if err != nil {
		t.Fatalf("Load(%q): %v", key, err)
	}
	if s.IsNew() {
		t.Fatalf("Load(%q): no session stored", key)
	}
	return viewOf(t, s.Data)
}

// The script of the two-run tests: run 1 starts a quiz and answers two
// questions (one right, one wrong) and ends at EOF; run 2 continues at
// question 3 with the same score.
const (
	firstRun  = "/start\n/quiz\n3\nsix\n"
	secondRun = "/score\nMars\n"
)

func checkContinues(t *testing.T, out1, out2 string) {
	t.Helper()
	wantLines(t, out1,
		"bot: Hello!",
		"bot: Question 1/10: What is the capital of France?",
		"bot: Right!\nQuestion 2/10",
		"bot: Wrong: it was Seven.\nQuestion 3/10: Which planet",
	)
	wantLines(t, out2,
		"bot: Score: 1 of 2 answered, at question 3/10. Best: 0.",
		"bot: Right!\nQuestion 4/10",
	)
}

// view is what the tests compare of a stored quiz: the running quiz (the
// conversation's Asking step, nil when none runs) and the last and best
// scores.
type view struct {
	Running *Asking
	Score   int
	Answers []string
	Best    int
}

func viewOf(t *testing.T, q Quiz) view {
	t.Helper()
	v := view{Score: q.Score, Answers: q.Answers, Best: q.Best}
	if q.Conv.Active() {
		v.Running = new(Asking)
		if err := json.Unmarshal(q.Conv.Frames[0].Data, v.Running); err != nil {
			t.Fatal(err)
		}
	}
	return v
}

var wantYou = view{Running: &Asking{Question: 3, Score: 2, Answers: []string{"Paris", "Six", "Mars"}}}

func TestFileStoreContinuesAcrossRuns(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	args := []string{"-dir", dir} // -store file is the default
	out1 := runQuiz(t, args, firstRun)
	if !strings.Contains(out1, "in files under "+dir) {
		t.Errorf("banner does not say where sessions are kept:\n%s", out1)
	}
	out2 := runQuiz(t, args, secondRun)
	checkContinues(t, out1, out2)

	st, err := filestore.New(dir, filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if diff := cmp.Diff(wantYou, loadQuiz(t, st, "quiz", "terminal:you")); diff != "" {
		t.Errorf("stored quiz mismatch (-want +got):\n%s", diff)
	}
}

func TestMemoryStoreWithBackupContinuesAcrossRuns(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	backup := filepath.Join(dir, "snap.json")
	args := []string{"-store", "memory", "-backup", backup, "-dir", filepath.Join(dir, "unused")}
	out1 := runQuiz(t, args, firstRun)
	if !strings.Contains(out1, "saved to "+backup) {
		t.Errorf("banner does not name the snapshot:\n%s", out1)
	}
	if _, err := os.Stat(backup); err != nil {
		t.Fatalf("no snapshot after the first run: %v", err)
	}
	out2 := runQuiz(t, args, secondRun)
	checkContinues(t, out1, out2)

	st, err := memstore.New(memstore.Options{BackupPath: backup})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if diff := cmp.Diff(wantYou, loadQuiz(t, st, "quiz", "terminal:you")); diff != "" {
		t.Errorf("stored quiz mismatch (-want +got):\n%s", diff)
	}
}

func TestMemoryStoreWithoutBackupForgets(t *testing.T) {
	t.Parallel()
	args := []string{"-store", "memory", "-backup", "off", "-dir", t.TempDir()}
	runQuiz(t, args, firstRun)
	out := runQuiz(t, args, "/score\n")
	wantLines(t, out, "lost on exit", "bot: No quiz played yet.")
}

func TestRedisStoreContinuesAcrossRuns(t *testing.T) {
	t.Parallel()
	client := testenv.Redis(t)
	url := testenv.RedisURL()
	ctx := t.Context()
	// A namespace holds no ':'; the test's own one is unique per run.
	ns := strings.ReplaceAll(strings.TrimSuffix(testenv.Prefix(t, "quiztest"), ":"), ":", "_")
	testenv.CleanupPrefix(t, client, ns+":")
	args := []string{"-store", "redis", "-redis-url", url, "-namespace", ns}
	out1 := runQuiz(t, args, firstRun)
	out2 := runQuiz(t, args, secondRun)
	checkContinues(t, out1, out2)
	ttl, err := client.PTTL(ctx, ns+":terminal:you").Result()
	if err != nil || ttl <= 0 {
		t.Errorf("PTTL of the session = %v, %v; want the 30-day idle timeout", ttl, err)
	}
}

func TestSeveralPlayersInterleaved(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	args := []string{"-dir", dir}
	out1 := runQuiz(t, args, strings.Join([]string{
		"@alice: /quiz",
		"@bob: /quiz",
		"@alice: Paris", // right
		"@bob: 1",       // wrong (Berlin)
		"/score",        // "you" has not played
		"@alice: 3",     // right (Seven)
		"@bob:   seven", // right, spaces and case do not matter
		"@carol: 2",     // no quiz running
	}, "\n"))
	wantLines(t, out1,
		"bot to @alice: Question 1/10",
		"bot to @bob: Question 1/10",
		"bot to @alice: Right!",
		"bot to @bob: Wrong: it was Paris.",
		"bot: No quiz played yet.",
		"bot to @alice: Right!\nQuestion 3/10",
		"bot to @bob: Right!\nQuestion 3/10",
		"bot to @carol: No quiz is running.",
	)
	out2 := runQuiz(t, args, "@bob: /score\n@alice: /score\n")
	wantLines(t, out2,
		"bot to @bob: Score: 1 of 2 answered, at question 3/10.",
		"bot to @alice: Score: 2 of 2 answered, at question 3/10.",
	)
	st, err := filestore.New(dir, filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for key, want := range map[string]view{
		"terminal:alice": {Running: &Asking{Question: 2, Score: 2, Answers: []string{"Paris", "Seven"}}},
		"terminal:bob":   {Running: &Asking{Question: 2, Score: 1, Answers: []string{"Berlin", "Seven"}}},
	} {
		if diff := cmp.Diff(want, loadQuiz(t, st, "quiz", key)); diff != "" {
			t.Errorf("%s: stored quiz mismatch (-want +got):\n%s", key, diff)
		}
	}
	// Players who only asked questions or had no quiz stored nothing.
	for _, key := range []string{"quiz:terminal:you", "quiz:terminal:carol"} {
		if _, err := st.Get(context.Background(), key); err != store.ErrNotFound {
			t.Errorf("Get(%q) = %v; want ErrNotFound: a session nobody changed is not written", key, err)
		}
	}
}

func TestCorruptSessionHurtsOnlyItsPlayer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st, err := filestore.New(dir, filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Valid JSON in the current envelope, but Question fails "lte=50".
	bad := []byte(`{"typedsession":1,"data":{"active":true,"question":99,"score":0,"answers":[],"best":0}}`)
	if err := st.Set(context.Background(), "quiz:terminal:mallory", bad, 0); err != nil {
		t.Fatal(err)
	}
	st.Close()
	out := runQuiz(t, []string{"-dir", dir}, "@mallory: 1\n/quiz\n")
	wantLines(t, out, "error for mallory:", "invalid", "bot: Question 1/10")

	st, err = filestore.New(dir, filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got, err := st.Get(context.Background(), "quiz:terminal:mallory")
	if err != nil || string(got) != string(bad) {
		t.Errorf("the invalid session was changed: %q, %v", got, err)
	}
}

func TestBadFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"-store", "floppy"},
		{"-store", "redis", "-redis-url", "not a url"},
		{"-dir", t.TempDir(), "extra"},
	} {
		var out strings.Builder
		err := run(context.Background(), args, strings.NewReader(""), &out)
		if err == nil {
			t.Errorf("run(%q) = nil; want an error", args)
		}
	}
}

// player plays the quiz through its flow on a memstore, without a
// middleware: each message is one Handle.
type player struct {
	t   *testing.T
	m   *session.Manager[Quiz]
	f   *quizFlow
	id  int64
	clk *fakeClock
}

type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

func newPlayer(t *testing.T, limit time.Duration) *player {
	st, err := memstore.New(memstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	m, err := newManager(st, "quiz")
	if err != nil {
		t.Fatal(err)
	}
	p := &player{t: t, m: m, clk: &fakeClock{now: time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)}}
	p.f, err = newFlow(m, st, limit, p.clk.Now, func(context.Context, string, int64, string) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *player) say(text string) string {
	p.t.Helper()
	p.id++
	var reply string
	if _, err := p.f.Handle(context.Background(), "p", p.id, message{text: text, reply: &reply}); err != nil {
		p.t.Fatalf("%q: %v", text, err)
	}
	return reply
}

func (p *player) quiz() view {
	p.t.Helper()
	s, err := p.m.Load(context.Background(), "p")
	if err != nil {
		p.t.Fatal(err)
	}
	return viewOf(p.t, s.Data)
}

func TestHandleWholeQuiz(t *testing.T) {
	t.Parallel()
	p := newPlayer(t, 0)
	p.say("/quiz")
	var last string
	for _, qu := range questions {
		last = p.say(qu.Options[qu.Right])
	}
	if !strings.Contains(last, "Quiz over: 10 of 10 right. A new best score!") {
		t.Errorf("last reply = %q", last)
	}
	if q := p.quiz(); q.Running != nil || q.Best != 10 || q.Score != 10 || len(q.Answers) != 10 {
		t.Errorf("after a perfect quiz: %+v", q)
	}
	// A new quiz keeps the best score; a worse one does not lower it.
	p.say("/quiz@QuizBot")
	for range questions {
		p.say("1")
	}
	if q := p.quiz(); q.Score != 0 || q.Best != 10 { // option 1 is wrong everywhere
		t.Errorf("after a quiz with no right answer: %+v; want Score 0, Best 10", q)
	}
	if r := p.say("/reset"); !strings.Contains(r, "Forgotten") {
		t.Errorf("/reset: %q", r)
	}
	if q := p.quiz(); q.Best != 0 || q.Running != nil {
		t.Errorf("/reset: %+v", q)
	}
}

func TestHandleRejectsUnknownInput(t *testing.T) {
	t.Parallel()
	p := newPlayer(t, 0)
	p.say("/quiz")
	for _, a := range []string{"1", "2", "3", "4"} {
		p.say(a)
	}
	before := p.quiz()
	for _, in := range []string{"5", "0", "banana", "/frobnicate"} {
		r := p.say(in)
		if diff := cmp.Diff(before, p.quiz()); diff != "" {
			t.Errorf("%q changed the quiz (-before +after):\n%s", in, diff)
		}
		if r == "" {
			t.Errorf("%q gave no reply", in)
		}
	}
}

// TestTimeLimit: a question unanswered for the time limit is answered by
// the bot ("Time's up"), once, without another message.
func TestTimeLimit(t *testing.T) {
	t.Parallel()
	p := newPlayer(t, 30*time.Second)
	p.say("/quiz")
	p.say("3") // question 1, right
	p.clk.now = p.clk.now.Add(30 * time.Second)
	for range 2 {
		if _, err := p.f.Sweep(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	want := view{Running: &Asking{Question: 2, Score: 1, Answers: []string{"Paris", ""}}}
	if diff := cmp.Diff(want, p.quiz()); diff != "" {
		t.Errorf("after the time limit of question 2 (-want +got):\n%s", diff)
	}
}

// TestTimeLimitAfterRestart: a question left unanswered when the bot
// stopped gets its "Time's up" from the next run, at its start, with no
// message from the player (a fake clock: the second run starts 31 s
// later).
func TestTimeLimitAfterRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clk := &fakeClock{now: time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)}
	runAt := func(input string) string {
		o, err := parseFlags([]string{"-dir", dir, "-time-limit", "30s"}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		o.now = clk.Now
		var out strings.Builder // read after runWith, whose sweeper has stopped by then
		if err := runWith(context.Background(), o, strings.NewReader(input), &out); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	out1 := runAt("/quiz\n3\n")
	if strings.Contains(out1, "Time's up") {
		t.Fatalf("a time limit ran out in the first run:\n%s", out1)
	}
	clk.now = clk.now.Add(31 * time.Second)
	out2 := runAt("")
	wantLines(t, out2, "bot: Time's up: it was Seven.\nQuestion 3/10: Which planet")
	if n := strings.Count(out2, "Time's up"); n != 1 {
		t.Errorf("%d time limits ran out, want 1:\n%s", n, out2)
	}
}

// TestMigratesVersion1: a quiz running in a session stored by the
// previous version (its own fields, schema version 1) goes on as the
// conversation.
func TestMigratesVersion1(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st, err := filestore.New(dir, filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	v1 := `{"typedsession":1,"data":{"active":true,"question":2,"score":1,"answers":["Paris","Six"],"best":4}}`
	if err := st.Set(context.Background(), "quiz:terminal:you", []byte(v1), 0); err != nil {
		t.Fatal(err)
	}
	st.Close()
	out := runQuiz(t, []string{"-dir", dir}, "/score\nMars\n")
	wantLines(t, out,
		"bot: Score: 1 of 2 answered, at question 3/10. Best: 4.",
		"bot: Right!\nQuestion 4/10",
	)
}
