package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// ddl returns the statements that create the table and its index. name has
// been checked by quoteTable. The package documentation shows them for the
// default name, and TestDocumentedDDL keeps the two the same.
func ddl(d Dialect, name string) []string {
	if name == "" {
		name = DefaultTable
	}
	schema, table := "", name
	if i := strings.IndexByte(name, '.'); i >= 0 {
		schema, table = `"`+name[:i]+`".`, name[i+1:]
	}
	if d == MySQL {
		if schema != "" {
			schema = "`" + strings.Trim(schema, `".`) + "`."
		}
		// The index is part of CREATE TABLE: MySQL has no CREATE INDEX
		// IF NOT EXISTS (MariaDB has). VARBINARY(1024) holds every key
		// of store.MaxKeyLen bytes, compares and orders them byte for
		// byte, and stays under InnoDB's 3,072-byte index key limit
		// (ROW_FORMAT=DYNAMIC).
		return []string{
			"CREATE TABLE IF NOT EXISTS " + schema + "`" + table + "` (\n" +
				"\t`key`      VARBINARY(1024) NOT NULL PRIMARY KEY,\n" +
				"\tvalue      LONGBLOB NOT NULL,\n" +
				"\texpires_at BIGINT,\n" +
				"\tINDEX `" + table + "_expires_at_idx` (expires_at)\n" +
				") ENGINE=InnoDB ROW_FORMAT=DYNAMIC",
		}
	}
	index := `"` + table + `_expires_at_idx"`
	table = `"` + table + `"`
	if d == Postgres {
		return []string{
			"CREATE TABLE IF NOT EXISTS " + schema + table + " (\n" +
				"\tkey        TEXT COLLATE \"C\" PRIMARY KEY,\n" +
				"\tvalue      BYTEA NOT NULL,\n" +
				"\texpires_at BIGINT\n)",
			// A Postgres index lives in its table's schema; its name
			// takes no schema.
			"CREATE INDEX IF NOT EXISTS " + index + " ON " + schema + table + " (expires_at)",
		}
	}
	return []string{
		"CREATE TABLE IF NOT EXISTS " + schema + table + " (\n" +
			"\tkey        TEXT NOT NULL PRIMARY KEY,\n" +
			"\tvalue      BLOB NOT NULL,\n" +
			"\texpires_at INTEGER\n)",
		// A SQLite index names its schema; its table takes none.
		"CREATE INDEX IF NOT EXISTS " + schema + index + " ON " + table + " (expires_at)",
	}
}

