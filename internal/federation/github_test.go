package federation

import (
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/authgql/server/internal/federation/githubtest"
)

func gitHubProvider(s *githubtest.Server) Provider {
	return Provider{
		Name: "github", Kind: KindGitHub, GitHubURL: s.URL, GitHubAPIURL: s.URL,
		ClientID: s.ClientID, ClientSecret: s.ClientSecret,
	}
}

var hiddenInput = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// consent opens the stand-in's consent page at authURL like a browser,
// presses the button decision ("authorize" or "cancel"), follows the
// redirect to the callback and returns the callback's query.
func consent(t *testing.T, authURL, decision string) url.Values {
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
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || callback != nil {
		t.Fatalf("authorization page: %s, callback %v", res.Status, callback)
	}
	for _, button := range []string{`id="authorize"`, `id="cancel"`} {
		if !strings.Contains(string(page), button) {
			t.Fatalf("consent page has no %s button:\n%s", button, page)
		}
	}
	form := url.Values{"decision": {decision}}
	for _, m := range hiddenInput.FindAllStringSubmatch(string(page), -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	u, _ := url.Parse(authURL)
	res, err = c.PostForm(u.Scheme+"://"+u.Host+"/login/oauth/authorize", form)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if callback == nil {
		t.Fatalf("no redirect to the callback after %s: %s %s", decision, res.Status, body)
	}
	return callback.Query()
}

// TestGitHubRoundTrip: the consent page, Authorize, the exchange with PKCE
// and the user API, over HTTP against the stand-in.
func TestGitHubRoundTrip(t *testing.T) {
	gh := githubtest.New(t, githubtest.Options{CallbackURL: publicURL + "/auth/github/callback"})
	h := newHarness(t, gitHubProvider(gh))
	if got := h.reg.Providers(); len(got) != 1 || !got[0].Ready || got[0].DisplayName != "github" {
		t.Errorf("Providers = %+v, want github ready without discovery", got)
	}

	authURL := begin(t, h, "github", "/welcome")
	u, _ := url.Parse(authURL)
	q := u.Query()
	if got, want := u.Scheme+"://"+u.Host+u.Path, gh.URL+"/login/oauth/authorize"; got != want {
		t.Errorf("authorization endpoint %s, want %s", got, want)
	}
	for k, want := range map[string]string{
		"response_type": "code", "client_id": gh.ClientID, "code_challenge_method": "S256",
		"redirect_uri": publicURL + "/auth/github/callback", "scope": "read:user user:email",
	} {
		if got := q.Get(k); got != want {
			t.Errorf("authorization URL %s = %q, want %q", k, got, want)
		}
	}
	if q.Has("nonce") {
		t.Errorf("authorization URL has a nonce for GitHub: %s", authURL)
	}
	f, err := h.flows.Load(t.Context(), stateKey(q.Get("state")))
	if err != nil {
		t.Fatal(err)
	}
	if f.Verifier == "" || f.Nonce != "" || f.Provider != "github" || f.Redirect != "/welcome" {
		t.Errorf("stored flow = %+v, want a verifier and no nonce", f)
	}

	query := consent(t, authURL, "authorize")
	res, err := h.finish(t, "github", query)
	if err != nil {
		t.Fatal(err)
	}
	want := Result{
		Identity: Identity{
			Provider: "github", Subject: "583231", Email: "octocat@example.com", EmailVerified: true,
			Name: "The Octocat", PreferredUsername: "octocat",
		},
		Redirect: "/welcome",
	}
	if *res != want {
		t.Errorf("Finish = %+v, want %+v", *res, want)
	}

	t.Run("replayed callback", func(t *testing.T) {
		res, err := h.finish(t, "github", query)
		wantCode(t, res, err, InvalidState)
	})
	t.Run("replayed code with a fresh state", func(t *testing.T) {
		// The stand-in took the code once; a new flow carrying it is
		// refused at the token endpoint.
		fresh, _ := url.Parse(begin(t, h, "github", ""))
		q := url.Values{"code": {query.Get("code")}, "state": {fresh.Query().Get("state")}}
		res, err := h.finish(t, "github", q)
		wantCode(t, res, err, ProviderError)
		if !strings.Contains(err.Error(), "bad_verification_code") {
			t.Errorf("err = %v, want bad_verification_code", err)
		}
		if strings.Contains(err.Error(), query.Get("code")) {
			t.Errorf("error %q contains the code", err)
		}
	})
}

func TestGitHubCancel(t *testing.T) {
	gh := githubtest.New(t, githubtest.Options{})
	h := newHarness(t, gitHubProvider(gh))
	query := consent(t, begin(t, h, "github", ""), "cancel")
	if query.Get("error") != "access_denied" || query.Has("code") {
		t.Fatalf("callback query %v, want error=access_denied and no code", query)
	}
	res, err := h.finish(t, "github", query)
	wantCode(t, res, err, AccessDenied)
}

func TestGitHubTamperedFlow(t *testing.T) {
	gh := githubtest.New(t, githubtest.Options{AutoApprove: true})
	h := newHarness(t, gitHubProvider(gh))
	for name, tc := range map[string]struct {
		change func(*Flow)
		reason string
	}{
		"wrong PKCE verifier":   {func(f *Flow) { f.Verifier = strings.Repeat("x", 43) }, "bad_verification_code"},
		"missing PKCE verifier": {func(f *Flow) { f.Verifier = "" }, "without PKCE verifier"},
	} {
		t.Run(name, func(t *testing.T) {
			authURL := begin(t, h, "github", "")
			h.flows.tamper(t, authURL, tc.change)
			query := authorize(t, authURL)
			res, err := h.finish(t, "github", query)
			wantCode(t, res, err, ProviderError)
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("err = %v, want %s", err, tc.reason)
			}
			if strings.Contains(err.Error(), query.Get("code")) {
				t.Errorf("error %q contains the code", err)
			}
		})
	}
	t.Run("an OpenID Connect flow without nonce is still refused", func(t *testing.T) {
		m := startMock(t, nil)
		h := newHarness(t, mockProvider("mock", m), gitHubProvider(gh))
		authURL := begin(t, h, "mock", "")
		h.flows.tamper(t, authURL, func(f *Flow) { f.Nonce = "" })
		res, err := h.finish(t, "mock", authorize(t, authURL))
		wantCode(t, res, err, ProviderError)
		// And a GitHub flow cannot be finished at the OIDC provider.
		query := authorize(t, begin(t, h, "github", ""))
		res, err = h.finish(t, "mock", query)
		wantCode(t, res, err, InvalidState)
	})
	t.Run("wrong client secret", func(t *testing.T) {
		p := gitHubProvider(gh)
		p.ClientSecret = "not-the-secret"
		h := newHarness(t, p)
		res, err := h.finish(t, "github", authorize(t, begin(t, h, "github", "")))
		wantCode(t, res, err, ProviderError)
		if !strings.Contains(err.Error(), "incorrect_client_credentials") || strings.Contains(err.Error(), "not-the-secret") {
			t.Errorf("err = %v, want incorrect_client_credentials without the secret", err)
		}
	})
}

