package githubtest_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/authgql/server/internal/federation/githubtest"
)

const callback = "http://app.test/auth/github/callback"

var noFollow = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func challenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// authorize asks s for a code with params added to a valid request and
// returns the redirect's query, or the status when there is no redirect.
func authorize(t *testing.T, s *githubtest.Server, params map[string]string) (url.Values, int) {
	t.Helper()
	q := url.Values{
		"client_id": {s.ClientID}, "redirect_uri": {callback}, "state": {"st"}, "scope": {"read:user user:email"},
		"code_challenge": {challenge("the-verifier")}, "code_challenge_method": {"S256"},
	}
	for k, v := range params {
		if v == "" {
			q.Del(k)
		} else {
			q.Set(k, v)
		}
	}
	res, err := noFollow.Get(s.URL + "/login/oauth/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusFound {
		return nil, res.StatusCode
	}
	loc, err := url.Parse(res.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), callback+"?") {
		t.Fatalf("redirect to %q, want the callback", res.Header.Get("Location"))
	}
	return loc.Query(), res.StatusCode
}

// exchange posts form to the token endpoint and returns the answer, in JSON
// when asked.
func exchange(t *testing.T, s *githubtest.Server, form url.Values, asJSON bool) map[string]string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/login/oauth/access_token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if asJSON {
		req.Header.Set("Accept", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	out := map[string]string{}
	if asJSON {
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatalf("token answer %q: %v", body, err)
		}
		return out
	}
	v, err := url.ParseQuery(string(body))
	if err != nil {
		t.Fatalf("token answer %q: %v", body, err)
	}
	for k := range v {
		out[k] = v.Get(k)
	}
	return out
}

func tokenForm(s *githubtest.Server, code string) url.Values {
	return url.Values{
		"client_id": {s.ClientID}, "client_secret": {s.ClientSecret}, "code": {code},
		"redirect_uri": {callback}, "code_verifier": {"the-verifier"},
	}
}

func get(t *testing.T, s *githubtest.Server, path, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}

func TestServer(t *testing.T) {
	s := githubtest.New(t, githubtest.Options{AutoApprove: true, CallbackURL: callback})

	q, _ := authorize(t, s, nil)
	if q.Get("state") != "st" || q.Get("code") == "" {
		t.Fatalf("callback query %v", q)
	}
	ans := exchange(t, s, tokenForm(s, q.Get("code")), true)
	token := ans["access_token"]
	if !strings.HasPrefix(token, "gho_") || ans["token_type"] != "bearer" || ans["scope"] != "read:user,user:email" {
		t.Fatalf("token answer %v", ans)
	}
	if again := exchange(t, s, tokenForm(s, q.Get("code")), true); again["error"] != "bad_verification_code" {
		t.Errorf("the code used twice: %v, want bad_verification_code", again)
	}

	status, body := get(t, s, "/user", token)
	var u map[string]any
	_ = json.Unmarshal([]byte(body), &u)
	if status != http.StatusOK || u["id"] != float64(583231) || u["login"] != "octocat" || u["email"] != nil {
		t.Errorf("/user: %d %s", status, body)
	}
	status, body = get(t, s, "/user/emails", token)
	if status != http.StatusOK || !strings.Contains(body, `"email":"octocat@example.com","primary":true,"verified":true`) {
		t.Errorf("/user/emails: %d %s", status, body)
	}
	for _, tok := range []string{"", "gho_unknown"} {
		if status, _ := get(t, s, "/user", tok); status != http.StatusUnauthorized {
			t.Errorf("/user with token %q: %d, want 401", tok, status)
		}
	}

	t.Run("form-encoded answer unless JSON is asked for", func(t *testing.T) {
		q, _ := authorize(t, s, nil)
		if ans := exchange(t, s, tokenForm(s, q.Get("code")), false); !strings.HasPrefix(ans["access_token"], "gho_") {
			t.Errorf("token answer %v", ans)
		}
	})
	t.Run("client credentials by HTTP Basic", func(t *testing.T) {
		q, _ := authorize(t, s, nil)
		form := tokenForm(s, q.Get("code"))
		form.Del("client_secret")
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/login/oauth/access_token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		req.SetBasicAuth(s.ClientID, s.ClientSecret)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var ans map[string]string
		_ = json.NewDecoder(res.Body).Decode(&ans)
		if ans["access_token"] == "" {
			t.Errorf("token answer %v", ans)
		}
	})
	t.Run("refused exchanges", func(t *testing.T) {
		for name, tc := range map[string]struct {
			change func(url.Values)
			want   string
			spends bool // the code is spent by the refused attempt
		}{
			"wrong verifier":      {func(f url.Values) { f.Set("code_verifier", "another") }, "bad_verification_code", true},
			"no verifier":         {func(f url.Values) { f.Del("code_verifier") }, "bad_verification_code", true},
			"wrong redirect_uri":  {func(f url.Values) { f.Set("redirect_uri", callback+"x") }, "redirect_uri_mismatch", true},
			"wrong secret":        {func(f url.Values) { f.Set("client_secret", "x") }, "incorrect_client_credentials", false},
			"another client":      {func(f url.Values) { f.Set("client_id", "x") }, "incorrect_client_credentials", false},
			"made-up code":        {func(f url.Values) { f.Set("code", "0123") }, "bad_verification_code", false},
			"no code":             {func(f url.Values) { f.Del("code") }, "bad_verification_code", false},
			"redirect_uri absent": {func(f url.Values) { f.Del("redirect_uri") }, "", true},
		} {
			t.Run(name, func(t *testing.T) {
				q, _ := authorize(t, s, nil)
				form := tokenForm(s, q.Get("code"))
				tc.change(form)
				ans := exchange(t, s, form, true)
				if ans["error"] != tc.want || (tc.want != "") == (ans["access_token"] != "") {
					t.Errorf("token answer %v, want error %q", ans, tc.want)
				}
				// A code that reached the check is spent: the right request
				// fails after it.
				again := exchange(t, s, tokenForm(s, q.Get("code")), true)
				if spent := again["access_token"] == ""; spent != tc.spends {
					t.Errorf("the code spent: %v, want %v (%v)", spent, tc.spends, again)
				}
			})
		}
	})
	t.Run("refused authorizations", func(t *testing.T) {
		if _, status := authorize(t, s, map[string]string{"client_id": "other"}); status != http.StatusNotFound {
			t.Errorf("unknown client: %d, want 404 and no redirect", status)
		}
		if _, status := authorize(t, s, map[string]string{"redirect_uri": "https://evil.example/cb"}); status != http.StatusBadRequest {
			t.Errorf("foreign redirect_uri: %d, want 400 and no redirect", status)
		}
		q, _ := authorize(t, s, map[string]string{"code_challenge_method": "plain"})
		if q.Get("error") != "invalid_request" || q.Has("code") {
			t.Errorf("plain PKCE: %v, want invalid_request", q)
		}
	})
	t.Run("without PKCE, as GitHub allows", func(t *testing.T) {
		q, _ := authorize(t, s, map[string]string{"code_challenge": "", "code_challenge_method": ""})
		form := tokenForm(s, q.Get("code"))
		form.Del("code_verifier")
		if ans := exchange(t, s, form, true); ans["access_token"] == "" {
			t.Errorf("token answer %v", ans)
		}
	})
	t.Run("emails need the user:email scope", func(t *testing.T) {
		q, _ := authorize(t, s, map[string]string{"scope": "read:user"})
		token := exchange(t, s, tokenForm(s, q.Get("code")), true)["access_token"]
		if status, _ := get(t, s, "/user/emails", token); status != http.StatusNotFound {
			t.Errorf("/user/emails without the scope: %d, want 404", status)
		}
		if status, _ := get(t, s, "/user", token); status != http.StatusOK {
			t.Errorf("/user: %d", status)
		}
	})
}