func createTable(ctx context.Context, db *sql.DB, d Dialect, name string) error {
	for _, stmt := range ddl(d, name) {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	return nil
}

// errTableMissing is returned by checkTable when the table does not exist.
var errTableMissing = errors.New("table is missing")

// tableError is checkTable's error for a table the store cannot serve, as
// opposed to an error reading the catalog.
type tableError struct{ msg string }

func (e *tableError) Error() string { return e.msg }

func refuseTable(format string, args ...any) error {
	return &tableError{fmt.Sprintf(format, args...)}
}

// column is what checkTable learns of one column from the catalog.
type column struct {
	name       string
	typ        string // PostgreSQL: format_type; SQLite: the declared type
	notNull    bool
	hasDefault bool // a default, an identity or a generated column
	// deterministic is false for a PostgreSQL nondeterministic collation.
	deterministic bool
	collation     string
	// autoIncrement marks a MySQL AUTO_INCREMENT column, whose unique
	// index an INSERT of the store never conflicts with.
	autoIncrement bool
}

// checkTable reads the table's definition from the database catalog and
// returns an error naming the first column (or constraint) that the store
// cannot serve byte for byte, and what it must be. It accepts exactly the
// tables that the documented DDL makes, and tables that differ only in ways
// that cannot change what the store reads back: extra columns that may be
// left out of an INSERT, a NOT NULL missing on value, another key
// collation on PostgreSQL as long as it is deterministic, a missing
// expires_at index.
func checkTable(ctx context.Context, db *sql.DB, d Dialect, name string) error {
	var (
		cols   map[string]column
		unique bool
		err    error
	)
	switch d {
	case Postgres:
		cols, unique, err = postgresTable(ctx, db, name)
	case MySQL:
		cols, unique, err = mysqlTable(ctx, db, name)
	default:
		cols, unique, err = sqliteTable(ctx, db, name)
	}
	if err != nil {
		return err
	}
	want := wantColumns(d)
	for _, w := range want {
		c, ok := cols[w.name]
		if !ok {
			return refuseTable("has no column %s: it must be %s", w.name, w.must)
		}
		if !w.typeOK(c.typ) {
			return refuseTable("column %s is %s: it must be %s", w.name, describeType(c.typ), w.must)
		}
		if w.name == "expires_at" && c.notNull {
			return refuseTable("column expires_at is NOT NULL: it must allow NULL, which stores a key without expiry")
		}
		if w.name == "key" {
			if !c.deterministic {
				return refuseTable("column key has the nondeterministic collation %q, under which distinct keys compare equal: it must be TEXT COLLATE \"C\" (or another deterministic collation)", c.collation)
			}
			if d == SQLite && !strings.EqualFold(c.collation, "BINARY") {
				return refuseTable("column key has the collation %s, under which distinct keys compare equal: it must be TEXT with the default collation (BINARY)", c.collation)
			}
		}
	}
	if !unique {
		return refuseTable("column key is neither the primary key nor has a unique index of its own: it must be the PRIMARY KEY (a non-partial, non-deferrable unique index on key alone also works)")
	}
	for _, c := range sortedColumns(cols) {
		if _, known := want[c.name]; known {
			continue
		}
		if c.notNull && !c.hasDefault {
			return refuseTable("has the extra column %s, NOT NULL without a default, which the store's INSERT cannot fill: give it a default, allow NULL or drop it", c.name)
		}
	}
	return nil
}

// wantColumn is one column the store needs.
type wantColumn struct {
	name   string
	must   string // what it must be, for the error
	typeOK func(typ string) bool
}

func wantColumns(d Dialect) map[string]wantColumn {
	if d == MySQL {
		return map[string]wantColumn{
			"key":        {"key", "VARBINARY(1024) (or longer), which holds every key byte for byte (BINARY pads with zero bytes; a character type's collation may fold case or ignore trailing spaces)", mysqlKeyType},
			"value":      {"value", "LONGBLOB, which keeps any bytes exactly (a shorter BLOB type cuts or refuses large values, TEXT and JSON rewrite them)", func(typ string) bool { return typ == "longblob" }},
			"expires_at": {"expires_at", "BIGINT (signed), the expiry in Unix milliseconds", func(typ string) bool { return typ == "bigint" || typ == "bigint(20)" }},
		}
	}
	if d == Postgres {
		is := func(types ...string) func(string) bool {
			return func(typ string) bool {
				for _, t := range types {
					if typ == t {
						return true
					}
				}
				return false
			}
		}
		return map[string]wantColumn{
			"key":        {"key", `TEXT (COLLATE "C" for a byte-ordered index)`, is("text")},
			"value":      {"value", "BYTEA, which keeps any bytes exactly (JSON and JSONB rewrite them, TEXT refuses NUL bytes and invalid UTF-8)", is("bytea")},
			"expires_at": {"expires_at", "BIGINT, the expiry in Unix milliseconds", is("bigint")},
		}
	}
	// SQLite: the declared type gives the column's affinity (section 3.1
	// of https://www.sqlite.org/datatype3.html).
	return map[string]wantColumn{
		"key":        {"key", "TEXT", func(typ string) bool { return sqliteAffinity(typ) == "TEXT" }},
		"value":      {"value", "BLOB, which keeps any bytes exactly", func(typ string) bool { return sqliteAffinity(typ) == "BLOB" }},
		"expires_at": {"expires_at", "INTEGER, the expiry in Unix milliseconds", func(typ string) bool { return sqliteAffinity(typ) == "INTEGER" }},
	}
}

func describeType(typ string) string {
	if typ == "" {
		return "declared without a type"
	}
	return strings.ToUpper(typ)
}

// sqliteAffinity returns the affinity SQLite gives a column of the declared
// type typ.
func sqliteAffinity(typ string) string {
	t := strings.ToUpper(typ)
	switch {
	case strings.Contains(t, "INT"):
		return "INTEGER"
	case strings.Contains(t, "CHAR"), strings.Contains(t, "CLOB"), strings.Contains(t, "TEXT"):
		return "TEXT"
	case t == "", strings.Contains(t, "BLOB"):
		return "BLOB"
	case strings.Contains(t, "REAL"), strings.Contains(t, "FLOA"), strings.Contains(t, "DOUB"):
		return "REAL"
	}
	return "NUMERIC"
}

func sortedColumns(cols map[string]column) []column {
	out := make([]column, 0, len(cols))
	for _, c := range cols {
		out = append(out, c)
	}
	// Sorted by name, so that the error names the same column every time.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].name < out[j-1].name; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// splitTable returns the schema ("" when none) and the table of a name
// checked by quoteTable, unquoted.
func splitTable(name string) (schema, table string) {
	if name == "" {
		name = DefaultTable
	}
	if i := strings.IndexByte(name, '.'); i >= 0 {
		return name[:i], name[i+1:]
	}
	return "", name
}

// postgresTable reads the columns of a PostgreSQL table from pg_catalog,
// and whether key has a unique index that ON CONFLICT (key) can use: on key
// alone, not partial, not an expression, not deferrable.
func postgresTable(ctx context.Context, db *sql.DB, name string) (map[string]column, bool, error) {
	schema, table := splitTable(name)
	qualified := `"` + table + `"`
	if schema != "" {
		qualified = `"` + schema + `".` + qualified
	}
	var (
		oid  sql.NullInt64
		kind sql.NullString
	)
	err := db.QueryRowContext(ctx, `SELECT c.oid::bigint, c.relkind::text FROM (SELECT to_regclass($1) AS oid) r
		LEFT JOIN pg_class c ON c.oid = r.oid`, qualified).Scan(&oid, &kind)
	if err != nil {
		return nil, false, err
	}
	if !oid.Valid {
		return nil, false, errTableMissing
	}
	if kind.String != "r" && kind.String != "p" {
		return nil, false, refuseTable("is not a table (pg_class.relkind %q): it must be a table made by the documented DDL", kind.String)
	}
	rows, err := db.QueryContext(ctx, `
		SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
		       a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '',
		       COALESCE(c.collisdeterministic, true), COALESCE(c.collname, '')
		FROM pg_attribute a
		LEFT JOIN pg_collation c ON c.oid = a.attcollation
		WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped`, oid.Int64)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	cols := map[string]column{}
	for rows.Next() {
		var c column
		if err := rows.Scan(&c.name, &c.typ, &c.notNull, &c.hasDefault, &c.deterministic, &c.collation); err != nil {
			return nil, false, err
		}
		cols[c.name] = c
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	var unique bool
	err = db.QueryRowContext(ctx, `
		SELECT EXISTS (
			SELECT 1 FROM pg_index i
			JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
			WHERE i.indrelid = $1 AND i.indisunique AND i.indimmediate AND i.indisvalid
			  AND i.indnkeyatts = 1 AND i.indpred IS NULL AND i.indexprs IS NULL
			  AND a.attname = 'key')`, oid.Int64).Scan(&unique)
	return cols, unique, err
}

// sqliteTable reads the columns of a SQLite table with PRAGMA table_xinfo,
// and whether key has a unique index on it alone that is not partial, with
// PRAGMA index_list and index_xinfo. The key's collation is that of its
// unique index (the column's own, for the primary key).
func sqliteTable(ctx context.Context, db *sql.DB, name string) (map[string]column, bool, error) {
	schema, table := splitTable(name)
	prefix := ""
	if schema != "" {
		prefix = `"` + schema + `".`
	}
	// One connection for the PRAGMAs, which take no parameters; the table
	// name was checked by quoteTable and is quoted here.
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, false, err
	}
	defer conn.Close()
	rows, err := conn.QueryContext(ctx, "PRAGMA "+prefix+`table_xinfo("`+table+`")`)
	if err != nil {
		return nil, false, err
	}
	cols := map[string]column{}
	for rows.Next() {
		var (
			cid, notNull, pk, hidden int
			c                        column
			dflt                     sql.NullString
		)
		if err := rows.Scan(&cid, &c.name, &c.typ, &notNull, &dflt, &pk, &hidden); err != nil {
			rows.Close()
			return nil, false, err
		}
		c.notNull = notNull != 0
		c.hasDefault = dflt.Valid || hidden != 0 // hidden 2 and 3: generated columns
		c.deterministic = true
		c.collation = "BINARY"
		cols[c.name] = c
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	if len(cols) == 0 {
		return nil, false, errTableMissing
	}
	type index struct {
		name    string
		unique  bool
		partial bool
	}
	var indexes []index
	rows, err = conn.QueryContext(ctx, "PRAGMA "+prefix+`index_list("`+table+`")`)
	if err != nil {
		return nil, false, err
	}
	for rows.Next() {
		var (
			seq, uniq, partial int
			ix                 index
			origin             string
		)
		if err := rows.Scan(&seq, &ix.name, &uniq, &origin, &partial); err != nil {
			rows.Close()
			return nil, false, err
		}
		ix.unique, ix.partial = uniq != 0, partial != 0
		indexes = append(indexes, ix)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	unique := false
	keyCollation := ""
	for _, ix := range indexes {
		if !ix.unique || ix.partial {
			continue
		}
		rows, err := conn.QueryContext(ctx, "PRAGMA "+prefix+`index_xinfo("`+strings.ReplaceAll(ix.name, `"`, `""`)+`")`)
		if err != nil {
			return nil, false, err
		}
		var keyCols []string
		coll := ""
		for rows.Next() {
			var (
				seqno, cid, desc, isKey int
				colName, collName       sql.NullString
			)
			if err := rows.Scan(&seqno, &cid, &colName, &desc, &collName, &isKey); err != nil {
				rows.Close()
				return nil, false, err
			}
			if isKey != 0 {
				keyCols = append(keyCols, colName.String)
				coll = collName.String
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, false, err
		}
		if len(keyCols) == 1 && keyCols[0] == "key" {
			unique = true
			if keyCollation == "" || strings.EqualFold(coll, "BINARY") {
				keyCollation = coll
			}
		}
	}
	if c, ok := cols["key"]; ok && keyCollation != "" {
		c.collation = keyCollation
		cols["key"] = c
	}
	return cols, unique, nil
}
