package graph

import (
	"context"

	"github.com/authgql/server/graph/model"
	"github.com/authgql/server/internal/auth"
	"github.com/authgql/server/internal/browser"
)

// deliver answers an operation that starts or rotates a session. In cookie
// mode a browser on an allowed origin gets the refresh token in its HttpOnly
// cookie and null in the body; every other caller gets it in the body.
func deliver(ctx context.Context, res *auth.Result) *model.AuthPayload {
	p := authPayload(res)
	if browser.From(ctx).Set(res.RefreshToken, res.RefreshExpiresAt) {
		p.RefreshToken = nil
	}
	return p
}

// refreshFromCookie is refreshToken without a token: the refresh cookie, read
// only for a request from an allowed origin (cross-site request forgery).
func (r *mutationResolver) refreshFromCookie(ctx context.Context) (*model.AuthPayload, error) {
	s := browser.From(ctx)
	if s == nil {
		return nil, auth.ErrRefreshMissing // cookie mode is off: there is no cookie to use
	}
	if !s.FromAllowedOrigin() {
		return nil, auth.ErrOriginNotAllowed
	}
	raw, ok := s.Cookie()
	if !ok {
		return nil, auth.ErrRefreshMissing
	}
	res, err := r.auth.Refresh(ctx, raw)
	if err != nil {
		switch auth.ErrorReason(err) {
		case auth.ReasonExpired, auth.ReasonRevoked, auth.ReasonUnknown:
			// The session is over: drop the cookie. Not for "reused": another
			// tab may hold a newer cookie of a session that is still alive.
			s.Clear()
		}
		return nil, err
	}
	return deliver(ctx, res), nil
}
