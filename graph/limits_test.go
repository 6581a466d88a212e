package graph

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/99designs/gqlgen/graphql/executor"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"
)

// defaultLimits are the production defaults of the configuration.
var defaultLimits = Limits{ParserTokens: 2000, Complexity: 200, Depth: 15, Aliases: 20, Introspection: true}

// fragmentBomb is a document of levels fragments, each spreading the next
// one twice: about 37 bytes a level that expand to 2^(levels-1) fields.
func fragmentBomb(levels int) string {
	var b strings.Builder
	b.WriteString("query Q{...F0}")
	for i := range levels - 1 {
		fmt.Fprintf(&b, " fragment F%d on Query{...F%d ...F%d}", i, i+1, i+1)
	}
	fmt.Fprintf(&b, " fragment F%d on Query{__typename}", levels-1)
	return b.String()
}

// schemaBomb is the same inside __schema, which the complexity limit does
// not count.
func schemaBomb(levels int) string {
	var b strings.Builder
	b.WriteString("query Q{__schema{...S0}}")
	for i := range levels - 1 {
		fmt.Fprintf(&b, " fragment S%d on __Schema{...S%d ...S%d}", i, i+1, i+1)
	}
	fmt.Fprintf(&b, " fragment S%d on __Schema{description}", levels-1)
	return b.String()
}

// introspectionQuery is graphql-js's getIntrospectionQuery (v16) with every
// option on, as GraphiQL, Apollo and Postman send it.
const introspectionQuery = `query IntrospectionQuery {
  __schema {
    description
    queryType { name kind }
    mutationType { name kind }
    subscriptionType { name kind }
    types { ...FullType }
    directives {
      name
      description
      isRepeatable
      locations
      args(includeDeprecated: true) { ...InputValue }
    }
  }
}
fragment FullType on __Type {
  kind
  name
  description
  specifiedByURL
  isOneOf
  fields(includeDeprecated: true) {
    name
    description
    args(includeDeprecated: true) { ...InputValue }
    type { ...TypeRef }
    isDeprecated
    deprecationReason
  }
  inputFields(includeDeprecated: true) { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue {
  name
  description
  type { ...TypeRef }
  defaultValue
  isDeprecated
  deprecationReason
}
fragment TypeRef on __Type {
  kind
  name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name
    ofType { kind name ofType { kind name ofType { kind name } } } } } } }
}`

func measureQuery(t testing.TB, q string) stats {
	t.Helper()
	doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: q}, defaultLimits.ParserTokens)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	op := doc.Operations[0]
	return newMeasure(doc).selectionSet(op.SelectionSet, op.Operation == ast.Mutation)
}

// The measure of a doubling fragment chain takes time linear in its levels,
// and its counts are right until they saturate.
func TestMeasureFragmentBombIsLinear(t *testing.T) {
	for _, levels := range []int{10, 25, 40, 190} {
		q := fragmentBomb(levels)
		start := time.Now()
		st := measureQuery(t, q)
		elapsed := time.Since(start)
		want := saturated
		if levels-1 < 29 {
			want = 1 << (levels - 1)
		}
		if st.fields != want {
			t.Errorf("%d levels: %d fields, want %d", levels, st.fields, want)
		}
		if st.depth != 1 {
			t.Errorf("%d levels: depth %d, want 1", levels, st.depth)
		}
		t.Logf("%d levels, %d bytes: parsed and measured in %v", levels, len(q), elapsed)
		if elapsed > 50*time.Millisecond { // microseconds in fact; a safety check, not a benchmark
			t.Errorf("%d levels: measured in %v", levels, elapsed)
		}
	}
}

