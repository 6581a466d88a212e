package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"html"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/authgql/server/internal/devdb"
	"github.com/authgql/server/internal/mongodb"
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

func TestResponseHeaders(t *testing.T) {
	e := newEnv(t)
	res := e.post(t, "", `{ __typename }`, nil)
	if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options = %q", got)
	}
	if got := res.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q", got)
	}
	if res.Header.Get("X-Request-ID") == "" {
		t.Error("no X-Request-ID")
	}
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/healthz", nil)
	req.Header.Set("X-Request-ID", "abc-123")
	res = e.send(t, req)
	if got := res.Header.Get("X-Request-ID"); got != "abc-123" {
		t.Errorf("X-Request-ID = %q, want the client's", got)
	}
	if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("healthz X-Content-Type-Options = %q", got)
	}
}

func TestCORS(t *testing.T) {
	o := defaultOptions()
	o.cfg.CORSAllowedOrigins = []string{"https://app.example.com", "http://localhost:*"}
	e := newEnvWith(t, o)
	preflight := func(origin string) *http.Response {
		req, _ := http.NewRequest(http.MethodOptions, e.srv.URL+"/query", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
		res, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	for _, origin := range []string{"https://app.example.com", "http://localhost:5173"} {
		res := preflight(origin)
		if got := res.Header.Get("Access-Control-Allow-Origin"); got != origin {
			t.Errorf("%s: Allow-Origin = %q", origin, got)
		}
		if got := res.Header.Get("Access-Control-Allow-Credentials"); got != "" {
			t.Errorf("%s: Allow-Credentials = %q, want none", origin, got)
		}
		if !strings.Contains(strings.ToLower(res.Header.Get("Access-Control-Allow-Headers")), "authorization") {
			t.Errorf("%s: Allow-Headers = %q", origin, res.Header.Get("Access-Control-Allow-Headers"))
		}
	}
	for _, origin := range []string{"https://evil.example", "https://app.example.com.evil.example", "null"} {
		if got := preflight(origin).Header.Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("%s: Allow-Origin = %q, want none", origin, got)
		}
	}

	t.Run("no origins configured", func(t *testing.T) {
		e := newEnv(t)
		req, _ := http.NewRequest(http.MethodOptions, e.srv.URL+"/query", nil)
		req.Header.Set("Origin", "https://evil.example")
		req.Header.Set("Access-Control-Request-Method", "POST")
		res, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if got := res.Header.Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("Allow-Origin = %q, want none", got)
		}
	})
}

