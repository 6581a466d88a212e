package graph

import (
	"container/list"
	"context"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/lexer"
)

const (
	queryCacheBytes    = 8 << 20  // all cached documents together, by estimate
	queryCacheMaxQuery = 16 << 10 // longer queries are parsed every time
	// bytesPerToken bounds what the parsed and validated document keeps per
	// token of its text: at most about 400 bytes (a __typename field), 80 to
	// 230 for most shapes; comments, which are tokens too, keep almost none.
	bytesPerToken = 512
)

// queryCache is gqlgen's cache of parsed and validated documents, keyed by
// their text and bounded by bytes: a count of entries bounds nothing when a
// client can send a megabyte of comment after `{ __typename }`.
type queryCache struct {
	maxBytes, maxQuery int

	mu    sync.Mutex
	bytes int
	order *list.List // of *cacheEntry, most recently used first
	items map[string]*list.Element
}

type cacheEntry struct {
	query string
	doc   *ast.QueryDocument
	size  int
}

var _ graphql.Cache[*ast.QueryDocument] = (*queryCache)(nil)

func newQueryCache(maxBytes, maxQuery int) *queryCache {
	return &queryCache{maxBytes: maxBytes, maxQuery: maxQuery, order: list.New(), items: make(map[string]*list.Element)}
}

func (c *queryCache) Get(_ context.Context, query string) (*ast.QueryDocument, bool) {
	if len(query) > c.maxQuery {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[query]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*cacheEntry).doc, true
}

func (c *queryCache) Add(_ context.Context, query string, doc *ast.QueryDocument) {
	if len(query) > c.maxQuery {
		return
	}
	size := documentSize(query)
	if size > c.maxBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[query]; ok {
		c.remove(el)
	}
	for c.bytes+size > c.maxBytes {
		c.remove(c.order.Back())
	}
	c.items[query] = c.order.PushFront(&cacheEntry{query: query, doc: doc, size: size})
	c.bytes += size
}

func (c *queryCache) remove(el *list.Element) {
	e := c.order.Remove(el).(*cacheEntry)
	delete(c.items, e.query)
	c.bytes -= e.size
}

// documentSize estimates the memory an entry holds: the text (the document's
// source refers to it) and the parsed document, which grows with the number
// of tokens rather than the length (`{me{id id id ...}}` keeps some 75 bytes
// of syntax tree per byte of text).
func documentSize(query string) int {
	tokens := 0
	l := lexer.New(&ast.Source{Input: query})
	for {
		tok, err := l.ReadToken()
		if err != nil || tok.Kind == lexer.EOF {
			break
		}
		tokens++
	}
	return len(query) + tokens*bytesPerToken
}
