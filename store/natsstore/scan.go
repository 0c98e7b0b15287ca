package natsstore

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/typedsession/session/internal/storeutil"
	"github.com/typedsession/session/store"
)

// walk calls fn with the subject, headers and sequence of the last message
// of every key in the bucket, reading headers only (never values), through
// an ordered consumer that delivers the last message per subject. It stops
// when it has seen every key that existed when it started, when fn returns
// an error (which it returns), or when ctx ends.
func (s *Store) walk(ctx context.Context, fn func(m jetstream.Msg, meta *jetstream.MsgMetadata) error) error {
	cons, err := s.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{s.pre + ">"},
		DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
		HeadersOnly:    true,
	})
	if err != nil {
		return err
	}
	if info := cons.CachedInfo(); info == nil || info.NumPending == 0 {
		return nil
	}
	it, err := cons.Messages()
	if err != nil {
		return err
	}
	defer it.Stop()
	for {
		m, err := next(ctx, it)
		if errors.Is(err, errQuiet) {
			// Nothing came for a while: the keys still to come may have
			// been deleted (a sweep purges markers) after the count.
			info, err := cons.Info(ctx)
			if err != nil {
				return err
			}
			if info.NumPending == 0 {
				return nil
			}
			continue
		}
		if err != nil {
			return err
		}
		meta, err := m.Metadata()
		if err != nil {
			return err
		}
		if err := fn(m, meta); err != nil {
			return err
		}
		if meta.NumPending == 0 {
			return nil
		}
	}
}

// errQuiet is what next returns when no message came within quietWait.
var errQuiet = errors.New("natsstore: no message within the wait")

// quietWait is how long walk waits for the next message before it asks
// the consumer whether any are still pending.
const quietWait = 2 * time.Second

// next returns the next message of it, errQuiet when none comes within
// quietWait, or ctx's error when ctx ends.
func next(ctx context.Context, it jetstream.MessagesContext) (jetstream.Msg, error) {
	wctx, cancel := context.WithTimeout(ctx, quietWait)
	defer cancel()
	m, err := it.Next(jetstream.NextContext(wctx))
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if wctx.Err() != nil {
			return nil, errQuiet
		}
		return nil, err
	}
	return m, nil
}

// Scan calls fn with every live key that begins with prefix, and with
// every key whose expiry header it cannot read (Get reports those as
// store.ErrCorrupt). NATS subjects match whole tokens, not a prefix of
// one, so Scan reads the last message of every key in the bucket (headers
// only, never values), decodes its key and skips those outside prefix,
// deleted or expired, and subjects that decode to no key store.CheckKey
// accepts (written into the bucket by other means: no method can reach
// them). Its cost
// grows with the bucket, not with the prefix: give each application its
// own bucket. fn may call the store's other methods.
func (s *Store) Scan(ctx context.Context, prefix string, fn func(key string) error) error {
	if err := s.enter("scan", ""); err != nil {
		return err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return storeutil.Wrap(backend, "scan", "", err)
	}
	encPrefix := s.pre + encodeKey(prefix) // encodeKey is a prefix code
	var stop error
	err := s.walk(ctx, func(m jetstream.Msg, _ *jetstream.MsgMetadata) error {
		subj := m.Subject()
		if !strings.HasPrefix(subj, encPrefix) || deleted(m.Headers()) {
			return nil
		}
		key, ok := decodeKey(strings.TrimPrefix(subj, s.pre))
		if !ok || store.CheckKey(key) != nil {
			return nil // no method can name it
		}
		exp, err := parseExpiry(m.Headers().Get(ExpiresHeader))
		if err == nil && !exp.IsZero() && !time.Now().Before(exp) {
			return nil // expired
		}
		// Live, or an expiry the store did not write: Get reports that
		// key as store.ErrCorrupt, so the listing reports it too.
		if err := fn(key); err != nil {
			stop = err
			return err
		}
		return nil
	})
	if stop != nil && errors.Is(err, stop) {
		return err // fn's own error, as it is
	}
	return storeutil.Wrap(backend, "scan", prefix, err)
}

// MarkerAge is how long the sweep keeps the delete marker of a deleted
// key: a watcher of the bucket (nats kv watch) sees the deletion, and a
// compare-and-swap that read the key before it was deleted still fails on
// the revision, for at least that long.
const MarkerAge = 30 * time.Minute

// Sweep deletes the keys whose expiry has passed, each on the condition
// that it has not been rewritten since the sweep read it, and removes the
// delete markers older than [MarkerAge] (only the marker and what came
// before it on its subject: a key written again since keeps its value).
// It reads headers only. It returns the number of expired keys it
// deleted. The background sweep (Options.SweepInterval) calls it; call it
// yourself when that is off.
func (s *Store) Sweep(ctx context.Context) (int, error) {
	if err := s.enter("sweep", ""); err != nil {
		return 0, err
	}
	defer s.leave()
	now := time.Now()
	type found struct {
		subj string
		seq  uint64
	}
	var expired, markers []found
	err := s.walk(ctx, func(m jetstream.Msg, meta *jetstream.MsgMetadata) error {
		f := found{m.Subject(), meta.Sequence.Stream}
		if deleted(m.Headers()) {
			if now.Sub(meta.Timestamp) > MarkerAge {
				markers = append(markers, f)
			}
			return nil
		}
		exp, err := parseExpiry(m.Headers().Get(ExpiresHeader))
		if err == nil && !exp.IsZero() && !now.Before(exp) {
			expired = append(expired, f)
		}
		return nil
	})
	if err != nil {
		return 0, storeutil.Wrap(backend, "sweep", "", err)
	}
	n := 0
	for _, e := range expired {
		err := s.kv.Delete(ctx, strings.TrimPrefix(e.subj, s.pre), jetstream.LastRevision(e.seq))
		switch {
		case err == nil:
			n++
		case isWrongRevision(err): // rewritten since the walk: not expired any more
		default:
			return n, storeutil.Wrap(backend, "sweep", "", err)
		}
	}
	for _, m := range markers {
		// Purge the subject's messages before seq+1: the marker and
		// anything older, never a value written after it.
		if err := s.stream.Purge(ctx, jetstream.WithPurgeSubject(m.subj), jetstream.WithPurgeSequence(m.seq+1)); err != nil {
			return n, storeutil.Wrap(backend, "sweep", "", err)
		}
	}
	return n, nil
}
