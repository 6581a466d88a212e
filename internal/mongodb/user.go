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

// UserStore keeps users in the "users" collection.
type UserStore struct {
	coll *mongo.Collection
}

var _ auth.UserStore = (*UserStore)(nil)

// userDoc is the stored shape of a user. The *_key fields are normalized
// copies with plain unique indexes: FerretDB has no collation, and neither do
// the queries.
type userDoc struct {
	ID           bson.ObjectID `bson:"_id"`
	Username     string        `bson:"username"`
	Email        string        `bson:"email"`
	UsernameKey  string        `bson:"username_key"`
	EmailKey     string        `bson:"email_key"`
	PasswordHash []byte        `bson:"password_hash"`
	CreatedAt    time.Time     `bson:"created_at"`
}

// NewUserStore returns a UserStore on db, creating its indexes if needed.
func NewUserStore(ctx context.Context, db *mongo.Database) (*UserStore, error) {
	s := &UserStore{coll: db.Collection("users")}
	// One at a time: CreateMany on existing indexes can break FerretDB's connection.
	for _, field := range []string{"username_key", "email_key"} {
		_, err := s.coll.Indexes().CreateOne(ctx, mongo.IndexModel{
			Keys:    bson.D{{Key: field, Value: 1}},
			Options: options.Index().SetUnique(true).SetName(field + "_unique"),
		})
		if err != nil {
			return nil, fmt.Errorf("mongodb: create index on users.%s: %w", field, err)
		}
	}
	return s, nil
}

// Create inserts u and sets its ID. A taken username or email key is
// auth.ErrDuplicate.
func (s *UserStore) Create(ctx context.Context, u *auth.User) error {
	doc := userDoc{
		ID:           bson.NewObjectID(),
		Username:     u.Username,
		Email:        u.Email,
		UsernameKey:  u.UsernameKey,
		EmailKey:     u.EmailKey,
		PasswordHash: u.PasswordHash,
		CreatedAt:    u.CreatedAt,
	}
	if _, err := s.coll.InsertOne(ctx, doc); err != nil {
		if mongo.IsDuplicateKeyError(err) {
			return auth.ErrDuplicate
		}
		return fmt.Errorf("mongodb: insert user: %w", err)
	}
	u.ID = doc.ID.Hex()
	return nil
}

// ByID returns the user with id, or auth.ErrNotFound (also for a malformed id).
func (s *UserStore) ByID(ctx context.Context, id string) (*auth.User, error) {
	oid, err := bson.ObjectIDFromHex(id)
	if err != nil {
		return nil, auth.ErrNotFound
	}
	return s.findOne(ctx, bson.D{{Key: "_id", Value: oid}})
}

// ByUsernameKey returns the user whose normalized username is key.
func (s *UserStore) ByUsernameKey(ctx context.Context, key string) (*auth.User, error) {
	return s.findOne(ctx, bson.D{{Key: "username_key", Value: key}})
}

// ByEmailKey returns the user whose normalized email is key.
func (s *UserStore) ByEmailKey(ctx context.Context, key string) (*auth.User, error) {
	return s.findOne(ctx, bson.D{{Key: "email_key", Value: key}})
}

// SetPasswordHash replaces the password hash of the user with id.
func (s *UserStore) SetPasswordHash(ctx context.Context, id string, hash []byte) error {
	oid, err := bson.ObjectIDFromHex(id)
	if err != nil {
		return auth.ErrNotFound
	}
	res, err := s.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: oid}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "password_hash", Value: hash}}}})
	if err != nil {
		return fmt.Errorf("mongodb: update password hash: %w", err)
	}
	if res.MatchedCount == 0 {
		return auth.ErrNotFound
	}
	return nil
}

// findOne runs filter, whose values are always plain strings or ObjectIDs
// (never documents built from client input), so no operator can be injected.
func (s *UserStore) findOne(ctx context.Context, filter bson.D) (*auth.User, error) {
	var doc userDoc
	err := s.coll.FindOne(ctx, filter).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, auth.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("mongodb: find user: %w", err)
	}
	return &auth.User{
		ID:           doc.ID.Hex(),
		Username:     doc.Username,
		Email:        doc.Email,
		UsernameKey:  doc.UsernameKey,
		EmailKey:     doc.EmailKey,
		PasswordHash: doc.PasswordHash,
		CreatedAt:    doc.CreatedAt.UTC(),
	}, nil
}