// TestGitHubIdentity: the subject is the numeric id, the email is the
// primary address with GitHub's verified flag, never the public profile
// address or another verified one.
func TestGitHubIdentity(t *testing.T) {
	gh := githubtest.New(t, githubtest.Options{AutoApprove: true})
	h := newHarness(t, gitHubProvider(gh))
	signIn := func(t *testing.T, u githubtest.User) Identity {
		t.Helper()
		gh.SetUser(u)
		res, err := h.finish(t, "github", authorize(t, begin(t, h, "github", "")))
		if err != nil {
			t.Fatal(err)
		}
		return res.Identity
	}
	for _, tc := range []struct {
		name string
		user githubtest.User
		want Identity
	}{
		{
			"primary verified",
			githubtest.User{ID: 7, Login: "seven", Name: "Seven", Emails: []githubtest.Email{
				{Email: "other@example.com", Verified: true}, {Email: "seven@example.com", Primary: true, Verified: true},
			}},
			Identity{Provider: "github", Subject: "7", Email: "seven@example.com", EmailVerified: true, Name: "Seven",
				PreferredUsername: "seven"},
		},
		{
			"primary unverified, another verified, a public address",
			githubtest.User{ID: 8, Login: "eight", PublicEmail: "public@example.com", Emails: []githubtest.Email{
				{Email: "eight@example.com", Primary: true}, {Email: "verified@example.com", Verified: true},
			}},
			Identity{Provider: "github", Subject: "8", Email: "eight@example.com", PreferredUsername: "eight"},
		},
		{
			"no addresses",
			githubtest.User{ID: 9, Login: "nine", PublicEmail: "public@example.com"},
			Identity{Provider: "github", Subject: "9", PreferredUsername: "nine"},
		},
		{
			"a large id",
			githubtest.User{ID: 1 << 40, Login: "big"},
			Identity{Provider: "github", Subject: "1099511627776", PreferredUsername: "big"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := signIn(t, tc.user); got != tc.want {
				t.Errorf("Identity = %+v, want %+v", got, tc.want)
			}
		})
	}
	t.Run("renamed login keeps the subject", func(t *testing.T) {
		u := githubtest.User{ID: 10, Login: "before"}
		first := signIn(t, u)
		u.Login = "after"
		second := signIn(t, u)
		if first.Subject != "10" || second.Subject != "10" || second.PreferredUsername != "after" {
			t.Errorf("before %+v, after %+v: want subject 10 both times", first, second)
		}
	})
}

// TestGitHubAPIFailure: a failing user API is a provider_error that names
// the endpoint and status, never the access token.
func TestGitHubAPIFailure(t *testing.T) {
	gh := githubtest.New(t, githubtest.Options{AutoApprove: true})
	var token string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token = r.Header.Get("Authorization")
		if r.URL.Path == "/user/emails" {
			http.Error(w, "boom "+token, http.StatusBadGateway)
			return
		}
		gh.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(api.Close)
	p := gitHubProvider(gh)
	p.GitHubAPIURL = api.URL
	h := newHarness(t, p)
	res, err := h.finish(t, "github", authorize(t, begin(t, h, "github", "")))
	wantCode(t, res, err, ProviderError)
	if !strings.Contains(err.Error(), "github /user/emails: status 502") {
		t.Errorf("err = %v, want the endpoint and status", err)
	}
	if bearer, _ := strings.CutPrefix(token, "Bearer "); bearer == "" || strings.Contains(err.Error(), bearer) {
		t.Errorf("err = %v; the token %q must not be in it", err, token)
	}
}
