// Package graph is the GraphQL adapter: it turns requests into calls of the
// auth service and the service's results and errors into GraphQL responses.
package graph

import (
	"time"

	"github.com/authgql/server/graph/model"
	"github.com/authgql/server/internal/auth"
)

// Resolver is the root resolver and the only place dependencies enter the
// GraphQL layer.
type Resolver struct {
	auth *auth.Service
}

func authPayload(r *auth.Result) *model.AuthPayload {
	return &model.AuthPayload{
		AccessToken:           r.AccessToken.Value,
		TokenType:             "Bearer",
		ExpiresIn:             int(r.AccessToken.TTL / time.Second),
		ExpiresAt:             r.AccessToken.ExpiresAt.UTC(),
		RefreshToken:          &r.RefreshToken,
		RefreshTokenExpiresAt: r.RefreshExpiresAt.UTC(),
		User:                  r.User,
	}
}

func sessions(list []*auth.Session, current string) []*model.Session {
	out := make([]*model.Session, len(list))
	for i, s := range list {
		out[i] = &model.Session{
			ID:         s.ID,
			CreatedAt:  s.CreatedAt,
			LastUsedAt: s.LastUsedAt,
			ExpiresAt:  s.ExpiresAt,
			UserAgent:  optional(s.UserAgent),
			IP:         optional(s.IP),
			Current:    s.ID == current,
		}
	}
	return out
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func identities(list []*auth.Identity) []*model.Identity {
	out := make([]*model.Identity, len(list))
	for i, id := range list {
		out[i] = &model.Identity{ID: id.ID, Provider: id.Provider, Email: optional(id.Email), LinkedAt: id.LinkedAt.UTC()}
	}
	return out
}

func providers(list []auth.ProviderInfo) []*model.IdentityProvider {
	out := make([]*model.IdentityProvider, len(list))
	for i, p := range list {
		out[i] = &model.IdentityProvider{Name: p.Name, DisplayName: p.DisplayName}
	}
	return out
}
