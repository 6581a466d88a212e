package config_test

import (
	"slices"
	"strings"
	"testing"
)

func TestLoadWebAuthnDefaults(t *testing.T) {
	t.Run("development", func(t *testing.T) {
		c := load(t, map[string]string{})
		if c.WebAuthnRPID != "localhost" || c.WebAuthnRPName != "authgql" || !c.WebAuthnAnyLoopback {
			t.Errorf("RP ID %q, name %q, any loopback %v; want localhost, authgql, true", c.WebAuthnRPID, c.WebAuthnRPName,
				c.WebAuthnAnyLoopback)
		}
		// The CORS defaults are patterns, not origins; PUBLIC_URL's origin is one.
		if want := []string{"http://127.0.0.1:8080"}; !slices.Equal(c.WebAuthnOrigins, want) {
			t.Errorf("origins %q, want %q", c.WebAuthnOrigins, want)
		}
	})
	t.Run("production", func(t *testing.T) {
		c := load(t, prodEnv(map[string]string{
			"CORS_ALLOWED_ORIGINS": "https://app.example.com, https://*.example.com, https://other.example.org",
		}))
		if c.WebAuthnRPID != "app.example.com" || c.WebAuthnAnyLoopback {
			t.Errorf("RP ID %q, any loopback %v; want app.example.com (the first origin's host), false", c.WebAuthnRPID,
				c.WebAuthnAnyLoopback)
		}
		// The pattern is not an origin; the others are not on the RP ID's domain.
		if want := []string{"https://app.example.com"}; !slices.Equal(c.WebAuthnOrigins, want) {
			t.Errorf("origins %q, want %q", c.WebAuthnOrigins, want)
		}
	})
	t.Run("production, PUBLIC_URL only", func(t *testing.T) {
		c := load(t, prodEnv(nil))
		if c.WebAuthnRPID != "auth.example.com" || !slices.Equal(c.WebAuthnOrigins, []string{"https://auth.example.com"}) {
			t.Errorf("RP ID %q, origins %q; want auth.example.com and its origin", c.WebAuthnRPID, c.WebAuthnOrigins)
		}
	})
	t.Run("production, RP ID of a parent domain", func(t *testing.T) {
		c := load(t, prodEnv(map[string]string{"CORS_ALLOWED_ORIGINS": "https://app.example.com", "WEBAUTHN_RP_ID": "Example.com",
			"WEBAUTHN_RP_NAME": "Example"}))
		want := []string{"https://app.example.com", "https://auth.example.com"}
		if c.WebAuthnRPID != "example.com" || c.WebAuthnRPName != "Example" || !slices.Equal(c.WebAuthnOrigins, want) {
			t.Errorf("RP ID %q, name %q, origins %q; want example.com, Example, %q", c.WebAuthnRPID, c.WebAuthnRPName,
				c.WebAuthnOrigins, want)
		}
	})
	t.Run("production, nothing usable: passkeys off", func(t *testing.T) {
		c := load(t, prodEnv(map[string]string{"PUBLIC_URL": "http://auth.example.com"}))
		if c.WebAuthnRPID != "" || len(c.WebAuthnOrigins) != 0 {
			t.Errorf("RP ID %q, origins %q; want passkeys off (no https origin)", c.WebAuthnRPID, c.WebAuthnOrigins)
		}
	})
}

func TestLoadWebAuthnExplicit(t *testing.T) {
	c := load(t, prodEnv(map[string]string{"WEBAUTHN_ORIGINS": "https://App.Example.com/, https://login.app.example.com"}))
	if want := []string{"https://app.example.com", "https://login.app.example.com"}; c.WebAuthnRPID != "app.example.com" ||
		!slices.Equal(c.WebAuthnOrigins, want) {
		t.Errorf("RP ID %q, origins %q; want app.example.com (the first origin's host), %q", c.WebAuthnRPID, c.WebAuthnOrigins, want)
	}
	// The first origin's host is the default RP ID: another domain's origin
	// cannot use its passkeys.
	loadErr(t, prodEnv(map[string]string{"WEBAUTHN_ORIGINS": "https://app.example.com, https://example.com:8443"}),
		`"https://example.com:8443" is not on WEBAUTHN_RP_ID "app.example.com"`)
	c = load(t, prodEnv(map[string]string{"WEBAUTHN_RP_ID": "example.com",
		"WEBAUTHN_ORIGINS": "https://app.example.com, https://example.com:8443"}))
	if want := []string{"https://app.example.com", "https://example.com:8443"}; !slices.Equal(c.WebAuthnOrigins, want) ||
		c.WebAuthnAnyLoopback {
		t.Errorf("origins %q, any loopback %v; want %q, false", c.WebAuthnOrigins, c.WebAuthnAnyLoopback, want)
	}
	// Explicit origins in development: exactly those, no loopback allowance.
	c = load(t, map[string]string{"WEBAUTHN_ORIGINS": "http://localhost:3000"})
	if c.WebAuthnRPID != "localhost" || c.WebAuthnAnyLoopback || !slices.Equal(c.WebAuthnOrigins, []string{"http://localhost:3000"}) {
		t.Errorf("RP ID %q, any loopback %v, origins %q", c.WebAuthnRPID, c.WebAuthnAnyLoopback, c.WebAuthnOrigins)
	}
}

func TestLoadWebAuthnRefused(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"pattern", map[string]string{"WEBAUTHN_ORIGINS": "https://*.example.com"}, "not an exact origin"},
		{"path", map[string]string{"WEBAUTHN_ORIGINS": "https://app.example.com/login"}, "not an exact origin"},
		{"no scheme", map[string]string{"WEBAUTHN_ORIGINS": "app.example.com"}, "not an exact origin"},
		{"http in production", map[string]string{"WEBAUTHN_ORIGINS": "http://app.example.com"}, "must use https"},
		{"origin off the RP ID", map[string]string{"WEBAUTHN_RP_ID": "example.com", "WEBAUTHN_ORIGINS": "https://example.org"},
			"not on WEBAUTHN_RP_ID"},
		{"RP ID with a scheme", map[string]string{"WEBAUTHN_RP_ID": "https://example.com"}, "WEBAUTHN_RP_ID must be a domain"},
		{"RP ID with a port", map[string]string{"WEBAUTHN_RP_ID": "example.com:443"}, "WEBAUTHN_RP_ID must be a domain"},
		{"RP ID an IP address", map[string]string{"WEBAUTHN_RP_ID": "10.0.0.1"}, "WEBAUTHN_RP_ID must be a domain"},
		{"RP ID without origins on it", map[string]string{"WEBAUTHN_RP_ID": "example.org"}, "no https origin on WEBAUTHN_RP_ID"},
		{"long name", map[string]string{"WEBAUTHN_RP_NAME": strings.Repeat("x", 65)}, "WEBAUTHN_RP_NAME"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loadErr(t, prodEnv(tt.env), tt.want)
		})
	}
}
