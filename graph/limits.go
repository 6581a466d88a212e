package graph

import (
	"context"
	"fmt"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"
)

// passwordFields are the root fields that run bcrypt: a document may hold
// only one of them, so that aliases cannot buy many password checks with one
// request (each would also be counted by the rate limits).
var passwordFields = map[string]bool{"login": true, "register": true, "changePassword": true,
	"resetPassword": true, "changeEmail": true, "deleteAccount": true}

// selectionLimit bounds every selection of an operation or fragment once its
// fragments are expanded (fields, spreads, inline fragments), introspection
// included: the complexity limit does not count the __schema tree, as gqlgen's
// does not. The standard introspection query of GraphiQL, Apollo and Postman
// expands to 204 selections.
func selectionLimit(complexity int) int { return max(2000, 10*complexity) }

// documentLimits refuses documents that are too big once their fragments are
// expanded, too deep, use too many aliases, or check more than one password.
//
// It runs before gqlgen validates the document: a document whose fragments
// each spread the next one twice is a kilobyte of text that expands to 2^n
// fields, and anything that expands fragments without memoizing (gqlgen's
// complexity calculator, the executor) must only ever see documents proven
// small. Here each fragment is measured once, so the check is linear in the
// document.
type documentLimits struct {
	tokens                             int // the parser's token limit, as gqlgen's
	fields, selections, depth, aliases int
	passed                             graphql.Cache[*ast.QueryDocument]
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
} = documentLimits{}

func (documentLimits) ExtensionName() string                          { return "DocumentLimits" }
func (documentLimits) Validate(schema graphql.ExecutableSchema) error { return nil }

func (l documentLimits) MutateOperationParameters(ctx context.Context, params *graphql.RawParams) *gqlerror.Error {
	// The query cache holds only documents that passed here and validation.
	if _, ok := l.passed.Get(ctx, params.Query); ok {
		return nil
	}
	doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: params.Query}, l.tokens)
	if err != nil {
		return nil // gqlgen parses it again and reports the error
	}
	return l.check(doc)
}

// check measures every operation and every fragment of the document (the
// validator walks them all), not only the operation the request names.
func (l documentLimits) check(doc *ast.QueryDocument) *gqlerror.Error {
	m := newMeasure(doc)
	for _, op := range doc.Operations {
		st := m.selectionSet(op.SelectionSet, op.Operation == ast.Mutation)
		if err := l.refuse(st, strings.TrimSpace("operation "+op.Name)); err != nil {
			return err
		}
		if st.passwordFields > 1 {
			return limitError("PASSWORD_FIELD_LIMIT_EXCEEDED", "an operation may check at most one password (login, register, changePassword, resetPassword, changeEmail or deleteAccount)")
		}
	}
	for _, f := range doc.Fragments {
		// Alone, a fragment is not an operation: whether its fields are
		// inside __schema depends on where it is spread, so only its total
		// size counts.
		st := m.selectionSet(f.SelectionSet, false)
		st.fields = 0
		if err := l.refuse(st, "fragment "+f.Name); err != nil {
			return err
		}
	}
	return nil
}

func (l documentLimits) refuse(st stats, what string) *gqlerror.Error {
	switch {
	case st.depth > l.depth:
		return limitError("DEPTH_LIMIT_EXCEEDED", fmt.Sprintf("%s is %d levels deep, more than the limit of %d", what, st.depth, l.depth))
	case st.aliases > l.aliases:
		return limitError("ALIAS_LIMIT_EXCEEDED", fmt.Sprintf("%s has %d aliases, more than the limit of %d", what, st.aliases, l.aliases))
	case st.fields > l.fields:
		return limitError("COMPLEXITY_LIMIT_EXCEEDED", fmt.Sprintf("%s has complexity %s, which exceeds the limit of %d", what, count(st.fields), l.fields))
	case st.selections > l.selections:
		return limitError("COMPLEXITY_LIMIT_EXCEEDED", fmt.Sprintf("%s expands to %s selections, more than the limit of %d", what, count(st.selections), l.selections))
	}
	return nil
}

