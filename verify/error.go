package verify

import "errors"

// Reasons carried in Error.Reason and in the JSON body of a 401. They are the
// server's own reasons (extensions.reason of its GraphQL errors).
const (
	ReasonTokenMissing = "token_missing"
	ReasonTokenInvalid = "token_invalid"
	ReasonTokenExpired = "token_expired"
)

// Error is why a token was refused. Verify wraps one of ErrTokenMissing,
// ErrTokenInvalid and ErrTokenExpired with the cause; test with errors.Is.
type Error struct {
	Reason string // one of the Reason constants
}

func (e *Error) Error() string { return "verify: " + e.Reason }

// The errors of Verify (and of the middleware, as the reason of a 401).
var (
	ErrTokenMissing = &Error{Reason: ReasonTokenMissing}
	ErrTokenInvalid = &Error{Reason: ReasonTokenInvalid}
	ErrTokenExpired = &Error{Reason: ReasonTokenExpired}
)

// Causes of ErrTokenInvalid: wrapped for logs and tests, not part of the API.
var (
	errMalformed     = errors.New("malformed token")
	errKeyHeader     = errors.New("header carries or points at key material")
	errCritHeader    = errors.New("crit header")
	errType          = errors.New(`typ is not "at+jwt"`)
	errNoKID         = errors.New("no kid")
	errUnknownKID    = errors.New("unknown kid")
	errAlgMismatch   = errors.New("alg differs from the key's own alg")
	errKeyUse        = errors.New("key is not for signatures")
	errKeyType       = errors.New("key does not fit its alg")
	errMissingClaims = errors.New("sub, sid, jti or exp missing")
)

// ReasonOf is the Reason of the first *Error in err's chain, or
// ReasonTokenInvalid when there is none.
func ReasonOf(err error) string {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Reason
	}
	return ReasonTokenInvalid
}
