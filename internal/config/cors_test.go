package config_test

import (
	"slices"
	"strings"
	"testing"
)

// wantLoopbackOnly asserts that a development default for CORS, if any, only
// lets in local front-end dev servers: never "*", never a remote origin.
func wantLoopbackOnly(t *testing.T, origins []string) {
	t.Helper()
	for _, o := range origins {
		if !strings.HasPrefix(o, "http://localhost:") && !strings.HasPrefix(o, "http://127.0.0.1:") {
			t.Errorf("default CORSAllowedOrigins in development: got %q, want loopback origins only", origins)
			return
		}
	}
}

func TestLoadCORSAllowedOriginsUnset(t *testing.T) {
	t.Run("production", func(t *testing.T) {
		for _, v := range []string{"", " ", ", ,"} {
			if got := load(t, prodEnv(map[string]string{"CORS_ALLOWED_ORIGINS": v})).CORSAllowedOrigins; len(got) != 0 {
				t.Errorf("CORSAllowedOrigins for %q in production: got %q, want none", v, got)
			}
		}
	})
	t.Run("development", func(t *testing.T) {
		wantLoopbackOnly(t, load(t, map[string]string{}).CORSAllowedOrigins)
	})
}

func TestLoadCORSAllowedOrigins(t *testing.T) {
	tests := []struct {
		name  string
		value string
		want  []string
	}{
		{"one", "https://app.example.com", []string{"https://app.example.com"}},
		{
			"comma list with spaces and trailing slashes",
			" https://app.example.com/ , http://localhost:3000,https://admin.example.com// ",
			[]string{"https://app.example.com", "http://localhost:3000", "https://admin.example.com"},
		},
		{"empty items skipped", ",https://a.example.com,, ,", []string{"https://a.example.com"}},
		{"wildcard", "*", []string{"*"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := load(t, map[string]string{"CORS_ALLOWED_ORIGINS": tt.value}).CORSAllowedOrigins
			if !slices.Equal(got, tt.want) {
				t.Errorf("CORSAllowedOrigins: got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLoadCORSAllowedOriginsRefused(t *testing.T) {
	tests := []struct {
		name  string
		value string
		bad   string
	}{
		{"no scheme", "example.com", "example.com"},
		{"no scheme after a good one", "https://ok.example.com, app.example.com", "app.example.com"},
		{"other scheme", "ftp://example.com", "ftp://example.com"},
		{"scheme-relative", "//example.com", "//example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loadErr(t, map[string]string{"CORS_ALLOWED_ORIGINS": tt.value}, "CORS_ALLOWED_ORIGINS", `"`+tt.bad+`"`)
		})
	}
}
