package mongodb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/authgql/server/internal/auth"
)

// MarkerStore keeps single-use keys in the "markers" collection, one
// document per key with the key as its _id: Put is an insert against the
// unique _id, the one write that is atomic on MongoDB and on the embedded
// database alike.
type MarkerStore struct {
	coll *mongo.Collection
}

var _ auth.MarkerStore = (*MarkerStore)(nil)

type markerDoc struct {
	Key   string    `bson:"_id"`
	Until time.Time `bson:"until"`
}

// NewMarkerStore returns a MarkerStore on db, creating its index if needed.
func NewMarkerStore(ctx context.Context, db *mongo.Database) (*MarkerStore, error) {
	s := &MarkerStore{coll: db.Collection("markers")}
	if _, err := s.coll.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "until", Value: 1}},
		Options: options.Index().SetName("until"),
	}); err != nil {
		return nil, fmt.Errorf("mongodb: create index on markers.until: %w", err)
	}
	return s, nil
}

// Put inserts key; a key that exists is auth.ErrDuplicate, whatever its until.
func (s *MarkerStore) Put(ctx context.Context, key string, until time.Time) error {
	_, err := s.coll.InsertOne(ctx, markerDoc{Key: key, Until: millis(until)})
	if mongo.IsDuplicateKeyError(err) {
		return auth.ErrDuplicate
	}
	if err != nil {
		return fmt.Errorf("mongodb: insert marker: %w", err)
	}
	return nil
}

// Until returns the until of key: one point read by _id.
func (s *MarkerStore) Until(ctx context.Context, key string) (time.Time, error) {
	var doc markerDoc
	err := s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: key}}).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return time.Time{}, auth.ErrNotFound
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("mongodb: find marker: %w", err)
	}
	return doc.Until.UTC(), nil
}

// DeleteBefore removes markers whose until is before before.
func (s *MarkerStore) DeleteBefore(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.coll.DeleteMany(ctx, bson.D{{Key: "until", Value: bson.D{{Key: "$lt", Value: before}}}})
	if err != nil {
		return 0, fmt.Errorf("mongodb: delete old markers: %w", err)
	}
	return res.DeletedCount, nil
}
