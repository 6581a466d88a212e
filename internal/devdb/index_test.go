package devdb_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/authgql/server/internal/devdb"
)

// The SQL FerretDB sends for lookups by _id, captured from its debug log, is
// planned by SQLite to scan the table until IndexIDs runs, and to search the
// index after — for finds, updates and deletes, and for both kinds of _id the
// stores use (ObjectID for users, strings for sessions and attempts).
func TestIndexIDsServesLookupsByID(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	log := new(sqlLog)
	db, client, _ := start(t, dir, slog.New(log))
	users := client.Database("plan").Collection("users")
	sessions := client.Database("plan").Collection("sessions")
	oids := insertN(t, users, 50, func(int) any { return bson.NewObjectID() })
	sids := insertN(t, sessions, 50, func(i int) any { return fmt.Sprintf("%032x", i) })
	file := filepath.Join(dir, "plan.sqlite")

	type lookup struct {
		name string
		verb string // the statement FerretDB runs for it
		run  func() error
	}
	lookups := func(coll *mongo.Collection, id any) []lookup {
		return []lookup{
			{"find", "SELECT", func() error { return coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Err() }},
			{"update", "UPDATE", func() error {
				_, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: -1}}}})
				return err
			}},
			{"delete", "DELETE", func() error {
				_, err := coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
				return err
			}},
		}
	}
	plans := func(coll *mongo.Collection, id any) map[string]string {
		t.Helper()
		got := map[string]string{}
		for _, l := range lookups(coll, id) {
			log.reset()
			if err := l.run(); err != nil {
				t.Fatalf("%s %s: %v", coll.Name(), l.name, err)
			}
			s, ok := log.find(l.verb, idExpr)
			if !ok {
				t.Fatalf("%s %s: FerretDB sent no %s on %s; it sent:\n%s", coll.Name(), l.name, l.verb, idExpr, log.dump())
			}
			got[l.name] = queryPlan(t, file, s)
			t.Logf("%s %s: %s %.80v\n\t-> %s", coll.Name(), l.name, s.query, s.args, got[l.name])
		}
		return got
	}

	for name, p := range plans(users, oids[0]) {
		if !strings.Contains(p, "SCAN") {
			t.Errorf("before IndexIDs, users %s: plan %q does not scan: FerretDB may now use its own _id index, and IndexIDs may be unneeded", name, p)
		}
	}
	if err := db.IndexIDs(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		coll *mongo.Collection
		id   any
	}{{users, oids[1]}, {sessions, sids[1]}} {
		for name, p := range plans(c.coll, c.id) {
			if !strings.HasPrefix(p, "SEARCH") || !strings.Contains(p, "USING INDEX $devdb_id_") || strings.Contains(p, "SCAN") {
				t.Errorf("after IndexIDs, %s %s: plan %q, want SEARCH ... USING INDEX $devdb_id_...", c.coll.Name(), name, p)
			}
		}
	}
}

