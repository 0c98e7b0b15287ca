package redisstore

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// This file runs the Lua scripts, and resends the two conditional writes
// (CompareAndSwap and CompareAndDelete) itself instead of letting go-redis
// do it.
//
// Why: go-redis resends a command whose reply was lost (a connection cut,
// a server restarted), after a backoff of up to a second. A swap that
// landed the first time and is resent finds its own value and reports
// true (the store contract's resend rule), unless another writer has built
// on it in the meantime: then the resend reports false, a conflict, and a
// caller that trusts it applies its change again. Measured through
// go-redis's own resends (64 writers on 4 keys, connections cut every 3 ms):
// 42 of 2,560 swaps reported false although they had landed, one of them
// under 206 later writes, far deeper than any write history a value can
// carry. Only the one who resends knows that it did, so the store sends
// these scripts with go-redis's resends off (Cmder.NoRetry) and resends
// them itself, as often and with the backoff the client's options say; a
// resend that finds another value returns an error (the outcome is
// unknown) instead of a false conflict.

// script is a Lua script and its SHA1, for EVALSHA.
type script struct{ src, hash string }

func newScript(src string) script {
	h := sha1.Sum([]byte(src))
	return script{src: src, hash: hex.EncodeToString(h[:])}
}

// noRetryCmd is a redis.Cmd that go-redis must never resend on its own
// (the Cmder.NoRetry flag, which go-redis honours on every client type:
// single node, cluster, ring, pipelines).
type noRetryCmd struct{ *redis.Cmd }

func (noRetryCmd) NoRetry() bool { return true }

// eval runs sc on key with args in one round trip (EVALSHA; EVAL when the
// server does not have the script yet, as after a restart). With noRetry,
// go-redis does not resend it.
func (s *Store) eval(ctx context.Context, c redis.UniversalClient, sc script, key string, noRetry bool, args ...any) *redis.Cmd {
	cmd := evalCmd(ctx, c, "evalsha", sc.hash, key, noRetry, args)
	if err := cmd.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		cmd = evalCmd(ctx, c, "eval", sc.src, key, noRetry, args)
	}
	return cmd
}

func evalCmd(ctx context.Context, c redis.UniversalClient, name, body, key string, noRetry bool, args []any) *redis.Cmd {
	a := make([]any, 0, 4+len(args))
	a = append(a, name, body, 1, key)
	a = append(a, args...)
	cmd := redis.NewCmd(ctx, a...)
	if noRetry {
		_ = c.Process(ctx, noRetryCmd{cmd})
	} else {
		_ = c.Process(ctx, cmd)
	}
	return cmd
}

// resendPolicy is how often, and after what pauses, the store resends a
// conditional write whose reply was lost: what the client would do itself
// (Options.MaxRetries, a cluster client's MaxRedirects, and their retry
// backoffs), read once by New.
type resendPolicy struct {
	max                    int
	minBackoff, maxBackoff time.Duration
}

// policyOf reads the retry settings of client (already normalised by
// go-redis: -1 has become 0 and 0 the default), or go-redis's defaults for
// a client type it does not know.
func policyOf(client redis.UniversalClient) resendPolicy {
	switch c := client.(type) {
	case *redis.Client:
		o := c.Options()
		return resendPolicy{o.MaxRetries, o.MinRetryBackoff, o.MaxRetryBackoff}
	case *redis.ClusterClient:
		o := c.Options()
		return resendPolicy{o.MaxRedirects, o.MinRetryBackoff, o.MaxRetryBackoff}
	case *redis.Ring:
		o := c.Options()
		return resendPolicy{o.MaxRetries, o.MinRetryBackoff, o.MaxRetryBackoff}
	}
	return resendPolicy{3, 10 * time.Millisecond, time.Second}
}

// backoff is the pause before resend number n (0-based): exponential from
// minBackoff with jitter, at most maxBackoff, as go-redis does it.
func (p resendPolicy) backoff(n int) time.Duration {
	if p.minBackoff <= 0 {
		return 0
	}
	d := p.minBackoff << uint(min(n, 30))
	if d < p.minBackoff {
		return p.maxBackoff
	}
	d = p.minBackoff + rand.N(d)
	if d > p.maxBackoff || d < p.minBackoff {
		d = p.maxBackoff
	}
	return d
}

// resendable reports whether a conditional write that failed with err is
// worth sending again, and whether the failed attempt may have reached the
// server (and so may have been applied). Refusals the server gives before
// running anything (LOADING after a restart, READONLY, TRYAGAIN, …), a
// connection that could not be opened and a pool that had no connection
// reach nothing; a lost connection or a timeout may have.
func resendable(err error) (resend, maybeSent bool) {
	var opErr *net.OpError
	var rerr redis.Error
	switch {
	case err == nil, errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, redis.ErrClosed):
		return false, false
	case errors.Is(err, redis.ErrPoolTimeout), errors.As(err, &opErr) && opErr.Op == "dial":
		return true, false
	case errors.As(err, &rerr):
		msg := rerr.Error()
		for _, p := range []string{"LOADING ", "READONLY ", "MASTERDOWN ", "CLUSTERDOWN ", "TRYAGAIN ", "ERR max number of clients"} {
			if strings.HasPrefix(msg, p) {
				return true, false
			}
		}
		return false, false
	}
	return true, true
}

// errResentConflict is the error of a conditional write whose reply was
// lost and whose resend found another value than it expected: the first
// attempt may have landed and been replaced since, so neither true nor
// false would be the truth.
var errResentConflict = errors.New("outcome unknown: a reply was lost and the resent command found another value (the first attempt may have landed and been replaced since)")

// afterLost is the error of a conditional write whose resend failed with
// err after an earlier attempt's reply was lost: the earlier attempt may
// have landed, so the outcome is open, whatever err says (a key turned
// into a hash meanwhile is WRONGTYPE, which alone would match
// store.ErrCorrupt, "nothing written"). err is kept as text only, so that
// the error matches none of the store's definite errors.
func afterLost(lost, err error) error {
	return fmt.Errorf("%w; the resend then failed: %v", lost, err)
}

// evalResend runs sc (with go-redis's resends off) and resends it itself
// under the client's retry policy. It returns the script's integer reply,
// and lost: the error of the last earlier attempt that may have reached
// the server (nil if none may have), or the last error. Without
// resendSent, an attempt that may have reached the server is not resent
// (its error is returned): for a write that is not safe to send twice.
func (s *Store) evalResend(ctx context.Context, c redis.UniversalClient, sc script, key string, resendSent bool, args ...any) (n int64, lost, err error) {
	for attempt := 0; ; attempt++ {
		n, err = s.eval(ctx, c, sc, key, true, args...).Int64()
		if err == nil {
			return n, lost, nil
		}
		if _, maybeSent := resendable(err); maybeSent {
			lost = err
			if !resendSent {
				return 0, lost, err
			}
		}
		if !s.again(ctx, attempt, err) {
			return 0, lost, err
		}
		c = s.client // resends go straight, never through a batch
	}
}

// again reports whether attempt number attempt (0-based), which failed
// with err, should be followed by another under the client's retry
// policy, after waiting for the pause before it. The first resend goes at
// once: the longer it waits, the likelier another writer has replaced the
// value, which turns a conditional write's answer into "unknown". Later
// ones back off as go-redis would.
func (s *Store) again(ctx context.Context, attempt int, err error) bool {
	if resend, _ := resendable(err); !resend || attempt >= s.resend.max || ctxErr(ctx) != nil {
		return false
	}
	if attempt == 0 {
		return true
	}
	d := s.resend.backoff(attempt - 1)
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
