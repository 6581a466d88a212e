package api_test

import (
	"net/http"
	"strings"
	"testing"
)

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
