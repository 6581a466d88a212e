package graph

import (
	"context"
	"fmt"

	"github.com/99designs/gqlgen/graphql"

	"github.com/authgql/server/internal/auth"
)

// authDirective implements @auth(requires:, aal:): the one gate in front of
// protected fields. gqlgen runs it for every resolved field that carries it
// (and for every field returning an object that carries it), whatever path
// leads there: aliases, fragments, several operations.
func (r *Resolver) authDirective(ctx context.Context, _ any, next graphql.Resolver, requires *auth.Role, aal *int) (any, error) {
	c, err := auth.Authenticate(ctx)
	if err != nil {
		return nil, err
	}
	// The level first: a confined session learns nothing, not even a role.
	if err := auth.AuthorizeLevel(c, rootFieldOf(ctx), deref(aal, 1)); err != nil {
		return nil, err
	}
	if _, err := r.auth.Authorize(ctx, deref(requires, "")); err != nil {
		return nil, err
	}
	return next(ctx)
}

// rootFieldOf is the name of the operation's root field that ctx is under.
func rootFieldOf(ctx context.Context) string {
	name := ""
	for fc := graphql.GetFieldContext(ctx); fc != nil; fc = fc.Parent {
		if fc.Field.Field != nil {
			switch fc.Object {
			case "Query", "Mutation", "Subscription":
				name = fc.Field.Name
			}
		}
	}
	return name
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
