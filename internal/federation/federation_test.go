package federation

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauth2-proxy/mockoidc"

	"github.com/authgql/server/internal/auth"
)

// memFlows and memClaims are in-memory fakes of the stores; the MongoDB ones
// are tested in internal/mongodb.
type memFlows struct {
	mu sync.Mutex
	m  map[string]Flow
}

func (s *memFlows) Save(_ context.Context, key string, f Flow) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[key]; ok {
		return auth.ErrDuplicate
	}
	s.m[key] = f
	return nil
}

func (s *memFlows) Load(_ context.Context, key string) (Flow, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.m[key]
	if !ok {
		return Flow{}, auth.ErrNotFound
	}
	return f, nil
}

// tamper changes the flow stored for the state of authURL.
func (s *memFlows) tamper(t *testing.T, authURL string, change func(*Flow)) {
	t.Helper()
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	key := stateKey(u.Query().Get("state"))
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.m[key]
	if !ok {
		t.Fatal("no flow stored for the state")
	}
	change(&f)
	s.m[key] = f
}

type memClaims struct {
	mu sync.Mutex
	m  map[string]time.Time
}

func (c *memClaims) Claim(_ context.Context, key string, until time.Time) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[key]; ok {
		return false, nil
	}
	c.m[key] = until
	return true, nil
}

func (c *memClaims) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// startMock starts a mockoidc provider on ln (a free port when nil).
func startMock(t *testing.T, ln net.Listener, middleware ...func(http.Handler) http.Handler) *mockoidc.MockOIDC {
	t.Helper()
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, mw := range middleware {
		if err := m.AddMiddleware(mw); err != nil {
			t.Fatal(err)
		}
	}
	if ln == nil {
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Start(ln, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(m) })
	return m
}

// shutdown stops m without waiting for connections the transport dialed
// ahead and never used (the server waits 5 s for those).
func shutdown(m *mockoidc.MockOIDC) {
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	_ = m.Shutdown()
}

type harness struct {
	reg *Registry
	// bindings maps each begun flow's state to the binding Begin gave the
	// browser, for finish.
	bindings sync.Map
	flows    *memFlows
	claims   *memClaims
	skew     *atomic.Int64 // added to time.Now by the registry's clock
	public   string
	log      *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

const publicURL = "http://authgql.test"

func newHarness(t *testing.T, providers ...Provider) *harness {
	t.Helper()
	h := &harness{
		flows: &memFlows{m: map[string]Flow{}}, claims: &memClaims{m: map[string]time.Time{}},
		skew: new(atomic.Int64), public: publicURL, log: &syncBuffer{},
	}
	reg, err := NewRegistry(t.Context(), Options{
		PublicURL: h.public, Providers: providers, Flows: h.flows, Claims: h.claims,
		Now:    func() time.Time { return time.Now().Add(time.Duration(h.skew.Load())) },
		Retry:  20 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(h.log, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	h.reg = reg
	return h
}

func mockProvider(name string, m *mockoidc.MockOIDC) Provider {
	return Provider{Name: name, Issuer: m.Issuer(), ClientID: m.ClientID, ClientSecret: m.ClientSecret}
}

// authorize follows the provider's redirects from authURL like a browser,
// up to the callback on the public URL, and returns the callback's query.
func authorize(t *testing.T, authURL string) url.Values {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	var callback *url.URL
	c := &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), publicURL+"/") {
			callback = req.URL
			return http.ErrUseLastResponse
		}
		return nil
	}}
	res, err := c.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if callback == nil {
		t.Fatalf("no redirect to the callback: %s %s", res.Status, body)
	}
	return callback.Query()
}

func begin(t *testing.T, h *harness, provider, redirect string) string {
	t.Helper()
	st, err := h.reg.Begin(t.Context(), provider, BeginOptions{Redirect: redirect})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(st.URL)
	h.bindings.Store(u.Query().Get("state"), st.Binding)
	return st.URL
}

