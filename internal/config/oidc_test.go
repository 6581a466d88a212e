package config_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/authgql/server/internal/federation"
)

func TestLoadOIDCNone(t *testing.T) {
	for name, m := range map[string]map[string]string{
		"development": {}, "production": prodEnv(nil), "blank list": {"OIDC_PROVIDERS": " , "},
	} {
		t.Run(name, func(t *testing.T) {
			if c := load(t, m); c.OIDCProviders != nil {
				t.Errorf("OIDCProviders = %+v, want none", c.OIDCProviders)
			}
		})
	}
}

func TestLoadOIDCProviders(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []federation.Provider
	}{
		{
			"presets need only a client",
			map[string]string{
				"OIDC_PROVIDERS":                "google, microsoft,github",
				"OIDC_GOOGLE_CLIENT_ID":         "g-id",
				"OIDC_GOOGLE_CLIENT_SECRET":     "g-secret",
				"OIDC_MICROSOFT_CLIENT_ID":      "m-id",
				"OIDC_MICROSOFT_CLIENT_SECRET":  "m-secret",
				"OIDC_GITHUB_CLIENT_ID":         "gh-id",
				"OIDC_GITHUB_CLIENT_SECRET":     "gh-secret",
				"OIDC_GOOGLE_DISPLAY_NAME":      "Google Workspace",
				"OIDC_MICROSOFT_SCOPES":         "openid,email, profile offline_access",
				"OIDC_UNLISTED_CLIENT_ID":       "ignored",
				"OIDC_GITHUB_UNKNOWN_SETTING_X": "ignored",
			},
			[]federation.Provider{
				{Name: "google", Kind: federation.KindOIDC, Issuer: "https://accounts.google.com", ClientID: "g-id",
					ClientSecret: "g-secret", Scopes: []string{"openid", "email", "profile"}, DisplayName: "Google Workspace"},
				{Name: "microsoft", Kind: federation.KindOIDC, Issuer: "https://login.microsoftonline.com/common/v2.0",
					TenantIssuer: "https://login.microsoftonline.com/{tenantid}/v2.0", ClientID: "m-id", ClientSecret: "m-secret",
					Scopes: []string{"openid", "email", "profile", "offline_access"}, DisplayName: "Microsoft"},
				{Name: "github", Kind: federation.KindGitHub, ClientID: "gh-id", ClientSecret: "gh-secret",
					Scopes: []string{"read:user", "user:email"}, DisplayName: "GitHub",
					GitHubURL: "https://github.com", GitHubAPIURL: "https://api.github.com"},
			},
		},
		{
			"any issuer, by name",
			map[string]string{
				"OIDC_PROVIDERS":                "my-idp",
				"OIDC_MY_IDP_ISSUER":            "https://idp.example.com/realms/main/",
				"OIDC_MY_IDP_CLIENT_ID":         "authgql",
				"OIDC_MY_IDP_CLIENT_SECRET":     "s3cret",
				"OIDC_MY_IDP_SCOPES":            "openid email",
				"OIDC_MY_IDP_DISPLAY_NAME":      "Example SSO",
				"OIDC_MY-IDP_CLIENT_ID":         "not read",
				"OIDC_MY_IDP_TENANT_IS_NOT_SET": "ignored",
			},
			[]federation.Provider{{Name: "my-idp", Kind: federation.KindOIDC, Issuer: "https://idp.example.com/realms/main/",
				ClientID: "authgql", ClientSecret: "s3cret", Scopes: []string{"openid", "email"}, DisplayName: "Example SSO"}},
		},
		{
			"defaults: scopes and the name as display name",
			map[string]string{
				"OIDC_PROVIDERS": "okta", "OIDC_OKTA_ISSUER": "https://example.okta.com",
				"OIDC_OKTA_CLIENT_ID": "id", "OIDC_OKTA_CLIENT_SECRET": "secret",
			},
			[]federation.Provider{{Name: "okta", Kind: federation.KindOIDC, Issuer: "https://example.okta.com",
				ClientID: "id", ClientSecret: "secret", Scopes: []string{"openid", "email", "profile"}, DisplayName: "okta"}},
		},
		{
			"GitHub Enterprise Server, or a local stand-in",
			map[string]string{
				"OIDC_PROVIDERS": "github", "OIDC_GITHUB_CLIENT_ID": "id", "OIDC_GITHUB_CLIENT_SECRET": "secret",
				"OIDC_GITHUB_URL": "https://ghe.example.com/", "OIDC_GITHUB_API_URL": "https://ghe.example.com/api/v3",
				"OIDC_GITHUB_SCOPES": "user:email",
			},
			[]federation.Provider{{Name: "github", Kind: federation.KindGitHub, ClientID: "id", ClientSecret: "secret",
				Scopes: []string{"user:email"}, DisplayName: "GitHub",
				GitHubURL: "https://ghe.example.com", GitHubAPIURL: "https://ghe.example.com/api/v3"}},
		},
	}
	for _, tt := range tests {
		for _, env := range []string{"development", "production"} {
			t.Run(tt.name+", "+env, func(t *testing.T) {
				m := tt.env
				if env == "production" {
					m = prodEnv(tt.env)
				}
				c := load(t, m)
				if !reflect.DeepEqual(c.OIDCProviders, tt.want) {
					t.Errorf("OIDCProviders =\n%+v\nwant\n%+v", c.OIDCProviders, tt.want)
				}
			})
		}
	}

	t.Run("http outside production", func(t *testing.T) {
		c := load(t, map[string]string{
			"OIDC_PROVIDERS": "local,github", "OIDC_LOCAL_ISSUER": "http://127.0.0.1:5556/dex",
			"OIDC_LOCAL_CLIENT_ID": "id", "OIDC_LOCAL_CLIENT_SECRET": "secret",
			"OIDC_GITHUB_CLIENT_ID": "id", "OIDC_GITHUB_CLIENT_SECRET": "secret",
			"OIDC_GITHUB_URL": "http://127.0.0.1:9999", "OIDC_GITHUB_API_URL": "http://127.0.0.1:9999",
		})
		if len(c.OIDCProviders) != 2 || c.OIDCProviders[0].Issuer != "http://127.0.0.1:5556/dex" ||
			c.OIDCProviders[1].GitHubAPIURL != "http://127.0.0.1:9999" {
			t.Errorf("OIDCProviders = %+v", c.OIDCProviders)
		}
	})
}

