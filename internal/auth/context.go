package auth

import "context"

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
