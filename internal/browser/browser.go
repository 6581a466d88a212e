// Package browser carries the refresh-token cookie between the HTTP layer and
// the resolvers. gqlgen does not give resolvers the ResponseWriter, so the
// HTTP layer puts a Session in the request's context: resolvers ask it
// whether the caller is a browser on an allowed origin, read the cookie it
// sent and set or clear the cookie of the answer, without touching net/http.
package browser

import (
	"context"
	"time"
)

// Session is one request's view of the refresh cookie. It exists only when
// cookie mode (AUTH_COOKIE=on) is on.
type Session struct {
	allowed bool
	token   string
	write   func(token string, expires time.Time)
}

// New returns the Session of a request. allowed says that its Origin is the
// server's own or an allowed front end; token is the refresh cookie's value
// ("" when the browser sent none); write sets the cookie of the answer (an
// empty token and a zero time clear it).
func New(allowed bool, token string, write func(token string, expires time.Time)) *Session {
	return &Session{allowed: allowed, token: token, write: write}
}

// FromAllowedOrigin reports whether the request came from a browser page on an
// allowed origin: the only requests whose refresh token travels in the cookie
// and the only ones that may read it (cross-site request forgery).
func (s *Session) FromAllowedOrigin() bool { return s != nil && s.allowed }

// Cookie returns the refresh token the browser sent in the cookie.
func (s *Session) Cookie() (string, bool) {
	if s == nil || s.token == "" {
		return "", false
	}
	return s.token, true
}

// Set puts a refresh token valid until expires in the answer's cookie. It
// reports false, and sets nothing, for a request that is not from an allowed
// browser origin: its token goes in the response body.
func (s *Session) Set(token string, expires time.Time) bool {
	if !s.FromAllowedOrigin() || token == "" {
		return false
	}
	s.write(token, expires)
	return true
}

// Clear expires the cookie in the browser (any request in cookie mode).
func (s *Session) Clear() {
	if s != nil {
		s.write("", time.Time{})
	}
}

type key struct{}

// With returns ctx carrying s.
func With(ctx context.Context, s *Session) context.Context {
	return context.WithValue(ctx, key{}, s)
}

// From returns the request's Session, or nil when cookie mode is off.
func From(ctx context.Context) *Session {
	s, _ := ctx.Value(key{}).(*Session)
	return s
}
