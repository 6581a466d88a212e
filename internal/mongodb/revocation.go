package mongodb

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readconcern"

	"github.com/authgql/server/internal/auth"
)

// RevocationLog keeps the revocation log in the "revocations" collection:
// one document per revocation, numbered by its _id. The number is stored as
// 19 zero-padded digits: strings sort like the numbers, and a lookup by a
// string _id is one the embedded database answers from an index (an int64
// _id it scans for).
type RevocationLog struct {
	coll *mongo.Collection
	// hint is the highest number this instance has seen: the newest number is
	// then found by point reads above it, not by a sorted scan.
	hint atomic.Int64
}

var _ auth.RevocationLog = (*RevocationLog)(nil)

type revocationDoc struct {
	ID             string     `bson:"_id"`
	SessionIDs     []string   `bson:"session_ids"`
	AccountDeleted bool       `bson:"account_deleted,omitempty"`
	At             time.Time  `bson:"at"`
	UserID         string     `bson:"user_id,omitempty"`
	Events         []eventDoc `bson:"events,omitempty"`
}

// eventDoc is a security event inside its entry, whose user it is.
type eventDoc struct {
	Type      string    `bson:"type"`
	At        time.Time `bson:"at"`
	SessionID string    `bson:"session_id,omitempty"`
	UserAgent string    `bson:"user_agent,omitempty"`
	IP        string    `bson:"ip,omitempty"`
}

// Bounds of what an event stores: the HTTP layer already cuts user agents to
// maxUserAgent; the log does not rely on it.
const (
	maxUserAgent = 256
	maxIP        = 64
)

// clip cuts s to at most n bytes of valid UTF-8.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

func newRevocationDoc(seq int64, e auth.RevocationEntry) (revocationDoc, error) {
	d := revocationDoc{ID: seqID(seq), SessionIDs: e.SessionIDs, AccountDeleted: e.AccountDeleted, At: e.At, UserID: e.UserID}
	for _, ev := range e.Events {
		if ev.UserID != "" && ev.UserID != e.UserID {
			return revocationDoc{}, errors.New("mongodb: insert revocation: an event of another user than its entry's")
		}
		d.Events = append(d.Events, eventDoc{Type: string(ev.Type), At: ev.At, SessionID: ev.SessionID,
			UserAgent: clip(ev.UserAgent, maxUserAgent), IP: clip(ev.IP, maxIP)})
	}
	return d, nil
}

func (d *revocationDoc) entry(seq int64) auth.RevocationEntry {
	e := auth.RevocationEntry{Seq: seq, SessionIDs: d.SessionIDs, AccountDeleted: d.AccountDeleted, At: d.At.UTC(), UserID: d.UserID}
	for _, ev := range d.Events {
		e.Events = append(e.Events, auth.SecurityEvent{Type: auth.SecurityEventType(ev.Type), At: ev.At.UTC(), UserID: d.UserID,
			SessionID: ev.SessionID, UserAgent: ev.UserAgent, IP: ev.IP})
	}
	return e
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
func (l *RevocationLog) Append(ctx context.Context, e auth.RevocationEntry) (int64, error) {
	doc, err := newRevocationDoc(0, e)
	if err != nil {
		return 0, err
	}
	for range appendTries {
		last, err := l.newest(ctx)
		if err != nil {
			return 0, err
		}
		doc.ID = seqID(last + 1)
		_, err = l.coll.InsertOne(ctx, doc)
		if err == nil {
			l.saw(last + 1)
			return last + 1, nil
		}
		if !mongo.IsDuplicateKeyError(err) {
			return 0, fmt.Errorf("mongodb: insert revocation: %w", err)
		}
	}
	return 0, errors.New("mongodb: insert revocation: too many concurrent writers")
}

// probes bounds the point reads newest makes above its hint before it falls
// back to one sorted read.
const probes = 16

func (l *RevocationLog) saw(seq int64) {
	for {
		h := l.hint.Load()
		if seq <= h || l.hint.CompareAndSwap(h, seq) {
			return
		}
	}
}

// newest returns the highest number in the log, 0 when it is empty. Numbers
// have no gaps above any number that exists (each is the one before plus
// one), so from a number seen it walks up by point reads.
func (l *RevocationLog) newest(ctx context.Context) (int64, error) {
	if h := l.hint.Load(); h > 0 {
		if ok, err := l.has(ctx, h); err != nil || ok {
			for i := int64(1); i <= probes && err == nil; i++ {
				var next bool
				if next, err = l.has(ctx, h+i); err == nil && !next {
					l.saw(h + i - 1)
					return h + i - 1, nil
				}
			}
			if err != nil {
				return 0, err
			}
		}
	}
	var doc revocationDoc
	err := l.coll.FindOne(ctx, bson.D{}, options.FindOne().
		SetSort(bson.D{{Key: "_id", Value: -1}}).SetProjection(bson.D{{Key: "_id", Value: 1}})).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("mongodb: find newest revocation: %w", err)
	}
	seq, err := parseSeq(doc.ID)
	if err == nil {
		l.saw(seq)
	}
	return seq, err
}

func seqID(seq int64) string { return fmt.Sprintf("%019d", seq) }

func parseSeq(id string) (int64, error) {
	seq, err := strconv.ParseInt(id, 10, 64)
	if err != nil || len(id) != 19 {
		return 0, fmt.Errorf("mongodb: revocation %q is not numbered", id)
	}
	return seq, nil
}

// Database is the database the log is kept in.
func (l *RevocationLog) Database() *mongo.Database { return l.coll.Database() }

func (l *RevocationLog) has(ctx context.Context, seq int64) (bool, error) {
	err := l.coll.FindOne(ctx, bson.D{{Key: "_id", Value: seqID(seq)}},
		options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("mongodb: find revocation: %w", err)
	}
	return true, nil
}

// Entry returns entry seq, if it exists: one point read by _id, which the
// embedded database answers from an index (a range it scans).
func (l *RevocationLog) Entry(ctx context.Context, seq int64) (auth.RevocationEntry, bool, error) {
	var doc revocationDoc
	err := l.coll.FindOne(ctx, bson.D{{Key: "_id", Value: seqID(seq)}}).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return auth.RevocationEntry{}, false, nil
	}
	if err != nil {
		return auth.RevocationEntry{}, false, fmt.Errorf("mongodb: find revocation: %w", err)
	}
	l.saw(seq)
	return doc.entry(seq), true, nil
}

// After returns up to limit entries numbered above seq, in order.
func (l *RevocationLog) After(ctx context.Context, seq int64, limit int) ([]auth.RevocationEntry, error) {
	docs, err := findAll(ctx, l.coll, bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: seqID(seq)}}}},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(limit)), func(d *revocationDoc) *revocationDoc { return d })
	if err != nil {
		return nil, err
	}
	out := make([]auth.RevocationEntry, len(docs))
	for i, d := range docs {
		seq, err := parseSeq(d.ID)
		if err != nil {
			return nil, err
		}
		out[i] = d.entry(seq)
		l.saw(seq)
	}
	return out, nil
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
		{Key: "_id", Value: bson.D{{Key: "$lt", Value: seqID(newest)}}},
	})
	if err != nil {
		return 0, fmt.Errorf("mongodb: prune revocations: %w", err)
	}
	return res.DeletedCount, nil
}
