package playground

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/validator"
	"github.com/vektah/gqlparser/v2/validator/rules"
)

var (
	tagPattern    = regexp.MustCompile(`(?s)<(script)\b([^>]*)>(.*?)</script>|<(link)\b([^>]*)>()`)
	linkPattern   = regexp.MustCompile(`<link\b[^>]*>`)
	attrPattern   = regexp.MustCompile(`([a-z-]+)="([^"]*)"`)
	configPattern = regexp.MustCompile(`(?s)<script id="authgql-playground" type="application/json">(.*?)</script>`)
)

func get(t *testing.T, h http.Handler, target string) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	return rec.Result()
}

func readBody(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func attrs(s string) map[string]string {
	m := map[string]string{}
	for _, a := range attrPattern.FindAllStringSubmatch(s, -1) {
		m[a[1]] = html.UnescapeString(a[2])
	}
	return m
}

func getPage(t *testing.T, h http.Handler) string {
	t.Helper()
	res := get(t, h, "/")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /: status %d", res.StatusCode)
	}
	if got := res.Header.Get("Content-Type"); !strings.HasPrefix(got, "text/html") {
		t.Errorf("Content-Type = %q, want text/html", got)
	}
	return readBody(t, res)
}

// Everything the page runs or styles itself with is one of our embedded files, checked by Subresource
// Integrity against what we serve; no inline script runs (the settings are inert JSON), nothing leaves for a CDN.
func TestPageLoadsOnlyEmbeddedAssetsWithIntegrity(t *testing.T) {
	h := New("authgql", "/query")
	body := getPage(t, h)

	var scripts, styles []string
	for _, m := range tagPattern.FindAllStringSubmatch(body, -1) {
		if m[1] == "" { // a link: its groups come second
			m = append(m[:1], m[4:]...)
		}
		a := attrs(m[2])
		if m[1] == "script" && a["src"] == "" {
			if a["type"] != "application/json" {
				t.Errorf("inline script that runs: %s", m[0])
			}
			continue
		}
		if m[1] == "script" && strings.TrimSpace(m[3]) != "" {
			t.Errorf("script with both src and a body: %s", m[0])
		}
		url := a["src"]
		if m[1] == "link" {
			url = a["href"]
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(url, AssetPrefix), "?")
		if m[1] == "script" {
			scripts = append(scripts, name)
		} else {
			styles = append(styles, name)
		}
		t.Run(name, func(t *testing.T) {
			if !strings.HasPrefix(url, AssetPrefix) {
				t.Fatalf("%s is not one of ours", url)
			}
			if a["crossorigin"] != "anonymous" {
				t.Errorf("crossorigin = %q, want anonymous", a["crossorigin"])
			}
			res := get(t, h, url)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: status %d", url, res.StatusCode)
			}
			if res.Header.Get("Cache-Control") == "" {
				t.Error("assets are served without Cache-Control")
			}
			sum := sha256.Sum256([]byte(readBody(t, res)))
			if want := "sha256-" + base64.StdEncoding.EncodeToString(sum[:]); a["integrity"] != want {
				t.Errorf("integrity = %q, want %q (of what is served)", a["integrity"], want)
			}
		})
	}
	if !slices.Equal(scripts, Scripts) {
		t.Errorf("scripts = %v, want %v", scripts, Scripts)
	}
	if !slices.Equal(styles, Styles) {
		t.Errorf("styles = %v, want %v", styles, Styles)
	}
	if n := len(linkPattern.FindAllString(body, -1)); n != len(Styles) {
		t.Errorf("%d link elements, want %d", n, len(Styles))
	}
	for _, s := range []string{"http:", "https:", "//cdn"} {
		if strings.Contains(body, s) {
			t.Errorf("the page mentions %q", s)
		}
	}
}

// A new build serves a changed file under a new URL: a day-old cached copy would fail its integrity check.
func TestAssetURLsCarryTheirDigest(t *testing.T) {
	body := getPage(t, New("authgql", "/query"))
	for _, name := range append(slices.Clone(Scripts), Styles...) {
		if !regexp.MustCompile(regexp.QuoteMeta(AssetPrefix+name) + `\?v=[\w-]{12}"`).MatchString(body) {
			t.Errorf("%s is not loaded with a ?v= digest", name)
		}
	}
}

func pageConfig(t *testing.T, body string) config {
	t.Helper()
	m := configPattern.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no settings element in the page")
	}
	var c config
	if err := json.Unmarshal([]byte(m[1]), &c); err != nil {
		t.Fatalf("settings: %v\n%s", err, m[1])
	}
	return c
}

func TestPageSettings(t *testing.T) {
	c := pageConfig(t, getPage(t, New("auth</script>gql", "/query")))
	want := config{Title: "auth</script>gql", Endpoint: "/query", Query: DefaultDocument, Variables: DefaultVariables}
	if c != want {
		t.Errorf("settings = %+v, want %+v", c, want)
	}
}

func loadSchema(t *testing.T) *ast.Schema {
	t.Helper()
	src, err := os.ReadFile("../../schema.graphqls")
	if err != nil {
		t.Fatal(err)
	}
	schema, err := gqlparser.LoadSchema(&ast.Source{Name: "schema.graphqls", Input: string(src)})
	if err != nil {
		t.Fatalf("schema: %v", err)
	}
	return schema
}

