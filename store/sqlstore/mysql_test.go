package sqlstore

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// The MySQL dialect's statements run against a server in the module
// store/sqlstore/mysqltest; these are the parts that need none.

func TestPlaceholders(t *testing.T) {
	for _, tc := range []struct {
		in, out string
		order   []int
	}{
		{"SELECT 1", "SELECT 1", nil},
		{"a = $1", "a = ?", []int{0}},
		{"a = $2 AND b = $1 AND c = $2", "a = ? AND b = ? AND c = ?", []int{1, 0, 1}},
		{"LIMIT $10", "LIMIT ?", []int{9}},
	} {
		out, order := placeholders(tc.in)
		if out != tc.out || !slices.Equal(order, tc.order) {
			t.Errorf("placeholders(%q) = %q, %v; want %q, %v", tc.in, out, order, tc.out, tc.order)
		}
	}
}

// TestMySQLQueriesArgs checks every MySQL statement: no $n left, and each
// "?" takes an argument the caller passes (the callers pass, in $n order,
// the arguments listed here).
func TestMySQLQueriesArgs(t *testing.T) {
	q := buildQueries(MySQL, "`t`")
	for name, c := range map[string]struct {
		sql  string
		args int // how many arguments the call site passes
	}{
		"get": {q.get, 1}, "getWithTTL": {q.getWithTTL, 1}, "set": {q.set, 3}, "del": {q.del, 1},
		"touch": {q.touch, 2}, "getAndTouch": {q.getAndTouch, 1}, "casOld": {q.casOld, 4},
		"casAbsent": {q.casAbsent, 3}, "casReplace": {q.casReplace, 3}, "cad": {q.cad, 2}, "cadCheck": {q.cadCheck, 1},
		"scanFirst": {q.scanFirst, 2}, "scanFirstBounded": {q.scanFirstBounded, 3},
		"scanNext": {q.scanNext, 2}, "scanNextBounded": {q.scanNextBounded, 3}, "sweep": {q.sweep, 1}, "dbNow": {q.dbNow, 0},
	} {
		if strings.Contains(c.sql, "$") {
			t.Errorf("%s still has a $ placeholder: %s", name, c.sql)
		}
		order, ok := q.order[c.sql]
		if !ok {
			t.Errorf("%s has no argument order", name)
			continue
		}
		if n := strings.Count(c.sql, "?"); n != len(order) {
			t.Errorf("%s: %d placeholders, %d in the order", name, n, len(order))
		}
		used := map[int]bool{}
		for _, i := range order {
			if i >= c.args {
				t.Errorf("%s takes argument %d, the caller passes %d", name, i+1, c.args)
			}
			used[i] = true
		}
		if len(used) != c.args {
			t.Errorf("%s uses %d of the %d arguments passed", name, len(used), c.args)
		}
		if strings.Contains(c.sql, " key ") || strings.Contains(c.sql, "(key") || strings.Contains(c.sql, `"`) {
			t.Errorf("%s has an unquoted key or a double quote: %s", name, c.sql)
		}
	}
	s := &Store{dialect: MySQL, q: q}
	if got := s.args(q.scanNextBounded, "after", 1000, "upper"); !slices.Equal(got, []any{"after", "upper", 1000}) {
		t.Errorf("args(scanNextBounded) = %v, want after, upper, limit", got)
	}
}

// mysqlError has the shape of github.com/go-sql-driver/mysql's MySQLError.
type mysqlError struct {
	Number   uint16
	SQLState [5]byte
	Message  string
}

func (e *mysqlError) Error() string {
	return fmt.Sprintf("Error %d (%s): %s", e.Number, e.SQLState, e.Message)
}

func TestIsMySQLError(t *testing.T) {
	dup := &mysqlError{Number: 1062, SQLState: [5]byte{'2', '3', '0', '0', '0'}, Message: "Duplicate entry 'k' for key 'PRIMARY'"}
	if !isDuplicateKey(dup) || !isDuplicateKey(fmt.Errorf("wrapped: %w", dup)) {
		t.Error("isDuplicateKey misses error 1062")
	}
	if isDuplicateKey(&mysqlError{Number: 1213}) || !isMySQLError(&mysqlError{Number: 1213}, 1213) {
		t.Error("isMySQLError confuses 1062 and 1213")
	}
	// Another driver's error with the same text.
	if !isDuplicateKey(errors.New("Error 1062 (23000): Duplicate entry")) || isDuplicateKey(errors.New("Error 10620: x")) {
		t.Error("the text fallback is wrong")
	}
	if isMySQLError(nil, 1062) {
		t.Error("nil is no MySQL error")
	}
}
