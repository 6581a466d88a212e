package verify

import (
	"context"
	"slices"
	"time"
)

// Claims are the verified contents of an access token of the authgql server:
// the same fields as the server's own claims. New fields may be added; none
// will be removed or change meaning.
type Claims struct {
	UserID        string   // sub
	SessionID     string   // sid: the server's session; this package cannot see it end
	Roles         []string // roles, as of issuance (a change shows after the next refresh)
	EmailVerified bool     // email_verified, as of issuance
	// AAL is the session's assurance level (aal: 1 a password, 2 a second
	// factor or a verified passkey) and AMR the methods (amr) that reached it;
	// MFA says the account has a second factor. Gate sensitive operations
	// with RequireAAL or AAL >= 2.
	AAL       int      // aal (1 for tokens issued before the claim existed)
	AMR       []string // amr
	MFA       bool     // mfa
	TokenID   string   // jti
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// HasRole reports whether the token grants role.
func (c Claims) HasRole(role string) bool { return slices.Contains(c.Roles, role) }

type claimsKey struct{}

// WithClaims returns a copy of ctx carrying c (the middleware uses it; tests
// of handlers can too).
func WithClaims(ctx context.Context, c Claims) context.Context {
	return context.WithValue(ctx, claimsKey{}, c)
}

// ClaimsFrom returns the claims the middleware verified for this request;
// false for an anonymous request.
func ClaimsFrom(ctx context.Context) (Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(Claims)
	return c, ok
}
