package auth

import (
	"context"
	"time"
)

// Session is one signed-in device or browser: the chain of refresh tokens
// that began with one login, and the access tokens issued from it (they carry
// its ID as "sid").
type Session struct {
	ID     string
	UserID string
	// TokenHash is the SHA-256 of the current refresh token; the token itself
	// is never stored.
	TokenHash string
	// PrevHash is the hash of the token that the last rotation replaced, and
	// RotatedAt when: within the reuse interval it is still honoured.
	PrevHash   string
	RotatedAt  time.Time
	CreatedAt  time.Time
	LastUsedAt time.Time
	ExpiresAt  time.Time
	UserAgent  string
	IP         string
	RevokedAt  time.Time // zero while the session is active
	// RevokedReason says why: logout, revoked, reused or password_changed.
	RevokedReason string
}

// Active reports whether the session can still be used at now.
func (s *Session) Active(now time.Time) bool {
	return s.RevokedAt.IsZero() && now.Before(s.ExpiresAt)
}

// Revocation is a session that ended, for the in-memory revocation set.
type Revocation struct {
	SessionID string
	At        time.Time
}

// SessionStore keeps sessions. Every change is a single-document (or
// single-filter) atomic write: no transactions are needed.
type SessionStore interface {
	Create(ctx context.Context, s *Session) error
	ByID(ctx context.Context, id string) (*Session, error)
	// Rotate replaces the current token hash from → to on an active session,
	// atomically, and returns the updated session; ErrNotFound when the
	// session does not exist, is not active, or from is not its current hash.
	Rotate(ctx context.Context, id, from, to string, now, expiresAt time.Time) (*Session, error)
	Active(ctx context.Context, userID string, now time.Time) ([]*Session, error)
	// Revoke ends the active sessions of userID among ids (all of them when ids
	// is nil), except except, and returns the IDs it ended.
	Revoke(ctx context.Context, userID string, ids []string, except, reason string, now time.Time) ([]string, error)
	RevokedSince(ctx context.Context, since time.Time) ([]Revocation, error)
	// DeleteEnded removes sessions that expired, or were revoked, before before.
	DeleteEnded(ctx context.Context, before time.Time) (int64, error)
}

// Client describes the device a request comes from, recorded on sessions.
type Client struct {
	UserAgent string
	IP        string
}

type clientKey struct{}

// WithClient returns a context carrying the requesting client.
func WithClient(ctx context.Context, c Client) context.Context {
	return context.WithValue(ctx, clientKey{}, c)
}

// ClientFromContext returns the requesting client, if known.
func ClientFromContext(ctx context.Context) Client {
	c, _ := ctx.Value(clientKey{}).(Client)
	return c
}