// count prints a saturated number as what it is: at least that much.
func count(n int) string {
	if n >= saturated {
		return fmt.Sprintf("at least %d", saturated)
	}
	return fmt.Sprint(n)
}

func limitError(code, msg string) *gqlerror.Error {
	err := gqlerror.Errorf("%s", msg)
	errcode.Set(err, code)
	return err
}

// stats of a selection set with its fragments expanded.
type stats struct {
	depth          int // levels of fields
	aliases        int
	fields         int // fields outside __schema, each counting 1 as in gqlgen's complexity
	schemaFields   int // fields inside a __schema field (and __schema itself)
	selections     int // fields, fragment spreads and inline fragments
	passwordFields int // password fields at the top level
}

// saturated caps the counts (the expanded size of a document can be 2^190)
// where the sum of two cannot overflow even a 32-bit int.
const saturated = 1 << 29

func add(a, b int) int { return min(a+b, saturated) }

// nest accounts for inner, measured as a top-level selection set, placed
// depth levels below the top.
func (st *stats) nest(inner stats, depth int) {
	if inner.depth > 0 {
		st.depth = max(st.depth, depth+inner.depth)
	}
	st.aliases = add(st.aliases, inner.aliases)
	st.fields = add(st.fields, inner.fields)
	st.schemaFields = add(st.schemaFields, inner.schemaFields)
	st.selections = add(st.selections, inner.selections)
}

// measure computes the stats of selection sets before validation: fragment
// spreads are found by name (validation has not linked them yet), each
// fragment is measured once, and a spread that closes a cycle or names no
// fragment counts nothing (validation refuses both).
type measure struct {
	fragments map[string]*ast.FragmentDefinition
	done      map[string]stats
	active    map[string]bool
}

func newMeasure(doc *ast.QueryDocument) *measure {
	m := &measure{
		fragments: make(map[string]*ast.FragmentDefinition, len(doc.Fragments)),
		done:      make(map[string]stats, len(doc.Fragments)),
		active:    make(map[string]bool),
	}
	for _, f := range doc.Fragments {
		if _, ok := m.fragments[f.Name]; !ok { // the first of duplicates, as the validator
			m.fragments[f.Name] = f
		}
	}
	return m
}

// selectionSet measures set as the top level (its fields are at depth 1);
// root says whether it is the root of a mutation, where password fields count.
func (m *measure) selectionSet(set ast.SelectionSet, root bool) stats {
	var st stats
	for _, sel := range set {
		st.selections = add(st.selections, 1)
		switch s := sel.(type) {
		case *ast.Field:
			if s.Alias != "" && s.Alias != s.Name {
				st.aliases = add(st.aliases, 1)
			}
			if root && passwordFields[s.Name] {
				st.passwordFields++
			}
			inner := m.selectionSet(s.SelectionSet, false)
			st.depth = max(st.depth, 1)
			if s.Name == "__schema" {
				// gqlgen's complexity skips the whole tree; count it apart.
				inner.schemaFields = add(inner.schemaFields, add(inner.fields, 1))
				inner.fields = 0
			} else {
				st.fields = add(st.fields, 1)
			}
			st.nest(inner, 1)
		case *ast.InlineFragment:
			inner := m.selectionSet(s.SelectionSet, root)
			st.nest(inner, 0)
			st.passwordFields = add(st.passwordFields, inner.passwordFields)
		case *ast.FragmentSpread:
			inner := m.fragment(s.Name)
			st.nest(inner, 0)
			if root {
				st.passwordFields = add(st.passwordFields, inner.passwordFields)
			}
		}
	}
	return st
}

// fragment measures the fragment named name once. Its password fields are
// counted as if at the root; selectionSet keeps them only where it is.
func (m *measure) fragment(name string) stats {
	if st, ok := m.done[name]; ok {
		return st
	}
	f := m.fragments[name]
	if f == nil || m.active[name] {
		return stats{}
	}
	m.active[name] = true
	st := m.selectionSet(f.SelectionSet, true)
	delete(m.active, name)
	m.done[name] = st
	return st
}
