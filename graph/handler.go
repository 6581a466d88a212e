package graph

import (
	"log/slog"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/authgql/server/internal/auth"
)

// Limits bound what one GraphQL document may cost.
type Limits struct {
	ParserTokens  int  // tokens the parser reads before giving up
	Complexity    int  // gqlgen's complexity score (each field counts 1)
	Depth         int  // nesting of fields
	Aliases       int  // aliased fields in one operation
	Introspection bool // __schema and __type queries allowed
	Suggestions   bool // "Did you mean ...?" in validation errors
}

// NewHandler returns the GraphQL endpoint: JSON POST for every operation, GET
// for queries only (gqlgen refuses a mutation over GET before running it), and
// OPTIONS. No multipart, form or text/plain transport exists, so a browser
// cannot send an operation cross-site without a CORS preflight.
func NewHandler(svc *auth.Service, logger *slog.Logger, limits Limits) *handler.Server {
	r := &Resolver{auth: svc}
	cfg := Config{
		Resolvers:  r,
		Directives: DirectiveRoot{Auth: r.authDirective, Owner: r.ownerDirective},
	}
	srv := handler.New(NewExecutableSchema(cfg))
	srv.AddTransport(transport.Options{})
	srv.AddTransport(transport.GET{})
	srv.AddTransport(transport.POST{})
	configure(srv, logger, limits)
	return srv
}

// configurable is what gqlgen's handler.Server and executor.Executor share: the
// tests run a bare executor, configured by the same function, to check the
// whole path from text to operation without HTTP.
type configurable interface {
	Use(graphql.HandlerExtension)
	SetQueryCache(graphql.Cache[*ast.QueryDocument])
	SetParserTokenLimit(int)
	SetDisableSuggestion(bool)
	SetErrorPresenter(graphql.ErrorPresenterFunc)
	SetRecoverFunc(graphql.RecoverFunc)
}

func configure(e configurable, logger *slog.Logger, limits Limits) {
	cache := newQueryCache(queryCacheBytes, queryCacheMaxQuery)
	e.SetQueryCache(cache)
	e.SetParserTokenLimit(limits.ParserTokens)
	e.SetDisableSuggestion(!limits.Suggestions)
	// Runs before validation; whatever comes after sees only documents it
	// has measured.
	e.Use(documentLimits{tokens: limits.ParserTokens, fields: limits.Complexity,
		selections: selectionLimit(limits.Complexity), depth: limits.Depth, aliases: limits.Aliases, passed: cache})
	if limits.Introspection {
		e.Use(extension.Introspection{})
	}
	// Counts what documentLimits counts while every field costs 1; it stays
	// for the day a field is given a cost of its own.
	e.Use(extension.FixedComplexityLimit(limits.Complexity))
	e.SetErrorPresenter(errorPresenter(logger))
	e.SetRecoverFunc(recoverFunc(logger))
}
