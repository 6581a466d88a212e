package federation

import "errors"

// Code is what a failed flow tells the app (APP_URL/auth/callback?error=CODE).
type Code string

const (
	AccessDenied  Code = "access_denied"  // the user refused consent at the provider
	InvalidState  Code = "invalid_state"  // unknown, used, tampered, or another provider's state
	Expired       Code = "expired"        // the flow outlived its ten minutes
	ProviderError Code = "provider_error" // discovery, exchange or ID-token validation failed
)

// Error is a failed flow. Err, when set, is the cause for the log: it never
// holds a code, token or ID token.
type Error struct {
	Code Code
	Err  error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return "federation: " + string(e.Code) + ": " + e.Err.Error()
	}
	return "federation: " + string(e.Code)
}

func (e *Error) Unwrap() error { return e.Err }

// CodeOf returns the Code of err, or ProviderError for any other error.
func CodeOf(err error) Code {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return ProviderError
}

// ErrUnknownProvider is returned for a provider name that is not configured.
var ErrUnknownProvider = errors.New("federation: unknown provider")

func fail(code Code, err error) error { return &Error{Code: code, Err: err} }
