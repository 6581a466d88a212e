package graph

import (
	"context"
	"fmt"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// passwordFields are the root fields that run bcrypt: a document may hold
// only one of them, so that aliases cannot buy many password checks with one
// request (each would also be counted by the rate limits).
var passwordFields = map[string]bool{"login": true, "register": true, "changePassword": true}

// documentLimits refuses, before any resolver runs, operations that are too
// deep, use too many aliases, or check more than one password.
type documentLimits struct {
	depth, aliases int
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = documentLimits{}

func (documentLimits) ExtensionName() string                          { return "DocumentLimits" }
func (documentLimits) Validate(schema graphql.ExecutableSchema) error { return nil }

func (l documentLimits) MutateOperationContext(ctx context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	op := opCtx.Doc.Operations.ForName(opCtx.OperationName)
	if op == nil {
		return nil
	}
	var st walkStats
	st.walk(op.SelectionSet, 1, op.Operation == ast.Mutation)
	switch {
	case st.depth > l.depth:
		return limitError("DEPTH_LIMIT_EXCEEDED", fmt.Sprintf("operation is %d levels deep, more than the limit of %d", st.depth, l.depth))
	case st.aliases > l.aliases:
		return limitError("ALIAS_LIMIT_EXCEEDED", fmt.Sprintf("operation has %d aliases, more than the limit of %d", st.aliases, l.aliases))
	case st.passwordFields > 1:
		return limitError("PASSWORD_FIELD_LIMIT_EXCEEDED", "an operation may check at most one password (login, register or changePassword)")
	}
	return nil
}

func limitError(code, msg string) *gqlerror.Error {
	err := gqlerror.Errorf("%s", msg)
	errcode.Set(err, code)
	return err
}

type walkStats struct {
	depth, aliases, passwordFields int
}

// walk measures a selection set, expanding fragments (validation has already
// refused fragment cycles). Introspection fields count too (gqlgen's
// complexity limit skips them): the standard introspection query of GraphiQL,
// Apollo and Postman is 12 levels deep, under the default depth limit.
func (st *walkStats) walk(set ast.SelectionSet, depth int, root bool) {
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if s.Alias != "" && s.Alias != s.Name {
				st.aliases++
			}
			if root && passwordFields[s.Name] {
				st.passwordFields++
			}
			st.depth = max(st.depth, depth)
			st.walk(s.SelectionSet, depth+1, false)
		case *ast.InlineFragment:
			st.walk(s.SelectionSet, depth, root)
		case *ast.FragmentSpread:
			if s.Definition != nil {
				st.walk(s.Definition.SelectionSet, depth, root)
			}
		}
	}
}
