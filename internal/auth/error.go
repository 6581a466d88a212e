package auth

import "errors"

// Code is the machine-readable kind of an Error. The GraphQL adapter turns it
// into errors[].extensions.code; clients branch on it, so values never change.
type Code string

const (
	CodeBadUserInput       Code = "BAD_USER_INPUT"
	CodeInvalidCredentials Code = "INVALID_CREDENTIALS"
	CodeUnauthenticated    Code = "UNAUTHENTICATED"
	CodeForbidden          Code = "FORBIDDEN"
	CodeInternal           Code = "INTERNAL_SERVER_ERROR"
	CodeInvalidRefresh     Code = "INVALID_REFRESH_TOKEN"
	CodeNotFound           Code = "NOT_FOUND"
	CodeRateLimited        Code = "RATE_LIMITED"
	CodeInvalidEmailToken  Code = "INVALID_EMAIL_TOKEN"
)

// Reasons carried in Error.Reason (extensions.reason).
const (
	ReasonTokenMissing   = "token_missing"
	ReasonTokenInvalid   = "token_invalid"
	ReasonTokenExpired   = "token_expired"
	ReasonUserNotFound   = "user_not_found"
	ReasonUserDisabled   = "user_disabled"
	ReasonSessionRevoked = "session_revoked"

	// Refresh failures (INVALID_REFRESH_TOKEN).
	ReasonExpired = "expired"
	ReasonRevoked = "revoked"
	ReasonReused  = "reused"
	ReasonUnknown = "unknown"
	ReasonMissing = "missing" // no token argument and no refresh cookie

	// Cookie mode: a request that would read the refresh cookie from an Origin
	// that is not allowed (FORBIDDEN).
	ReasonOriginNotAllowed = "origin_not_allowed"

	ReasonRequired        = "required"
	ReasonTooShort        = "too_short"
	ReasonTooLong         = "too_long"
	ReasonInvalidFormat   = "invalid_format"
	ReasonTooCommon       = "too_common"
	ReasonMatchesIdentity = "matches_identity"
	ReasonTaken           = "taken"
	ReasonIncorrect       = "incorrect"
	ReasonUnchanged       = "unchanged"

	// Rate limits (RATE_LIMITED).
	ReasonIP      = "ip"      // too many requests from this client IP
	ReasonAccount = "account" // too many failed logins for this account or identifier
	ReasonBusy    = "busy"    // every password-hashing slot is taken
	ReasonMFA     = "mfa"     // too many wrong second-factor codes for this account
)

// Error is the one error vocabulary of the domain. Message is always safe to
// show to a client; anything else (driver errors, causes) stays in the log.
type Error struct {
	Code    Code
	Message string
	Field   string // the input field at fault, for BAD_USER_INPUT
	Reason  string // a finer, stable cause
	// RetryAfter is the seconds to wait, for RATE_LIMITED.
	RetryAfter int
	// RequiredRole is the role a FORBIDDEN caller lacks.
	RequiredRole string
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// ErrorCode returns the Code of the first *Error in err's chain, or
// CodeInternal when there is none.
func ErrorCode(err error) Code {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return CodeInternal
}

// ErrorReason returns the Reason of the first *Error in err's chain, or
// "internal" when there is none.
func ErrorReason(err error) string {
	if e, ok := errors.AsType[*Error](err); ok && e.Reason != "" {
		return e.Reason
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return string(e.Code)
	}
	return "internal"
}

func badInput(field, reason, msg string) *Error {
	return &Error{Code: CodeBadUserInput, Field: field, Reason: reason, Message: msg}
}

// errInvalidCredentials is returned for every failed login, whatever the cause,
// so that the answer never tells whether an account exists.
var errInvalidCredentials = &Error{Code: CodeInvalidCredentials, Message: "invalid username or password"}

// ErrRefreshMissing answers refreshToken without a token when there is no
// refresh cookie to use either.
var ErrRefreshMissing = &Error{Code: CodeInvalidRefresh, Reason: ReasonMissing,
	Message: "no refresh token: pass token, or sign in again"}

// ErrOriginNotAllowed answers an operation that would use the refresh cookie
// from a request whose Origin is missing or not allowed: a page on another
// site must not be able to make the browser refresh for it.
var ErrOriginNotAllowed = &Error{Code: CodeForbidden, Reason: ReasonOriginNotAllowed,
	Message: "the refresh cookie is only used for requests from the server's own origin or an allowed front end"}

var errUserDisabled = &Error{Code: CodeForbidden, Reason: ReasonUserDisabled, Message: "this account is disabled"}

// ErrNotFound is returned by stores when no document matches.
var ErrNotFound = errors.New("not found")

// ErrDuplicate is returned by stores when a unique key is already taken.
var ErrDuplicate = errors.New("duplicate key")
