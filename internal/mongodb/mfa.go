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

// MFAStore keeps authenticator apps in the "totp" collection (one document
// per user and state, _id "<user>/pending" or "<user>/confirmed", the secret
// sealed by the domain) and recovery code hashes in "recovery_codes" (one
// document per user, _id the user). Every read and write is by _id, which
// the embedded database answers from its index. Nothing here makes a code
// single use: the domain does that with markers.
type MFAStore struct {
	apps, codes *mongo.Collection
}

var _ auth.MFAStore = (*MFAStore)(nil)

type totpDoc struct {
	ID        string    `bson:"_id"`
	UserID    string    `bson:"user_id"`
	Secret    []byte    `bson:"secret"` // sealed
	Confirmed bool      `bson:"confirmed"`
	CreatedAt time.Time `bson:"created_at"`
}

type recoveryDoc struct {
	UserID    string    `bson:"_id"`
	Hashes    []string  `bson:"hashes"`
	CreatedAt time.Time `bson:"created_at"`
}

// NewMFAStore returns an MFAStore on db. It needs no index beyond _id.
func NewMFAStore(db *mongo.Database) *MFAStore {
	return &MFAStore{apps: db.Collection("totp"), codes: db.Collection("recovery_codes")}
}

func totpID(userID string, confirmed bool) string {
	if confirmed {
		return userID + "/confirmed"
	}
	return userID + "/pending"
}

// TOTP returns userID's app in that state, or auth.ErrNotFound.
func (s *MFAStore) TOTP(ctx context.Context, userID string, confirmed bool) (*auth.TOTP, error) {
	var doc totpDoc
	err := s.apps.FindOne(ctx, bson.D{{Key: "_id", Value: totpID(userID, confirmed)}}).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, auth.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("mongodb: find totp: %w", err)
	}
	return &auth.TOTP{UserID: doc.UserID, Sealed: doc.Secret, Confirmed: doc.Confirmed, CreatedAt: doc.CreatedAt.UTC()}, nil
}

// PutTOTP stores t, replacing the app of its user in the same state.
func (s *MFAStore) PutTOTP(ctx context.Context, t *auth.TOTP) error {
	id := totpID(t.UserID, t.Confirmed)
	doc := totpDoc{ID: id, UserID: t.UserID, Secret: t.Sealed, Confirmed: t.Confirmed, CreatedAt: millis(t.CreatedAt)}
	if _, err := s.apps.ReplaceOne(ctx, bson.D{{Key: "_id", Value: id}}, doc, options.Replace().SetUpsert(true)); err != nil {
		return fmt.Errorf("mongodb: store totp: %w", err)
	}
	return nil
}

// DeleteTOTP removes userID's app in that state, if any.
func (s *MFAStore) DeleteTOTP(ctx context.Context, userID string, confirmed bool) error {
	if _, err := s.apps.DeleteOne(ctx, bson.D{{Key: "_id", Value: totpID(userID, confirmed)}}); err != nil {
		return fmt.Errorf("mongodb: delete totp: %w", err)
	}
	return nil
}

// SetRecoveryCodes replaces userID's recovery code hashes; none removes them.
func (s *MFAStore) SetRecoveryCodes(ctx context.Context, userID string, hashes []string, at time.Time) error {
	filter := bson.D{{Key: "_id", Value: userID}}
	if len(hashes) == 0 {
		if _, err := s.codes.DeleteOne(ctx, filter); err != nil {
			return fmt.Errorf("mongodb: delete recovery codes: %w", err)
		}
		return nil
	}
	doc := recoveryDoc{UserID: userID, Hashes: hashes, CreatedAt: millis(at)}
	if _, err := s.codes.ReplaceOne(ctx, filter, doc, options.Replace().SetUpsert(true)); err != nil {
		return fmt.Errorf("mongodb: store recovery codes: %w", err)
	}
	return nil
}

// RecoveryCodes returns userID's recovery code hashes (nil: none).
func (s *MFAStore) RecoveryCodes(ctx context.Context, userID string) ([]string, error) {
	var doc recoveryDoc
	err := s.codes.FindOne(ctx, bson.D{{Key: "_id", Value: userID}}).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("mongodb: find recovery codes: %w", err)
	}
	return doc.Hashes, nil
}

// DeleteForUser removes userID's apps and recovery codes.
func (s *MFAStore) DeleteForUser(ctx context.Context, userID string) error {
	var errs []error
	for _, confirmed := range []bool{false, true} {
		errs = append(errs, s.DeleteTOTP(ctx, userID, confirmed))
	}
	errs = append(errs, s.SetRecoveryCodes(ctx, userID, nil, time.Time{}))
	return errors.Join(errs...)
}
