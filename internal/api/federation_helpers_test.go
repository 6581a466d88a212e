package api_test

// Helpers for the federation tests (issue 18): a mockoidc provider in
// process, a server whose PUBLIC_URL is http://authgql.test, and a browser
// (a cookie jar) that follows the redirects of a sign-in.

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/oauth2-proxy/mockoidc"

	"github.com/authgql/server/internal/federation"
)

// fedPublicURL is the server's PUBLIC_URL in these tests: the browser dials
// the test server for this host.
const (
	fedHost      = "authgql.test"
	fedPublicURL = "http://" + fedHost
)

const (
	exchangeMutation    = `mutation($c: String!) { exchangeAuthCode(code: $c) { ` + payloadFields + ` } }`
	identitiesQuery     = `{ identities { id provider email linkedAt } }`
	beginLinkMutation   = `mutation { beginLinkIdentity }`
	unlinkMutation      = `mutation($id: ID!) { unlinkIdentity(id: $id) }`
	subjectLinked       = "A sign-in method was added to your account"
	fedProvider         = "mock"
	fedProviderDisplay  = "Mock ID"
	fedBindingCookie    = "authgql_federation"
	fedBindingCookieTLS = "__Host-authgql_federation"
)

// startOIDC starts a mockoidc provider on a free port.
func startOIDC(t *testing.T) *mockoidc.MockOIDC {
	t.Helper()
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	// mockoidc keeps its sessions in a map without a lock: one request at a
	// time, so that concurrent callbacks race in our server, not in the mock.
	var mu sync.Mutex
	if err := m.AddMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			next.ServeHTTP(w, r)
		})
	}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ln, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
		_ = m.Shutdown()
	})
	return m
}

// fedOptions are the test options with m as the provider "mock".
func fedOptions(m *mockoidc.MockOIDC) envOptions {
	o := defaultOptions()
	o.cfg.PublicURL = fedPublicURL
	o.cfg.OIDCProviders = []federation.Provider{{Name: fedProvider, Issuer: m.Issuer(), ClientID: m.ClientID,
		ClientSecret: m.ClientSecret, DisplayName: fedProviderDisplay}}
	return o
}

// newFedEnv is a server with m as the provider "mock".
func newFedEnv(t *testing.T, m *mockoidc.MockOIDC) *env {
	t.Helper()
	return newEnvWith(t, fedOptions(m))
}

// queue makes m sign in a user with these claims at its next authorization.
func queue(m *mockoidc.MockOIDC, subject, email string, verified bool) {
	m.QueueUser(&mockoidc.MockUser{Subject: subject, Email: email, EmailVerified: verified,
		PreferredUsername: strings.Split(email, "@")[0]})
}

// fedBrowser is a browser: one cookie jar, the server reached at
// fedPublicURL, the provider at its own address.
type fedBrowser struct {
	e   *env
	jar *cookiejar.Jar
	c   *http.Client
	// stopAt ends a navigation before a request whose URL starts with it.
	stopAt string
}

func (e *env) newBrowser(t *testing.T) *fedBrowser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := e.srv.Listener.Addr().String()
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr == fedHost+":80" {
			addr = srv
		}
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	b := &fedBrowser{e: e, jar: jar}
	b.c = &http.Client{Jar: jar, Transport: tr, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), appURL) || b.stopAt != "" && strings.HasPrefix(req.URL.String(), b.stopAt) {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	return b
}

