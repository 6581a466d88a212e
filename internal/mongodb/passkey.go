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

// PasskeyStore keeps WebAuthn credentials in the "passkeys" collection, one
// document per credential with the credential ID as its _id: a credential
// registered twice (to any account) is a duplicate key. Writes that concern
// one user's credential read it by _id, check the owner in Go and write by
// _id: the owner of a credential never changes, and the embedded database
// answers only an exact _id filter from an index.
type PasskeyStore struct {
	coll *mongo.Collection
}

var _ auth.PasskeyStore = (*PasskeyStore)(nil)

type passkeyDoc struct {
	ID                string     `bson:"_id"`
	UserID            string     `bson:"user_id"`
	Name              string     `bson:"name"`
	PublicKey         []byte     `bson:"public_key"`
	SignCount         int64      `bson:"sign_count"`
	Transports        []string   `bson:"transports,omitempty"`
	AAGUID            []byte     `bson:"aaguid,omitempty"`
	AttestationType   string     `bson:"attestation_type,omitempty"`
	AttestationFormat string     `bson:"attestation_format,omitempty"`
	Flags             int32      `bson:"flags"`
	CreatedAt         time.Time  `bson:"created_at"`
	LastUsedAt        *time.Time `bson:"last_used_at,omitempty"`
}

func (d *passkeyDoc) credential() *auth.PasskeyCredential {
	c := &auth.PasskeyCredential{
		ID: d.ID, UserID: d.UserID, Name: d.Name, PublicKey: d.PublicKey, SignCount: uint32(d.SignCount),
		Transports: d.Transports, AAGUID: d.AAGUID, AttestationType: d.AttestationType,
		AttestationFormat: d.AttestationFormat, Flags: byte(d.Flags), CreatedAt: d.CreatedAt.UTC(),
	}
	if d.LastUsedAt != nil {
		t := d.LastUsedAt.UTC()
		c.LastUsedAt = &t
	}
	return c
}

// NewPasskeyStore returns a PasskeyStore on db, creating its index if needed.
func NewPasskeyStore(ctx context.Context, db *mongo.Database) (*PasskeyStore, error) {
	s := &PasskeyStore{coll: db.Collection("passkeys")}
	if _, err := s.coll.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "user_id", Value: 1}},
		Options: options.Index().SetName("user_id"),
	}); err != nil {
		return nil, fmt.Errorf("mongodb: create index on passkeys.user_id: %w", err)
	}
	return s, nil
}

// Create inserts c; a credential ID that exists is auth.ErrDuplicate.
func (s *PasskeyStore) Create(ctx context.Context, c *auth.PasskeyCredential) error {
	doc := passkeyDoc{
		ID: c.ID, UserID: c.UserID, Name: c.Name, PublicKey: c.PublicKey, SignCount: int64(c.SignCount),
		Transports: c.Transports, AAGUID: c.AAGUID, AttestationType: c.AttestationType,
		AttestationFormat: c.AttestationFormat, Flags: int32(c.Flags), CreatedAt: millis(c.CreatedAt),
	}
	_, err := s.coll.InsertOne(ctx, doc)
	if mongo.IsDuplicateKeyError(err) {
		return auth.ErrDuplicate
	}
	if err != nil {
		return fmt.Errorf("mongodb: insert passkey: %w", err)
	}
	return nil
}

// ByID returns the credential id: one point read.
func (s *PasskeyStore) ByID(ctx context.Context, id string) (*auth.PasskeyCredential, error) {
	var doc passkeyDoc
	err := s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, auth.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("mongodb: find passkey: %w", err)
	}
	return doc.credential(), nil
}

// owned returns userID's credential id, or auth.ErrNotFound.
func (s *PasskeyStore) owned(ctx context.Context, userID, id string) (*auth.PasskeyCredential, error) {
	c, err := s.ByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if c.UserID != userID {
		return nil, auth.ErrNotFound
	}
	return c, nil
}

// ForUser lists userID's credentials, oldest first.
func (s *PasskeyStore) ForUser(ctx context.Context, userID string) ([]*auth.PasskeyCredential, error) {
	return findAll(ctx, s.coll, bson.D{{Key: "user_id", Value: userID}},
		options.Find().SetSort(bson.D{{Key: "created_at", Value: 1}, {Key: "_id", Value: 1}}).SetLimit(1000),
		(*passkeyDoc).credential)
}

// Rename sets the name of userID's credential id.
func (s *PasskeyStore) Rename(ctx context.Context, userID, id, name string) (*auth.PasskeyCredential, error) {
	c, err := s.owned(ctx, userID, id)
	if err != nil {
		return nil, err
	}
	res, err := s.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: bson.D{{Key: "name", Value: name}}}})
	if err != nil {
		return nil, fmt.Errorf("mongodb: rename passkey: %w", err)
	}
	if res.MatchedCount == 0 {
		return nil, auth.ErrNotFound
	}
	c.Name = name
	return c, nil
}

// Used records a verified assertion of id.
func (s *PasskeyStore) Used(ctx context.Context, id string, signCount uint32, at time.Time) error {
	res, err := s.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: bson.D{
		{Key: "sign_count", Value: int64(signCount)}, {Key: "last_used_at", Value: millis(at)},
	}}})
	if err != nil {
		return fmt.Errorf("mongodb: record passkey use: %w", err)
	}
	if res.MatchedCount == 0 {
		return auth.ErrNotFound
	}
	return nil
}

