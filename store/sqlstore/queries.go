package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"

	"github.com/typedsession/session/store"
)

// queries holds every statement, built once by New from the checked table
// name. Arguments are always passed as parameters, never spliced in.
//
// Every statement reads the time from the database (nowMS), so that expiry
// is decided by one clock, the database's, whichever application server
// asks.
type queries struct {
	get, getWithTTL, set, del, touch, getAndTouch string
	casOld, casAbsent, casReplace                 string
	cad, cadCheck                                 string
	scanFirst, scanFirstBounded                   string
	scanNext, scanNextBounded                     string
	sweep, dbNow                                  string

	// order maps a MySQL statement, whose placeholders are "?", to the
	// order of its arguments (see placeholders). Nil for PostgreSQL and
	// SQLite, which take $n.
	order map[string][]int
}

// args returns the arguments of statement q in the order q takes them.
func (s *Store) args(q string, args ...any) []any {
	order, ok := s.q.order[q]
	if !ok {
		return args
	}
	out := make([]any, len(order))
	for i, n := range order {
		out[i] = args[n]
	}
	return out
}

// exec runs a statement. On MySQL it runs it again when InnoDB reports a
// deadlock (error 1213), which rolled the statement back whole: a single
// statement outside a transaction (the sweep's DELETE, which locks the
// expires_at index first, against an UPDATE that locks the primary key
// first) can be chosen as the deadlock's victim.
func (s *Store) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	args = s.args(q, args...)
	for attempt := 1; ; attempt++ {
		res, err := s.db.ExecContext(ctx, q, args...)
		if err == nil || s.dialect != MySQL || attempt == deadlockRetries || !isMySQLError(err, 1213) {
			return res, err
		}
	}
}

// deadlockRetries is how often a MySQL statement or transaction is tried
// when InnoDB picks it as a deadlock's victim.
const deadlockRetries = 5

func (s *Store) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return s.db.QueryRowContext(ctx, q, s.args(q, args...)...)
}

func (s *Store) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return s.db.QueryContext(ctx, q, s.args(q, args...)...)
}

// nowMS is the SQL expression for the database's current time in Unix
// milliseconds, the unit of expires_at. PostgreSQL's now() is the start of
// the statement's transaction (of the statement itself outside a
// transaction); SQLite's 'now' is fixed for the whole statement and has
// millisecond resolution.
func nowMS(d Dialect) string {
	if d == Postgres {
		return "(FLOOR(EXTRACT(EPOCH FROM now()) * 1000))::bigint"
	}
	return "CAST(ROUND((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER)"
}

// maxExpiryMS is store.MaxExpiry in Unix milliseconds: the latest
// expires_at the store writes.
var maxExpiryMS = store.MaxExpiry.UnixMilli()

