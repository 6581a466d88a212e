package mongodb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readconcern"

	"github.com/authgql/server/internal/auth"
)

// RevocationLog keeps the revocation log in the "revocations" collection:
// one document per revocation, numbered by its _id.
type RevocationLog struct {
	coll *mongo.Collection
}

var _ auth.RevocationLog = (*RevocationLog)(nil)

type revocationDoc struct {
	Seq        int64     `bson:"_id"`
	SessionIDs []string  `bson:"session_ids"`
	At         time.Time `bson:"at"`
}

// NewRevocationLog returns a RevocationLog on db. Reads are majority reads:
// on a replica set an entry that a failover could roll back is never seen,
// so a number once read is never reused.
func NewRevocationLog(ctx context.Context, db *mongo.Database) (*RevocationLog, error) {
	l := &RevocationLog{coll: db.Collection("revocations", options.Collection().SetReadConcern(readconcern.Majority()))}
	if _, err := l.coll.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "at", Value: 1}},
		Options: options.Index().SetName("at"),
	}); err != nil {
		return nil, fmt.Errorf("mongodb: create index on revocations.at: %w", err)
	}
	return l, nil
}

// appendTries bounds the races for a number one Append may lose: each loss
// means another entry was written meanwhile.
const appendTries = 50

// Append inserts an entry numbered one above the newest, retrying on a
// duplicate number: only one of concurrent writers gets each number.
func (l *RevocationLog) Append(ctx context.Context, ids []string, at time.Time) (int64, error) {
	for range appendTries {
		last, err := l.newest(ctx)
		if err != nil {
			return 0, err
		}
		doc := revocationDoc{Seq: last + 1, SessionIDs: ids, At: at}
		_, err = l.coll.InsertOne(ctx, doc)
		if err == nil {
			return doc.Seq, nil
		}
		if !mongo.IsDuplicateKeyError(err) {
			return 0, fmt.Errorf("mongodb: insert revocation: %w", err)
		}
	}
	return 0, errors.New("mongodb: insert revocation: too many concurrent writers")
}

// newest returns the highest number in the log, 0 when it is empty.
func (l *RevocationLog) newest(ctx context.Context) (int64, error) {
	var doc revocationDoc
	err := l.coll.FindOne(ctx, bson.D{}, options.FindOne().
		SetSort(bson.D{{Key: "_id", Value: -1}}).SetProjection(bson.D{{Key: "_id", Value: 1}})).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("mongodb: find newest revocation: %w", err)
	}
	return doc.Seq, nil
}

// Has reports whether entry seq exists: one point read by _id, cheap even
// where ranges are not indexed.
func (l *RevocationLog) Has(ctx context.Context, seq int64) (bool, error) {
	err := l.coll.FindOne(ctx, bson.D{{Key: "_id", Value: seq}},
		options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("mongodb: find revocation: %w", err)
	}
	return true, nil
}

// After returns up to limit entries numbered above seq, in order.
func (l *RevocationLog) After(ctx context.Context, seq int64, limit int) ([]auth.RevocationEntry, error) {
	return findAll(ctx, l.coll, bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: seq}}}},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(limit)), (*revocationDoc).entry)
}

// Prune removes entries written before before, except the newest: numbers
// must keep growing, or readers past them would skip the next entries.
func (l *RevocationLog) Prune(ctx context.Context, before time.Time) (int64, error) {
	newest, err := l.newest(ctx)
	if err != nil {
		return 0, err
	}
	res, err := l.coll.DeleteMany(ctx, bson.D{
		{Key: "at", Value: bson.D{{Key: "$lt", Value: before}}},
		{Key: "_id", Value: bson.D{{Key: "$lt", Value: newest}}},
	})
	if err != nil {
		return 0, fmt.Errorf("mongodb: prune revocations: %w", err)
	}
	return res.DeletedCount, nil
}

func (d *revocationDoc) entry() auth.RevocationEntry {
	return auth.RevocationEntry{Seq: d.Seq, SessionIDs: d.SessionIDs, At: d.At.UTC()}
}
