package api

import (
	"errors"
	"net/http"
	"net/netip"
	"strings"

	"github.com/authgql/server/internal/auth"
)

// identify records who is calling (the client, see client) and reads the
// Authorization header, into one context. No header (or an empty one, as
// Apollo's auth link sends when logged out) is anonymous. A bad or expired
// token is anonymous too, with the reason kept for @auth: it never blocks
// public operations such as login.
func identify(trusted []netip.Prefix, tokens TokenVerifier, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := auth.WithSignIn(auth.WithClient(r.Context(), client(r, trusted)))
		values := r.Header.Values("Authorization")
		if len(values) == 0 || len(values) == 1 && strings.TrimSpace(values[0]) == "" {
			next.ServeHTTP(w, r.WithContext(ctx))
			return
		}
		raw, ok := bearer(values)
		switch {
		case ok && raw == "":
			// "Bearer " with nothing after it: a logged-out client.
		case !ok:
			ctx = auth.WithTokenError(ctx, auth.ErrTokenInvalid)
		default:
			claims, err := tokens.VerifyAccessToken(raw)
			if err != nil {
				ae, isAuth := errors.AsType[*auth.Error](err)
				if !isAuth {
					ae = auth.ErrTokenInvalid
				}
				ctx = auth.WithTokenError(ctx, ae)
			} else {
				ctx = auth.WithClaims(ctx, claims)
			}
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// bearer extracts the token of a single "Bearer <token>" header value.
func bearer(values []string) (string, bool) {
	if len(values) != 1 {
		return "", false
	}
	scheme, rest, _ := strings.Cut(strings.TrimSpace(values[0]), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(rest), true
}
