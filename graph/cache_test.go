package graph

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator"
	"github.com/vektah/gqlparser/v2/validator/rules"
)

func TestQueryCacheByteBound(t *testing.T) {
	ctx := context.Background()
	const maxBytes, maxQuery = queryCacheBytes, queryCacheMaxQuery
	c := newQueryCache(maxBytes, maxQuery)
	doc := &ast.QueryDocument{}
	sum := func() int {
		n := 0
		for q := range c.items {
			n += documentSize(q)
		}
		return n
	}

	t.Run("many large entries stay within the bound", func(t *testing.T) {
		for i := range 500 {
			// 16 KB and 1,900 tokens: about 1 MB by the estimate.
			q := fmt.Sprintf("{ me { %s} } # %d %s", strings.Repeat("id ", 1900), i, strings.Repeat("x", 10<<10))
			c.Add(ctx, q, doc)
			if c.bytes > maxBytes {
				t.Fatalf("after %d entries: %d bytes cached, bound %d", i+1, c.bytes, maxBytes)
			}
			if got, ok := c.Get(ctx, q); !ok || got != doc {
				t.Fatalf("entry %d was not cached", i)
			}
		}
		if got := sum(); got != c.bytes {
			t.Errorf("bytes = %d, entries add up to %d", c.bytes, got)
		}
		if len(c.items) != c.order.Len() || len(c.items) == 0 {
			t.Errorf("%d items, %d in order", len(c.items), c.order.Len())
		}
	})

	t.Run("queries over the size limit are never stored", func(t *testing.T) {
		before := c.bytes
		for i := range 100 {
			q := fmt.Sprintf("{ __typename } # %d %s", i, strings.Repeat("x", maxQuery))
			c.Add(ctx, q, doc)
			if _, ok := c.Get(ctx, q); ok {
				t.Fatalf("a %d-byte query was cached", len(q))
			}
		}
		if c.bytes != before {
			t.Errorf("bytes %d, was %d", c.bytes, before)
		}
	})

	t.Run("least recently used goes first", func(t *testing.T) {
		c := newQueryCache(3*documentSize("{ a }"), maxQuery)
		c.Add(ctx, "{ a }", doc)
		c.Add(ctx, "{ b }", doc)
		c.Add(ctx, "{ c }", doc)
		c.Get(ctx, "{ a }")
		c.Add(ctx, "{ d }", doc)
		for q, want := range map[string]bool{"{ a }": true, "{ b }": false, "{ c }": true, "{ d }": true} {
			if _, ok := c.Get(ctx, q); ok != want {
				t.Errorf("%s cached = %v, want %v", q, ok, want)
			}
		}
		c.Add(ctx, "{ d }", doc) // again: replaces, does not count twice
		if c.bytes != 3*documentSize("{ a }") {
			t.Errorf("bytes = %d", c.bytes)
		}
	})
}

// documentSize is at least what a parsed and validated document keeps, for
// the densest shapes there are.
func TestDocumentSizeCoversTheSyntaxTree(t *testing.T) {
	if testing.Short() {
		t.Skip("measures the heap")
	}
	schema := NewExecutableSchema(Config{Resolvers: &Resolver{}}).Schema()
	shapes := map[string]string{
		"typical":           `mutation Login($input: LoginInput!) { login(input: $input) { accessToken refreshToken user { id username email createdAt } } }`,
		"__typename fields": "{" + strings.Repeat(" __typename", 1450) + "}", // 16 KB
		"short fields":      "{me{" + strings.Repeat(" id", 1990) + "}}",
		"aliases":           "{me{" + strings.Repeat(" a:id", 600) + "}}",
		"inline fragments":  "{" + strings.Repeat("...{__typename}", 490) + "}",
		"list value":        "query($v:[Int]=[" + strings.Repeat("1 ", 1980) + "]){__typename}",
		"directives":        "{me{" + strings.Repeat(" id@include(if:true)", 200) + "}}",
		"introspection":     introspectionQuery,
	}
	for name, q := range shapes {
		const n = 4
		texts := make([]string, n)
		for i := range texts {
			texts[i] = strings.Clone(q)
		}
		docs := make([]*ast.QueryDocument, n)
		before := liveHeap()
		for i := range docs {
			doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: texts[i]}, 2000)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			validator.ValidateWithRules(schema, doc, rules.NewDefaultRules())
			docs[i] = doc
		}
		kept := (int64(liveHeap()) - int64(before)) / n
		runtime.KeepAlive(docs)
		runtime.KeepAlive(texts)
		// The text itself is counted apart from the heap measured here.
		if est := int64(documentSize(q) - len(q)); est < kept {
			t.Errorf("%s: estimate %d bytes, keeps %d", name, est, kept)
		} else {
			t.Logf("%-17s %5d bytes of text: keeps %7d, estimate %7d", name, len(q), kept, est)
		}
	}
}

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
