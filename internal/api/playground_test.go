package api_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"html"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

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
	// GraphiQL, React, ReactDOM and the explorer (a script and a style each
	// but React's), and the page's own script.
	if len(refs) < 7 {
		t.Fatalf("found %d assets with integrity in the page, want at least 7", len(refs))
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