func buildQueries(d Dialect, t string) queries {
	if d == MySQL {
		q := mysqlQueries(t)
		rewriteMySQL(&q)
		return q
	}
	now := nowMS(d)
	// param returns the n-th parameter, typed where PostgreSQL cannot
	// infer the type from the context.
	param := func(n int, pgType string) string {
		p := "$" + strconv.Itoa(n)
		if d == Postgres && pgType != "" {
			p += "::" + pgType
		}
		return p
	}
	// expiry is expires_at for a ttl in milliseconds passed as parameter
	// n: NULL (no expiry) when it is 0, otherwise the database's now plus
	// the ttl, clamped to store.MaxExpiry.
	least := "LEAST"
	if d == SQLite {
		least = "MIN" // SQLite's scalar min
	}
	expiry := func(n int) string {
		p := param(n, "bigint")
		return fmt.Sprintf("CASE WHEN %s > 0 THEN %s(%s + %s, %d) END", p, least, now, p, maxExpiryMS)
	}
	live := "(expires_at IS NULL OR expires_at > " + now + ")"

	// Keys are compared in byte order for Scan: "C" is PostgreSQL's
	// byte-order collation (the column's own when the table was made by New),
	// BINARY is SQLite's default.
	collate := `COLLATE "C"`
	if d == SQLite {
		collate = "COLLATE BINARY"
	}
	scan := func(lower string, bounded bool) string {
		q := "SELECT key FROM " + t + " WHERE key " + collate + " " + lower + " $1"
		if bounded {
			q += " AND key " + collate + " < $3"
		}
		return q + " AND " + live + " ORDER BY key " + collate + " LIMIT " + param(2, "bigint")
	}
	q := queries{
		get:        "SELECT value FROM " + t + " WHERE key = $1 AND " + live,
		getWithTTL: "SELECT value, expires_at - " + now + " FROM " + t + " WHERE key = $1 AND " + live,
		set: "INSERT INTO " + t + " (key, value, expires_at) VALUES ($1, $2, " + expiry(3) + ")" +
			" ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
		del:         "DELETE FROM " + t + " WHERE key = $1",
		touch:       "UPDATE " + t + " SET expires_at = " + expiry(2) + " WHERE key = $1 AND " + live,
		getAndTouch: "UPDATE " + t + " SET expires_at = " + expiry(2) + " WHERE key = $1 AND " + live + " RETURNING value",
		// The swap also succeeds when the value is already the new one
		// (the resend rule of store.Swapper).
		casOld: "UPDATE " + t + " SET value = $2, expires_at = " + expiry(3) +
			" WHERE key = $1 AND (value = $4 OR value = $2) AND " + live,
		// The insert conflicts with a row that exists; the row is replaced
		// only when it has expired (an expired row counts as absent) or
		// already holds the new value (the resend rule). RowsAffected is 1
		// for an insert or a replacement and 0 when the WHERE keeps the
		// live row (checked on both dialects by the tests).
		casAbsent: "INSERT INTO " + t + " AS cur (key, value, expires_at) VALUES ($1, $2, " + expiry(3) + ")" +
			" ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at" +
			" WHERE (cur.expires_at IS NOT NULL AND cur.expires_at <= " + now + ") OR cur.value = excluded.value",
		scanFirst:        scan(">=", false),
		scanFirstBounded: scan(">=", true),
		scanNext:         scan(">", false),
		scanNextBounded:  scan(">", true),
		// Deletes in batches so that SQLite's write lock is held briefly.
		// The outer condition re-checks the expiry on the row version the
		// DELETE removes: on PostgreSQL a row refreshed or re-created by a
		// transaction that committed while the DELETE waited for its lock
		// is re-read and spared (the subquery alone only re-checks the
		// key).
		sweep: "DELETE FROM " + t + " WHERE key IN (SELECT key FROM " + t +
			" WHERE expires_at <= " + now + " LIMIT " + param(1, "bigint") + ") AND expires_at <= " + now,
		dbNow: "SELECT " + now,
	}
	if d == Postgres {
		// One statement: lock the row, delete it when it holds old or has
		// expired, and report whether it held old (live): whether this
		// call deleted the key. cur reads the latest committed version
		// of the row (FOR UPDATE re-reads a row changed while it waited),
		// so the DELETE and the answer agree.
		q.cad = "WITH cur AS (SELECT value, " + live + " AS live FROM " + t + " WHERE key = $1 FOR UPDATE)," +
			" d AS (DELETE FROM " + t + " WHERE key = $1 AND EXISTS (SELECT 1 FROM cur WHERE NOT cur.live OR cur.value = $2))" +
			" SELECT EXISTS (SELECT 1 FROM cur WHERE cur.live AND cur.value = $2)"
	} else {
		// SQLite has no DELETE in a WITH clause: a DELETE of the live row
		// holding old, whose row count is the answer (an expired row is
		// left to the sweep).
		q.cad = "DELETE FROM " + t + " WHERE key = $1 AND value = $2 AND " + live
	}
	return q
}

// ttlMS is a ttl in whole milliseconds, rounded up so that a key lives at
// least ttl; 0 for ttl <= 0 (no expiry). It does not overflow for any
// time.Duration.
func ttlMS(ttl int64) int64 {
	const ms = 1_000_000
	if ttl <= 0 {
		return 0
	}
	n := ttl / ms
	if ttl%ms != 0 {
		n++
	}
	return n
}

// quoteTable checks name and returns it quoted, part by part: in double
// quotes, or in backticks for MySQL.
func quoteTable(d Dialect, name string) (string, error) {
	quote := `"`
	if d == MySQL {
		quote = "`"
	}
	if name == "" {
		name = DefaultTable
	}
	parts := strings.Split(name, ".")
	if len(parts) > 2 {
		return "", fmt.Errorf("sqlstore: New: bad Options.Table %q: want a name or schema.name", name)
	}
	for i, p := range parts {
		if !identRE.MatchString(p) {
			return "", fmt.Errorf("sqlstore: New: bad Options.Table %q: %q is not an identifier (ASCII letters, digits and '_', not starting with a digit, at most 63 bytes)", name, p)
		}
		parts[i] = quote + p + quote
	}
	return strings.Join(parts, "."), nil
}
