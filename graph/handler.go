package graph

import (
	"log/slog"

	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
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
	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	srv.SetParserTokenLimit(limits.ParserTokens)
	srv.SetDisableSuggestion(!limits.Suggestions)
	if limits.Introspection {
		srv.Use(extension.Introspection{})
	}
	srv.Use(extension.FixedComplexityLimit(limits.Complexity))
	srv.Use(documentLimits{depth: limits.Depth, aliases: limits.Aliases})
	srv.SetErrorPresenter(errorPresenter(logger))
	srv.SetRecoverFunc(recoverFunc(logger))
	return srv
}
