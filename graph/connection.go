package graph

import (
	"encoding/base64"
	"strings"

	"github.com/authgql/server/graph/model"
	"github.com/authgql/server/internal/auth"
)

// Cursors are opaque to clients: base64url("user:" + id).
const cursorPrefix = "user:"

func encodeCursor(id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + id))
}

func decodeCursor(c *string) (string, error) {
	if c == nil || *c == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(*c)
	if err != nil || !strings.HasPrefix(string(b), cursorPrefix) {
		return "", &auth.Error{Code: auth.CodeBadUserInput, Field: "after", Reason: auth.ReasonInvalidFormat,
			Message: "after must be a cursor from a previous page"}
	}
	return strings.TrimPrefix(string(b), cursorPrefix), nil
}

func userConnection(p *auth.UserPage) *model.UserConnection {
	conn := &model.UserConnection{Edges: make([]*model.UserEdge, len(p.Users)), PageInfo: &model.PageInfo{HasNextPage: p.HasNextPage}}
	for i, u := range p.Users {
		conn.Edges[i] = &model.UserEdge{Cursor: encodeCursor(u.ID), Node: u}
	}
	if n := len(p.Users); n > 0 {
		end := conn.Edges[n-1].Cursor
		conn.PageInfo.EndCursor = &end
	}
	return conn
}

func deref[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}