// A data directory kept between runs: collections from a run without the
// index get it at the next call, the index persists, a collection created
// after a call gets it at the next, and calling twice changes nothing.
func TestIndexIDsAcrossRestarts(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	file := filepath.Join(dir, "app.sqlite")

	_, client, stop := start(t, dir, nil)
	insertN(t, client.Database("app").Collection("old"), 10, func(int) any { return bson.NewObjectID() })
	stop()
	if got := devdbIndexes(t, file); len(got) != 0 {
		t.Fatalf("indexes before any IndexIDs: %v", got)
	}

	db, client, stop := start(t, dir, nil)
	for range 2 {
		if err := db.IndexIDs(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := devdbIndexes(t, file), []string{"old"}; !slices.Equal(got, want) {
		t.Fatalf("indexed tables after restart: %v, want %v", got, want)
	}
	insertN(t, client.Database("app").Collection("new"), 10, func(int) any { return bson.NewObjectID() })
	if got, want := devdbIndexes(t, file), []string{"old"}; !slices.Equal(got, want) {
		t.Fatalf("indexed tables before the next call: %v, want %v", got, want)
	}
	if err := db.IndexIDs(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := devdbIndexes(t, file), []string{"new", "old"}; !slices.Equal(got, want) {
		t.Fatalf("indexed tables after the next call: %v, want %v", got, want)
	}
	stop()

	_, client, stop = start(t, dir, nil)
	if got, want := devdbIndexes(t, file), []string{"new", "old"}; !slices.Equal(got, want) {
		t.Fatalf("indexed tables after another restart: %v, want %v", got, want)
	}
	ids := insertN(t, client.Database("app").Collection("old"), 1, func(int) any { return bson.NewObjectID() })
	if err := client.Database("app").Collection("old").FindOne(ctx, bson.D{{Key: "_id", Value: ids[0]}}).Err(); err != nil {
		t.Fatalf("find after restart: %v", err)
	}
	stop()
}

// FerretDB works as before with the index next to its own: _id and other
// unique keys are enforced, writes land, its index listing and metadata are
// unchanged, and collections and databases still rename and drop cleanly.
func TestIndexIDsKeepsFerretDBIntact(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, client, stop := start(t, dir, nil)
	mdb := client.Database("keep")
	users := mdb.Collection("users")
	if _, err := users.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys: bson.D{{Key: "email", Value: 1}}, Options: options.Index().SetUnique(true),
	}); err != nil {
		t.Fatal(err)
	}
	ids := insertN(t, users, 20, func(int) any { return bson.NewObjectID() })
	file := filepath.Join(dir, "keep.sqlite")
	metaBefore := collectionsMetadata(t, file)
	if err := db.IndexIDs(ctx); err != nil {
		t.Fatal(err)
	}

	t.Run("metadata unchanged", func(t *testing.T) {
		if got := collectionsMetadata(t, file); !slices.Equal(got, metaBefore) {
			t.Errorf("_ferretdb_collections: got %v, want %v", got, metaBefore)
		}
		specs, err := users.Indexes().ListSpecifications(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, s := range specs {
			names = append(names, s.Name)
		}
		slices.Sort(names)
		if want := []string{"_id_", "email_1"}; !slices.Equal(names, want) {
			t.Errorf("listIndexes: got %v, want %v", names, want)
		}
		for _, cmd := range []bson.D{{{Key: "collStats", Value: "users"}}, {{Key: "dbStats", Value: 1}}} {
			if err := mdb.RunCommand(ctx, cmd).Err(); err != nil {
				t.Errorf("%s: %v", cmd[0].Key, err)
			}
		}
	})
	t.Run("unique keys", func(t *testing.T) {
		n0 := count(t, users)
		_, err := users.InsertOne(ctx, bson.D{{Key: "_id", Value: ids[0]}, {Key: "email", Value: "other@example.com"}})
		if !mongo.IsDuplicateKeyError(err) {
			t.Errorf("duplicate _id: got %v, want a duplicate key error", err)
		}
		_, err = users.InsertOne(ctx, bson.D{{Key: "email", Value: "user1@example.com"}})
		if !mongo.IsDuplicateKeyError(err) {
			t.Errorf("duplicate email: got %v, want a duplicate key error", err)
		}
		if got := count(t, users); got != n0 {
			t.Errorf("documents after rejected inserts: got %d, want %d", got, n0)
		}
	})
	t.Run("writes", func(t *testing.T) {
		res, err := users.UpdateOne(ctx, bson.D{{Key: "_id", Value: ids[1]}}, bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: 100}}}})
		if err != nil || res.MatchedCount != 1 || res.ModifiedCount != 1 {
			t.Fatalf("update: %+v, %v", res, err)
		}
		var doc struct{ N int }
		if err := users.FindOne(ctx, bson.D{{Key: "_id", Value: ids[1]}}).Decode(&doc); err != nil || doc.N != 100 {
			t.Errorf("after update: n = %d, %v; want 100", doc.N, err)
		}
		rr, err := users.ReplaceOne(ctx, bson.D{{Key: "_id", Value: ids[2]}}, bson.D{{Key: "email", Value: "replaced@example.com"}})
		if err != nil || rr.ModifiedCount != 1 {
			t.Fatalf("replace: %+v, %v", rr, err)
		}
		dr, err := users.DeleteOne(ctx, bson.D{{Key: "_id", Value: ids[3]}})
		if err != nil || dr.DeletedCount != 1 {
			t.Fatalf("delete: %+v, %v", dr, err)
		}
		if err := users.FindOne(ctx, bson.D{{Key: "_id", Value: ids[3]}}).Err(); !errors.Is(err, mongo.ErrNoDocuments) {
			t.Errorf("find deleted: got %v, want ErrNoDocuments", err)
		}
		// The _id of a deleted document is free again.
		if _, err := users.InsertOne(ctx, bson.D{{Key: "_id", Value: ids[3]}, {Key: "email", Value: "again@example.com"}}); err != nil {
			t.Errorf("reinsert deleted _id: %v", err)
		}
	})
	t.Run("drop and rename", func(t *testing.T) {
		if err := users.Indexes().DropOne(ctx, "email_1"); err != nil {
			t.Errorf("dropIndexes: %v", err)
		}
		if err := mdb.RunCommand(ctx, bson.D{{Key: "dropIndexes", Value: "users"}, {Key: "index", Value: "*"}}).Err(); err != nil {
			t.Errorf("dropIndexes *: %v", err)
		}
		if got, want := devdbIndexes(t, file), []string{"users"}; !slices.Equal(got, want) {
			t.Errorf("devdb indexes after dropIndexes: %v, want %v", got, want)
		}
		err := client.Database("admin").RunCommand(ctx, bson.D{
			{Key: "renameCollection", Value: "keep.users"}, {Key: "to", Value: "keep.people"},
		}).Err()
		if err != nil {
			t.Fatalf("renameCollection: %v", err)
		}
		people := mdb.Collection("people")
		if err := people.FindOne(ctx, bson.D{{Key: "_id", Value: ids[4]}}).Err(); err != nil {
			t.Errorf("find after rename: %v", err)
		}
		if err := people.Drop(ctx); err != nil {
			t.Fatal(err)
		}
		if got := devdbIndexes(t, file); len(got) != 0 {
			t.Errorf("devdb indexes after drop: %v, want none", got)
		}
		again := insertN(t, people, 3, func(int) any { return bson.NewObjectID() })
		if err := db.IndexIDs(ctx); err != nil {
			t.Fatal(err)
		}
		if err := people.FindOne(ctx, bson.D{{Key: "_id", Value: again[0]}}).Err(); err != nil {
			t.Errorf("find in recreated collection: %v", err)
		}
		if err := mdb.Drop(ctx); err != nil {
			t.Fatal(err)
		}
		if err := db.IndexIDs(ctx); err != nil {
			t.Fatalf("IndexIDs after dropping the database: %v", err)
		}
		if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("dropped database file: %v, want it gone", err)
		}
	})
	stop()
	// FerretDB opens every file in the directory at start: it must still.
	db, client, stop = start(t, dir, nil)
	stop()
}

