package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// MySQL and MariaDB differ from the other two dialects in ways that shape
// the statements here:
//
//   - placeholders are "?", each used once in order, so a statement written
//     with $n is rewritten and its arguments are reordered (placeholders);
//   - key is a reserved word and identifiers are quoted with backticks;
//   - there is no ON CONFLICT, only ON DUPLICATE KEY UPDATE, which fires on
//     any unique index (so the table check refuses a second one);
//   - MariaDB 10.11 has no UPDATE ... RETURNING, so GetAndTouch is an
//     UPDATE and a SELECT in one transaction;
//   - an UPDATE reports the rows it changed, not the rows it matched,
//     unless the connection asks for found rows (clientFoundRows=true in
//     the DSN of github.com/go-sql-driver/mysql): without it a swap or a
//     Touch that writes the bytes already there would read as "no such
//     row". New checks the connection and refuses one without it.

// mysqlNowMS is the database's current time in Unix milliseconds. It is
// computed from UTC_TIMESTAMP by plain date arithmetic, so the session's
// time_zone (and its daylight saving changes, which make UNIX_TIMESTAMP(NOW())
// ambiguous for an hour a year) plays no part. Like NOW(), UTC_TIMESTAMP is
// evaluated once per statement.
const mysqlNowMS = "(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(3)) DIV 1000)"

// mysqlQueries are the statements of the MySQL dialect, written with $n
// placeholders; buildQueries rewrites them (see placeholders).
func mysqlQueries(t string) queries {
	now := mysqlNowMS
	expiry := func(n int) string {
		p := "$" + strconv.Itoa(n)
		return fmt.Sprintf("CASE WHEN %s > 0 THEN LEAST(%s + %s, %d) END", p, now, p, maxExpiryMS)
	}
	live := "(expires_at IS NULL OR expires_at > " + now + ")"
	const key = "`key`"
	scan := func(lower string, bounded bool) string {
		q := "SELECT " + key + " FROM " + t + " WHERE " + key + " " + lower + " $1"
		if bounded {
			q += " AND " + key + " < $3"
		}
		// VARBINARY compares and orders byte for byte.
		return q + " AND " + live + " ORDER BY " + key + " LIMIT $2"
	}
	return queries{
		get:        "SELECT value FROM " + t + " WHERE " + key + " = $1 AND " + live,
		getWithTTL: "SELECT value, expires_at - " + now + " FROM " + t + " WHERE " + key + " = $1 AND " + live,
		// The parameters are repeated rather than read back with VALUES(),
		// which MySQL 8.0.20 deprecated.
		set: "INSERT INTO " + t + " (" + key + ", value, expires_at) VALUES ($1, $2, " + expiry(3) + ")" +
			" ON DUPLICATE KEY UPDATE value = $2, expires_at = " + expiry(3),
		del:   "DELETE FROM " + t + " WHERE " + key + " = $1",
		touch: "UPDATE " + t + " SET expires_at = " + expiry(2) + " WHERE " + key + " = $1 AND " + live,
		// Read inside the transaction of GetAndTouch, after its touch
		// locked the row.
		getAndTouch: "SELECT value FROM " + t + " WHERE " + key + " = $1",
		casOld: "UPDATE " + t + " SET value = $2, expires_at = " + expiry(3) +
			" WHERE " + key + " = $1 AND (value = $4 OR value = $2) AND " + live,
		// CompareAndSwap with a nil old: an INSERT; when the key exists,
		// the UPDATE replaces it if it has expired or already holds the
		// new value (see mysqlCASAbsent).
		casAbsent: "INSERT INTO " + t + " (" + key + ", value, expires_at) VALUES ($1, $2, " + expiry(3) + ")",
		casReplace: "UPDATE " + t + " SET value = $2, expires_at = " + expiry(3) +
			" WHERE " + key + " = $1 AND ((expires_at IS NOT NULL AND expires_at <= " + now + ") OR value = $2)",
		cad:              "DELETE FROM " + t + " WHERE " + key + " = $1 AND value = $2 AND " + live,
		cadCheck:         "SELECT value FROM " + t + " WHERE " + key + " = $1 AND " + live,
		scanFirst:        scan(">=", false),
		scanFirstBounded: scan(">=", true),
		scanNext:         scan(">", false),
		scanNextBounded:  scan(">", true),
		// A single-table DELETE takes a LIMIT; InnoDB evaluates the WHERE
		// on the latest version of each row it locks, so a row made live
		// again while the DELETE waited is spared.
		sweep: "DELETE FROM " + t + " WHERE expires_at <= " + now + " LIMIT $1",
		dbNow: "SELECT " + now,
	}
}

