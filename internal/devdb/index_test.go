package devdb_test

import (
	"context"
	"fmt"
	"log/slog"
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
