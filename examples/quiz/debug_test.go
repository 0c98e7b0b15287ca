package main

import (
	"regexp"
	"strings"
	"testing"
)

// TestDebug: /debug shows the player's own session as stored, with its
// version, size and TTL left, and nobody else's.
func TestDebug(t *testing.T) {
	t.Parallel()
	args := []string{"-dir", t.TempDir()}
	out := runQuiz(t, args, "/debug\n/quiz\n3\n@bob: /quiz\n/debug\n@bob: /debug@QuizBot\n")
	if !strings.Contains(out, "bot: Your session (key terminal:you) is not stored yet") {
		t.Errorf("first /debug, before anything was stored:\n%s", out)
	}
	you := regexp.MustCompile(`bot: Your session \(store key quiz:terminal:you\): schema version 2, (\d+) bytes, 719h59m5\ds left\.\n\{"conv":\{"frames":\[\{"flow":"quiz","step":"Asking","data":\{"question":1,"score":1,"answers":\["Paris"\]\}`)
	if !you.MatchString(out) {
		t.Errorf("/debug of a stored session:\n%s", out)
	}
	if !strings.Contains(out, `bot to @bob: Your session (store key quiz:terminal:bob): schema version 2, `) || !strings.Contains(out, `"step":"Asking","data":{"question":0,"score":0,"answers":null}`) {
		t.Errorf("bob's /debug:\n%s", out)
	}
}
