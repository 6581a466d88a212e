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

// SessionStore keeps sessions in the "sessions" collection.
type SessionStore struct {
	coll    *mongo.Collection
	backend Backend
}

var _ auth.SessionStore = (*SessionStore)(nil)

type sessionDoc struct {
	ID            string     `bson:"_id"`
	UserID        string     `bson:"user_id"`
	TokenHash     string     `bson:"token_hash"`
	PrevHash      string     `bson:"prev_hash"`
	RotatedAt     time.Time  `bson:"rotated_at"`
	CreatedAt     time.Time  `bson:"created_at"`
	LastUsedAt    time.Time  `bson:"last_used_at"`
	ExpiresAt     time.Time  `bson:"expires_at"`
	UserAgent     string     `bson:"user_agent,omitempty"`
	IP            string     `bson:"ip,omitempty"`
	RevokedAt     *time.Time `bson:"revoked_at"` // null while active
	RevokedReason string     `bson:"revoked_reason,omitempty"`
	CredStamp     string     `bson:"cred_stamp"`
	// AAL and AMR are absent from sessions made before levels existed
	// (password sessions: auth reads 0 as level 1).
	AAL int      `bson:"aal,omitempty"`
	AMR []string `bson:"amr,omitempty"`
}

// expiredRetention is how long after expiry a TTL index (where the server
// has them) removes a session; auth sweeps ended sessions itself as well.
const expiredRetention = 24 * time.Hour

// NewSessionStore returns a SessionStore on db, creating its indexes if needed.
func NewSessionStore(ctx context.Context, db *mongo.Database, backend Backend) (*SessionStore, error) {
	s := &SessionStore{coll: db.Collection("sessions"), backend: backend}
	for _, field := range []string{"user_id", "revoked_at"} {
		if _, err := s.coll.Indexes().CreateOne(ctx, mongo.IndexModel{
			Keys:    bson.D{{Key: field, Value: 1}},
			Options: options.Index().SetName(field),
		}); err != nil {
			return nil, fmt.Errorf("mongodb: create index on sessions.%s: %w", field, err)
		}
	}
	_, err := s.coll.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "expires_at", Value: 1}},
		Options: options.Index().SetName("expires_at_ttl").SetExpireAfterSeconds(int32(expiredRetention / time.Second)),
	})
	if err != nil && !notImplemented(err) {
		return nil, fmt.Errorf("mongodb: create TTL index on sessions.expires_at: %w", err)
	}
	return s, nil
}

// notImplemented reports MongoDB's NotImplemented (238): FerretDB has no TTL
// indexes, and the periodic sweep covers for them.
func notImplemented(err error) bool {
	var se mongo.ServerError
	return errors.As(err, &se) && se.HasErrorCode(238)
}

func active(now time.Time) bson.D {
	return bson.D{{Key: "revoked_at", Value: nil}, {Key: "expires_at", Value: bson.D{{Key: "$gt", Value: now}}}}
}

// Create inserts a session.
func (s *SessionStore) Create(ctx context.Context, sess *auth.Session) error {
	doc := sessionDoc{
		ID: sess.ID, UserID: sess.UserID, TokenHash: sess.TokenHash, PrevHash: sess.PrevHash,
		RotatedAt: sess.RotatedAt, CreatedAt: sess.CreatedAt, LastUsedAt: sess.LastUsedAt, ExpiresAt: sess.ExpiresAt,
		UserAgent: sess.UserAgent, IP: sess.IP, CredStamp: sess.CredentialStamp, AAL: sess.AAL, AMR: sess.AMR,
	}
	if _, err := s.coll.InsertOne(ctx, doc); err != nil {
		return fmt.Errorf("mongodb: insert session: %w", err)
	}
	return nil
}

// ByID returns a session, active or not.
func (s *SessionStore) ByID(ctx context.Context, id string) (*auth.Session, error) {
	var doc sessionDoc
	err := s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, auth.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("mongodb: find session: %w", err)
	}
	return doc.session(), nil
}

// Rotate swaps the current token hash of an active session in one
// conditional update: of concurrent callers presenting the same token,
// exactly one matches on MongoDB (see auth.SessionStore for the embedded
// database).
func (s *SessionStore) Rotate(ctx context.Context, id string, r auth.Rotation) (*auth.Session, error) {
	filter := append(bson.D{{Key: "_id", Value: id}, {Key: "token_hash", Value: r.From}}, active(r.Now)...)
	if s.backend == Embedded {
		// Read by _id and check in Go; then the write goes by _id alone.
		sess, err := s.ByID(ctx, id)
		if errors.Is(err, auth.ErrNotFound) || err == nil && (sess.TokenHash != r.From || !sess.Active(r.Now)) {
			return nil, auth.ErrNotFound
		}
		if err != nil {
			return nil, err
		}
		filter = bson.D{{Key: "_id", Value: id}}
	}
	set := bson.D{
		{Key: "token_hash", Value: r.To},
		{Key: "prev_hash", Value: r.From},
		{Key: "rotated_at", Value: r.Now},
		{Key: "last_used_at", Value: r.Now},
		{Key: "expires_at", Value: r.ExpiresAt},
	}
	if r.Stamp != "" {
		set = append(set, bson.E{Key: "cred_stamp", Value: r.Stamp})
	}
	var doc sessionDoc
	err := s.coll.FindOneAndUpdate(ctx, filter, bson.D{{Key: "$set", Value: set}},
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, auth.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("mongodb: rotate session: %w", err)
	}
	return doc.session(), nil
}

