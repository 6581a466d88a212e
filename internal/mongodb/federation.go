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
	"github.com/authgql/server/internal/federation"
)

// FlowStore keeps started sign-ins with an identity provider in the
// "federation_flows" collection, one document per flow with the SHA-256 of
// its state as _id: read by _id only, never updated. Single use is the
// marker claimed when the flow finishes, not a field here.
type FlowStore struct {
	coll *mongo.Collection
}

var _ federation.FlowStore = (*FlowStore)(nil)

type flowDoc struct {
	Key       string    `bson:"_id"`
	Provider  string    `bson:"provider"`
	Verifier  string    `bson:"verifier"`
	Nonce     string    `bson:"nonce"`
	Redirect  string    `bson:"redirect,omitempty"`
	Binding   string    `bson:"binding"`
	LinkUser  string    `bson:"link_user,omitempty"`
	LinkSess  string    `bson:"link_session,omitempty"`
	ExpiresAt time.Time `bson:"expires_at"`
}

// NewFlowStore returns a FlowStore on db, creating its TTL index where the
// server has them (federation checks expiry itself in any case).
func NewFlowStore(ctx context.Context, db *mongo.Database) (*FlowStore, error) {
	s := &FlowStore{coll: db.Collection("federation_flows")}
	_, err := s.coll.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "expires_at", Value: 1}},
		Options: options.Index().SetName("expires_at_ttl").SetExpireAfterSeconds(0),
	})
	if err != nil && !notImplemented(err) {
		return nil, fmt.Errorf("mongodb: create TTL index on federation_flows.expires_at: %w", err)
	}
	return s, nil
}

// Save inserts f under key.
func (s *FlowStore) Save(ctx context.Context, key string, f federation.Flow) error {
	_, err := s.coll.InsertOne(ctx, flowDoc{
		Key: key, Provider: f.Provider, Verifier: f.Verifier, Nonce: f.Nonce, Redirect: f.Redirect,
		Binding: f.Binding, LinkUser: f.LinkUserID, LinkSess: f.LinkSessionID, ExpiresAt: millis(f.ExpiresAt),
	})
	if mongo.IsDuplicateKeyError(err) {
		return auth.ErrDuplicate
	}
	if err != nil {
		return fmt.Errorf("mongodb: insert federation flow: %w", err)
	}
	return nil
}

// Load returns the flow under key: one point read by _id.
func (s *FlowStore) Load(ctx context.Context, key string) (federation.Flow, error) {
	var doc flowDoc
	err := s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: key}}).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return federation.Flow{}, auth.ErrNotFound
	}
	if err != nil {
		return federation.Flow{}, fmt.Errorf("mongodb: find federation flow: %w", err)
	}
	return federation.Flow{
		Provider: doc.Provider, Verifier: doc.Verifier, Nonce: doc.Nonce, Redirect: doc.Redirect,
		Binding: doc.Binding, LinkUserID: doc.LinkUser, LinkSessionID: doc.LinkSess, ExpiresAt: doc.ExpiresAt.UTC(),
	}, nil
}

// DeleteBefore removes flows that expired before before, for servers without
// TTL indexes.
func (s *FlowStore) DeleteBefore(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.coll.DeleteMany(ctx, bson.D{{Key: "expires_at", Value: bson.D{{Key: "$lt", Value: before}}}})
	if err != nil {
		return 0, fmt.Errorf("mongodb: delete expired federation flows: %w", err)
	}
	return res.DeletedCount, nil
}