func TestConsentPage(t *testing.T) {
	s := githubtest.New(t, githubtest.Options{Users: []githubtest.User{
		{ID: 1, Login: "first"}, {ID: 2, Login: "second", Emails: []githubtest.Email{{Email: "s@example.com", Primary: true}}},
	}})
	q := url.Values{"client_id": {s.ClientID}, "redirect_uri": {callback}, "state": {`"><script>x</script>`},
		"scope": {"read:user user:email"}}
	status, page := get(t, s, "/login/oauth/authorize?"+q.Encode(), "")
	if status != http.StatusOK || !strings.Contains(page, `id="authorize"`) || !strings.Contains(page, `id="cancel"`) ||
		!strings.Contains(page, `<option value="2">second</option>`) || strings.Contains(page, "<script>") {
		t.Fatalf("consent page: %d\n%s", status, page)
	}
	post := func(form url.Values) url.Values {
		t.Helper()
		res, err := noFollow.PostForm(s.URL+"/login/oauth/authorize", form)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		loc, _ := url.Parse(res.Header.Get("Location"))
		return loc.Query()
	}
	form := url.Values{"decision": {"cancel"}}
	for k, v := range q {
		form[k] = v
	}
	if got := post(form); got.Get("error") != "access_denied" || got.Get("state") != q.Get("state") || got.Has("code") {
		t.Errorf("cancel: %v", got)
	}
	form.Set("decision", "authorize")
	form.Set("user", "2")
	got := post(form)
	if got.Get("code") == "" || got.Get("state") != q.Get("state") {
		t.Fatalf("authorize: %v", got)
	}
	ex := url.Values{"client_id": {s.ClientID}, "client_secret": {s.ClientSecret}, "code": {got.Get("code")}}
	token := exchange(t, s, ex, true)["access_token"]
	if _, body := get(t, s, "/user", token); !strings.Contains(body, `"login":"second"`) {
		t.Errorf("/user after choosing second: %s", body)
	}
}

// TestStart: the constructor for a separate process, on a given address.
func TestStart(t *testing.T) {
	s, err := githubtest.Start("127.0.0.1:0", githubtest.Options{ClientID: "id", ClientSecret: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	if s.ClientID != "id" || s.ClientSecret != "secret" || !strings.HasPrefix(s.URL, "http://127.0.0.1:") {
		t.Errorf("server %+v", s)
	}
	if status, _ := get(t, s, "/user", ""); status != http.StatusUnauthorized {
		t.Errorf("/user: %d", status)
	}
	s.Close()
	if _, err := http.Get(s.URL + "/user"); err == nil {
		t.Error("still serving after Close")
	}
}