// navigate GETs rawURL and follows redirects until the app (or stopAt); it
// returns the last response (its body read) and its Location.
func (b *fedBrowser) navigate(t *testing.T, rawURL string) (*http.Response, *url.URL) {
	t.Helper()
	res, err := b.c.Get(rawURL)
	if err != nil {
		t.Fatalf("GET %s: %v", rawURL, err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	res.Body = io.NopCloser(strings.NewReader(string(body)))
	loc, _ := res.Location()
	return res, loc
}

// signIn goes to PUBLIC_URL+path (/auth/mock?…) and follows the flow to the
// app's callback page; it returns that URL's query.
func (b *fedBrowser) signIn(t *testing.T, path string) url.Values {
	t.Helper()
	res, loc := b.navigate(t, fedPublicURL+path)
	if res.StatusCode != http.StatusFound || loc == nil || !strings.HasPrefix(loc.String(), appURL+"/auth/callback?") {
		body, _ := io.ReadAll(res.Body)
		t.Fatalf("%s ended with %s, Location %v, want a redirect to the app's callback: %s", path, res.Status, loc, body)
	}
	return loc.Query()
}

// toCallback goes to PUBLIC_URL+path and through the provider, stopping
// before the callback: its URL.
func (b *fedBrowser) toCallback(t *testing.T, path string) string {
	t.Helper()
	b.stopAt = fedPublicURL + "/auth/" + fedProvider + "/callback"
	defer func() { b.stopAt = "" }()
	res, loc := b.navigate(t, fedPublicURL+path)
	if loc == nil || !strings.HasPrefix(loc.String(), b.stopAt) {
		t.Fatalf("%s: %s, Location %v; want the provider's redirect to the callback", path, res.Status, loc)
	}
	return loc.String()
}

// callback requests a callback URL (with the jar's cookies) and returns the
// app URL's query it redirects to.
func (b *fedBrowser) callback(t *testing.T, callbackURL string) url.Values {
	t.Helper()
	res, loc := b.navigate(t, callbackURL)
	if res.StatusCode != http.StatusFound || loc == nil || !strings.HasPrefix(loc.String(), appURL+"/auth/callback?") {
		t.Fatalf("callback: %s, Location %v", res.Status, loc)
	}
	return loc.Query()
}

// exchange trades a one-time code for a session.
func (e *env) exchange(t *testing.T, code string) gqlResponse {
	t.Helper()
	return e.post(t, "", exchangeMutation, map[string]any{"c": code})
}

// exchangeAs trades a one-time code with the access token of a signed-in
// tab (a link code needs the session that asked for the link).
func (e *env) exchangeAs(t *testing.T, access, code string) gqlResponse {
	t.Helper()
	return e.post(t, access, exchangeMutation, map[string]any{"c": code})
}

// linkTicket is a link ticket of beginLinkIdentity for the session of access.
func (e *env) linkTicket(t *testing.T, access string) string {
	t.Helper()
	res := e.post(t, access, beginLinkMutation, nil)
	var s string
	if err := json.Unmarshal(res.Data["beginLinkIdentity"], &s); err != nil || len(s) != 43 {
		t.Fatalf("beginLinkIdentity: %s", res.Raw)
	}
	return s
}

// wantLinkCode checks that the app was sent a link code (code=…&link=mock)
// and returns it.
func wantLinkCode(t *testing.T, q url.Values) string {
	t.Helper()
	if len(q.Get("code")) != 43 || q.Get("link") != fedProvider || q.Has("error") || q.Has("linked") {
		t.Fatalf("the app got %v, want a code and link=%s", q, fedProvider)
	}
	return q.Get("code")
}

// fedSignIn signs in through the provider as the queued user and exchanges
// the code: the session.
func (e *env) fedSignIn(t *testing.T, m *mockoidc.MockOIDC, subject, email string) authPayload {
	t.Helper()
	queue(m, subject, email, true)
	q := e.newBrowser(t).signIn(t, "/auth/"+fedProvider)
	if q.Get("code") == "" {
		t.Fatalf("sign-in as %s: the app got %v, want a code", email, q)
	}
	return payload(t, e.exchange(t, q.Get("code")), "exchangeAuthCode")
}

type identity struct {
	ID       string `json:"id"`
	Provider string `json:"provider"`
	Email    string `json:"email"`
	LinkedAt string `json:"linkedAt"`
}

func (e *env) identities(t *testing.T, access string) []identity {
	t.Helper()
	res := e.post(t, access, identitiesQuery, nil)
	if len(res.Errors) > 0 {
		t.Fatalf("identities: %s", res.Raw)
	}
	var out []identity
	if err := json.Unmarshal(res.Data["identities"], &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// wantError checks that the app was sent error=code and nothing else.
func wantError(t *testing.T, q url.Values, code string) {
	t.Helper()
	if q.Get("error") != code || q.Has("code") || q.Has("link") {
		t.Fatalf("the app got %v, want error=%s only", q, code)
	}
}
