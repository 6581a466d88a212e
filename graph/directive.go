package graph

import (
	"context"
	"fmt"

	"github.com/99designs/gqlgen/graphql"

	"github.com/authgql/server/internal/auth"
)

// authDirective implements @auth(requires:): the one gate in front of
// protected fields. gqlgen runs it for every resolved field that carries it
// (and for every field returning an object that carries it), whatever path
// leads there: aliases, fragments, several operations.
func (r *Resolver) authDirective(ctx context.Context, _ any, next graphql.Resolver, requires *auth.Role) (any, error) {
	if _, err := r.auth.Authorize(ctx, deref(requires, "")); err != nil {
		return nil, err
	}
	return next(ctx)
}

// ownerDirective implements @owner(or:) on fields of User: only that user, or
// a holder of the role, may read the field. Others get FORBIDDEN for the
// field alone; the rest of the object still resolves.
func (r *Resolver) ownerDirective(ctx context.Context, obj any, next graphql.Resolver, or *auth.Role) (any, error) {
	u, ok := obj.(*auth.User)
	if !ok {
		return nil, fmt.Errorf("graph: @owner on a field of %T, want *auth.User", obj)
	}
	if err := r.auth.AuthorizeOwner(ctx, u.ID, deref(or, "")); err != nil {
		return nil, err
	}
	return next(ctx)
}
