package api_test

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestGETRunsQueriesOnly(t *testing.T) {
	e := newEnv(t)
	p := e.mustRegister(t, "kate", "kate@example.com")
	if got := me(t, e.get(t, p.AccessToken, meQuery, nil)); got.Username != "kate" {
		t.Errorf("GET me = %+v", got)
	}
	wantUnauthenticated(t, e.get(t, "", meQuery, nil), "token_missing")

	mutations := map[string]struct {
		doc, op string
	}{
		"mutation":               {`mutation { register(input: {username: "getter", email: "g@example.com", password: "correct horse battery"}) { accessToken } }`, ""},
		"named among queries":    {`query Q { __typename } mutation M { register(input: {username: "getter", email: "g@example.com", password: "correct horse battery"}) { accessToken } }`, "M"},
		"anonymous with comment": {"# a query\nmutation{register(input:{username:\"getter\",email:\"g@example.com\",password:\"correct horse battery\"}){accessToken}}", ""},
	}
	for name, m := range mutations {
		t.Run(name, func(t *testing.T) {
			q := url.Values{"query": {m.doc}}
			if m.op != "" {
				q.Set("operationName", m.op)
			}
			req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/query?"+q.Encode(), nil)
			res := e.send(t, req)
			if res.Status != http.StatusMethodNotAllowed {
				t.Errorf("status = %d, want 405: %s", res.Status, res.Raw)
			}
			if got := res.code(t); got != "METHOD_NOT_ALLOWED" {
				t.Errorf("code = %q, want METHOD_NOT_ALLOWED", got)
			}
			if n := e.countUsers(t); n != 1 {
				t.Errorf("%d users stored, want 1 (the mutation ran)", n)
			}
		})
	}
	t.Run("query selected among mutations", func(t *testing.T) {
		q := url.Values{"query": {`query Q { me { username } } mutation M { login(input: {username: "kate", password: "x"}) { accessToken } }`}, "operationName": {"Q"}}
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/query?"+q.Encode(), nil)
		req.Header.Set("Authorization", "Bearer "+p.AccessToken)
		if got := me(t, e.send(t, req)); got.Username != "kate" {
			t.Errorf("me = %+v", got)
		}
	})
}

func TestNonJSONBodiesExecuteNothing(t *testing.T) {
	e := newEnv(t)
	mutation := `mutation { register(input: {username: "csrf", email: "csrf@example.com", password: "correct horse battery"}) { accessToken } }`

	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	_ = mw.WriteField("operations", `{"query":`+strconvQuote(mutation)+`}`)
	_ = mw.WriteField("map", `{}`)
	_ = mw.Close()

	tests := []struct {
		name, contentType, body string
	}{
		{"form", "application/x-www-form-urlencoded", url.Values{"query": {mutation}}.Encode()},
		{"multipart", mw.FormDataContentType(), mp.String()},
		{"text/plain", "text/plain", `{"query":` + strconvQuote(mutation) + `}`},
		{"application/graphql", "application/graphql", mutation},
		{"no content type", "", `{"query":` + strconvQuote(mutation) + `}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/query", strings.NewReader(tc.body))
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			res := e.send(t, req)
			if res.Status != http.StatusUnsupportedMediaType {
				t.Errorf("status = %d, want 415: %s", res.Status, res.Raw)
			}
			if got := res.code(t); got != "UNSUPPORTED_MEDIA_TYPE" {
				t.Errorf("code = %q, want UNSUPPORTED_MEDIA_TYPE", got)
			}
			if n := e.countUsers(t); n != 0 {
				t.Errorf("%d users stored, want 0", n)
			}
		})
	}
}

func strconvQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func TestMalformedBodiesAreNotEchoed(t *testing.T) {
	e := newEnv(t)
	secret := "hunter2-not-a-real-password"
	bodies := map[string]string{
		"not json":         `{"query": "{ me { id } }", "password": "` + secret + `"`,
		"query not string": `{"query": 5, "password": "` + secret + `"}`,
		"variables array":  `{"query": "{ me { id } }", "variables": ["` + secret + `"]}`,
		"batch":            `[{"query": "{ me { id } }", "variables": {"p": "` + secret + `"}}]`,
		"empty":            ``,
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/query", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			res := e.send(t, req)
			if res.Status != http.StatusBadRequest {
				t.Errorf("status = %d, want 400", res.Status)
			}
			if got := res.code(t); got != "BAD_REQUEST" {
				t.Errorf("code = %q, want BAD_REQUEST", got)
			}
			if strings.Contains(res.Raw, secret) {
				t.Errorf("response echoes the body: %s", res.Raw)
			}
		})
	}
	t.Run("syntax error", func(t *testing.T) {
		res := e.post(t, "", `{ me { id `, nil)
		if got := res.code(t); got != "GRAPHQL_PARSE_FAILED" {
			t.Errorf("code = %q, want GRAPHQL_PARSE_FAILED: %s", got, res.Raw)
		}
	})
}

func TestOtherMethodsRefused(t *testing.T) {
	e := newEnv(t)
	for _, m := range []string{http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodHead} {
		req, _ := http.NewRequest(m, e.srv.URL+"/query", strings.NewReader(`{"query":"{ __typename }"}`))
		req.Header.Set("Content-Type", "application/json")
		res := e.send(t, req)
		if res.Status != http.StatusMethodNotAllowed {
			t.Errorf("%s: status = %d, want 405", m, res.Status)
		}
		if m == http.MethodHead {
			continue // no body
		}
		if got := res.code(t); got != "METHOD_NOT_ALLOWED" {
			t.Errorf("%s: code = %q", m, got)
		}
	}
}
