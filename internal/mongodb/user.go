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
	Roles        []string      `bson:"roles"`
	Disabled     bool          `bson:"disabled"`
	// EmailVerified is absent from users created before it existed: false.
	EmailVerified bool   `bson:"email_verified"`
	CredStamp     string `bson:"cred_stamp"`
	MFAEnabled    bool   `bson:"mfa_enabled,omitempty"`
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
	if _, err := s.coll.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "roles", Value: 1}},
		Options: options.Index().SetName("roles"),
	}); err != nil {
		return nil, fmt.Errorf("mongodb: create index on users.roles: %w", err)
	}
	return s, nil
}

// Create inserts u and sets its ID. A taken username or email key is
// auth.ErrDuplicate.
func (s *UserStore) Create(ctx context.Context, u *auth.User) error {
	doc := userDoc{
		ID:            bson.NewObjectID(),
		Username:      u.Username,
		Email:         u.Email,
		UsernameKey:   u.UsernameKey,
		EmailKey:      u.EmailKey,
		PasswordHash:  u.PasswordHash,
		CreatedAt:     u.CreatedAt,
		Roles:         roleStrings(u.Roles),
		Disabled:      u.Disabled,
		EmailVerified: u.EmailVerified,
		CredStamp:     u.CredentialStamp,
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

// SetPassword replaces the password hash and credential stamp of the user
// with id while its hash is still from (atomic on MongoDB; the embedded
// database does not isolate updates).
func (s *UserStore) SetPassword(ctx context.Context, id string, from, hash []byte, stamp string) error {
	oid, err := bson.ObjectIDFromHex(id)
	if err != nil {
		return auth.ErrNotFound
	}
	res, err := s.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: oid}, {Key: "password_hash", Value: from}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "password_hash", Value: hash}, {Key: "cred_stamp", Value: stamp}}}})
	if err != nil {
		return fmt.Errorf("mongodb: update password hash: %w", err)
	}
	if res.MatchedCount == 0 {
		return auth.ErrNotFound
	}
	return nil
}

// SetEmailVerified marks the address of the user with id verified while its
// email key is still emailKey (atomic on MongoDB; the embedded database does
// not isolate updates).
func (s *UserStore) SetEmailVerified(ctx context.Context, id, emailKey string) error {
	oid, err := bson.ObjectIDFromHex(id)
	if err != nil {
		return auth.ErrNotFound
	}
	res, err := s.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: oid}, {Key: "email_key", Value: emailKey}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "email_verified", Value: true}}}})
	if err != nil {
		return fmt.Errorf("mongodb: update email verified: %w", err)
	}
	if res.MatchedCount == 0 {
		return auth.ErrNotFound
	}
	return nil
}

// SetEmail replaces the address of the user with id, and its key, verified,
// while its email key is still fromKey. The condition is atomic on MongoDB;
// the embedded database does not isolate updates. The unique index on
// email_key holds on both: of users racing for one key, one gets it and the
// others auth.ErrDuplicate.
func (s *UserStore) SetEmail(ctx context.Context, id, fromKey, email, key string) error {
	oid, err := bson.ObjectIDFromHex(id)
	if err != nil {
		return auth.ErrNotFound
	}
	res, err := s.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: oid}, {Key: "email_key", Value: fromKey}},
		bson.D{{Key: "$set", Value: bson.D{
			{Key: "email", Value: email}, {Key: "email_key", Value: key}, {Key: "email_verified", Value: true},
		}}})
	if mongo.IsDuplicateKeyError(err) {
		return auth.ErrDuplicate
	}
	if err != nil {
		// The embedded database enforces the unique index on an update too, but
		// reports the violation as an InternalError, not as E11000: a write the
		// server refused while another user holds key is that violation.
		var se mongo.ServerError
		if errors.As(err, &se) {
			if holder, ferr := s.ByEmailKey(ctx, key); ferr == nil && holder.ID != oid.Hex() {
				return auth.ErrDuplicate
			}
		}
		return fmt.Errorf("mongodb: update email: %w", err)
	}
	if res.MatchedCount == 0 {
		return auth.ErrNotFound
	}
	return nil
}

