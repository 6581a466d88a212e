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
		AccessToken: r.AccessToken.Value,
		TokenType:   "Bearer",
		ExpiresIn:   int(r.AccessToken.TTL / time.Second),
		ExpiresAt:   r.AccessToken.ExpiresAt.UTC(),
		User:        r.User,
	}
}