// The document the Playground opens on is valid against the schema (its subscription included), names the five
// operations of signing in and SecurityEvents, and each runs with the sample variables as they stand.
func TestDefaultDocument(t *testing.T) {
	schema := loadSchema(t)
	doc, errs := gqlparser.LoadQueryWithRules(schema, DefaultDocument, rules.NewDefaultRules())
	if len(errs) > 0 {
		t.Fatalf("the default document does not validate: %v", errs)
	}
	if !strings.HasPrefix(DefaultDocument, "#") || !strings.Contains(DefaultDocument, "Authorization: Bearer") ||
		!strings.Contains(DefaultDocument, "AUTH_COOKIE=on") {
		t.Error("the document does not start with a word on how tokens work")
	}

	var names []string
	for _, op := range doc.Operations {
		names = append(names, op.Name)
	}
	if want := []string{"Register", "Login", "Me", "RefreshToken", "Logout", "SecurityEvents"}; !slices.Equal(names, want) {
		t.Fatalf("operations = %v, want %v", names, want)
	}
	events := doc.Operations.ForName("SecurityEvents")
	if events.Operation != ast.Subscription {
		t.Errorf("SecurityEvents is a %s, want a subscription", events.Operation)
	}
	for _, field := range []string{"type", "at", "sessionId", "current", "userAgent"} {
		if !selects(events.SelectionSet, []string{"securityEvents", field}) {
			t.Errorf("SecurityEvents does not select %s", field)
		}
	}
	if !strings.Contains(DefaultDocument, "# Live") || !strings.Contains(DefaultDocument, "WebSocket") {
		t.Error("SecurityEvents comes without a word on what it streams and how")
	}

	var vars map[string]any
	if err := json.Unmarshal([]byte(DefaultVariables), &vars); err != nil {
		t.Fatalf("default variables: %v", err)
	}
	for _, op := range doc.Operations {
		t.Run(op.Name, func(t *testing.T) {
			if _, err := validator.VariableValues(schema, op, vars); err != nil {
				t.Errorf("with the default variables: %v", err)
			}
			field := op.SelectionSet[0].(*ast.Field)
			if field.Definition.Type.Name() != "AuthPayload" {
				return
			}
			// The page shows who signed in from user { username } and refreshes with the refresh token.
			for _, path := range [][]string{{"accessToken"}, {"refreshToken"}, {"user", "id"}, {"user", "username"}} {
				if !selects(field.SelectionSet, path) {
					t.Errorf("%s does not select %s", field.Name, strings.Join(path, "."))
				}
			}
		})
	}

	// RefreshToken's token is left to the page: an optional $refreshToken.
	refresh := doc.Operations.ForName("RefreshToken")
	if v := refresh.VariableDefinitions.ForName("refreshToken"); v == nil || v.Type.NonNull {
		t.Errorf("RefreshToken does not take an optional $refreshToken")
	}
	if _, ok := vars["refreshToken"]; ok {
		t.Error("the default variables set refreshToken: the page would never pass its own")
	}
}

func selects(set ast.SelectionSet, path []string) bool {
	for _, s := range set {
		if f, ok := s.(*ast.Field); ok && f.Name == path[0] {
			return len(path) == 1 || selects(f.SelectionSet, path[1:])
		}
	}
	return false
}

// The page keeps tokens in memory only: its script writes to no storage and no cookie.
func TestScriptStoresNoToken(t *testing.T) {
	js, err := assets.ReadFile("assets/authgql.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"sessionStorage", "document.cookie", "localStorage.setItem", "indexedDB", ".setItem("} {
		if strings.Contains(string(js), s) {
			t.Errorf("authgql.js uses %s", s)
		}
	}
}

// The subscription client is graphql-ws's browser build, copied unchanged (assets/README.md), loaded with
// integrity before the page's script that uses it.
func TestSubscriptionClientIsEmbedded(t *testing.T) {
	const name = "graphql-ws.min.js"
	const want = "5f1e250bdea0a551d58272048281dbf5b2fb69faa120160bab49485c72b6f24d" // graphql-ws@6.4.2 umd/graphql-ws.min.js
	b, err := assets.ReadFile("assets/" + name)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprintf("%x", sha256.Sum256(b)); got != want {
		t.Errorf("sha256 of %s = %s, want %s (graphql-ws@6.4.2's, unchanged)", name, got, want)
	}
	i, j := slices.Index(Scripts, name), slices.Index(Scripts, "authgql.js")
	if i < 0 || i > j {
		t.Errorf("scripts = %v: %s must load before authgql.js", Scripts, name)
	}

	body := getPage(t, New("authgql", "/query"))
	tag := regexp.MustCompile(`<script src="` + regexp.QuoteMeta(AssetPrefix+name) + `\?v=[\w-]+" integrity="([^"]+)"`).
		FindStringSubmatch(body)
	if tag == nil {
		t.Fatalf("the page does not load %s with integrity", name)
	}
	sum := sha256.Sum256(b)
	if sri := "sha256-" + base64.StdEncoding.EncodeToString(sum[:]); tag[1] != sri {
		t.Errorf("integrity = %q, want %q", tag[1], sri)
	}
}

// The socket authenticates in connection_init, never in its URL: the script builds the URL from the endpoint
// alone and sends the token as the Authorization of the payload.
func TestScriptSubscribesWithTheTokenInConnectionInit(t *testing.T) {
	js, err := assets.ReadFile("assets/authgql.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"graphqlWs.createClient", "connectionParams", "{ Authorization: `Bearer ${token}` }"} {
		if !strings.Contains(string(js), s) {
			t.Errorf("authgql.js lacks %q", s)
		}
	}
	for _, s := range []string{"searchParams", "?token", "&token", "access_token"} {
		if strings.Contains(string(js), s) {
			t.Errorf("authgql.js uses %q: a token in the socket's URL?", s)
		}
	}
}
