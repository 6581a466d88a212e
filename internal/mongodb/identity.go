package mongodb

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/authgql/server/internal/auth"
)

// IdentityStore keeps the accounts' identities at providers in the
// "identities" collection. The _id is derived from (provider, subject), so
// that the one atomic write of either database, an insert against a unique
// key, settles concurrent first sign-ins of one identity, and a sign-in
// reads it by _id; a unique (provider, subject) index says the same to
// anyone reading the collection.
type IdentityStore struct {
	coll *mongo.Collection
}

var _ auth.IdentityStore = (*IdentityStore)(nil)

type identityDoc struct {
	ID       string    `bson:"_id"`
	UserID   string    `bson:"user_id"`
	Provider string    `bson:"provider"`
	Subject  string    `bson:"subject"`
	Email    string    `bson:"email,omitempty"`
	LinkedAt time.Time `bson:"linked_at"`
}

// identityID is the _id of (provider, subject): opaque, fixed length.
func identityID(provider, subject string) string {
	sum := sha256.Sum256([]byte(provider + "\x00" + subject))
	return hex.EncodeToString(sum[:16])
}

// NewIdentityStore returns an IdentityStore on db, creating its indexes if
// needed.
func NewIdentityStore(ctx context.Context, db *mongo.Database) (*IdentityStore, error) {
	s := &IdentityStore{coll: db.Collection("identities")}
	// One at a time: CreateMany on existing indexes can break FerretDB's connection.
	for _, m := range []mongo.IndexModel{
		{Keys: bson.D{{Key: "provider", Value: 1}, {Key: "subject", Value: 1}},
			Options: options.Index().SetUnique(true).SetName("provider_subject_unique")},
		{Keys: bson.D{{Key: "user_id", Value: 1}}, Options: options.Index().SetName("user_id")},
	} {
		if _, err := s.coll.Indexes().CreateOne(ctx, m); err != nil {
			return nil, fmt.Errorf("mongodb: create index on identities: %w", err)
		}
	}
	return s, nil
}

// Create inserts i and sets its ID; a (provider, subject) that exists is
// auth.ErrDuplicate.
func (s *IdentityStore) Create(ctx context.Context, i *auth.Identity) error {
	doc := identityDoc{ID: identityID(i.Provider, i.Subject), UserID: i.UserID, Provider: i.Provider,
		Subject: i.Subject, Email: i.Email, LinkedAt: millis(i.LinkedAt)}
	_, err := s.coll.InsertOne(ctx, doc)
	if mongo.IsDuplicateKeyError(err) {
		return auth.ErrDuplicate
	}
	if err != nil {
		return fmt.Errorf("mongodb: insert identity: %w", err)
	}
	i.ID = doc.ID
	return nil
}

// ByProviderSubject returns the identity of (provider, subject): a point
// read by _id.
func (s *IdentityStore) ByProviderSubject(ctx context.Context, provider, subject string) (*auth.Identity, error) {
	var doc identityDoc
	err := s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: identityID(provider, subject)}}).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, auth.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("mongodb: find identity: %w", err)
	}
	if doc.Provider != provider || doc.Subject != subject {
		return nil, auth.ErrNotFound
	}
	return doc.identity(), nil
}

// ForUser lists userID's identities, oldest first.
func (s *IdentityStore) ForUser(ctx context.Context, userID string) ([]*auth.Identity, error) {
	cur, err := s.coll.Find(ctx, bson.D{{Key: "user_id", Value: userID}},
		options.Find().SetSort(bson.D{{Key: "linked_at", Value: 1}, {Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("mongodb: find identities: %w", err)
	}
	var docs []identityDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongodb: read identities: %w", err)
	}
	out := make([]*auth.Identity, len(docs))
	for i := range docs {
		out[i] = docs[i].identity()
	}
	return out, nil
}

// Delete removes identity id of userID.
func (s *IdentityStore) Delete(ctx context.Context, userID, id string) error {
	res, err := s.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "user_id", Value: userID}})
	if err != nil {
		return fmt.Errorf("mongodb: delete identity: %w", err)
	}
	if res.DeletedCount == 0 {
		return auth.ErrNotFound
	}
	return nil
}

// DeleteForUser removes every identity of userID.
func (s *IdentityStore) DeleteForUser(ctx context.Context, userID string) (int64, error) {
	res, err := s.coll.DeleteMany(ctx, bson.D{{Key: "user_id", Value: userID}})
	if err != nil {
		return 0, fmt.Errorf("mongodb: delete identities of user: %w", err)
	}
	return res.DeletedCount, nil
}