func TestMeasure(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want stats
	}{
		{"fields and depth", `{ me { id username } }`,
			stats{depth: 2, fields: 3, selections: 3}},
		{"aliases", `{ a: me { id } b: me { x: id } __typename }`,
			stats{depth: 2, aliases: 3, fields: 5, selections: 5}},
		{"fragment spread twice counts twice", `{ ...F ...F } fragment F on Query { me { id } }`,
			stats{depth: 2, fields: 4, selections: 6}},
		{"depth through fragments and inline fragments", `{ me { ...F } } fragment F on User { ... on User { id } }`,
			stats{depth: 2, fields: 2, selections: 4}},
		{"__schema apart from complexity", `{ __schema { types { name } } __typename }`,
			stats{depth: 3, fields: 1, schemaFields: 3, selections: 4}},
		{"__schema through a fragment", `{ __schema { ...S } } fragment S on __Schema { types { name } }`,
			stats{depth: 3, schemaFields: 3, selections: 4}},
		{"__type counts", `{ __type(name: "User") { name } }`,
			stats{depth: 2, fields: 2, selections: 2}},
		{"password fields at the root of a mutation", `mutation { login(input: {}) { accessToken } ... on Mutation { register(input: {}) { accessToken } } ...P } fragment P on Mutation { changePassword(currentPassword: "", newPassword: "") }`,
			stats{depth: 2, fields: 5, selections: 7, passwordFields: 3}},
		{"password fields below the root do not count", `query { me { ...P } } fragment P on User { login: id }`,
			stats{depth: 2, fields: 2, selections: 3, aliases: 1}},
		{"cycle counts nothing", `{ ...A } fragment A on Query { __typename ...B } fragment B on Query { ...A }`,
			stats{depth: 1, fields: 1, selections: 4}},
		{"unknown fragment counts nothing", `{ ...Nope __typename }`,
			stats{depth: 1, fields: 1, selections: 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := measureQuery(t, tc.doc); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// The standard introspection query passes the default limits, in the check
// and over HTTP, and its size is what the maxSelections comment says.
func TestIntrospectionQueryWithinLimits(t *testing.T) {
	st := measureQuery(t, introspectionQuery)
	t.Logf("introspection query: %+v", st)
	if st.selections != 204 || st.depth != 13 || st.fields != 0 {
		t.Errorf("introspection query measures %+v; update the comment of maxSelections", st)
	}
	h := NewHandler(nil, slog.New(slog.NewTextHandler(io.Discard, nil)), defaultLimits)
	body := fmt.Sprintf(`{"query": %q}`, introspectionQuery)
	req := httptest.NewRequest(http.MethodPost, "/query", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), `"errors"`) || !strings.Contains(rec.Body.String(), `"queryType"`) {
		t.Errorf("status %d: %.500s", rec.Code, rec.Body.String())
	}
}

// newPipeline is the server's path from text to operation, without HTTP and
// resolvers: parse, documentLimits, validation, complexity.
func newPipeline(limits Limits) func(query string) gqlerror.List {
	exec := executor.New(NewExecutableSchema(Config{Resolvers: &Resolver{}}))
	configure(exec, slog.New(slog.NewTextHandler(io.Discard, nil)), limits)
	return func(query string) gqlerror.List {
		ctx := graphql.StartOperationTrace(context.Background())
		_, errs := exec.CreateOperationContext(ctx, &graphql.RawParams{Query: query})
		return errs
	}
}

func errorCode(errs gqlerror.List) string {
	if len(errs) == 0 {
		return ""
	}
	code, _ := errs[0].Extensions["code"].(string)
	return code
}

func TestPipelineRefusesFragmentBombs(t *testing.T) {
	run := newPipeline(defaultLimits)
	deep := `{ __type(name: "User") { ...T0 } }`
	for i := range 20 {
		deep += fmt.Sprintf(" fragment T%d on __Type { ofType { ...T%d } }", i, i+1)
	}
	deep += " fragment T20 on __Type { name }"
	aliased := "query { ...A0 }"
	for i := range 12 {
		aliased += fmt.Sprintf(" fragment A%d on Query { ...A%d ...A%d }", i, i+1, i+1)
	}
	aliased += " fragment A12 on Query { a: __typename }"
	tests := []struct {
		name, doc, want string
	}{
		{"introspection query", introspectionQuery, ""},
		{"fragment bomb, 8 levels (128 fields)", fragmentBomb(8), ""},
		{"fragment bomb, 9 levels (256 fields)", fragmentBomb(9), "COMPLEXITY_LIMIT_EXCEEDED"},
		{"fragment bomb, 25 levels", fragmentBomb(25), "COMPLEXITY_LIMIT_EXCEEDED"},
		{"fragment bomb, 40 levels", fragmentBomb(40), "COMPLEXITY_LIMIT_EXCEEDED"},
		{"fragment bomb, 190 levels", fragmentBomb(190), "COMPLEXITY_LIMIT_EXCEEDED"},
		{"__schema bomb, 10 levels (1535 selections)", schemaBomb(10), ""},
		{"__schema bomb, 11 levels (3071 selections)", schemaBomb(11), "COMPLEXITY_LIMIT_EXCEEDED"},
		{"__schema bomb, 190 levels", schemaBomb(190), "COMPLEXITY_LIMIT_EXCEEDED"},
		{"deep through a fragment chain", deep, "DEPTH_LIMIT_EXCEEDED"},
		{"aliases through a doubling chain", aliased, "ALIAS_LIMIT_EXCEEDED"},
		{"bomb in an unused fragment", "{ __typename } " + strings.TrimPrefix(fragmentBomb(30), "query Q{...F0}"), "COMPLEXITY_LIMIT_EXCEEDED"},
		{"bomb in the operation not chosen", "query A { __typename } query B { ...F0 } " + strings.TrimPrefix(fragmentBomb(30), "query Q{...F0}"), "COMPLEXITY_LIMIT_EXCEEDED"},
		{"fragment cycle", `{ ...A } fragment A on Query { ...B ...B } fragment B on Query { ...A ...A }`, errcode.ValidationFailed},
		{"two passwords through fragments", `mutation { ...A ...B } fragment A on Mutation { login(input: {username: "a", password: "b"}) { accessToken } } fragment B on Mutation { x: login(input: {username: "a", password: "b"}) { accessToken } }`, "PASSWORD_FIELD_LIMIT_EXCEEDED"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			errs := run(tc.doc)
			elapsed := time.Since(start)
			if got := errorCode(errs); got != tc.want {
				t.Errorf("code %q, want %q: %v", got, tc.want, errs)
			}
			if elapsed > 100*time.Millisecond {
				t.Errorf("took %v", elapsed)
			}
		})
	}
}

// A raised complexity limit raises the bound on selections with it.
func TestPipelineWithRaisedComplexityLimit(t *testing.T) {
	limits := defaultLimits
	limits.Complexity = 5000
	run := newPipeline(limits)
	if errs := run(fragmentBomb(12)); len(errs) > 0 { // 2048 fields, 4095 selections
		t.Errorf("2048 fields refused: %v", errs)
	}
	if got := errorCode(run(fragmentBomb(14))); got != "COMPLEXITY_LIMIT_EXCEEDED" {
		t.Errorf("8192 fields: code %q", got)
	}
}

// FuzzDocumentLimits runs any document through parse, documentLimits,
// validation and complexity: none may take long. `make fuzz-short` fuzzes;
// `go test` runs the seeds.
func FuzzDocumentLimits(f *testing.F) {
	for _, seed := range []string{
		`{ __typename }`,
		`query Me { me { id username email createdAt roles } }`,
		`mutation Login($input: LoginInput!) { login(input: $input) { accessToken refreshToken user { id } } }`,
		`query { users(first: 10) { edges { cursor node { id username } } pageInfo { endCursor hasNextPage } } }`,
		`{ a: me { id } b: me { ...U } } fragment U on User { username ... on User { email } }`,
		`{ __type(name: "User") { ofType { ofType { name } } } }`,
		introspectionQuery,
		fragmentBomb(25),
		fragmentBomb(190),
		schemaBomb(40),
		`{ ...A } fragment A on Query { ...B ...B } fragment B on Query { ...A ...A }`,
		`query A { ...F } query B { ...F ...F } fragment F on Query { x: __typename y: __typename }`,
	} {
		f.Add(seed)
	}
	run := newPipeline(defaultLimits)
	f.Fuzz(func(t *testing.T, doc string) {
		// A watchdog rather than a stopwatch: a document that never finishes
		// must fail here, with its text, not stall the fuzzer until its deadline.
		done := make(chan struct{})
		go func() { defer close(done); run(doc) }()
		select {
		case <-done:
		case <-time.After(time.Second):
			t.Fatalf("%d bytes took over 1s: %q", len(doc), doc)
		}
	})
}