// finish finishes a flow with the binding of the browser that began it.
func (h *harness) finish(t *testing.T, provider string, query url.Values) (*Result, error) {
	t.Helper()
	b, _ := h.bindings.Load(query.Get("state"))
	binding, _ := b.(string)
	return h.reg.Finish(t.Context(), provider, query, binding)
}

func wantCode(t *testing.T, res *Result, err error, want Code) {
	t.Helper()
	if res != nil || err == nil {
		t.Fatalf("Finish = %+v, %v; want error %s", res, err, want)
	}
	var fe *Error
	if !errors.As(err, &fe) {
		t.Fatalf("Finish error %v is not a federation *Error", err)
	}
	if fe.Code != want {
		t.Errorf("code = %s, want %s (%v)", fe.Code, want, err)
	}
}

// TestFederationRoundTrip drives the whole flow over HTTP: the browser is
// sent to the provider, comes back to a callback handler that finishes it.
func TestFederationRoundTrip(t *testing.T) {
	m := startMock(t, nil)
	var reg atomic.Pointer[Registry]
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, "/auth/"), "/callback")
		if !ok {
			http.NotFound(w, r)
			return
		}
		var binding string
		if c, err := r.Cookie("binding"); err == nil {
			binding = c.Value
		}
		res, err := reg.Load().Finish(r.Context(), name, r.URL.Query(), binding)
		if err != nil {
			_ = json.NewEncoder(w).Encode(map[string]string{"error": string(CodeOf(err))})
			return
		}
		_ = json.NewEncoder(w).Encode(res)
	}))
	t.Cleanup(app.Close)

	flows, claims := &memFlows{m: map[string]Flow{}}, &memClaims{m: map[string]time.Time{}}
	r, err := NewRegistry(t.Context(), Options{
		PublicURL: app.URL, Providers: []Provider{mockProvider("mock", m)}, Flows: flows, Claims: claims,
	})
	if err != nil {
		t.Fatal(err)
	}
	reg.Store(r)
	if got := r.Providers(); len(got) != 1 || !got[0].Ready || got[0].DisplayName != "mock" {
		t.Errorf("Providers = %+v, want mock ready", got)
	}

	st, err := r.Begin(t.Context(), "mock", BeginOptions{Redirect: "/settings?tab=1"})
	if err != nil {
		t.Fatal(err)
	}
	authURL := st.URL
	u, _ := url.Parse(authURL)
	q := u.Query()
	for k, want := range map[string]string{
		"response_type": "code", "client_id": m.ClientID, "code_challenge_method": "S256",
		"redirect_uri": app.URL + "/auth/mock/callback", "scope": "openid email profile",
	} {
		if got := q.Get(k); got != want {
			t.Errorf("authorization URL %s = %q, want %q", k, got, want)
		}
	}
	for _, k := range []string{"state", "nonce", "code_challenge"} {
		if len(q.Get(k)) < 43 {
			t.Errorf("authorization URL %s = %q, want 256 random bits", k, q.Get(k))
		}
	}
	// What is stored: under the state's hash, never the state; the
	// challenge is the S256 of the stored verifier.
	f, err := flows.Load(t.Context(), stateKey(q.Get("state")))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(f.Verifier))
	if got, want := q.Get("code_challenge"), base64.RawURLEncoding.EncodeToString(sum[:]); got != want {
		t.Errorf("code_challenge = %q, want S256 of the stored verifier %q", got, want)
	}
	if f.Nonce != q.Get("nonce") || f.Provider != "mock" || f.Redirect != "/settings?tab=1" {
		t.Errorf("stored flow = %+v", f)
	}
	if d := time.Until(f.ExpiresAt); d < 9*time.Minute || d > 10*time.Minute {
		t.Errorf("flow expires in %v, want 10m", d)
	}

	if len(st.Binding) < 43 || f.Binding != stateKey(st.Binding) || strings.Contains(authURL, st.Binding) {
		t.Errorf("binding %q: stored %q, want its hash and never in the provider's URL", st.Binding, f.Binding)
	}
	jar, _ := cookiejar.New(nil)
	appURL, _ := url.Parse(app.URL)
	jar.SetCookies(appURL, []*http.Cookie{{Name: "binding", Value: st.Binding}})
	res, err := (&http.Client{Jar: jar}).Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var got Result
	if err := json.NewDecoder(res.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	want := Result{
		Identity: Identity{
			Provider: "mock", Subject: "1234567890", Email: "jane.doe@example.com", EmailVerified: true,
			PreferredUsername: "jane.doe",
		},
		Redirect: "/settings?tab=1",
	}
	if got != want {
		t.Errorf("Finish = %+v, want %+v", got, want)
	}
	if claims.len() != 1 {
		t.Errorf("%d claims, want 1", claims.len())
	}
}

