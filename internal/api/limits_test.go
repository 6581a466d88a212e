package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestBodyLimit(t *testing.T) {
	o := defaultOptions()
	o.cfg.MaxBodyBytes = 4 << 10
	e := newEnvWith(t, o)
	pad := strings.Repeat("a", 8<<10)
	body := `{"query":"mutation { register(input: {username: \"big\", email: \"big@example.com\", password: \"` + pad + `\"}) { accessToken } }"}`
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/query", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	res := e.send(t, req)
	if res.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("status = %d, want 413: %s", res.Status, res.Raw)
	}
	if got := res.code(t); got != "PAYLOAD_TOO_LARGE" {
		t.Errorf("code = %q, want PAYLOAD_TOO_LARGE", got)
	}
	if n := e.countUsers(t); n != 0 {
		t.Errorf("%d users stored, want 0", n)
	}
}

func TestDocumentLimits(t *testing.T) {
	aliases := func(n int) string {
		var b strings.Builder
		b.WriteString("{")
		for i := range n {
			fmt.Fprintf(&b, " a%d: __typename", i)
		}
		b.WriteString(" }")
		return b.String()
	}
	nested := func(depth int) string { // __type is depth 1, each ofType one more
		return `{ __type(name: "User") { ` + strings.Repeat("ofType { ", depth-2) + "name" + strings.Repeat(" }", depth-2) + " } }"
	}
	tests := []struct {
		name     string
		doc      string
		aliases  int
		wantCode string
	}{
		{"20 aliases", aliases(20), 20, ""},
		{"21 aliases", aliases(21), 20, "ALIAS_LIMIT_EXCEEDED"},
		{"150 fields within the alias limit", aliases(150), 1000, ""},
		{"250 fields", aliases(250), 1000, "COMPLEXITY_LIMIT_EXCEEDED"},
		{"800 fields: token limit", aliases(800), 1000, "GRAPHQL_PARSE_FAILED"},
		{"depth 15", nested(15), 20, ""},
		{"depth 16", nested(16), 20, "DEPTH_LIMIT_EXCEEDED"},
		{"depth through fragments", `query { ...A } fragment A on Query { __type(name: "User") { ...B } } fragment B on __Type { ` +
			strings.Repeat("ofType { ", 15) + "name" + strings.Repeat(" }", 15) + " }", 20, "DEPTH_LIMIT_EXCEEDED"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := defaultOptions()
			o.cfg.AliasLimit = tc.aliases
			e := newEnvWith(t, o)
			res := e.post(t, "", tc.doc, nil)
			if tc.wantCode == "" {
				if len(res.Errors) > 0 {
					t.Errorf("refused: %.300s", res.Raw)
				}
				return
			}
			if got := res.code(t); got != tc.wantCode {
				t.Errorf("code = %q, want %q: %.300s", got, tc.wantCode, res.Raw)
			}
		})
	}
}