// placeholders rewrites the $n placeholders of q as "?" and returns the
// argument order that the rewritten statement takes: order[i] is the index
// (from 0) of the caller's argument for the i-th "?". The statements carry
// no string literal with a '$' in it.
func placeholders(q string) (string, []int) {
	var (
		b     strings.Builder
		order []int
	)
	for i := 0; i < len(q); i++ {
		if q[i] != '$' {
			b.WriteByte(q[i])
			continue
		}
		j := i + 1
		for j < len(q) && q[j] >= '0' && q[j] <= '9' {
			j++
		}
		n, err := strconv.Atoi(q[i+1 : j])
		if err != nil || n < 1 {
			panic("sqlstore: bad placeholder in " + q)
		}
		order = append(order, n-1)
		b.WriteByte('?')
		i = j - 1
	}
	return b.String(), order
}

// rewriteMySQL rewrites every statement of q for "?" placeholders and
// records each one's argument order in q.order.
func rewriteMySQL(q *queries) {
	q.order = map[string][]int{}
	for _, p := range []*string{
		&q.get, &q.getWithTTL, &q.set, &q.del, &q.touch, &q.getAndTouch,
		&q.casOld, &q.casAbsent, &q.casReplace, &q.cad, &q.cadCheck,
		&q.scanFirst, &q.scanFirstBounded, &q.scanNext, &q.scanNextBounded,
		&q.sweep, &q.dbNow,
	} {
		if *p == "" {
			continue
		}
		sql, order := placeholders(*p)
		*p = sql
		q.order[sql] = order
	}
}

// isDuplicateKey reports whether err is MySQL's error 1062 (ER_DUP_ENTRY).
func isDuplicateKey(err error) bool { return isMySQLError(err, 1062) }

// isMySQLError reports whether err is the MySQL server error number. The
// package imports no driver: it reads the Number field of
// github.com/go-sql-driver/mysql's *MySQLError by reflection, and falls
// back on the text that driver gives it ("Error 1062 (23000): ...").
func isMySQLError(err error, number uint64) bool {
	if err == nil {
		return false
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		v := reflect.ValueOf(e)
		for v.Kind() == reflect.Pointer && !v.IsNil() {
			v = v.Elem()
		}
		if v.Kind() == reflect.Struct {
			if f := v.FieldByName("Number"); f.IsValid() && f.CanUint() {
				return f.Uint() == number
			}
		}
	}
	return strings.HasPrefix(err.Error(), "Error "+strconv.FormatUint(number, 10)+" ")
}

// mysqlCASAbsent is CompareAndSwap with a nil old on MySQL: an INSERT, and
// when it meets the key, an UPDATE that replaces an expired row or one that
// already holds value (the resend rule). An UPDATE that matches nothing
// leaves two cases: the key is live with another value (false), or it was
// deleted since the INSERT, which is then tried again. Every outcome holds at
// the moment of one of the statements: the INSERT that landed, the UPDATE
// that matched, or the SELECT that saw a live row.
func (s *Store) mysqlCASAbsent(ctx context.Context, key string, value []byte, ttl int64) (bool, error) {
	for {
		_, err := s.exec(ctx, s.q.casAbsent, key, value, ttl)
		if err == nil {
			return true, nil
		}
		if !isDuplicateKey(err) {
			return false, err
		}
		res, err := s.exec(ctx, s.q.casReplace, key, value, ttl)
		if err != nil {
			return false, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return false, err
		}
		if n == 1 {
			return true, nil
		}
		var cur []byte
		err = s.queryRow(ctx, s.q.cadCheck, key).Scan(&cur)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			// Deleted (or expired) since the UPDATE: insert again.
			if err := ctx.Err(); err != nil {
				return false, err
			}
			continue
		case err != nil:
			return false, err
		}
		return string(cur) == string(value), nil
	}
}