func TestFederationStateIsSingleUseAndBound(t *testing.T) {
	m := startMock(t, nil)
	h := newHarness(t, mockProvider("a", m), mockProvider("b", m))

	t.Run("replayed callback", func(t *testing.T) {
		query := authorize(t, begin(t, h, "a", ""))
		if _, err := h.finish(t, "a", query); err != nil {
			t.Fatal(err)
		}
		res, err := h.finish(t, "a", query)
		wantCode(t, res, err, InvalidState)
	})
	t.Run("tampered state", func(t *testing.T) {
		before := h.claims.len()
		query := authorize(t, begin(t, h, "a", ""))
		state := query.Get("state")
		for name, tampered := range map[string]string{
			"changed": state[:10] + string(state[10]^1) + state[11:], "truncated": state[:len(state)-1],
			"extended": state + "A", "empty": "",
		} {
			q := url.Values{"code": {query.Get("code")}, "state": {tampered}}
			res, err := h.finish(t, "a", q)
			t.Run(name, func(t *testing.T) { wantCode(t, res, err, InvalidState) })
		}
		if h.claims.len() != before {
			t.Error("a tampered state claimed something")
		}
		// The real state still finishes.
		if _, err := h.finish(t, "a", query); err != nil {
			t.Errorf("the untampered state: %v", err)
		}
	})
	t.Run("callback from another browser", func(t *testing.T) {
		// Login CSRF: an attacker's state and code, finished in the
		// victim's browser, which has no binding or another flow's.
		query := authorize(t, begin(t, h, "a", ""))
		other, _ := url.Parse(begin(t, h, "a", ""))
		otherBinding, _ := h.bindings.Load(other.Query().Get("state"))
		before := h.claims.len()
		for name, binding := range map[string]string{
			"none": "", "another flow's": otherBinding.(string), "made up": strings.Repeat("A", 43),
		} {
			res, err := h.reg.Finish(t.Context(), "a", query, binding)
			t.Run(name, func(t *testing.T) { wantCode(t, res, err, InvalidState) })
		}
		if h.claims.len() != before {
			t.Error("a callback from another browser spent the state")
		}
		if _, err := h.finish(t, "a", query); err != nil {
			t.Errorf("the browser that began it: %v", err)
		}
	})
	t.Run("state of another provider", func(t *testing.T) {
		query := authorize(t, begin(t, h, "a", ""))
		res, err := h.finish(t, "b", query)
		wantCode(t, res, err, InvalidState)
		if _, err := h.finish(t, "a", query); err != nil {
			t.Errorf("on its own provider: %v", err)
		}
	})
	t.Run("expired", func(t *testing.T) {
		query := authorize(t, begin(t, h, "a", ""))
		before := h.claims.len()
		h.skew.Store(int64(FlowTTL))
		t.Cleanup(func() { h.skew.Store(0) })
		res, err := h.finish(t, "a", query)
		wantCode(t, res, err, Expired)
		if h.claims.len() != before {
			t.Error("an expired state was claimed")
		}
	})
	t.Run("access denied", func(t *testing.T) {
		authURL := begin(t, h, "a", "")
		u, _ := url.Parse(authURL)
		q := url.Values{"error": {"access_denied"}, "state": {u.Query().Get("state")}}
		res, err := h.finish(t, "a", q)
		wantCode(t, res, err, AccessDenied)
		q.Set("error", "server_error")
		res, err = h.finish(t, "a", q)
		wantCode(t, res, err, ProviderError)
	})
	t.Run("unknown provider", func(t *testing.T) {
		if _, err := h.reg.Begin(t.Context(), "c", BeginOptions{}); !errors.Is(err, ErrUnknownProvider) {
			t.Errorf("Begin: err = %v, want ErrUnknownProvider", err)
		}
		if _, err := h.finish(t, "c", url.Values{}); !errors.Is(err, ErrUnknownProvider) {
			t.Errorf("Finish: err = %v, want ErrUnknownProvider", err)
		}
	})
}

