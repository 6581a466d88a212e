package api

import (
	"net/http/httptest"
	"net/url"
	"testing"
)

// A flow begun on another loopback name than PUBLIC_URL's starts over on
// PUBLIC_URL's host (its binding cookie is host-only, and the provider calls
// back there); any other host is left alone, so no proxy can make it loop.
func TestLoopbackAlias(t *testing.T) {
	public, _ := url.Parse("http://127.0.0.1:8080")
	for _, c := range []struct {
		public *url.URL
		target string
		want   string
	}{
		{public, "http://localhost:8080/auth/google?redirect=%2Fhome&link=T", "http://127.0.0.1:8080/auth/google?redirect=%2Fhome&link=T"},
		{public, "http://[::1]:8080/auth/google", "http://127.0.0.1:8080/auth/google"},
		{public, "http://127.0.0.1:8080/auth/google", ""},                              // already there
		{public, "http://auth.example.com/auth/google", ""},                            // not loopback: a proxy's Host, never rewritten
		{mustURL("https://auth.example.com"), "http://localhost:8080/auth/google", ""}, // production: PUBLIC_URL not loopback
		{nil, "http://localhost:8080/auth/google", ""},
	} {
		r := httptest.NewRequest("GET", c.target, nil)
		got, ok := loopbackAlias(c.public, r)
		if got != c.want || ok != (c.want != "") {
			t.Errorf("%s (PUBLIC_URL %v): %q %v, want %q", c.target, c.public, got, ok, c.want)
		}
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}
