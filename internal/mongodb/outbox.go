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
	"github.com/authgql/server/internal/outbox"
)

// OutboxStore keeps undelivered mails in the "mail_outbox" collection. Every
// write after Enqueue goes by _id alone and sets whole values: which worker
// may write is decided by a claim (a marker), not here.
type OutboxStore struct {
	coll *mongo.Collection
}

var _ outbox.Store = (*OutboxStore)(nil)

type mailDoc struct {
	ID        string    `bson:"_id"`
	Kind      string    `bson:"kind"`
	To        string    `bson:"to"`
	UserID    string    `bson:"user_id"`
	Username  string    `bson:"username"`
	Link      string    `bson:"link,omitempty"` // removed once the mail is given up
	NewEmail  string    `bson:"new_email"`
	Provider  string    `bson:"provider,omitempty"`
	ExpiresIn int64     `bson:"expires_in"` // nanoseconds
	CreatedAt time.Time `bson:"created_at"`
	Attempts  int       `bson:"attempts"`
	NextAt    time.Time `bson:"next_at"`
	LastError string    `bson:"last_error"`
	// Failed is always written, so that Due asks for failed: false, an
	// equality the {failed, next_at} index answers directly.
	Failed bool `bson:"failed"`
}

// NewOutboxStore returns an OutboxStore on db, creating its indexes if needed.
func NewOutboxStore(ctx context.Context, db *mongo.Database) (*OutboxStore, error) {
	s := &OutboxStore{coll: db.Collection("mail_outbox")}
	// One at a time: CreateMany on existing indexes can break FerretDB's connection.
	for _, idx := range []mongo.IndexModel{
		{
			Keys:    bson.D{{Key: "failed", Value: 1}, {Key: "next_at", Value: 1}},
			Options: options.Index().SetName("failed_next_at"),
		},
		{Keys: bson.D{{Key: "user_id", Value: 1}}, Options: options.Index().SetName("user_id")},
	} {
		if _, err := s.coll.Indexes().CreateOne(ctx, idx); err != nil {
			return nil, fmt.Errorf("mongodb: create index on mail_outbox: %w", err)
		}
	}
	return s, nil
}

// millis is t as a BSON date holds it, so that what is read back equals what
// was written.
func millis(t time.Time) time.Time { return t.Truncate(time.Millisecond).UTC() }

// Enqueue inserts m, due at once unless m.NextAt says otherwise, and sets
// m.ID when it is empty.
func (s *OutboxStore) Enqueue(ctx context.Context, m *auth.Mail) error {
	id := m.ID
	if id == "" {
		id = bson.NewObjectID().Hex()
	}
	next := m.NextAt
	if next.IsZero() {
		next = m.CreatedAt
	}
	doc := mailDoc{
		ID: id, Kind: string(m.Kind), To: m.To, UserID: m.UserID, Username: m.Username, Link: m.Link,
		NewEmail: m.NewEmail, Provider: m.Provider, ExpiresIn: int64(m.ExpiresIn), CreatedAt: millis(m.CreatedAt),
		Attempts: m.Attempts, NextAt: millis(next), LastError: m.LastError, Failed: m.Failed,
	}
	_, err := s.coll.InsertOne(ctx, doc)
	if mongo.IsDuplicateKeyError(err) {
		return auth.ErrDuplicate
	}
	if err != nil {
		return fmt.Errorf("mongodb: insert mail: %w", err)
	}
	m.ID, m.NextAt = id, next
	return nil
}

// Due returns up to limit mails not given up whose NextAt is at or before
// now, oldest NextAt first (then by _id).
func (s *OutboxStore) Due(ctx context.Context, now time.Time, limit int) ([]*auth.Mail, error) {
	filter := bson.D{{Key: "failed", Value: false}, {Key: "next_at", Value: bson.D{{Key: "$lte", Value: now}}}}
	return findAll(ctx, s.coll, filter, options.Find().
		SetSort(bson.D{{Key: "next_at", Value: 1}, {Key: "_id", Value: 1}}).SetLimit(int64(limit)), (*mailDoc).mail)
}

// Pending counts the mails waiting for delivery (not given up), for the
// outbox depth metric.
func (s *OutboxStore) Pending(ctx context.Context) (int64, error) {
	return s.coll.CountDocuments(ctx, bson.D{{Key: "failed", Value: false}})
}

