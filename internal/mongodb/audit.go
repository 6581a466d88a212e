package mongodb

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/authgql/server/internal/auth"
)

// AuditStore keeps audit events about accounts in "audit_events", for the
// users themselves (exportMyData); the full audit log is the server's log.
type AuditStore struct {
	coll *mongo.Collection
}

var _ auth.AuditStore = (*AuditStore)(nil)

type auditDoc struct {
	ID      bson.ObjectID `bson:"_id"`
	UserID  string        `bson:"user_id"`
	Event   string        `bson:"event"`
	Outcome string        `bson:"outcome,omitempty"`
	IP      string        `bson:"ip,omitempty"`
	At      time.Time     `bson:"at"`
}

// NewAuditStore returns an AuditStore on db.
func NewAuditStore(ctx context.Context, db *mongo.Database) (*AuditStore, error) {
	s := &AuditStore{coll: db.Collection("audit_events")}
	for _, idx := range []mongo.IndexModel{
		{Keys: bson.D{{Key: "user_id", Value: 1}, {Key: "at", Value: -1}}, Options: options.Index().SetName("user_at")},
		{Keys: bson.D{{Key: "at", Value: 1}}, Options: options.Index().SetName("at")},
	} {
		if _, err := s.coll.Indexes().CreateOne(ctx, idx); err != nil {
			return nil, fmt.Errorf("mongodb: create index on audit_events: %w", err)
		}
	}
	return s, nil
}

// Add stores e.
func (s *AuditStore) Add(ctx context.Context, e auth.AuditEvent) error {
	_, err := s.coll.InsertOne(ctx, auditDoc{ID: bson.NewObjectID(), UserID: e.UserID, Event: e.Event,
		Outcome: e.Outcome, IP: e.IP, At: e.At.UTC().Truncate(time.Millisecond)})
	if err != nil {
		return fmt.Errorf("mongodb: insert audit event: %w", err)
	}
	return nil
}

// Recent returns the newest events of userID, newest first.
func (s *AuditStore) Recent(ctx context.Context, userID string, limit int) ([]auth.AuditEvent, error) {
	return findAll(ctx, s.coll, bson.D{{Key: "user_id", Value: userID}},
		options.Find().SetSort(bson.D{{Key: "at", Value: -1}, {Key: "_id", Value: -1}}).SetLimit(int64(limit)),
		func(d *auditDoc) auth.AuditEvent {
			return auth.AuditEvent{UserID: d.UserID, Event: d.Event, Outcome: d.Outcome, IP: d.IP, At: d.At.UTC()}
		})
}

// DeleteForUser removes the events of userID.
func (s *AuditStore) DeleteForUser(ctx context.Context, userID string) (int64, error) {
	res, err := s.coll.DeleteMany(ctx, bson.D{{Key: "user_id", Value: userID}})
	if err != nil {
		return 0, fmt.Errorf("mongodb: delete audit events: %w", err)
	}
	return res.DeletedCount, nil
}

// DeleteBefore removes events older than before.
func (s *AuditStore) DeleteBefore(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.coll.DeleteMany(ctx, bson.D{{Key: "at", Value: bson.D{{Key: "$lt", Value: before}}}})
	if err != nil {
		return 0, fmt.Errorf("mongodb: sweep audit events: %w", err)
	}
	return res.DeletedCount, nil
}
