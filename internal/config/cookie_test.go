package config_test

import "testing"

func TestLoadAuthCookieDefaults(t *testing.T) {
	for name, m := range map[string]map[string]string{"development": {}, "production": prodEnv(nil)} {
		t.Run(name, func(t *testing.T) {
			c := load(t, m)
			if c.AuthCookie || c.AuthCookieDomain != "" || c.AuthCookieSameSite != "Strict" {
				t.Errorf("AuthCookie, AuthCookieDomain, AuthCookieSameSite: got %v, %q, %q, want false, \"\", Strict",
					c.AuthCookie, c.AuthCookieDomain, c.AuthCookieSameSite)
			}
		})
	}
}

func TestLoadAuthCookie(t *testing.T) {
	c := load(t, prodEnv(map[string]string{
		"AUTH_COOKIE":          "on",
		"AUTH_COOKIE_DOMAIN":   ".Example.com",
		"AUTH_COOKIE_SAMESITE": "Lax",
		"CORS_ALLOWED_ORIGINS": "https://app.example.com,https://*.example.com",
	}))
	if !c.AuthCookie || c.AuthCookieDomain != "example.com" || c.AuthCookieSameSite != "Lax" {
		t.Errorf("got %v, %q, %q, want true, example.com, Lax", c.AuthCookie, c.AuthCookieDomain, c.AuthCookieSameSite)
	}
	// The development default origins (http://localhost:*) are specific sites: allowed with credentials.
	if c := load(t, map[string]string{"AUTH_COOKIE": "on"}); !c.AuthCookie || len(c.CORSAllowedOrigins) == 0 {
		t.Errorf("AUTH_COOKIE=on in development: got %v with origins %q, want on with the loopback defaults",
			c.AuthCookie, c.CORSAllowedOrigins)
	}
}

func TestLoadAuthCookieRefused(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"unknown mode", map[string]string{"AUTH_COOKIE": "yes"}, []string{"AUTH_COOKIE", `"yes"`}},
		{"SameSite None", map[string]string{"AUTH_COOKIE_SAMESITE": "None"}, []string{"AUTH_COOKIE_SAMESITE", `"None"`}},
		{"any origin with credentials", map[string]string{"AUTH_COOKIE": "on", "CORS_ALLOWED_ORIGINS": "https://app.example.com,*"},
			[]string{"CORS_ALLOWED_ORIGINS", `"*"`, "AUTH_COOKIE=on"}},
		{"wildcard host", map[string]string{"AUTH_COOKIE": "on", "CORS_ALLOWED_ORIGINS": "https://*"}, []string{`"https://*"`}},
		{"wildcard host and port", map[string]string{"AUTH_COOKIE": "on", "CORS_ALLOWED_ORIGINS": "http://*:*"}, []string{`"http://*:*"`}},
		{"wildcard over a TLD", map[string]string{"AUTH_COOKIE": "on", "CORS_ALLOWED_ORIGINS": "https://*.com"}, []string{`"https://*.com"`}},
		{"domain with scheme", map[string]string{"AUTH_COOKIE_DOMAIN": "https://example.com"}, []string{"AUTH_COOKIE_DOMAIN"}},
		{"domain with port", map[string]string{"AUTH_COOKIE_DOMAIN": "example.com:443"}, []string{"AUTH_COOKIE_DOMAIN"}},
		{"domain not PUBLIC_URL's", prodEnv(map[string]string{"AUTH_COOKIE": "on", "AUTH_COOKIE_DOMAIN": "other.com"}),
			[]string{"AUTH_COOKIE_DOMAIN", `"other.com"`, "PUBLIC_URL"}},
		{"domain a sibling of PUBLIC_URL's", prodEnv(map[string]string{"AUTH_COOKIE_DOMAIN": "app.example.com"}),
			[]string{"AUTH_COOKIE_DOMAIN"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loadErr(t, tt.env, tt.want...)
		})
	}
	// "*" is fine without the cookie: no credentials are ever allowed then.
	if c := load(t, map[string]string{"CORS_ALLOWED_ORIGINS": "*"}); c.AuthCookie {
		t.Errorf("AuthCookie: got true, want false")
	}
}
