package devdb_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

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
