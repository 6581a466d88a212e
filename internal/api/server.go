// Package api is the HTTP surface of the server: routes, middleware and the
// transport-level checks that run before GraphQL sees a request.
package api

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/authgql/server/internal/auth"
)

// TokenVerifier checks a presented access token (signature, claims and
// whether its session was revoked).
type TokenVerifier interface {
	VerifyAccessToken(raw string) (auth.Claims, error)
}

// Pinger reports whether the database answers.
type Pinger interface {
	Ping(ctx context.Context) error
}

// NewServer returns the server's whole HTTP handler. graphql serves /query;
// playground, when not nil, serves GET / and GET /playground/ (its assets). corsOrigins lists the browser
// origins allowed to call /query ("*" for any; wildcards like
// http://localhost:* allowed). maxBody bounds a request body in bytes.
func NewServer(logger *slog.Logger, tokens TokenVerifier, graphql http.Handler, db Pinger,
	playground http.Handler, corsOrigins []string, maxBody int64) http.Handler {
	mux := http.NewServeMux()
	addRoutes(mux, logger, tokens, graphql, db, playground, corsOrigins, maxBody)
	var h http.Handler = mux
	h = securityHeaders(h)
	h = recoverPanics(logger, h)
	h = logRequests(logger, h)
	h = withRequestID(h)
	return h
}