func (d *identityDoc) identity() *auth.Identity {
	return &auth.Identity{ID: d.ID, UserID: d.UserID, Provider: d.Provider, Subject: d.Subject, Email: d.Email,
		LinkedAt: d.LinkedAt.UTC()}
}

// OneTimeCodeStore keeps the one-time codes of federated sign-ins, link
// tickets and link codes in the "federation_codes" collection, by the SHA-256 of the code
// as _id; never updated (single use is a marker).
type OneTimeCodeStore struct {
	coll *mongo.Collection
}

var _ auth.OneTimeCodeStore = (*OneTimeCodeStore)(nil)

type oneTimeDoc struct {
	Hash      string    `bson:"_id"`
	Kind      string    `bson:"kind"`
	UserID    string    `bson:"user_id"`
	SessionID string    `bson:"session_id,omitempty"`
	Provider  string    `bson:"provider,omitempty"`
	Subject   string    `bson:"subject,omitempty"`
	Email     string    `bson:"email,omitempty"`
	AMR       []string  `bson:"amr,omitempty"`
	CreatedAt time.Time `bson:"created_at"`
	ExpiresAt time.Time `bson:"expires_at"`
}

// NewOneTimeCodeStore returns a OneTimeCodeStore on db, creating its
// indexes (the TTL one where the server has them; the service sweeps
// expired codes in any case).
func NewOneTimeCodeStore(ctx context.Context, db *mongo.Database) (*OneTimeCodeStore, error) {
	s := &OneTimeCodeStore{coll: db.Collection("federation_codes")}
	if _, err := s.coll.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys: bson.D{{Key: "user_id", Value: 1}}, Options: options.Index().SetName("user_id"),
	}); err != nil {
		return nil, fmt.Errorf("mongodb: create index on federation_codes.user_id: %w", err)
	}
	// Kept a day past expiry, so that a late exchange says "expired".
	_, err := s.coll.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "expires_at", Value: 1}},
		Options: options.Index().SetName("expires_at_ttl").SetExpireAfterSeconds(24 * 60 * 60),
	})
	if err != nil && !notImplemented(err) {
		return nil, fmt.Errorf("mongodb: create TTL index on federation_codes.expires_at: %w", err)
	}
	return s, nil
}

// Create inserts c.
func (s *OneTimeCodeStore) Create(ctx context.Context, c *auth.OneTimeCode) error {
	_, err := s.coll.InsertOne(ctx, oneTimeDoc{Hash: c.Hash, Kind: string(c.Kind), UserID: c.UserID,
		SessionID: c.SessionID, Provider: c.Provider, Subject: c.Subject, Email: c.Email, AMR: c.AMR,
		CreatedAt: millis(c.CreatedAt),
		ExpiresAt: millis(c.ExpiresAt)})
	if mongo.IsDuplicateKeyError(err) {
		return auth.ErrDuplicate
	}
	if err != nil {
		return fmt.Errorf("mongodb: insert one-time code: %w", err)
	}
	return nil
}

// ByHash returns the code with hash: a point read by _id.
func (s *OneTimeCodeStore) ByHash(ctx context.Context, hash string) (*auth.OneTimeCode, error) {
	var d oneTimeDoc
	err := s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: hash}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, auth.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("mongodb: find one-time code: %w", err)
	}
	return &auth.OneTimeCode{Hash: d.Hash, Kind: auth.OneTimeKind(d.Kind), UserID: d.UserID, SessionID: d.SessionID,
		Provider: d.Provider, Subject: d.Subject, Email: d.Email, AMR: d.AMR, CreatedAt: d.CreatedAt.UTC(),
		ExpiresAt: d.ExpiresAt.UTC()}, nil
}

// DeleteForUser removes every code of userID.
func (s *OneTimeCodeStore) DeleteForUser(ctx context.Context, userID string) (int64, error) {
	res, err := s.coll.DeleteMany(ctx, bson.D{{Key: "user_id", Value: userID}})
	if err != nil {
		return 0, fmt.Errorf("mongodb: delete one-time codes of user: %w", err)
	}
	return res.DeletedCount, nil
}

// DeleteExpired removes codes that expired before before.
func (s *OneTimeCodeStore) DeleteExpired(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.coll.DeleteMany(ctx, bson.D{{Key: "expires_at", Value: bson.D{{Key: "$lt", Value: before}}}})
	if err != nil {
		return 0, fmt.Errorf("mongodb: delete expired one-time codes: %w", err)
	}
	return res.DeletedCount, nil
}