// IndexIDs takes SQLite's write lock next to FerretDB's own connections:
// concurrent inserts wait for it and none fails.
func TestIndexIDsDuringWrites(t *testing.T) {
	ctx := context.Background()
	db, client, _ := start(t, t.TempDir(), nil)
	const writers, each = 4, 50
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		coll := client.Database("busy").Collection(fmt.Sprintf("c%d", w))
		wg.Go(func() {
			for i := range each {
				if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: fmt.Sprintf("%d-%d", w, i)}}); err != nil {
					errs <- err
				}
			}
		})
	}
	for range 10 {
		if err := db.IndexIDs(ctx); err != nil {
			t.Errorf("IndexIDs: %v", err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("insert during IndexIDs: %v", err)
	}
	if err := db.IndexIDs(ctx); err != nil {
		t.Fatal(err)
	}
	for w := range writers {
		coll := client.Database("busy").Collection(fmt.Sprintf("c%d", w))
		if got := count(t, coll); got != each {
			t.Errorf("%s: %d documents, want %d", coll.Name(), got, each)
		}
	}
}

// BenchmarkPointRead measures FindOne by _id, as the stores do it, against
// collection size, without and with IndexIDs.
func BenchmarkPointRead(b *testing.B) {
	ctx := context.Background()
	db, client, _ := start(b, b.TempDir(), nil)
	for _, docs := range []int{200, 5000} {
		coll := client.Database("bench").Collection(fmt.Sprintf("sessions%d", docs))
		ids := insertN(b, coll, docs, func(i int) any { return fmt.Sprintf("%032x", i*7919) })
		for _, indexed := range []bool{false, true} {
			if indexed {
				if err := db.IndexIDs(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.Run(fmt.Sprintf("docs=%d/IndexIDs=%v", docs, indexed), func(b *testing.B) {
				i := 0
				for b.Loop() {
					if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: ids[i%len(ids)]}}).Err(); err != nil {
						b.Fatal(err)
					}
					i += 7
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s")
			})
		}
	}
}

// idExpr is the expression FerretDB filters _id on (see index.go).
const idExpr = `_ferretdb_sjson->'$._id'`

// start starts a database in dir and connects to it; stop (also run at
// cleanup, and harmless twice) lets a test restart on the same directory.
func start(tb testing.TB, dir string, logger *slog.Logger) (db *devdb.DB, client *mongo.Client, stop func()) {
	tb.Helper()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	db, err := devdb.Start(dir, logger)
	if err != nil {
		tb.Fatal(err)
	}
	client, err = mongo.Connect(options.Client().ApplyURI(db.URI()))
	if err != nil {
		db.Stop()
		tb.Fatal(err)
	}
	stop = sync.OnceFunc(func() {
		_ = client.Disconnect(context.Background())
		db.Stop()
	})
	tb.Cleanup(stop)
	return db, client, stop
}

// insertN inserts n documents shaped like sessions, with the _ids id gives,
// and returns the _ids.
func insertN(tb testing.TB, coll *mongo.Collection, n int, id func(int) any) []any {
	tb.Helper()
	ids := make([]any, n)
	docs := make([]any, n)
	for i := range n {
		ids[i] = id(i)
		docs[i] = bson.D{
			{Key: "_id", Value: ids[i]},
			{Key: "email", Value: fmt.Sprintf("user%d@example.com", i)},
			{Key: "user_id", Value: fmt.Sprintf("%024x", i%97)},
			{Key: "token_hash", Value: strings.Repeat(fmt.Sprintf("%08x", i), 8)},
			{Key: "n", Value: i},
		}
	}
	for len(docs) > 0 {
		batch := docs[:min(len(docs), 1000)]
		docs = docs[len(batch):]
		if _, err := coll.InsertMany(context.Background(), batch); err != nil {
			tb.Fatalf("insert into %s: %v", coll.Name(), err)
		}
	}
	return ids
}

func count(t *testing.T, coll *mongo.Collection) int64 {
	t.Helper()
	n, err := coll.CountDocuments(context.Background(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

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
