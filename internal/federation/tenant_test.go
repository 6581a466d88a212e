package federation

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"
)

// tenantUser is a mockoidc user whose ID tokens carry a tid claim and the
// issuer iss, as Microsoft's common endpoint issues them.
type tenantUser struct {
	*mockoidc.MockUser
	tid, iss string
	edov     any // the xms_edov claim, when not nil
}

func (u tenantUser) Claims(scope []string, c *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	c.Issuer = u.iss
	base, err := u.MockUser.Claims(scope, c)
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(base)
	if err != nil {
		return nil, err
	}
	m := jwt.MapClaims{}
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	if u.tid != "" {
		m["tid"] = u.tid
	}
	if u.edov != nil {
		m["xms_edov"] = u.edov
	}
	return m, nil
}

// startTenantMock starts a mockoidc whose discovery document names the
// issuer template(m), like login.microsoftonline.com/common/v2.0 names
// https://login.microsoftonline.com/{tenantid}/v2.0.
func startTenantMock(t *testing.T, template func(m *mockoidc.MockOIDC) string) *mockoidc.MockOIDC {
	t.Helper()
	var m *mockoidc.MockOIDC
	rewrite := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.HasSuffix(r.URL.Path, "/.well-known/openid-configuration") {
				next.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			var doc map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			doc["issuer"] = template(m)
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(doc)
		})
	}
	m = startMock(t, nil, rewrite)
	return m
}

func tenantTemplate(m *mockoidc.MockOIDC) string { return m.Addr() + "/" + TenantPlaceholder + "/v2.0" }

func tenantProvider(m *mockoidc.MockOIDC) Provider {
	p := mockProvider("microsoft", m)
	p.TenantIssuer = tenantTemplate(m)
	return p
}

// TestFederationTenantIssuer: with discovery naming a tenant template (as
// Microsoft's common endpoint does), a token is accepted only when its iss
// is the template with its own tid.
func TestFederationTenantIssuer(t *testing.T) {
	m := startTenantMock(t, tenantTemplate)
	h := newHarness(t, tenantProvider(m))
	if got := h.reg.Providers(); len(got) != 1 || !got[0].Ready {
		t.Fatalf("Providers = %+v, want microsoft discovered\n%s", got, h.log.String())
	}
	const tenant, other = "9188040d-6c67-4c5b-b112-36a304b66dad", "72f988bf-86f1-41af-91ab-2d7cd011db47"
	issuer := func(tid string) string { return m.Addr() + "/" + tid + "/v2.0" }
	user := func(tid, iss string, edov any) tenantUser {
		u := mockoidc.DefaultUser()
		u.EmailVerified = false // Microsoft sends no email_verified
		return tenantUser{MockUser: u, tid: tid, iss: iss, edov: edov}
	}
	for _, tc := range []struct {
		name         string
		user         tenantUser
		reason       string // "" for success
		wantVerified bool
	}{
		{"own tenant", user(tenant, issuer(tenant), nil), "", false},
		{"own tenant, email domain owner verified", user(tenant, issuer(tenant), true), "", true},
		{"own tenant, xms_edov as a string", user(tenant, issuer(tenant), "true"), "", true},
		{"xms_edov false", user(tenant, issuer(tenant), false), "", false},
		{"another tenant's issuer", user(tenant, issuer(other), nil), "not by its tenant's issuer", false},
		{"the template itself", user(TenantPlaceholder, tenantTemplate(m), nil), "no valid tid", false},
		{"no tid", user("", issuer(tenant), nil), "no valid tid", false},
		{"tid with a path", user(tenant+"/v2.0", issuer(tenant+"/v2.0"), nil), "no valid tid", false},
		{"a foreign host", user(tenant, "https://evil.example/"+tenant+"/v2.0", true), "not by its tenant's issuer", false},
		{"the discovery URL as issuer", user(tenant, m.Issuer(), nil), "not by its tenant's issuer", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m.QueueUser(tc.user)
			res, err := h.finish(t, "microsoft", authorize(t, begin(t, h, "microsoft", "")))
			if tc.reason != "" {
				wantCode(t, res, err, ProviderError)
				if err != nil && !strings.Contains(err.Error(), tc.reason) {
					t.Errorf("err = %v, want %s", err, tc.reason)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := Identity{Provider: "microsoft", Subject: "1234567890", Email: "jane.doe@example.com",
				EmailVerified: tc.wantVerified, PreferredUsername: "jane.doe"}
			if res.Identity != want {
				t.Errorf("Identity = %+v, want %+v", res.Identity, want)
			}
		})
	}

	t.Run("xms_edov counts only for a tenant issuer", func(t *testing.T) {
		plain := startMock(t, nil)
		h := newHarness(t, mockProvider("plain", plain))
		u := mockoidc.DefaultUser()
		u.EmailVerified = false
		plain.QueueUser(tenantUser{MockUser: u, tid: tenant, iss: plain.Issuer(), edov: true})
		res, err := h.finish(t, "plain", authorize(t, begin(t, h, "plain", "")))
		if err != nil {
			t.Fatal(err)
		}
		if res.Identity.EmailVerified {
			t.Errorf("Identity = %+v, want the email unverified", res.Identity)
		}
	})
}

// TestFederationTenantIssuerDiscovery: discovery must name exactly the
// configured template; anything else leaves the provider undiscovered.
func TestFederationTenantIssuerDiscovery(t *testing.T) {
	for name, template := range map[string]func(*mockoidc.MockOIDC) string{
		"a fixed issuer":     func(m *mockoidc.MockOIDC) string { return m.Addr() + "/9188040d/v2.0" },
		"another template":   func(m *mockoidc.MockOIDC) string { return "https://evil.example/" + TenantPlaceholder + "/v2.0" },
		"the discovery URL":  func(m *mockoidc.MockOIDC) string { return m.Issuer() },
		"no issuer at all":   func(*mockoidc.MockOIDC) string { return "" },
		"template, trailing": func(m *mockoidc.MockOIDC) string { return tenantTemplate(m) + "/" },
	} {
		t.Run(name, func(t *testing.T) {
			m := startTenantMock(t, template)
			h := newHarness(t, tenantProvider(m))
			if got := h.reg.Providers(); got[0].Ready {
				t.Errorf("Providers = %+v, want microsoft not ready", got)
			}
			if !strings.Contains(h.log.String(), "tenant template") {
				t.Errorf("logs lack the reason:\n%s", h.log.String())
			}
		})
	}
	t.Run("a template without the placeholder", func(t *testing.T) {
		m := startMock(t, nil)
		p := mockProvider("microsoft", m)
		p.TenantIssuer = m.Issuer()
		_, err := NewRegistry(t.Context(), Options{Providers: []Provider{p}, Flows: &memFlows{}, Claims: &memClaims{}})
		if err == nil || !strings.Contains(err.Error(), TenantPlaceholder) {
			t.Errorf("NewRegistry: err = %v, want a refusal naming %s", err, TenantPlaceholder)
		}
	})
}