// Delete removes userID's credential id.
func (s *PasskeyStore) Delete(ctx context.Context, userID, id string) error {
	if _, err := s.owned(ctx, userID, id); err != nil {
		return err
	}
	res, err := s.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
	if err != nil {
		return fmt.Errorf("mongodb: delete passkey: %w", err)
	}
	if res.DeletedCount == 0 {
		return auth.ErrNotFound
	}
	return nil
}

// DeleteForUser removes every credential of userID.
func (s *PasskeyStore) DeleteForUser(ctx context.Context, userID string) (int64, error) {
	res, err := s.coll.DeleteMany(ctx, bson.D{{Key: "user_id", Value: userID}})
	if err != nil {
		return 0, fmt.Errorf("mongodb: delete passkeys: %w", err)
	}
	return res.DeletedCount, nil
}

// ChallengeStore keeps begun WebAuthn ceremonies in "webauthn_challenges",
// keyed by the challenge's hash. A challenge is used up by a marker (see
// MarkerStore): nothing here updates one.
type ChallengeStore struct {
	coll *mongo.Collection
}

var _ auth.ChallengeStore = (*ChallengeStore)(nil)

type challengeDoc struct {
	ID        string    `bson:"_id"`
	Ceremony  string    `bson:"ceremony"`
	UserID    string    `bson:"user_id,omitempty"`
	SessionID string    `bson:"session_id,omitempty"`
	Data      []byte    `bson:"data"`
	CreatedAt time.Time `bson:"created_at"`
	ExpiresAt time.Time `bson:"expires_at"`
}

// challengeRetention is how long after expiry a TTL index (where the server
// has them) removes a challenge: a late answer says "expired", not
// "unknown". auth sweeps them itself as well.
const challengeRetention = 24 * time.Hour

// NewChallengeStore returns a ChallengeStore on db, creating its indexes if
// needed (the TTL index where the server supports it).
func NewChallengeStore(ctx context.Context, db *mongo.Database) (*ChallengeStore, error) {
	s := &ChallengeStore{coll: db.Collection("webauthn_challenges")}
	if _, err := s.coll.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "user_id", Value: 1}},
		Options: options.Index().SetName("user_id"),
	}); err != nil {
		return nil, fmt.Errorf("mongodb: create index on webauthn_challenges.user_id: %w", err)
	}
	_, err := s.coll.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "expires_at", Value: 1}},
		Options: options.Index().SetName("expires_at_ttl").SetExpireAfterSeconds(int32(challengeRetention / time.Second)),
	})
	if err != nil && !notImplemented(err) {
		return nil, fmt.Errorf("mongodb: create TTL index on webauthn_challenges.expires_at: %w", err)
	}
	if err != nil { // no TTL indexes: a plain one for the sweep
		if _, err := s.coll.Indexes().CreateOne(ctx, mongo.IndexModel{
			Keys:    bson.D{{Key: "expires_at", Value: 1}},
			Options: options.Index().SetName("expires_at"),
		}); err != nil {
			return nil, fmt.Errorf("mongodb: create index on webauthn_challenges.expires_at: %w", err)
		}
	}
	return s, nil
}

// Create inserts c.
func (s *ChallengeStore) Create(ctx context.Context, c *auth.WebAuthnChallenge) error {
	_, err := s.coll.InsertOne(ctx, challengeDoc{
		ID: c.ID, Ceremony: c.Ceremony, UserID: c.UserID, SessionID: c.SessionID, Data: c.Data,
		CreatedAt: millis(c.CreatedAt), ExpiresAt: millis(c.ExpiresAt),
	})
	if mongo.IsDuplicateKeyError(err) {
		return auth.ErrDuplicate
	}
	if err != nil {
		return fmt.Errorf("mongodb: insert webauthn challenge: %w", err)
	}
	return nil
}

// ByID returns the challenge id, expired or not: one point read.
func (s *ChallengeStore) ByID(ctx context.Context, id string) (*auth.WebAuthnChallenge, error) {
	var d challengeDoc
	err := s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, auth.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("mongodb: find webauthn challenge: %w", err)
	}
	return &auth.WebAuthnChallenge{ID: d.ID, Ceremony: d.Ceremony, UserID: d.UserID, SessionID: d.SessionID, Data: d.Data,
		CreatedAt: d.CreatedAt.UTC(), ExpiresAt: d.ExpiresAt.UTC()}, nil
}

// DeleteExpired removes challenges that expired before before.
func (s *ChallengeStore) DeleteExpired(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.coll.DeleteMany(ctx, bson.D{{Key: "expires_at", Value: bson.D{{Key: "$lt", Value: before}}}})
	if err != nil {
		return 0, fmt.Errorf("mongodb: delete expired webauthn challenges: %w", err)
	}
	return res.DeletedCount, nil
}

// DeleteForUser removes the challenges begun by userID.
func (s *ChallengeStore) DeleteForUser(ctx context.Context, userID string) (int64, error) {
	res, err := s.coll.DeleteMany(ctx, bson.D{{Key: "user_id", Value: userID}})
	if err != nil {
		return 0, fmt.Errorf("mongodb: delete webauthn challenges: %w", err)
	}
	return res.DeletedCount, nil
}