func TestFederationTamperedFlow(t *testing.T) {
	m := startMock(t, nil)
	h := newHarness(t, mockProvider("mock", m))
	for name, tc := range map[string]struct {
		change func(*Flow)
		reason string // in the error for the log
	}{
		"wrong PKCE verifier":   {func(f *Flow) { f.Verifier = strings.Repeat("x", 43) }, "invalid_grant"},
		"missing PKCE verifier": {func(f *Flow) { f.Verifier = "" }, "without PKCE verifier"},
		"wrong nonce":           {func(f *Flow) { f.Nonce = random() }, "nonce"},
		"missing nonce":         {func(f *Flow) { f.Nonce = "" }, "or nonce"},
	} {
		t.Run(name, func(t *testing.T) {
			authURL := begin(t, h, "mock", "")
			h.flows.tamper(t, authURL, tc.change)
			query := authorize(t, authURL)
			res, err := h.finish(t, "mock", query)
			wantCode(t, res, err, ProviderError)
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("err = %v, want %s", err, tc.reason)
			}
			if code := query.Get("code"); strings.Contains(err.Error(), code) {
				t.Errorf("error %q contains the code", err)
			}
		})
	}
}

// TestFederationExpiredIDToken: a token past its exp is refused by the
// verifier on the registry's clock, while the flow itself is still fresh.
func TestFederationExpiredIDToken(t *testing.T) {
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	m.AccessTTL = time.Minute // the ID token's lifetime too
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ln, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(m) })
	h := newHarness(t, mockProvider("mock", m))
	query := authorize(t, begin(t, h, "mock", ""))
	h.skew.Store(int64(5 * time.Minute))
	res, err := h.finish(t, "mock", query)
	wantCode(t, res, err, ProviderError)
	if !strings.Contains(err.Error(), "expired") {
		t.Errorf("err = %v, want an expired token", err)
	}
}

// TestFederationForeignIDToken: an ID token for another client, or from
// another issuer, is refused by go-oidc's verifier.
func TestFederationForeignIDToken(t *testing.T) {
	t.Run("another audience", func(t *testing.T) {
		// The provider knows our client as "other-app" and issues tokens
		// for it; we are "our-app".
		rewrite := func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_ = r.ParseForm()
				if r.Form.Get("client_id") == "our-app" {
					r.Form.Set("client_id", "other-app")
					if r.PostForm.Has("client_id") {
						r.PostForm.Set("client_id", "other-app")
					}
				}
				next.ServeHTTP(w, r)
			})
		}
		m, err := mockoidc.NewServer(nil)
		if err != nil {
			t.Fatal(err)
		}
		m.ClientID = "other-app"
		if err := m.AddMiddleware(rewrite); err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Start(ln, nil); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { shutdown(m) })
		p := mockProvider("mock", m)
		p.ClientID = "our-app"
		h := newHarness(t, p)
		res, err := h.finish(t, "mock", authorize(t, begin(t, h, "mock", "")))
		wantCode(t, res, err, ProviderError)
		if !strings.Contains(err.Error(), "audience") {
			t.Errorf("err = %v, want an audience failure", err)
		}
	})
	t.Run("another issuer", func(t *testing.T) {
		// A discovery document that names this server as the issuer but
		// sends to m, whose tokens name m.
		m := startMock(t, nil)
		var self string
		disco := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			res, err := http.Get(m.DiscoveryEndpoint())
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			defer res.Body.Close()
			var doc map[string]any
			_ = json.NewDecoder(res.Body).Decode(&doc)
			doc["issuer"] = self
			_ = json.NewEncoder(w).Encode(doc)
		}))
		t.Cleanup(disco.Close)
		self = disco.URL + mockoidc.IssuerBase
		p := mockProvider("mock", m)
		p.Issuer = self
		h := newHarness(t, p)
		res, err := h.finish(t, "mock", authorize(t, begin(t, h, "mock", "")))
		wantCode(t, res, err, ProviderError)
		if !strings.Contains(err.Error(), "issued by a different provider") {
			t.Errorf("err = %v, want an issuer failure", err)
		}
	})
}

