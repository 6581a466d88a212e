package mongodb

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readconcern"

	"github.com/authgql/server/internal/auth"
	"github.com/authgql/server/internal/keys"
)

// SigningKeyStore keeps the signing keys in the "signing_keys" collection,
// one document per key, its _id the key's Gen: a successor is claimed by
// inserting the next number, the one write that is atomic on every server
// we run on. Documents are never updated except to mark a key revoked.
type SigningKeyStore struct {
	coll *mongo.Collection
}

var _ keys.Store = (*SigningKeyStore)(nil)

type signingKeyDoc struct {
	Gen       int64  `bson:"_id"`
	KID       string `bson:"kid"`
	Alg       string `bson:"alg"`
	PublicJWK string `bson:"public_jwk"`
	// Private is sealed by package keys (AES-256-GCM): a dump cannot sign.
	Private   []byte     `bson:"private"`
	CreatedAt time.Time  `bson:"created_at"`
	SignFrom  time.Time  `bson:"sign_from"`
	RevokedAt *time.Time `bson:"revoked_at,omitempty"`
}

// NewSigningKeyStore returns a SigningKeyStore on db, creating its index if
// needed. Reads are majority reads: a key a failover could roll back is
// never used to sign.
func NewSigningKeyStore(ctx context.Context, db *mongo.Database) (*SigningKeyStore, error) {
	s := &SigningKeyStore{coll: db.Collection("signing_keys", options.Collection().SetReadConcern(readconcern.Majority()))}
	if _, err := s.coll.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "kid", Value: 1}},
		Options: options.Index().SetName("kid").SetUnique(true),
	}); err != nil {
		return nil, fmt.Errorf("mongodb: create index on signing_keys.kid: %w", err)
	}
	return s, nil
}

// All returns every key, by Gen. The collection holds a few keys a year.
func (s *SigningKeyStore) All(ctx context.Context) ([]keys.Stored, error) {
	return findAll(ctx, s.coll, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}), func(d *signingKeyDoc) keys.Stored {
		k := keys.Stored{
			Gen: d.Gen, KID: d.KID, Alg: keys.Algorithm(d.Alg), PublicJWK: []byte(d.PublicJWK), Private: d.Private,
			CreatedAt: d.CreatedAt.UTC(), SignFrom: d.SignFrom.UTC(),
		}
		if d.RevokedAt != nil {
			k.RevokedAt = d.RevokedAt.UTC()
		}
		return k
	})
}

// Insert adds k; auth.ErrDuplicate when its Gen or KID is taken.
func (s *SigningKeyStore) Insert(ctx context.Context, k keys.Stored) error {
	doc := signingKeyDoc{
		Gen: k.Gen, KID: k.KID, Alg: string(k.Alg), PublicJWK: string(k.PublicJWK), Private: k.Private,
		CreatedAt: millis(k.CreatedAt), SignFrom: millis(k.SignFrom),
	}
	if !k.RevokedAt.IsZero() {
		at := millis(k.RevokedAt)
		doc.RevokedAt = &at
	}
	_, err := s.coll.InsertOne(ctx, doc)
	if mongo.IsDuplicateKeyError(err) {
		return auth.ErrDuplicate
	}
	if err != nil {
		return fmt.Errorf("mongodb: insert signing key: %w", err)
	}
	return nil
}

// Revoke marks the key kid revoked at at; a key already revoked keeps its
// time. auth.ErrNotFound when there is no such key. Two revocations at once
// may both write (the embedded database does not isolate updates); the key
// is revoked either way, at one of their times.
func (s *SigningKeyStore) Revoke(ctx context.Context, kid string, at time.Time) error {
	res, err := s.coll.UpdateOne(ctx,
		bson.D{{Key: "kid", Value: kid}, {Key: "revoked_at", Value: bson.D{{Key: "$exists", Value: false}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "revoked_at", Value: millis(at)}}}})
	if err != nil {
		return fmt.Errorf("mongodb: revoke signing key: %w", err)
	}
	if res.MatchedCount > 0 {
		return nil
	}
	n, err := s.coll.CountDocuments(ctx, bson.D{{Key: "kid", Value: kid}})
	if err != nil {
		return fmt.Errorf("mongodb: find signing key: %w", err)
	}
	if n == 0 {
		return auth.ErrNotFound
	}
	return nil
}