// Elevate raises an active session's level and replaces its refresh token
// (the old one becomes the previous one). A raise is a plain $set of whole
// values: racing raises of one session end with one of them on either
// database, each at level 2.
func (s *SessionStore) Elevate(ctx context.Context, id string, aal int, amr []string, to string, now time.Time) (*auth.Session, error) {
	sess, err := s.ByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if !sess.Active(now) {
		return nil, auth.ErrNotFound
	}
	set := bson.D{
		{Key: "aal", Value: aal}, {Key: "amr", Value: amr},
		{Key: "token_hash", Value: to}, {Key: "prev_hash", Value: sess.TokenHash},
		{Key: "rotated_at", Value: now}, {Key: "last_used_at", Value: now},
	}
	var doc sessionDoc
	err = s.coll.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: set}},
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, auth.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("mongodb: elevate session: %w", err)
	}
	return doc.session(), nil
}

// Active lists the active sessions of a user, most recently used first.
func (s *SessionStore) Active(ctx context.Context, userID string, now time.Time) ([]*auth.Session, error) {
	filter := append(bson.D{{Key: "user_id", Value: userID}}, active(now)...)
	return findAll(ctx, s.coll, filter, options.Find().
		SetSort(bson.D{{Key: "last_used_at", Value: -1}, {Key: "_id", Value: 1}}).SetLimit(1000), (*sessionDoc).session)
}

// ForUser returns every session kept for userID, newest first.
func (s *SessionStore) ForUser(ctx context.Context, userID string) ([]*auth.Session, error) {
	return findAll(ctx, s.coll, bson.D{{Key: "user_id", Value: userID}}, options.Find().
		SetSort(bson.D{{Key: "created_at", Value: -1}, {Key: "_id", Value: 1}}).SetLimit(1000), (*sessionDoc).session)
}

// DeleteForUser removes every session of userID.
func (s *SessionStore) DeleteForUser(ctx context.Context, userID string) (int64, error) {
	res, err := s.coll.DeleteMany(ctx, bson.D{{Key: "user_id", Value: userID}})
	if err != nil {
		return 0, fmt.Errorf("mongodb: delete sessions: %w", err)
	}
	return res.DeletedCount, nil
}

// ActiveIDs returns the IDs of the unrevoked sessions of userID among ids
// (all when ids is nil), except except.
func (s *SessionStore) ActiveIDs(ctx context.Context, userID string, ids []string, except string) ([]string, error) {
	filter := bson.D{{Key: "user_id", Value: userID}, {Key: "revoked_at", Value: nil}}
	var idCond bson.D
	switch {
	case len(ids) == 1 && except == "":
		// The common case (logout): one session, read by _id (a filter of
		// _id alone is the one the embedded database answers from an index).
		sess, err := s.ByID(ctx, ids[0])
		if errors.Is(err, auth.ErrNotFound) || err == nil && (sess.UserID != userID || !sess.RevokedAt.IsZero()) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return []string{sess.ID}, nil
	case ids != nil:
		idCond = append(idCond, bson.E{Key: "$in", Value: ids})
	}
	if except != "" {
		idCond = append(idCond, bson.E{Key: "$ne", Value: except})
	}
	if idCond != nil {
		filter = append(filter, bson.E{Key: "_id", Value: idCond})
	}
	cur, err := s.coll.Find(ctx, filter, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("mongodb: find sessions to revoke: %w", err)
	}
	var found []struct {
		ID string `bson:"_id"`
	}
	if err := cur.All(ctx, &found); err != nil {
		return nil, fmt.Errorf("mongodb: read sessions to revoke: %w", err)
	}
	out := make([]string, len(found))
	for i, f := range found {
		out[i] = f.ID
	}
	return out, nil
}

// Revoke marks the sessions ids ended, except those already ended.
func (s *SessionStore) Revoke(ctx context.Context, ids []string, reason string, now time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	set := bson.D{{Key: "$set", Value: bson.D{{Key: "revoked_at", Value: now}, {Key: "revoked_reason", Value: reason}}}}
	var err error
	switch {
	case len(ids) == 1 && s.backend == Embedded: // by _id alone, as in Rotate
		sess, rerr := s.ByID(ctx, ids[0])
		if errors.Is(rerr, auth.ErrNotFound) || rerr == nil && !sess.RevokedAt.IsZero() {
			return nil
		}
		if rerr != nil {
			return rerr
		}
		_, err = s.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: ids[0]}}, set)
	case len(ids) == 1:
		_, err = s.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: ids[0]}, {Key: "revoked_at", Value: nil}}, set)
	default:
		_, err = s.coll.UpdateMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}, {Key: "revoked_at", Value: nil}}, set)
	}
	if err != nil {
		return fmt.Errorf("mongodb: revoke sessions: %w", err)
	}
	return nil
}

// DeleteEnded removes sessions that expired or were revoked before before.
func (s *SessionStore) DeleteEnded(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	for _, field := range []string{"expires_at", "revoked_at"} {
		res, err := s.coll.DeleteMany(ctx, bson.D{{Key: field, Value: bson.D{{Key: "$lt", Value: before}}}})
		if err != nil {
			return n, fmt.Errorf("mongodb: delete ended sessions: %w", err)
		}
		n += res.DeletedCount
	}
	return n, nil
}

func (d *sessionDoc) session() *auth.Session {
	s := &auth.Session{
		ID: d.ID, UserID: d.UserID, TokenHash: d.TokenHash, PrevHash: d.PrevHash,
		RotatedAt: d.RotatedAt.UTC(), CreatedAt: d.CreatedAt.UTC(), LastUsedAt: d.LastUsedAt.UTC(),
		ExpiresAt: d.ExpiresAt.UTC(), UserAgent: d.UserAgent, IP: d.IP, RevokedReason: d.RevokedReason,
		CredentialStamp: d.CredStamp, AAL: d.AAL, AMR: d.AMR,
	}
	if d.RevokedAt != nil {
		s.RevokedAt = d.RevokedAt.UTC()
	}
	return s
}