func TestFederationOpenRedirect(t *testing.T) {
	for in, want := range map[string]string{
		"/":                    "/",
		"/settings?tab=a#top":  "/settings?tab=a#top",
		"":                     "",
		"//evil.example":       "",
		"/\\evil.example":      "",
		"\\\\evil.example":     "",
		"https://evil.example": "",
		"javascript:alert(1)":  "",
		"evil.example/x":       "",
		"/%2F%2Fevil.example":  "",
		"/ok\r\nLocation: x":   "",
		"/a\\b":                "",
		" /x":                  "",
	} {
		if got := SanitizeRedirect(in); got != want {
			t.Errorf("SanitizeRedirect(%q) = %q, want %q", in, got, want)
		}
	}
	m := startMock(t, nil)
	h := newHarness(t, mockProvider("mock", m))
	for _, evil := range []string{"//evil", "/\\evil", "https://evil", "javascript:alert(1)"} {
		authURL := begin(t, h, "mock", evil)
		if strings.Contains(authURL, "evil") {
			t.Errorf("authorization URL carries %q: %s", evil, authURL)
		}
		res, err := h.finish(t, "mock", authorize(t, authURL))
		if err != nil {
			t.Fatal(err)
		}
		if res.Redirect != "" {
			t.Errorf("redirect %q came back as %q, want dropped", evil, res.Redirect)
		}
	}
}

// TestFederationProviderUnreachableAtStart: the registry starts without the
// provider, its flows fail with provider_error, and once the provider is up
// the background discovery makes them work.
func TestFederationProviderUnreachableAtStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	m, err := mockoidc.NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	p := Provider{Name: "late", Issuer: "http://" + addr + mockoidc.IssuerBase, ClientID: m.ClientID, ClientSecret: m.ClientSecret}
	h := newHarness(t, p)
	if got := h.reg.Providers(); len(got) != 1 || got[0].Ready {
		t.Errorf("Providers = %+v, want late not ready", got)
	}
	if _, err := h.reg.Begin(t.Context(), "late", BeginOptions{}); CodeOf(err) != ProviderError || err == nil {
		t.Errorf("Begin before discovery: err = %v, want provider_error", err)
	}
	res, err := h.finish(t, "late", url.Values{"state": {"x"}, "code": {"y"}})
	if err == nil {
		t.Fatalf("Finish before discovery = %+v, want an error", res)
	}

	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("the reserved port was taken meanwhile: %v", err)
	}
	if err := m.Start(ln, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(m) })
	deadline := time.Now().Add(10 * time.Second)
	for !h.reg.Providers()[0].Ready {
		if time.Now().After(deadline) {
			t.Fatal("provider not discovered 10 s after it came up")
		}
		time.Sleep(10 * time.Millisecond)
	}
	query := authorize(t, begin(t, h, "late", "/x"))
	got, err := h.finish(t, "late", query)
	if err != nil {
		t.Fatal(err)
	}
	logs := h.log.String()
	for _, want := range []string{"provider unreachable", "provider=late", "provider discovered"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, query.Get("code")) || strings.Contains(logs, query.Get("state")) {
		t.Errorf("logs carry the code or state:\n%s", logs)
	}
	if got.Identity.Subject != "1234567890" || got.Redirect != "/x" {
		t.Errorf("Finish = %+v", got)
	}
}
