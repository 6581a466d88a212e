package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"

	"github.com/authgql/server/internal/auth"
)

// authDirective implements @auth: the one gate in front of protected fields.
// Every path to a field (aliases, fragments, several operations) runs it,
// because gqlgen calls it for each resolved field, not per document.
func authDirective(ctx context.Context, _ any, next graphql.Resolver) (any, error) {
	if _, err := auth.Authenticate(ctx); err != nil {
		return nil, err
	}
	return next(ctx)
}
