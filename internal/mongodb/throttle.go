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

// ThrottleStore keeps password attempts in the "login_attempts" collection,
// shared by every instance. Each attempt is its own document whose _id is
// "<key>/<seq>" with seq zero-padded, so that the attempts of one key are one
// range of _id, in order, and reserving an attempt is an insert against the
// unique _id — atomic on MongoDB and on the embedded database alike.
type ThrottleStore struct {
	coll *mongo.Collection
}

var _ auth.ThrottleStore = (*ThrottleStore)(nil)

type attemptDoc struct {
	ID       string    `bson:"_id"`
	Failures int       `bson:"failures"`
	At       time.Time `bson:"at"`
}

// NewThrottleStore returns a ThrottleStore on db.
func NewThrottleStore(ctx context.Context, db *mongo.Database) (*ThrottleStore, error) {
	s := &ThrottleStore{coll: db.Collection("login_attempts")}
	if _, err := s.coll.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "at", Value: 1}},
		Options: options.Index().SetName("at"),
	}); err != nil {
		return nil, fmt.Errorf("mongodb: create index on login_attempts.at: %w", err)
	}
	return s, nil
}

func attemptID(key string, seq int64) string { return fmt.Sprintf("%s/%019d", key, seq) }

// keyRange selects every attempt of key. Keys are hex, so the attempts of
// key are exactly the _ids between key+"/" and key+"0" ('0' follows '/').
func keyRange(key string) bson.D {
	return bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: key + "/"}, {Key: "$lt", Value: key + "0"}}}}
}

// Last returns the newest attempt of key.
func (s *ThrottleStore) Last(ctx context.Context, key string) (auth.Attempt, error) {
	var doc attemptDoc
	err := s.coll.FindOne(ctx, keyRange(key), options.FindOne().SetSort(bson.D{{Key: "_id", Value: -1}})).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return auth.Attempt{}, auth.ErrNotFound
	}
	if err != nil {
		return auth.Attempt{}, fmt.Errorf("mongodb: find login attempt: %w", err)
	}
	var seq int64
	if _, err := fmt.Sscanf(doc.ID[len(key)+1:], "%d", &seq); err != nil {
		return auth.Attempt{}, fmt.Errorf("mongodb: login attempt %q: %w", doc.ID, err)
	}
	return auth.Attempt{Seq: seq, Failures: doc.Failures, At: doc.At.UTC()}, nil
}

// Reserve inserts attempt a of key; a taken seq is auth.ErrDuplicate.
func (s *ThrottleStore) Reserve(ctx context.Context, key string, a auth.Attempt) error {
	_, err := s.coll.InsertOne(ctx, attemptDoc{ID: attemptID(key, a.Seq), Failures: a.Failures, At: a.At})
	if mongo.IsDuplicateKeyError(err) {
		return auth.ErrDuplicate
	}
	if err != nil {
		return fmt.Errorf("mongodb: insert login attempt: %w", err)
	}
	return nil
}

// Reset forgets the attempts of key.
func (s *ThrottleStore) Reset(ctx context.Context, key string) error {
	if _, err := s.coll.DeleteMany(ctx, keyRange(key)); err != nil {
		return fmt.Errorf("mongodb: reset login attempts: %w", err)
	}
	return nil
}

// DeleteIdle removes attempts made before before.
func (s *ThrottleStore) DeleteIdle(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.coll.DeleteMany(ctx, bson.D{{Key: "at", Value: bson.D{{Key: "$lt", Value: before}}}})
	if err != nil {
		return 0, fmt.Errorf("mongodb: delete idle login attempts: %w", err)
	}
	return res.DeletedCount, nil
}
