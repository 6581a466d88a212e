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

// EmailTokenStore keeps the tokens of mailed links in the "email_tokens"
// collection, keyed by the token's hash. A token is consumed elsewhere, by a
// marker (see MarkerStore): nothing here updates a token.
type EmailTokenStore struct {
	coll *mongo.Collection
}

var _ auth.EmailTokenStore = (*EmailTokenStore)(nil)

type emailTokenDoc struct {
	Hash      string    `bson:"_id"`
	Kind      string    `bson:"kind"`
	UserID    string    `bson:"user_id"`
	EmailKey  string    `bson:"email_key"`
	Email     string    `bson:"email"`
	Stamp     string    `bson:"stamp"`
	CreatedAt time.Time `bson:"created_at"`
	ExpiresAt time.Time `bson:"expires_at"`
}

// NewEmailTokenStore returns an EmailTokenStore on db, creating its indexes
// if needed.
func NewEmailTokenStore(ctx context.Context, db *mongo.Database) (*EmailTokenStore, error) {
	s := &EmailTokenStore{coll: db.Collection("email_tokens")}
	// One at a time: CreateMany on existing indexes can break FerretDB's connection.
	for _, idx := range []mongo.IndexModel{
		{
			Keys:    bson.D{{Key: "user_id", Value: 1}, {Key: "kind", Value: 1}, {Key: "created_at", Value: -1}},
			Options: options.Index().SetName("user_id_kind_created_at"),
		},
		{Keys: bson.D{{Key: "expires_at", Value: 1}}, Options: options.Index().SetName("expires_at")},
	} {
		if _, err := s.coll.Indexes().CreateOne(ctx, idx); err != nil {
			return nil, fmt.Errorf("mongodb: create index on email_tokens: %w", err)
		}
	}
	return s, nil
}

// Create inserts t; a hash that exists is auth.ErrDuplicate.
func (s *EmailTokenStore) Create(ctx context.Context, t *auth.EmailToken) error {
	doc := emailTokenDoc{
		Hash: t.Hash, Kind: string(t.Kind), UserID: t.UserID, EmailKey: t.EmailKey, Email: t.Email, Stamp: t.Stamp,
		CreatedAt: millis(t.CreatedAt), ExpiresAt: millis(t.ExpiresAt),
	}
	_, err := s.coll.InsertOne(ctx, doc)
	if mongo.IsDuplicateKeyError(err) {
		return auth.ErrDuplicate
	}
	if err != nil {
		return fmt.Errorf("mongodb: insert email token: %w", err)
	}
	return nil
}

// ByHash returns the token whose hash is hash, expired or not.
func (s *EmailTokenStore) ByHash(ctx context.Context, hash string) (*auth.EmailToken, error) {
	return s.findOne(ctx, bson.D{{Key: "_id", Value: hash}})
}

// Latest returns the newest token of kind for userID; of tokens created in
// the same millisecond, the one with the greatest hash.
func (s *EmailTokenStore) Latest(ctx context.Context, userID string, kind auth.EmailTokenKind) (*auth.EmailToken, error) {
	return s.findOne(ctx, bson.D{{Key: "user_id", Value: userID}, {Key: "kind", Value: string(kind)}},
		options.FindOne().SetSort(bson.D{{Key: "created_at", Value: -1}, {Key: "_id", Value: -1}}))
}

// DeleteForUser removes every token of userID (none for an empty userID).
func (s *EmailTokenStore) DeleteForUser(ctx context.Context, userID string) (int64, error) {
	if userID == "" {
		return 0, nil
	}
	res, err := s.coll.DeleteMany(ctx, bson.D{{Key: "user_id", Value: userID}})
	if err != nil {
		return 0, fmt.Errorf("mongodb: delete email tokens of user: %w", err)
	}
	return res.DeletedCount, nil
}

// DeleteExpired removes tokens that expired before before.
func (s *EmailTokenStore) DeleteExpired(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.coll.DeleteMany(ctx, bson.D{{Key: "expires_at", Value: bson.D{{Key: "$lt", Value: before}}}})
	if err != nil {
		return 0, fmt.Errorf("mongodb: delete expired email tokens: %w", err)
	}
	return res.DeletedCount, nil
}

// findOne runs filter, whose values are plain strings, never documents built
// from client input.
func (s *EmailTokenStore) findOne(ctx context.Context, filter bson.D, opts ...options.Lister[options.FindOneOptions]) (*auth.EmailToken, error) {
	var doc emailTokenDoc
	err := s.coll.FindOne(ctx, filter, opts...).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, auth.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("mongodb: find email token: %w", err)
	}
	return &auth.EmailToken{
		Hash: doc.Hash, Kind: auth.EmailTokenKind(doc.Kind), UserID: doc.UserID, EmailKey: doc.EmailKey,
		Email: doc.Email, Stamp: doc.Stamp, CreatedAt: doc.CreatedAt.UTC(), ExpiresAt: doc.ExpiresAt.UTC(),
	}, nil
}