// Delete removes the user with id; its username and email keys are free again.
func (s *UserStore) Delete(ctx context.Context, id string) error {
	oid, err := bson.ObjectIDFromHex(id)
	if err != nil {
		return auth.ErrNotFound
	}
	res, err := s.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: oid}})
	if err != nil {
		return fmt.Errorf("mongodb: delete user: %w", err)
	}
	if res.DeletedCount == 0 {
		return auth.ErrNotFound
	}
	return nil
}

// SetRoles replaces the roles of the user with id.
func (s *UserStore) SetRoles(ctx context.Context, id string, roles []auth.Role) (*auth.User, error) {
	return s.update(ctx, id, bson.D{{Key: "roles", Value: roleStrings(roles)}})
}

// SetDisabled disables or enables the user with id.
func (s *UserStore) SetDisabled(ctx context.Context, id string, disabled bool) (*auth.User, error) {
	return s.update(ctx, id, bson.D{{Key: "disabled", Value: disabled}})
}

// SetMFAEnabled records whether the user has a second factor.
func (s *UserStore) SetMFAEnabled(ctx context.Context, id string, enabled bool) error {
	_, err := s.update(ctx, id, bson.D{{Key: "mfa_enabled", Value: enabled}})
	return err
}

// update sets fields of one user. A plain $set of whole values: concurrent
// updates of the same field end with one of the written values on either
// database; nothing here counts or compares.
func (s *UserStore) update(ctx context.Context, id string, set bson.D) (*auth.User, error) {
	oid, err := bson.ObjectIDFromHex(id)
	if err != nil {
		return nil, auth.ErrNotFound
	}
	var doc userDoc
	err = s.coll.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: oid}}, bson.D{{Key: "$set", Value: set}},
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, auth.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("mongodb: update user: %w", err)
	}
	return doc.user(), nil
}

// CountActiveWithRole counts enabled users holding r.
func (s *UserStore) CountActiveWithRole(ctx context.Context, r auth.Role) (int64, error) {
	n, err := s.coll.CountDocuments(ctx, bson.D{{Key: "roles", Value: string(r)}, {Key: "disabled", Value: bson.D{{Key: "$ne", Value: true}}}})
	if err != nil {
		return 0, fmt.Errorf("mongodb: count users: %w", err)
	}
	return n, nil
}

// List pages through users by _id (creation order). The prefix is matched
// with a range on the key fields, never a regular expression, so any input
// is taken literally.
func (s *UserStore) List(ctx context.Context, afterID, prefix string, limit int) ([]*auth.User, error) {
	filter := bson.D{}
	if afterID != "" {
		oid, err := bson.ObjectIDFromHex(afterID)
		if err != nil {
			return nil, auth.ErrNotFound
		}
		filter = append(filter, bson.E{Key: "_id", Value: bson.D{{Key: "$gt", Value: oid}}})
	}
	if prefix != "" {
		upper := prefix + "\U0010FFFF"
		filter = append(filter, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: "username_key", Value: bson.D{{Key: "$gte", Value: prefix}, {Key: "$lt", Value: upper}}}},
			bson.D{{Key: "email_key", Value: bson.D{{Key: "$gte", Value: prefix}, {Key: "$lt", Value: upper}}}},
		}})
	}
	return findAll(ctx, s.coll, filter, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(limit)), (*userDoc).user)
}

func roleStrings(rs []auth.Role) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r)
	}
	return out
}

func (d *userDoc) user() *auth.User {
	u := &auth.User{
		ID:           d.ID.Hex(),
		Username:     d.Username,
		Email:        d.Email,
		UsernameKey:  d.UsernameKey,
		EmailKey:     d.EmailKey,
		PasswordHash: d.PasswordHash,
		CreatedAt:    d.CreatedAt.UTC(),
		Disabled:     d.Disabled,
		Roles:        []auth.Role{auth.RoleUser},

		EmailVerified:   d.EmailVerified,
		CredentialStamp: d.CredStamp,
		MFAEnabled:      d.MFAEnabled,
	}
	for _, r := range d.Roles {
		if r := auth.Role(r); r != auth.RoleUser {
			u.Roles = append(u.Roles, r)
		}
	}
	return u
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
	return doc.user(), nil
}