// ByID returns the mail with id, or auth.ErrNotFound (a point read by _id).
func (s *OutboxStore) ByID(ctx context.Context, id string) (*auth.Mail, error) {
	var doc mailDoc
	err := s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, auth.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("mongodb: find mail: %w", err)
	}
	return doc.mail(), nil
}

// Prepare writes what preparing a reset request filled in. It never creates
// a mail: one deleted meanwhile is auth.ErrNotFound.
func (s *OutboxStore) Prepare(ctx context.Context, m *auth.Mail) error {
	return s.update(ctx, m.ID, bson.D{{Key: "$set", Value: bson.D{
		{Key: "kind", Value: string(m.Kind)},
		{Key: "to", Value: m.To},
		{Key: "user_id", Value: m.UserID},
		{Key: "username", Value: m.Username},
		{Key: "link", Value: m.Link},
		{Key: "new_email", Value: m.NewEmail},
		{Key: "expires_in", Value: int64(m.ExpiresIn)},
	}}})
}

// Retry records a failed attempt; a mail deleted meanwhile is auth.ErrNotFound.
func (s *OutboxStore) Retry(ctx context.Context, id string, attempts int, next time.Time, lastErr string) error {
	return s.update(ctx, id, bson.D{{Key: "$set", Value: bson.D{
		{Key: "attempts", Value: attempts},
		{Key: "next_at", Value: millis(next)},
		{Key: "last_error", Value: lastErr},
	}}})
}

// GiveUp marks the mail failed and removes its link, which holds a live
// token; the rest stays for operators until DeleteFailed. A mail deleted
// meanwhile is auth.ErrNotFound.
func (s *OutboxStore) GiveUp(ctx context.Context, id string, attempts int, lastErr string) error {
	return s.update(ctx, id, bson.D{
		{Key: "$set", Value: bson.D{
			{Key: "failed", Value: true},
			{Key: "attempts", Value: attempts},
			{Key: "last_error", Value: lastErr},
		}},
		{Key: "$unset", Value: bson.D{{Key: "link", Value: ""}}},
	})
}

// update applies upd to the mail id, by _id alone (the filter the embedded
// database answers from an index).
func (s *OutboxStore) update(ctx context.Context, id string, upd bson.D) error {
	res, err := s.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, upd)
	if err != nil {
		return fmt.Errorf("mongodb: update mail: %w", err)
	}
	if res.MatchedCount == 0 {
		return auth.ErrNotFound
	}
	return nil
}

// Delete removes a delivered or dropped mail; one already gone is no error.
func (s *OutboxStore) Delete(ctx context.Context, id string) error {
	if _, err := s.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
		return fmt.Errorf("mongodb: delete mail: %w", err)
	}
	return nil
}

// DeleteFailed removes given-up mails created before before.
func (s *OutboxStore) DeleteFailed(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.coll.DeleteMany(ctx, bson.D{{Key: "failed", Value: true}, {Key: "created_at", Value: bson.D{{Key: "$lt", Value: before}}}})
	if err != nil {
		return 0, fmt.Errorf("mongodb: delete failed mails: %w", err)
	}
	return res.DeletedCount, nil
}

// DeleteForUser removes every mail of userID, given up or not: none of them
// is to be delivered any more, and a given-up one still names the address.
// An empty userID removes nothing (reset requests have no user).
func (s *OutboxStore) DeleteForUser(ctx context.Context, userID string) (int64, error) {
	if userID == "" {
		return 0, nil
	}
	res, err := s.coll.DeleteMany(ctx, bson.D{{Key: "user_id", Value: userID}})
	if err != nil {
		return 0, fmt.Errorf("mongodb: delete mails of user: %w", err)
	}
	return res.DeletedCount, nil
}

func (d *mailDoc) mail() *auth.Mail {
	return &auth.Mail{
		ID: d.ID, Kind: auth.MailKind(d.Kind), To: d.To, UserID: d.UserID, Username: d.Username, Link: d.Link,
		NewEmail: d.NewEmail, Provider: d.Provider, ExpiresIn: time.Duration(d.ExpiresIn), CreatedAt: d.CreatedAt.UTC(),
		Attempts: d.Attempts, NextAt: d.NextAt.UTC(), LastError: d.LastError, Failed: d.Failed,
	}
}
