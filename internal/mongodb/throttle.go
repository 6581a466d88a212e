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

// ThrottleStore keeps failed-login counts in the "login_throttles"
// collection, shared by every instance.
type ThrottleStore struct {
	coll *mongo.Collection
}

var _ auth.ThrottleStore = (*ThrottleStore)(nil)

type throttleDoc struct {
	Key         string    `bson:"_id"`
	Failures    int       `bson:"failures"`
	LastFailure time.Time `bson:"last_failure"`
	LockedUntil time.Time `bson:"locked_until"`
}

// NewThrottleStore returns a ThrottleStore on db.
func NewThrottleStore(ctx context.Context, db *mongo.Database) (*ThrottleStore, error) {
	s := &ThrottleStore{coll: db.Collection("login_throttles")}
	if _, err := s.coll.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "last_failure", Value: 1}},
		Options: options.Index().SetName("last_failure"),
	}); err != nil {
		return nil, fmt.Errorf("mongodb: create index on login_throttles.last_failure: %w", err)
	}
	return s, nil
}

// Get returns the record of key, or the zero Throttle.
func (s *ThrottleStore) Get(ctx context.Context, key string) (auth.Throttle, error) {
	var doc throttleDoc
	err := s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: key}}).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return auth.Throttle{}, nil
	}
	if err != nil {
		return auth.Throttle{}, fmt.Errorf("mongodb: find throttle: %w", err)
	}
	return auth.Throttle{Failures: doc.Failures, LastFailure: doc.LastFailure.UTC(), LockedUntil: doc.LockedUntil.UTC()}, nil
}

// Fail counts one failure atomically (concurrent failures all count).
func (s *ThrottleStore) Fail(ctx context.Context, key string, now time.Time) (int, error) {
	var doc throttleDoc
	err := s.coll.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: key}},
		bson.D{
			{Key: "$inc", Value: bson.D{{Key: "failures", Value: 1}}},
			{Key: "$set", Value: bson.D{{Key: "last_failure", Value: now}}},
		},
		options.FindOneAndUpdate().SetUpsert(true).SetReturnDocument(options.After)).Decode(&doc)
	if err != nil {
		return 0, fmt.Errorf("mongodb: count failure: %w", err)
	}
	return doc.Failures, nil
}

// Lock refuses attempts on key until until.
func (s *ThrottleStore) Lock(ctx context.Context, key string, until time.Time) error {
	_, err := s.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: key}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "locked_until", Value: until}}}})
	if err != nil {
		return fmt.Errorf("mongodb: lock: %w", err)
	}
	return nil
}

// Reset forgets the failures of key.
func (s *ThrottleStore) Reset(ctx context.Context, key string) error {
	if _, err := s.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: key}}); err != nil {
		return fmt.Errorf("mongodb: reset throttle: %w", err)
	}
	return nil
}

// DeleteIdle removes records whose last failure is older than before.
func (s *ThrottleStore) DeleteIdle(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.coll.DeleteMany(ctx, bson.D{{Key: "last_failure", Value: bson.D{{Key: "$lt", Value: before}}}})
	if err != nil {
		return 0, fmt.Errorf("mongodb: delete idle throttles: %w", err)
	}
	return res.DeletedCount, nil
}