// mysqlGetAndTouch is GetAndTouch on MySQL, which has no UPDATE ...
// RETURNING: the touch and a SELECT of the row it locked, in one
// transaction (four round trips: START TRANSACTION, UPDATE, SELECT,
// COMMIT), tried again when InnoDB rolls it back as a deadlock's victim.
func (s *Store) mysqlGetAndTouch(ctx context.Context, key string, ttl int64) ([]byte, error) {
	for attempt := 1; ; attempt++ {
		v, err := s.mysqlGetAndTouchOnce(ctx, key, ttl)
		if attempt == deadlockRetries || !isMySQLError(err, 1213) {
			return v, err
		}
	}
}

func (s *Store) mysqlGetAndTouchOnce(ctx context.Context, key string, ttl int64) ([]byte, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, s.q.touch, s.args(s.q.touch, key, ttl)...)
	if err != nil {
		return nil, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, sql.ErrNoRows
	}
	var v []byte
	if err := tx.QueryRowContext(ctx, s.q.getAndTouch, s.args(s.q.getAndTouch, key)...).Scan(&v); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	return v, nil
}

// checkFoundRows returns an error when db's connections report the rows an
// UPDATE changed instead of the rows it matched. It inserts a probe row and
// runs an UPDATE that changes nothing, in a transaction it rolls back. The
// probe's key starts with a NUL byte, so no store key can be it, and is
// random, so that stores started at the same moment (several processes at
// deploy time) do not wait for each other's row; a deadlock that InnoDB
// reports anyway is tried again.
func checkFoundRows(ctx context.Context, db *sql.DB, table string) error {
	var err error
	for range 5 {
		if err = probeFoundRows(ctx, db, table); !isMySQLError(err, 1213) {
			return err
		}
	}
	return err
}

func probeFoundRows(ctx context.Context, db *sql.DB, table string) error {
	probe := "\x00sqlstore: clientFoundRows probe " + rand.Text()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "INSERT INTO "+table+" (`key`, value, expires_at) VALUES (?, ?, NULL)", probe, []byte{}); err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, "UPDATE "+table+" SET value = value WHERE `key` = ?", probe)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n != 1 {
		return errNoFoundRows
	}
	return nil
}

var errNoFoundRows = errors.New("the connection reports the rows an UPDATE changed, not the rows it matched, " +
	"so a swap or Touch that writes the bytes already stored would read as \"no such key\": " +
	"add clientFoundRows=true to the DSN (github.com/go-sql-driver/mysql), " +
	`e.g. "app:secret@tcp(db.internal:3306)/app?clientFoundRows=true"`)

