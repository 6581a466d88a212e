package verify

import (
	"errors"
	"net/http"
	"strings"
)

// Handler verifies the bearer token of each request and passes the claims to
// next in the request context (ClaimsFrom). A request without a token (no
// Authorization header, an empty one, or "Bearer " alone, as logged-out
// clients send) passes anonymous. A token that fails, or an Authorization
// header that is not one bearer token, is answered 401 (see Require): a client
// holding an expired token learns to refresh instead of seeing anonymous data.
func (v *Verifier) Handler(next http.Handler) http.Handler {
	return v.middleware(next, false)
}

// Require is Handler that also refuses a request without a token: 401 with
// WWW-Authenticate: Bearer (error="invalid_token" when a token was presented)
// and the JSON body {"error":"invalid_token","reason":"token_missing"}, where
// reason is token_missing, token_invalid or token_expired.
func (v *Verifier) Require(next http.Handler) http.Handler {
	return v.middleware(next, true)
}

func (v *Verifier) middleware(next http.Handler, required bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, err := bearer(r.Header.Values("Authorization"))
		if err == nil {
			var c Claims
			if c, err = v.Verify(r.Context(), raw); err == nil {
				next.ServeHTTP(w, r.WithContext(WithClaims(r.Context(), c)))
				return
			}
		}
		if errors.Is(err, ErrTokenMissing) && !required {
			next.ServeHTTP(w, r)
			return
		}
		unauthorized(w, ReasonOf(err))
	})
}

// bearer extracts the token of the Authorization header: ErrTokenMissing when
// there is none (or only "Bearer "), ErrTokenInvalid when the header is not
// exactly one bearer token.
func bearer(values []string) (string, error) {
	switch {
	case len(values) == 0, len(values) == 1 && strings.TrimSpace(values[0]) == "":
		return "", ErrTokenMissing
	case len(values) > 1, len(values[0]) > MaxTokenBytes+len("Bearer "):
		return "", ErrTokenInvalid
	}
	scheme, raw, _ := strings.Cut(strings.TrimSpace(values[0]), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", ErrTokenInvalid
	}
	if raw = strings.TrimSpace(raw); raw == "" {
		return "", ErrTokenMissing
	}
	return raw, nil
}

// unauthorized answers 401 as RFC 6750 describes, with the reason as JSON.
// A request without a token gets no error code in the challenge (RFC 6750
// section 3.1); the body has the same shape for every reason.
func unauthorized(w http.ResponseWriter, reason string) {
	h := w.Header()
	if reason == ReasonTokenMissing {
		h.Set("WWW-Authenticate", `Bearer`)
	} else {
		h.Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	}
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusUnauthorized)
	// reason is one of three constants: no encoding needed.
	_, _ = w.Write([]byte(`{"error":"invalid_token","reason":"` + reason + `"}` + "\n"))
}
