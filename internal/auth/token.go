package auth

import "time"

// Claims are the verified contents of an access token that the rest of the
// server relies on.
type Claims struct {
	UserID        string
	SessionID     string
	Roles         []string
	EmailVerified bool // as of issuance
	// AAL is the session's authenticator assurance level (1 or 2) and AMR
	// the methods that reached it ("pwd", "otp", "recovery", "webauthn").
	AAL int
	AMR []string
	// MFA says the account had a second factor when the token was issued:
	// at AAL 1 such a session is confined (see ConfineMFA).
	MFA       bool
	TokenID   string
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// Subject is what an access token says about its holder.
type Subject struct {
	UserID, SessionID string
	Roles             []string
	EmailVerified     bool
	AAL               int
	AMR               []string
	MFA               bool
}

// AccessToken is a signed access token and when it stops being accepted.
type AccessToken struct {
	Value     string
	ExpiresAt time.Time
	TTL       time.Duration
}

// TokenIssuer signs and verifies access tokens.
type TokenIssuer interface {
	Issue(s Subject) (AccessToken, error)
	Verify(raw string) (Claims, error)
	TTL() time.Duration
	// Leeway is how long past its expiry a token is still accepted.
	Leeway() time.Duration
}

// Token verification errors, shared by every verifier.
var (
	ErrTokenInvalid   = &Error{Code: CodeUnauthenticated, Reason: ReasonTokenInvalid, Message: "access token is invalid"}
	ErrTokenExpired   = &Error{Code: CodeUnauthenticated, Reason: ReasonTokenExpired, Message: "access token has expired"}
	ErrSessionRevoked = &Error{Code: CodeUnauthenticated, Reason: ReasonSessionRevoked, Message: "the session of this access token has ended"}
)