func TestIntrospectionAndSuggestions(t *testing.T) {
	dev := newEnv(t)
	if res := dev.post(t, "", `{ __schema { queryType { name } } }`, nil); len(res.Errors) > 0 {
		t.Errorf("development introspection: %s", res.Raw)
	}
	o := defaultOptions()
	o.cfg.Introspection, o.cfg.Playground, o.cfg.Env = false, false, "production"
	prod := newEnvWith(t, o)
	res := prod.post(t, "", `{ __schema { queryType { name } } }`, nil)
	if len(res.Errors) == 0 {
		t.Errorf("production introspection succeeded: %s", res.Raw)
	}
	res = prod.post(t, "", `{ mee { id } }`, nil)
	if got := res.code(t); got != "GRAPHQL_VALIDATION_FAILED" {
		t.Errorf("code = %q", got)
	}
	if strings.Contains(res.Raw, "Did you mean") {
		t.Errorf("production suggests field names: %s", res.Raw)
	}
	if res := dev.post(t, "", `{ mee { id } }`, nil); !strings.Contains(res.Raw, "Did you mean") {
		t.Errorf("development does not suggest: %s", res.Raw)
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

func TestPlaygroundAndProbes(t *testing.T) {
	e := newEnv(t)
	res, err := e.srv.Client().Get(e.srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	var page bytes.Buffer
	_, _ = page.ReadFrom(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(page.String(), "/query") {
		t.Errorf("GET / = %d, want the Playground page for /query", res.StatusCode)
	}
	// Every script and style is served by the server itself, and matches the
	// integrity hash the page demands.
	if strings.Contains(page.String(), "https://") || strings.Contains(page.String(), "http://") {
		t.Errorf("the Playground page loads from another host")
	}
	refs := regexp.MustCompile(`(?:src|href)="(/playground/[^"]+)"\s+integrity="([^"]+)"`).FindAllStringSubmatch(page.String(), -1)
	if len(refs) != 6 {
		t.Fatalf("found %d assets with integrity in the page, want 6", len(refs))
	}
	for _, ref := range refs {
		res, err := e.srv.Client().Get(e.srv.URL + ref[1])
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		sum := sha256.Sum256(body)
		if got := "sha256-" + base64.StdEncoding.EncodeToString(sum[:]); res.StatusCode != 200 || got != html.UnescapeString(ref[2]) {
			t.Errorf("%s: status %d, integrity %s, page wants %s", ref[1], res.StatusCode, got, ref[2])
		}
	}
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/nope": 404} {
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
		if got := e.send(t, req).Status; got != want {
			t.Errorf("GET %s = %d, want %d", path, got, want)
		}
	}
}

// With the database gone, requests fail as INTERNAL_SERVER_ERROR with no
// driver text, nothing is issued, readiness reports it, and the log has the
// cause with the request id.
func TestDatabaseDown(t *testing.T) {
	client, err := mongodb.Connect(context.Background(), testDB.URI)
	if err != nil {
		t.Fatal(err)
	}
	o := defaultOptions()
	o.client = client
	e := newEnvWith(t, o)
	p := e.mustRegister(t, "leo", "leo@example.com")
	if err := client.Disconnect(context.Background()); err != nil {
		t.Fatal(err)
	}

	checks := map[string]gqlResponse{
		"register": e.register(t, "mia", "mia@example.com", testPassword),
		"login":    e.login(t, "", "leo", testPassword),
		"me":       e.post(t, p.AccessToken, meQuery, nil),
	}
	for name, res := range checks {
		if res.Status != http.StatusOK {
			t.Errorf("%s: status = %d", name, res.Status)
		}
		if got := res.code(t); got != "INTERNAL_SERVER_ERROR" {
			t.Errorf("%s: code = %q, want INTERNAL_SERVER_ERROR: %s", name, got, res.Raw)
		}
		if res.Errors[0].Message != "internal error" {
			t.Errorf("%s: message = %q", name, res.Errors[0].Message)
		}
		for _, leak := range []string{"mongo", "client", "disconnect", "connection", ".go", "goroutine"} {
			if strings.Contains(strings.ToLower(res.Raw), leak) {
				t.Errorf("%s: response leaks %q: %s", name, leak, res.Raw)
			}
		}
		if strings.Contains(res.Raw, "accessToken") {
			t.Errorf("%s: a token was issued: %s", name, res.Raw)
		}
		if id := res.Header.Get("X-Request-ID"); !strings.Contains(e.logs.String(), id) {
			t.Errorf("%s: log has no line with request id %s", name, id)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/readyz", nil)
	if got := e.send(t, req).Status; got != http.StatusServiceUnavailable {
		t.Errorf("readyz = %d, want 503", got)
	}
	if n := e.countUsers(t); n != 1 {
		t.Errorf("%d users stored, want 1", n)
	}
}

// Nothing secret reaches the log: not the password, not a token, not a hash.
func TestLogsHoldNoSecrets(t *testing.T) {
	e := newEnv(t)
	p := e.mustRegister(t, "nina", "nina@example.com")
	e.login(t, "", "nina", testPassword)
	e.login(t, "", "nina", "wrong password!")
	e.post(t, p.AccessToken, meQuery, nil)
	e.get(t, p.AccessToken, meQuery, map[string]any{"password": testPassword})
	logs := e.logs.String()
	if !strings.Contains(logs, `"path":"/query"`) {
		t.Fatalf("no request log lines: %s", logs)
	}
	for _, secret := range []string{testPassword, "wrong password!", p.AccessToken, strings.Split(p.AccessToken, ".")[2], "$2a$"} {
		if strings.Contains(logs, secret) {
			t.Errorf("log contains a secret %q", secret)
		}
	}
}

// The database goes away and comes back: requests fail as internal errors in
// the meantime (nothing is issued, nothing is counted against the account),
// readiness says so, and the server recovers by itself.
func TestDatabaseComesBack(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	db, err := devdb.StartOn(addr, dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	// A short server selection timeout (set through the URI, as users can) keeps
	// the failing requests quick.
	client, err := mongodb.Connect(context.Background(), db.URI()+"?serverSelectionTimeoutMS=300&heartbeatFrequencyMS=500")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	o := defaultOptions()
	o.client = client
	o.db = client.Database("comeback")
	e := newEnvWith(t, o)
	e.mustRegister(t, "olga", "olga@example.com")

	db.Stop()
	for range 6 { // more than the 5 failures that would lock the account, were they counted
		res := e.login(t, "", "olga", testPassword)
		if got := res.code(t); got != "INTERNAL_SERVER_ERROR" {
			t.Fatalf("login with the database down: %s", res.Raw)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/readyz", nil)
	if got := e.send(t, req).Status; got != http.StatusServiceUnavailable {
		t.Errorf("readyz with the database down = %d", got)
	}

	db, err = devdb.StartOn(addr, dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Stop)
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/readyz", nil)
		if e.send(t, req).Status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("readyz never recovered")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if p := payload(t, e.login(t, "", "olga", testPassword), "login"); p.User.Username != "olga" {
		t.Errorf("login after recovery: %+v", p.User)
	}
}