func TestLoadOIDCRefused(t *testing.T) {
	google := map[string]string{"OIDC_GOOGLE_CLIENT_ID": "id", "OIDC_GOOGLE_CLIENT_SECRET": "secret"}
	with := func(base map[string]string, kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	okta := map[string]string{"OIDC_PROVIDERS": "okta", "OIDC_OKTA_ISSUER": "https://example.okta.com",
		"OIDC_OKTA_CLIENT_ID": "id", "OIDC_OKTA_CLIENT_SECRET": "secret"}
	tests := []struct {
		name string
		prod bool
		env  map[string]string
		want []string
	}{
		{"upper-case name", false, with(google, "OIDC_PROVIDERS", "Google"), []string{`"Google" is not a provider name`}},
		{"underscore", false, with(nil, "OIDC_PROVIDERS", "my_idp"), []string{`"my_idp" is not a provider name`}},
		{"slash", false, with(nil, "OIDC_PROVIDERS", "a/b"), []string{`"a/b" is not a provider name`}},
		{"dot", false, with(nil, "OIDC_PROVIDERS", "a.b"), []string{`"a.b" is not a provider name`}},
		{"too long", false, with(nil, "OIDC_PROVIDERS", strings.Repeat("a", 33)), []string{"is not a provider name"}},
		{"duplicate", false, with(google, "OIDC_PROVIDERS", "google,google"), []string{`"google" is listed twice`}},
		{"no issuer", false, with(okta, "OIDC_OKTA_ISSUER", ""), []string{"OIDC_OKTA_ISSUER is required"}},
		{"issuer over http in production", true, with(okta, "OIDC_OKTA_ISSUER", "http://example.okta.com"),
			[]string{"OIDC_OKTA_ISSUER must be an https URL"}},
		{"issuer not a URL", false, with(okta, "OIDC_OKTA_ISSUER", "example.okta.com"),
			[]string{"OIDC_OKTA_ISSUER must be an https URL"}},
		{"issuer with a query", false, with(okta, "OIDC_OKTA_ISSUER", "https://example.okta.com/?x=1"),
			[]string{"OIDC_OKTA_ISSUER must be an https URL"}},
		{"issuer with credentials", false, with(okta, "OIDC_OKTA_ISSUER", "https://u:p@example.okta.com"),
			[]string{"OIDC_OKTA_ISSUER must be an https URL"}},
		{"issuer of a preset", false, with(google, "OIDC_PROVIDERS", "google", "OIDC_GOOGLE_ISSUER", "https://evil.example"),
			[]string{"OIDC_GOOGLE_ISSUER: google is a preset"}},
		{"no client id", false, with(okta, "OIDC_OKTA_CLIENT_ID", ""),
			[]string{"OIDC_OKTA_CLIENT_ID and OIDC_OKTA_CLIENT_SECRET are required"}},
		{"no client secret", false, with(google, "OIDC_PROVIDERS", "google", "OIDC_GOOGLE_CLIENT_SECRET", " "),
			[]string{"OIDC_GOOGLE_CLIENT_ID and OIDC_GOOGLE_CLIENT_SECRET are required", "/auth/google/callback"}},
		{"hyphenated name, env key with underscores", false, with(nil, "OIDC_PROVIDERS", "my-idp",
			"OIDC_MY-IDP_ISSUER", "https://idp.example.com"), []string{"OIDC_MY_IDP_ISSUER is required"}},
		{"scopes without openid", false, with(okta, "OIDC_OKTA_SCOPES", "email profile"),
			[]string{"OIDC_OKTA_SCOPES must include openid"}},
		{"github scopes without user:email", false, with(nil, "OIDC_PROVIDERS", "github", "OIDC_GITHUB_CLIENT_ID", "id",
			"OIDC_GITHUB_CLIENT_SECRET", "secret", "OIDC_GITHUB_SCOPES", "read:user"),
			[]string{"OIDC_GITHUB_SCOPES must include user:email"}},
		{"github URL over http in production", true, with(nil, "OIDC_PROVIDERS", "github", "OIDC_GITHUB_CLIENT_ID", "id",
			"OIDC_GITHUB_CLIENT_SECRET", "secret", "OIDC_GITHUB_URL", "http://ghe.example.com",
			"OIDC_GITHUB_API_URL", "ftp://ghe.example.com"),
			[]string{"OIDC_GITHUB_URL must be an https URL", "OIDC_GITHUB_API_URL must be an https URL"}},
		{"long display name", false, with(okta, "OIDC_OKTA_DISPLAY_NAME", strings.Repeat("é", 65)),
			[]string{"OIDC_OKTA_DISPLAY_NAME has at most 64 characters"}},
		{"no APP_URL in production", true, with(okta, "APP_URL", "", "MAIL_DISABLED", "true"),
			[]string{"PUBLIC_URL and APP_URL are required in production with OIDC_PROVIDERS"}},
		{"no PUBLIC_URL in production", true, with(okta, "PUBLIC_URL", ""),
			[]string{"PUBLIC_URL and APP_URL are required in production with OIDC_PROVIDERS"}},
		{"every problem at once", false, with(nil, "OIDC_PROVIDERS", "Bad,okta,google"),
			[]string{`"Bad" is not a provider name`, "OIDC_OKTA_ISSUER is required", "OIDC_GOOGLE_CLIENT_ID and"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.env
			if tt.prod {
				m = prodEnv(tt.env)
			}
			loadErr(t, m, tt.want...)
		})
	}
	// Without providers, production needs no APP_URL when mail is off.
	load(t, prodEnv(map[string]string{"APP_URL": "", "MAIL_DISABLED": "true"}))
}
