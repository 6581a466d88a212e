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
	// RevokedReason says why: logout, revoked, reused, disabled,
	// password_changed, password_reset or account_deleted.
	RevokedReason string
	// AAL is the session's assurance level (1: a password or nothing more;
	// 2: a second factor or a passkey with user verification) and AMR the
	// methods used. A refresh keeps them; verifyMfa raises them.
	AAL int
	AMR []string
	// CredentialStamp is the user's credential stamp when the session began
	// (or the password was last changed through it); a session whose stamp is
	// no longer the user's is dead.
	CredentialStamp string
}

// Active reports whether the session can still be used at now.
func (s *Session) Active(now time.Time) bool {
	return s.RevokedAt.IsZero() && now.Before(s.ExpiresAt)
}

// RevokedAccountDeleted is the reason of sessions that ended with their
// account: their tokens are refused as user_not_found.
const RevokedAccountDeleted = "account_deleted"

// Rotation is a replacement of a session's refresh token.
type Rotation struct {
	From, To string // hashes of the presented and the new token
	// Stamp, when not empty, becomes the session's credential stamp.
	Stamp          string
	Now, ExpiresAt time.Time
}

// SessionStore keeps sessions.
type SessionStore interface {
	Create(ctx context.Context, s *Session) error
	ByID(ctx context.Context, id string) (*Session, error)
	// Rotate replaces the current token hash r.From with r.To on an active
	// session and returns the updated session; ErrNotFound when the session
	// does not exist, is not active, or r.From is not its current hash. It is
	// one conditional update: atomic on MongoDB. The embedded database does
	// not isolate updates, so there concurrent rotations of one token may all
	// succeed — harmless, because the new token is derived from the presented
	// one and every winner writes, and returns, the same token.
	Rotate(ctx context.Context, id string, r Rotation) (*Session, error)
	Active(ctx context.Context, userID string, now time.Time) ([]*Session, error)
	// ActiveIDs returns the IDs of the unrevoked sessions of userID among ids
	// (all of them when ids is nil), except except.
	ActiveIDs(ctx context.Context, userID string, ids []string, except string) ([]string, error)
	// Revoke marks sessions ended (those already ended keep their reason).
	Revoke(ctx context.Context, ids []string, reason string, now time.Time) error
	// ForUser returns every session kept for userID, ended ones too.
	ForUser(ctx context.Context, userID string) ([]*Session, error)
	// DeleteForUser removes every session of userID.
	DeleteForUser(ctx context.Context, userID string) (int64, error)
	// DeleteEnded removes sessions that expired, or were revoked, before before.
	DeleteEnded(ctx context.Context, before time.Time) (int64, error)
	// Elevate sets an active session's level to aal with amr (raised, or
	// kept as they are) and replaces its refresh token (hash to; the
	// replaced one becomes the previous one, as in a rotation); ErrNotFound
	// when the session is not active.
	Elevate(ctx context.Context, id string, aal int, amr []string, to string, now time.Time) (*Session, error)
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
