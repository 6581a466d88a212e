// Package api is the HTTP surface of the server: routes, middleware and the
// transport-level checks that run before GraphQL sees a request.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/authgql/server/internal/auth"
	"github.com/authgql/server/internal/metrics"
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
	// PublicURL is the server's public base URL: its origin is the server's
	// own, allowed to use the refresh cookie like CORSOrigins.
	PublicURL string
	Cookie    CookieOptions
	// Tracing makes a span of each request (OpenTelemetry is set up).
	Tracing bool
}

// Deps are what the HTTP surface serves.
type Deps struct {
	Logger  *slog.Logger
	Tokens  TokenVerifier
	GraphQL http.Handler // serves /query
	// Playground, when not nil, serves GET / and GET /playground/ (its assets).
	Playground http.Handler
	DB         Pinger // for /readyz
	// Keys and Discovery are published under /.well-known/ (Keys may be nil:
	// an empty key set, as in HS256 mode).
	Keys      KeySet
	Discovery Discovery
	Options   Options
	Now       func() time.Time // nil: time.Now
	// Metrics, when not nil, counts requests (and /readyz's outcome).
	Metrics *metrics.Metrics
	// Federation, when not nil, serves sign-in with identity providers at
	// /auth/{name} and /auth/{name}/callback.
	Federation *Federation
}

// NewServer returns the server's whole HTTP handler.
func NewServer(d Deps) http.Handler {
	mux := http.NewServeMux()
	addRoutes(mux, d)
	var h http.Handler = mux
	h = securityHeaders(d.Options.HSTS, h)
	h = recoverPanics(d.Logger, h)
	h = logRequests(d.Logger, h)
	h = measure(d.Metrics, h)
	h = withRequestID(h)
	if d.Options.Tracing {
		h = traceRequests(d.Options.TrustedProxies, h)
	}
	return h
}
