package federation

import (
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func TestPresets(t *testing.T) {
	for _, tc := range []struct {
		name string
		want Provider
	}{
		{"google", Provider{Name: "google", Kind: KindOIDC, Issuer: "https://accounts.google.com",
			Scopes: []string{"openid", "email", "profile"}, DisplayName: "Google"}},
		{"microsoft", Provider{Name: "microsoft", Kind: KindOIDC, Issuer: "https://login.microsoftonline.com/common/v2.0",
			TenantIssuer: "https://login.microsoftonline.com/{tenantid}/v2.0",
			Scopes:       []string{"openid", "email", "profile"}, DisplayName: "Microsoft"}},
		{"github", Provider{Name: "github", Kind: KindGitHub, GitHubURL: "https://github.com",
			GitHubAPIURL: "https://api.github.com", Scopes: []string{"read:user", "user:email"}, DisplayName: "GitHub"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := Preset(tc.name)
			if !ok || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Preset(%q) = %+v, %v; want %+v", tc.name, got, ok, tc.want)
			}
			got.Scopes[0] = "changed"
			if again, _ := Preset(tc.name); again.Scopes[0] == "changed" || DefaultScopes[0] != "openid" ||
				GitHubScopes[0] != "read:user" {
				t.Error("a preset's scopes are shared with the package's")
			}
		})
	}
	for _, name := range []string{"", "Google", "okta", "apple", "gitlab"} {
		if p, ok := Preset(name); ok {
			t.Errorf("Preset(%q) = %+v, want none", name, p)
		}
	}
}

// TestGitHubPresetEndpoints: the github preset begins at github.com without
// any network call, with PKCE and the preset's scopes.
func TestGitHubPresetEndpoints(t *testing.T) {
	p := GitHub()
	p.ClientID, p.ClientSecret = "Iv1.client", "secret"
	h := newHarness(t, p)
	if got := h.reg.Providers(); len(got) != 1 || !got[0].Ready || got[0].DisplayName != "GitHub" {
		t.Errorf("Providers = %+v, want GitHub ready", got)
	}
	st, err := h.reg.Begin(t.Context(), "github", BeginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(st.URL)
	if got := u.Scheme + "://" + u.Host + u.Path; got != "https://github.com/login/oauth/authorize" {
		t.Errorf("authorization endpoint %s", got)
	}
	q := u.Query()
	if q.Get("scope") != "read:user user:email" || q.Get("code_challenge_method") != "S256" || q.Has("nonce") ||
		q.Get("client_id") != "Iv1.client" || strings.Contains(st.URL, "secret") {
		t.Errorf("authorization URL %s", st.URL)
	}
	d := h.reg.providers["github"].ready.Load()
	if d.oauth.Endpoint.TokenURL != "https://github.com/login/oauth/access_token" {
		t.Errorf("token endpoint %s", d.oauth.Endpoint.TokenURL)
	}

	// GitHub Enterprise Server: the web host and the API elsewhere.
	p.GitHubURL, p.GitHubAPIURL = "https://ghe.example.com/", "https://ghe.example.com/api/v3/"
	h = newHarness(t, p)
	d = h.reg.providers["github"].ready.Load()
	if d.oauth.Endpoint.AuthURL != "https://ghe.example.com/login/oauth/authorize" ||
		h.reg.providers["github"].cfg.GitHubAPIURL != "https://ghe.example.com/api/v3" {
		t.Errorf("GitHub Enterprise endpoints %+v, API %s", d.oauth.Endpoint, h.reg.providers["github"].cfg.GitHubAPIURL)
	}
}

func TestNewRegistryRefusesBadProviders(t *testing.T) {
	for name, p := range map[string]Provider{
		"OIDC without issuer":  {Name: "x", ClientID: "id"},
		"GitHub without id":    {Name: "gh", Kind: KindGitHub},
		"unknown kind":         {Name: "x", Kind: "saml", Issuer: "https://idp.example", ClientID: "id"},
		"tenant without {...}": {Name: "x", Issuer: "https://idp.example", ClientID: "id", TenantIssuer: "https://idp.example"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := NewRegistry(t.Context(), Options{Providers: []Provider{p}, Flows: &memFlows{}, Claims: &memClaims{}})
			if err == nil {
				t.Error("NewRegistry accepted it")
			}
		})
	}
}
