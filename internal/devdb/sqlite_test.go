package devdb_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
)

// idExpr is the expression FerretDB filters _id on (see index.go).
const idExpr = `_ferretdb_sjson->'$._id'`

// query runs a query on a database file, read-only, next to FerretDB, and
// calls scan for each row.
func query(t *testing.T, file string, scan func(*sql.Rows) error, q string, args ...any) {
	t.Helper()
	u := url.URL{Scheme: "file", Path: file, RawQuery: "mode=ro&_pragma=busy_timeout(10000)"}
	conn, err := sql.Open("sqlite", u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rows, err := conn.Query(q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			t.Fatal(err)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

// queryPlan returns SQLite's plan for a statement, one step after another.
func queryPlan(t *testing.T, file string, s statement) string {
	t.Helper()
	var steps []string
	query(t, file, func(rows *sql.Rows) error {
		var id, parent, notused int
		var detail string
		err := rows.Scan(&id, &parent, &notused, &detail)
		steps = append(steps, detail)
		return err
	}, "EXPLAIN QUERY PLAN "+s.query, s.args...)
	return strings.Join(steps, "; ")
}

// devdbIndexes returns the tables with an index of IndexIDs, sorted, with
// FerretDB's hash suffix removed ("users", not "users_1b0c0f3e").
func devdbIndexes(t *testing.T, file string) []string {
	t.Helper()
	var tables []string
	query(t, file, func(rows *sql.Rows) error {
		var name, table, ddl string
		if err := rows.Scan(&name, &table, &ddl); err != nil {
			return err
		}
		if name != "$devdb_id_"+table || !strings.Contains(ddl, "("+idExpr+")") {
			t.Errorf("index %s on %s: %s", name, table, ddl)
		}
		tables = append(tables, table[:strings.LastIndexByte(table, '_')])
		return nil
	}, `SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index' AND name LIKE '$devdb_id_%' ORDER BY tbl_name`)
	return tables
}

// collectionsMetadata returns FerretDB's list of collections in a file.
func collectionsMetadata(t *testing.T, file string) []string {
	t.Helper()
	var got []string
	query(t, file, func(rows *sql.Rows) error {
		var s string
		err := rows.Scan(&s)
		got = append(got, s)
		return err
	}, `SELECT name || ' ' || table_name || ' ' || settings FROM _ferretdb_collections ORDER BY name`)
	return got
}

// statement is one SQL statement FerretDB ran, with its arguments.
type statement struct {
	query string
	args  []any
}

// sqlLog is a slog.Handler that keeps the SQL statements FerretDB logs at
// debug level (">>> query", with an "args" attribute).
type sqlLog struct {
	mu    sync.Mutex
	stmts []statement
}

func (l *sqlLog) Enabled(context.Context, slog.Level) bool { return true }

func (l *sqlLog) Handle(_ context.Context, r slog.Record) error { return l.handle(r, nil) }

func (l *sqlLog) WithAttrs(as []slog.Attr) slog.Handler { return sqlLogAttrs{l, as} }

func (l *sqlLog) WithGroup(string) slog.Handler { return l }

func (l *sqlLog) handle(r slog.Record, attrs []slog.Attr) error {
	q, ok := strings.CutPrefix(r.Message, ">>> ")
	if !ok {
		return nil
	}
	s := statement{query: q}
	for _, a := range attrs {
		if args, ok := a.Value.Any().([]any); ok && a.Key == "args" {
			s.args = args
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stmts = append(l.stmts, s)
	return nil
}

func (l *sqlLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stmts = nil
}

// find returns the last statement that starts with verb and contains expr.
func (l *sqlLog) find(verb, expr string) (statement, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range slices.Backward(l.stmts) {
		if strings.HasPrefix(s.query, verb) && strings.Contains(s.query, expr) {
			return s, true
		}
	}
	return statement{}, false
}

func (l *sqlLog) dump() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, s := range l.stmts {
		fmt.Fprintf(&b, "\t%s %v\n", s.query, s.args)
	}
	return b.String()
}

type sqlLogAttrs struct {
	l     *sqlLog
	attrs []slog.Attr
}

func (h sqlLogAttrs) Enabled(context.Context, slog.Level) bool { return true }

func (h sqlLogAttrs) Handle(_ context.Context, r slog.Record) error { return h.l.handle(r, h.attrs) }

func (h sqlLogAttrs) WithAttrs(as []slog.Attr) slog.Handler {
	return sqlLogAttrs{h.l, append(slices.Clip(h.attrs), as...)}
}

func (h sqlLogAttrs) WithGroup(string) slog.Handler { return h }