// mysqlTable reads the columns of a MySQL or MariaDB table from
// information_schema, and whether key has a unique index on it alone (not
// on a prefix of it). It refuses a view, an engine other than InnoDB, and a
// second unique index, on which ON DUPLICATE KEY UPDATE would also fire
// (except one on an AUTO_INCREMENT column alone, which the store's INSERT
// never fills).
func mysqlTable(ctx context.Context, db *sql.DB, name string) (map[string]column, bool, error) {
	schema, table := splitTable(name)
	var schemaArg any = schema
	if schema == "" {
		schemaArg = nil // DATABASE()
	}
	const schemaCond = "TABLE_SCHEMA = COALESCE(?, DATABASE())"
	var (
		kind   string
		engine sql.NullString
	)
	err := db.QueryRowContext(ctx, "SELECT TABLE_TYPE, ENGINE FROM information_schema.TABLES WHERE "+schemaCond+" AND TABLE_NAME = ?",
		schemaArg, table).Scan(&kind, &engine)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, errTableMissing
	}
	if err != nil {
		return nil, false, err
	}
	if kind != "BASE TABLE" {
		return nil, false, refuseTable("is not a table (%s): it must be a table made by the documented DDL", kind)
	}
	if !strings.EqualFold(engine.String, "InnoDB") {
		return nil, false, refuseTable("uses the %s engine: it must be InnoDB, which has the row locks, transactions and crash safety the store relies on", engine.String)
	}
	rows, err := db.QueryContext(ctx, "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA FROM information_schema.COLUMNS WHERE "+
		schemaCond+" AND TABLE_NAME = ?", schemaArg, table)
	if err != nil {
		return nil, false, err
	}
	cols := map[string]column{}
	for rows.Next() {
		var (
			c        column
			nullable string
			dflt     sql.NullString
			extra    string
		)
		if err := rows.Scan(&c.name, &c.typ, &nullable, &dflt, &extra); err != nil {
			rows.Close()
			return nil, false, err
		}
		c.notNull = nullable != "YES"
		extra = strings.ToLower(extra)
		// MariaDB shows a nullable column without a default as the
		// text NULL; a NOT NULL one has no default when COLUMN_DEFAULT
		// is NULL.
		c.autoIncrement = strings.Contains(extra, "auto_increment")
		c.hasDefault = dflt.Valid || c.autoIncrement || strings.Contains(extra, "generated")
		c.deterministic = true
		c.typ = strings.ToLower(c.typ)
		c.name = strings.ToLower(c.name) // MySQL's column names ignore case
		cols[c.name] = c
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	rows, err = db.QueryContext(ctx, "SELECT INDEX_NAME, COLUMN_NAME, SUB_PART FROM information_schema.STATISTICS WHERE "+
		schemaCond+" AND TABLE_NAME = ? AND NON_UNIQUE = 0 ORDER BY INDEX_NAME, SEQ_IN_INDEX", schemaArg, table)
	if err != nil {
		return nil, false, err
	}
	type index struct {
		cols    []string
		partial bool
	}
	indexes := map[string]*index{}
	var names []string
	for rows.Next() {
		var (
			ix, col string
			sub     sql.NullInt64
		)
		if err := rows.Scan(&ix, &col, &sub); err != nil {
			rows.Close()
			return nil, false, err
		}
		if indexes[ix] == nil {
			indexes[ix] = &index{}
			names = append(names, ix)
		}
		indexes[ix].cols = append(indexes[ix].cols, strings.ToLower(col))
		indexes[ix].partial = indexes[ix].partial || sub.Valid
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	unique := false
	for _, n := range names {
		ix := indexes[n]
		if len(ix.cols) == 1 && ix.cols[0] == "key" && !ix.partial {
			unique = true
			continue
		}
		if len(ix.cols) == 1 && cols[ix.cols[0]].autoIncrement && !ix.partial {
			// The store's INSERT leaves the column to AUTO_INCREMENT,
			// which never repeats a value: no conflict on it.
			continue
		}
		if len(ix.cols) == 1 && ix.cols[0] == "key" {
			return nil, false, refuseTable("the unique index %s covers only a prefix of key: keys that share that prefix would collide; it must cover the whole key (make key the PRIMARY KEY)", n)
		}
		return nil, false, refuseTable("has the unique index %s on (%s), on which INSERT ... ON DUPLICATE KEY UPDATE would also fire and overwrite another row: the only unique index must be the one on key", n, strings.Join(ix.cols, ", "))
	}
	return cols, unique, nil
}

// mysqlKeyType reports whether typ (information_schema COLUMN_TYPE, lower
// case) can hold every key byte for byte and tell them apart: VARBINARY of
// at least store.MaxKeyLen bytes. BINARY pads with zero bytes; a character
// type's collation may fold case, and a PAD SPACE one makes "a" equal "a ".
func mysqlKeyType(typ string) bool {
	var n int
	if _, err := fmt.Sscanf(typ, "varbinary(%d)", &n); err != nil {
		return false
	}
	return n >= 1024 && typ == "varbinary("+strconv.Itoa(n)+")"
}
