package sqlstore

import (
	"context"
	"time"
)

// sweepBatch is how many rows one statement of DeleteExpired deletes.
const sweepBatch = 1000

// DeleteExpired deletes the rows whose expiry has passed by the database's
// clock and returns how many it deleted. The background sweep calls it
// every Options.CleanupInterval; call it yourself when the sweep is
// disabled. It deletes in batches of 1000 rows, one statement each, so that
// it never holds a lock for long. Each statement re-checks the expiry of
// the row it deletes, so a row that a concurrent GetAndTouch, Touch, Set or
// CompareAndSwap made live again is never deleted, even when it committed
// while the sweep waited for that row.
func (s *Store) DeleteExpired(ctx context.Context) (int64, error) {
	if err := s.begin("DeleteExpired", "", false); err != nil {
		return 0, err
	}
	defer s.end()
	return s.deleteExpired(ctx, nil)
}

// sweepStatementTimeout bounds each DELETE of the background sweep, which
// Close waits for rather than abandon.
const sweepStatementTimeout = 30 * time.Second

// deleteExpired deletes expired rows in statements of sweepBatch rows
// until one deletes fewer, or stop is closed between two statements.
func (s *Store) deleteExpired(ctx context.Context, stop <-chan struct{}) (int64, error) {
	var total int64
	for {
		select {
		case <-stop:
			return total, nil
		default:
		}
		res, err := s.exec(ctx, s.q.sweep, sweepBatch)
		if err != nil {
			return total, fail(ctx, "DeleteExpired", "", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fail(ctx, "DeleteExpired", "", err)
		}
		total += n
		if n < sweepBatch {
			return total, nil
		}
	}
}
