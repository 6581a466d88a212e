// Package api is the HTTP surface of the server: routes, middleware and the
// transport-level checks that run before GraphQL sees a request.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"

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

// Options are the HTTP-level settings of the server.
type Options struct {
	// CORSOrigins lists the browser origins allowed to call /query ("*" for
	// any; one wildcard per origin, like http://localhost:*).
	CORSOrigins []string
	// MaxBody bounds a request body in bytes.
	MaxBody int64
	// TrustedProxies are the peers whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// HSTS adds Strict-Transport-Security (set it when serving TLS).
	HSTS bool
}

// NewServer returns the server's whole HTTP handler. graphql serves /query;
// playground, when not nil, serves GET / and GET /playground/ (its assets).
func NewServer(logger *slog.Logger, tokens TokenVerifier, graphql http.Handler, db Pinger,
	playground http.Handler, opts Options) http.Handler {
	mux := http.NewServeMux()
	addRoutes(mux, logger, tokens, graphql, db, playground, opts)
	var h http.Handler = mux
	h = securityHeaders(opts.HSTS, h)
	h = recoverPanics(logger, h)
	h = logRequests(logger, h)
	h = withRequestID(h)
	return h
}
