package auth

import (
	"context"
	"sync"
)

type claimsKey struct{}
type tokenErrorKey struct{}

// WithClaims returns a context carrying the verified claims of the caller.
func WithClaims(ctx context.Context, c Claims) context.Context {
	return context.WithValue(ctx, claimsKey{}, c)
}

// ClaimsFromContext returns the verified claims of the caller, if any.
func ClaimsFromContext(ctx context.Context) (Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(Claims)
	return c, ok
}

// WithTokenError records why a presented token was refused. The request goes on
// anonymously; only fields that require authentication report the reason.
func WithTokenError(ctx context.Context, err *Error) context.Context {
	return context.WithValue(ctx, tokenErrorKey{}, err)
}

// TokenErrorFromContext returns the reason a presented token was refused.
func TokenErrorFromContext(ctx context.Context) (*Error, bool) {
	e, ok := ctx.Value(tokenErrorKey{}).(*Error)
	return e, ok
}

// Authenticate returns the caller's claims, or an UNAUTHENTICATED error whose
// reason says why there are none. It is the single gate behind @auth.
func Authenticate(ctx context.Context) (Claims, error) {
	if c, ok := ClaimsFromContext(ctx); ok {
		return c, nil
	}
	if e, ok := TokenErrorFromContext(ctx); ok {
		return Claims{}, e
	}
	return Claims{}, &Error{Code: CodeUnauthenticated, Reason: ReasonTokenMissing, Message: "authentication required"}
}

type signInKey struct{}

// signIn records the user a request has signed in (register, login, refresh):
// fields of the payload's user belong to the caller even though the request
// carried no token for it.
type signIn struct {
	mu     sync.Mutex
	userID string
}

// WithSignIn prepares ctx to record a sign-in made during the request.
func WithSignIn(ctx context.Context) context.Context {
	return context.WithValue(ctx, signInKey{}, &signIn{})
}

func markSignedIn(ctx context.Context, userID string) {
	if s, ok := ctx.Value(signInKey{}).(*signIn); ok {
		s.mu.Lock()
		s.userID = userID
		s.mu.Unlock()
	}
}

func signedIn(ctx context.Context) string {
	if s, ok := ctx.Value(signInKey{}).(*signIn); ok {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.userID
	}
	return ""
}

type anonymous struct{}

// Anonymous returns ctx without the caller's identity: no claims and no
// token error (a WebSocket's identity comes from its connection_init only,
// never from its upgrade request).
func Anonymous(ctx context.Context) context.Context {
	return context.WithValue(context.WithValue(ctx, claimsKey{}, anonymous{}), tokenErrorKey{}, anonymous{})
}
