package api_test

import (
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/authgql/server/internal/auth"
	"github.com/authgql/server/internal/federation"
	"github.com/authgql/server/internal/federation/githubtest"
)

// The whole flow over HTTP: the app sends the browser to /auth/mock, the
// server to the provider with a binding cookie, the provider back to the
// callback, the callback to the app with a one-time code, which
// exchangeAuthCode turns into a session (amr fed) of a new account.
func TestFederationSignInFlow(t *testing.T) {
	m := startOIDC(t)
	e := newFedEnv(t, m)
	b := e.newBrowser(t)

	// The start: a redirect to the provider and the binding cookie.
	start, _ := http.NewRequest(http.MethodGet, fedPublicURL+"/auth/mock?redirect=/x", nil)
	raw, err := (&http.Client{Transport: b.c.Transport, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}).Do(start)
	if err != nil {
		t.Fatal(err)
	}
	raw.Body.Close()
	if raw.StatusCode != http.StatusFound || !strings.HasPrefix(raw.Header.Get("Location"), m.AuthorizationEndpoint()+"?") {
		t.Fatalf("GET /auth/mock: %s, Location %q; want 302 to the provider", raw.Status, raw.Header.Get("Location"))
	}
	for h, want := range map[string]string{"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"} {
		if got := raw.Header.Get(h); got != want {
			t.Errorf("GET /auth/mock: %s = %q, want %q", h, got, want)
		}
	}
	var binding *http.Cookie
	for _, c := range raw.Cookies() {
		if c.Name == fedBindingCookie {
			binding = c
		}
	}
	if binding == nil || !binding.HttpOnly || binding.SameSite != http.SameSiteLaxMode || binding.Path != "/" ||
		binding.MaxAge != 600 || binding.Secure || len(binding.Value) < 43 {
		t.Fatalf("binding cookie = %+v; want HttpOnly, SameSite=Lax, Path=/, Max-Age=600 (not Secure over http)", binding)
	}
	if strings.Contains(raw.Header.Get("Location"), binding.Value) {
		t.Error("the binding travels to the provider")
	}

	// A browser that goes through the provider is back at the app.
	queue(m, "sub-ann", "Fed.Ann@example.test", true)
	_, loc := b.navigate(t, fedPublicURL+"/auth/mock?redirect=/settings%3Ftab%3D2")
	if loc == nil || !strings.HasPrefix(loc.String(), appURL+"/auth/callback?") {
		t.Fatalf("the flow ended at %v, want the app's callback", loc)
	}
	q := loc.Query()
	code := q.Get("code")
	if len(code) != 43 || q.Get("redirect") != "/settings?tab=2" || q.Has("error") || q.Has("link") {
		t.Fatalf("the app got %v; want a 256-bit code and redirect=/settings?tab=2", q)
	}
	for _, c := range b.jar.Cookies(&url.URL{Scheme: "http", Host: fedHost, Path: "/"}) {
		if c.Name == fedBindingCookie {
			t.Errorf("the binding cookie outlived the callback")
		}
	}

	p := payload(t, e.exchange(t, code), "exchangeAuthCode")
	wantLevel(t, "exchangeAuthCode", p.AccessToken, 1, "[fed]", false)
	a := e.meAccount(t, p.AccessToken)
	if a.Username != "Fed.Ann" || a.Email != "Fed.Ann@example.test" || !a.EmailVerified {
		t.Errorf("the new account: %+v; want username Fed.Ann, the provider's address, verified", a)
	}
	ids := e.identities(t, p.AccessToken)
	if len(ids) != 1 || ids[0].Provider != fedProvider || ids[0].Email != "Fed.Ann@example.test" || ids[0].LinkedAt == "" {
		t.Fatalf("identities = %+v", ids)
	}
	if doc := e.docs(t, "users", bson.D{{Key: "email_key", Value: "fed.ann@example.test"}}); len(doc) != 1 ||
		doc[0]["password_hash"] != nil {
		t.Errorf("the account's password hash: %v, want none", doc)
	}
	// A refresh keeps the method.
	next := payload(t, e.refresh(t, "", p.RefreshToken), "refreshToken")
	wantLevel(t, "refresh", next.AccessToken, 1, "[fed]", false)

	// The code once only.
	wantAuthCodeError(t, e.exchange(t, code), "used")
	// Another sign-in with the same identity: the same account, no mail.
	again := e.fedSignIn(t, m, "sub-ann", "Fed.Ann@example.test")
	if again.User.ID != a.ID || e.countUsers(t) != 1 {
		t.Errorf("the second sign-in: user %s (%d users), want %s", again.User.ID, e.countUsers(t), a.ID)
	}
	// Nothing secret in the logs.
	logs := e.logs.String()
	if strings.Contains(logs, code) || strings.Contains(logs, binding.Value) || strings.Contains(logs, p.AccessToken) {
		t.Error("the logs carry a code, the binding or a token")
	}
	if len(e.auditLines(t, "federated_login")) < 2 {
		t.Error("no federated_login audit lines")
	}
	if res := e.get(t, "", `{ providers { name displayName } }`, nil); !strings.Contains(res.Raw,
		`"providers":[{"name":"mock","displayName":"Mock ID"}]`) {
		t.Errorf("providers: %s", res.Raw)
	}
}

func wantAuthCodeError(t *testing.T, res gqlResponse, reason string) {
	t.Helper()
	if res.Status != http.StatusOK || len(res.Errors) == 0 || res.ext("code") != "INVALID_AUTH_CODE" || res.ext("reason") != reason {
		t.Fatalf("exchangeAuthCode: %s; want INVALID_AUTH_CODE %s", res.Raw, reason)
	}
	if string(res.Data["exchangeAuthCode"]) != "" && string(res.Data["exchangeAuthCode"]) != "null" {
		t.Fatalf("data with an error: %s", res.Raw)
	}
}

// The callback refuses a state it cannot finish: from a browser without the
// binding cookie (login CSRF), twice, or tampered.
func TestFederationCallbackState(t *testing.T) {
	m := startOIDC(t)
	e := newFedEnv(t, m)

	t.Run("without the binding cookie", func(t *testing.T) {
		cb := e.newBrowser(t).toCallback(t, "/auth/mock")
		wantError(t, e.newBrowser(t).callback(t, cb), "invalid_state")
	})
	t.Run("replayed", func(t *testing.T) {
		b := e.newBrowser(t)
		cb := b.toCallback(t, "/auth/mock")
		u, _ := url.Parse(fedPublicURL)
		cookies := b.jar.Cookies(u)
		if q := b.callback(t, cb); q.Get("code") == "" {
			t.Fatalf("first callback: %v", q)
		}
		b.jar.SetCookies(u, cookies) // even with the binding put back
		wantError(t, b.callback(t, cb), "invalid_state")
	})
	t.Run("tampered state", func(t *testing.T) {
		b := e.newBrowser(t)
		cb, _ := url.Parse(b.toCallback(t, "/auth/mock"))
		q := cb.Query()
		q.Set("state", q.Get("state")+"x")
		cb.RawQuery = q.Encode()
		wantError(t, b.callback(t, cb.String()), "invalid_state")
	})
	t.Run("consent refused", func(t *testing.T) {
		b := e.newBrowser(t)
		cb, _ := url.Parse(b.toCallback(t, "/auth/mock"))
		q := url.Values{"error": {"access_denied"}, "state": {cb.Query().Get("state")}}
		cb.RawQuery = q.Encode()
		wantError(t, b.callback(t, cb.String()), "access_denied")
	})
	t.Run("expired", func(t *testing.T) {
		b := e.newBrowser(t)
		cb := b.toCallback(t, "/auth/mock")
		e.clock.Advance(11 * time.Minute)
		defer e.clock.Advance(-11 * time.Minute)
		wantError(t, b.callback(t, cb), "expired")
	})
	if n := e.countUsers(t); n != 1 {
		t.Errorf("%d users, want the one of the replayed flow", n)
	}
	// Refusals are logged, without the provider's code or the state.
	cb, _ := url.Parse(e.newBrowser(t).toCallback(t, "/auth/mock"))
	wantError(t, e.newBrowser(t).callback(t, cb.String()), "invalid_state")
	logs := e.logs.String()
	if !strings.Contains(logs, "federation: sign-in refused") {
		t.Error("a refused callback is not logged")
	}
	for _, secret := range []string{cb.Query().Get("state"), cb.Query().Get("code")} {
		if secret == "" || strings.Contains(logs, secret) {
			t.Errorf("the logs carry %q (or it is empty)", secret)
		}
	}
}

func TestFederationExchangeAuthCode(t *testing.T) {
	m := startOIDC(t)
	e := newFedEnv(t, m)
	for name, code := range map[string]string{
		"unknown": strings.Repeat("A", 43), "malformed": "not a code", "empty": "", "too long": strings.Repeat("A", 44),
	} {
		t.Run(name, func(t *testing.T) { wantAuthCodeError(t, e.exchange(t, code), "unknown") })
	}
	t.Run("expired", func(t *testing.T) {
		queue(m, "sub-exp", "exp@example.test", true)
		q := e.newBrowser(t).signIn(t, "/auth/mock")
		e.clock.Advance(61 * time.Second)
		wantAuthCodeError(t, e.exchange(t, q.Get("code")), "expired")
	})
	t.Run("concurrent exchanges", func(t *testing.T) {
		queue(m, "sub-conc", "conc@example.test", true)
		q := e.newBrowser(t).signIn(t, "/auth/mock")
		var wg sync.WaitGroup
		results := make([]gqlResponse, 8)
		for i := range results {
			wg.Go(func() { results[i] = e.exchange(t, q.Get("code")) })
		}
		wg.Wait()
		won := 0
		for _, r := range results {
			if len(r.Errors) == 0 {
				won++
			} else if r.ext("code") != "INVALID_AUTH_CODE" || r.ext("reason") != "used" {
				t.Errorf("a losing exchange: %s", r.Raw)
			}
		}
		if won != 1 {
			t.Errorf("%d exchanges of one code succeeded, want 1", won)
		}
	})
	t.Run("a link ticket is no sign-in code", func(t *testing.T) {
		p, _, _ := e.withTotp(t, "fed_tkt")
		res := e.post(t, p.AccessToken, beginLinkMutation, nil)
		var ticket string
		if err := json.Unmarshal(res.Data["beginLinkIdentity"], &ticket); err != nil || ticket == "" {
			t.Fatalf("beginLinkIdentity: %s", res.Raw)
		}
		wantAuthCodeError(t, e.exchange(t, ticket), "unknown")
	})
}

// The linking rules: what a provider's address may do to accounts.
func TestFederationLinkingRules(t *testing.T) {
	m := startOIDC(t)
	e := newFedEnv(t, m)

	t.Run("unverified provider email neither creates nor links", func(t *testing.T) {
		before := e.countUsers(t)
		queue(m, "sub-unv", "unverified@example.test", false)
		wantError(t, e.newBrowser(t).signIn(t, "/auth/mock"), "email_not_verified")
		if e.countUsers(t) != before || len(e.docs(t, "identities", bson.D{})) != 0 {
			t.Error("an unverified address created something")
		}
		// Not even an account with that address, verified.
		p := e.mustRegister(t, "fed_verified", "fed_verified@example.test")
		verifyAddress(t, e, "fed_verified@example.test")
		queue(m, "sub-unv2", "fed_verified@example.test", false)
		wantError(t, e.newBrowser(t).signIn(t, "/auth/mock"), "email_not_verified")
		if ids := e.identities(t, p.AccessToken); len(ids) != 0 {
			t.Errorf("identities = %+v", ids)
		}
	})

	t.Run("pre-registration takeover", func(t *testing.T) {
		// The attacker registers the victim's address (unverified, for the
		// victim never clicks the link); the victim then signs in with the
		// provider, which has verified the address.
		attacker := e.mustRegister(t, "fed_attacker", "victim@example.test")
		before := e.docs(t, "users", bson.D{{Key: "email_key", Value: "victim@example.test"}})
		users := e.countUsers(t)
		queue(m, "sub-victim", "victim@example.test", true)
		wantError(t, e.newBrowser(t).signIn(t, "/auth/mock"), "account_exists")
		after := e.docs(t, "users", bson.D{{Key: "email_key", Value: "victim@example.test"}})
		if b, _ := json.Marshal(before); string(b) != canonicalJSON(t, after) || e.countUsers(t) != users {
			t.Errorf("the attacker's account changed:\n%v\n%v", before, after)
		}
		if ids := e.identities(t, attacker.AccessToken); len(ids) != 0 {
			t.Errorf("the attacker's account got identities %+v", ids)
		}
		if len(e.docs(t, "identities", bson.D{{Key: "subject", Value: "sub-victim"}})) != 0 {
			t.Error("the victim's identity was stored")
		}
		if n := len(mailsTo(e.smtp, "victim@example.test", subjectLinked)); n != 0 {
			t.Errorf("%d IDENTITY_LINKED mails", n)
		}
	})

	t.Run("verified on both sides links and tells the account", func(t *testing.T) {
		p := e.mustRegister(t, "fed_both", "fed_both@example.test")
		verifyAddress(t, e, "fed_both@example.test")
		s := e.fedSignIn(t, m, "sub-both", "FED_BOTH@example.test")
		if s.User.ID != p.User.ID {
			t.Fatalf("signed in as %s, want the existing account %s", s.User.ID, p.User.ID)
		}
		if ids := e.identities(t, p.AccessToken); len(ids) != 1 || ids[0].Provider != fedProvider {
			t.Fatalf("identities = %+v", ids)
		}
		mail := waitMail(t, e.smtp, "fed_both@example.test", subjectLinked, 1)
		if !strings.Contains(mail.Text, fedProviderDisplay) || !strings.Contains(mail.Text, "fed_both") {
			t.Errorf("IDENTITY_LINKED mail:\n%s", mail.Text)
		}
		if len(e.auditLines(t, "identity_linked")) == 0 {
			t.Error("no identity_linked audit line")
		}
		// The password still works; the next sign-in with the provider sends no mail.
		payload(t, e.login(t, "", "fed_both", testPassword), "login")
		e.fedSignIn(t, m, "sub-both", "fed_both@example.test")
		time.Sleep(quietWait)
		if n := len(mailsTo(e.smtp, "fed_both@example.test", subjectLinked)); n != 1 {
			t.Errorf("%d IDENTITY_LINKED mails, want 1", n)
		}
	})

	t.Run("a known identity signs in whatever its address now", func(t *testing.T) {
		first := e.fedSignIn(t, m, "sub-moves", "moves@example.test")
		queue(m, "sub-moves", "moved@example.test", false)
		q := e.newBrowser(t).signIn(t, "/auth/mock")
		s := payload(t, e.exchange(t, q.Get("code")), "exchangeAuthCode")
		if s.User.ID != first.User.ID {
			t.Errorf("signed in as %s, want %s", s.User.ID, first.User.ID)
		}
	})

	t.Run("usernames are derived and made unique", func(t *testing.T) {
		e.mustRegister(t, "taken.name", "taken@example.test")
		s := e.fedSignIn(t, m, "sub-taken", "taken.name@elsewhere.test")
		if !strings.HasPrefix(s.User.Username, "taken.name-") || len(s.User.Username) > 32 {
			t.Errorf("username %q, want taken.name-NNNNNN", s.User.Username)
		}
		s = e.fedSignIn(t, m, "sub-odd", "x@odd.test") // too short a local part
		if len(s.User.Username) < 3 {
			t.Errorf("username %q", s.User.Username)
		}
	})
}

func canonicalJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// verifyAddress verifies addr with the link of its first verification mail.
func verifyAddress(t *testing.T, e *env, addr string) {
	t.Helper()
	accountIn(t, e.verifyEmail(t, e.verifyToken(t, addr, 1)), "verifyEmail")
}

// Two first sign-ins of one identity at once end with one account and one
// identity, and both sign in to it.
func TestFederationConcurrentFirstSignIns(t *testing.T) {
	m := startOIDC(t)
	e := newFedEnv(t, m)
	const n = 4
	browsers := make([]*fedBrowser, n)
	callbacks := make([]string, n)
	for i := range n {
		queue(m, "sub-race", "race@example.test", true)
		browsers[i] = e.newBrowser(t)
		callbacks[i] = browsers[i].toCallback(t, "/auth/mock")
	}
	var wg sync.WaitGroup
	codes := make([]string, n)
	for i := range n {
		wg.Go(func() { codes[i] = browsers[i].callback(t, callbacks[i]).Get("code") })
	}
	wg.Wait()
	ids := map[string]bool{}
	for i, c := range codes {
		if c == "" {
			t.Fatalf("sign-in %d got no code", i)
		}
		ids[payload(t, e.exchange(t, c), "exchangeAuthCode").User.ID] = true
	}
	if len(ids) != 1 || e.countUsers(t) != 1 || len(e.docs(t, "identities", bson.D{})) != 1 {
		t.Errorf("%d accounts signed in, %d users, %d identities; want 1 each", len(ids), e.countUsers(t),
			len(e.docs(t, "identities", bson.D{})))
	}
	time.Sleep(quietWait)
	if got := len(mailsTo(e.smtp, "race@example.test", subjectLinked)); got != 0 {
		t.Errorf("%d IDENTITY_LINKED mails to the new account", got)
	}
}

// redirect is handed to the app only as an app-relative path: the server
// redirects nowhere but APP_URL.
func TestFederationOpenRedirect(t *testing.T) {
	m := startOIDC(t)
	e := newFedEnv(t, m)
	for _, evil := range []string{"//evil.example", "/\\evil.example", "https://evil.example/x", "javascript:alert(1)",
		"/%2F%2Fevil.example", "evil.example"} {
		q := e.newBrowser(t).signIn(t, "/auth/mock?redirect="+url.QueryEscape(evil))
		if q.Has("redirect") || q.Get("code") == "" {
			t.Errorf("redirect=%q: the app got %v, want a code and no redirect", evil, q)
		}
	}
	if q := e.newBrowser(t).signIn(t, "/auth/mock?redirect=%2Fok"); q.Get("redirect") != "/ok" {
		t.Errorf("a good redirect was dropped: %v", q)
	}
}

func TestFederationUnknownProvider(t *testing.T) {
	m := startOIDC(t)
	e := newFedEnv(t, m)
	for _, path := range []string{"/auth/nope", "/auth/nope/callback?state=x&code=y"} {
		res, _ := e.newBrowser(t).navigate(t, fedPublicURL+path)
		if res.StatusCode != http.StatusNotFound || !strings.Contains(res.Header.Get("Content-Type"), "application/json") {
			t.Errorf("GET %s: %s %s, want a 404 JSON error", path, res.Status, res.Header.Get("Content-Type"))
		}
	}
	// Without providers there are no routes at all.
	plain := newEnv(t)
	res, err := plain.srv.Client().Get(plain.srv.URL + "/auth/mock")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("without providers: %s", res.Status)
	}
	if r := plain.get(t, "", `{ providers { name } }`, nil); !strings.Contains(r.Raw, `"providers":[]`) {
		t.Errorf("providers without any: %s", r.Raw)
	}
}

// An account made by a provider has no password: a password login fails as
// a wrong password does, until a reset sets one.
func TestFederationAccountWithoutPassword(t *testing.T) {
	m := startOIDC(t)
	e := newFedEnv(t, m)
	s := e.fedSignIn(t, m, "sub-nopw", "nopw@example.test")
	for _, login := range []string{s.User.Username, "nopw@example.test"} {
		for _, pw := range []string{testPassword, "", "x"} {
			res := e.login(t, "", login, pw)
			if res.ext("code") != "INVALID_CREDENTIALS" {
				t.Errorf("login %s/%q: %s", login, pw, res.Raw)
			}
		}
	}
	wrong := e.login(t, "", "nobody-here", testPassword)
	if got := e.login(t, "", s.User.Username, testPassword); got.Errors[0].Message != wrong.Errors[0].Message {
		t.Errorf("password-less %q vs unknown %q", got.Errors[0].Message, wrong.Errors[0].Message)
	}
	boolIn(t, e.requestReset(t, "nopw@example.test"), "requestPasswordReset")
	reset := payload(t, e.resetPassword(t, e.resetToken(t, "nopw@example.test", 1), "a brand new passphrase"), "resetPassword")
	if reset.User.ID != s.User.ID {
		t.Fatalf("reset signed in %s", reset.User.ID)
	}
	payload(t, e.login(t, "", "nopw@example.test", "a brand new passphrase"), "login")
	// The provider still signs in.
	if again := e.fedSignIn(t, m, "sub-nopw", "nopw@example.test"); again.User.ID != s.User.ID {
		t.Errorf("provider sign-in after the reset: %s", again.User.ID)
	}
}

// A second factor still counts: a provider sign-in of such an account is
// level 1, confined until verifyMfa.
func TestFederationMFAAccountIsLevel1(t *testing.T) {
	m := startOIDC(t)
	e := newFedEnv(t, m)
	_, secret, _ := e.withTotp(t, "fed_mfa")
	verifyAddress(t, e, "fed_mfa@example.test")
	s := e.fedSignIn(t, m, "sub-mfa", "fed_mfa@example.test")
	wantLevel(t, "exchangeAuthCode", s.AccessToken, 1, "[fed]", true)
	if res := e.post(t, s.AccessToken, `{ exportMyData }`, nil); res.ext("reason") != "mfa_required" {
		t.Fatalf("exportMyData at level 1: %s", res.Raw)
	}
	if res := e.post(t, s.AccessToken, identitiesQuery, nil); res.ext("reason") != "mfa_required" {
		t.Fatalf("identities at level 1: %s", res.Raw)
	}
	up := payload(t, e.verifyMfa(t, s.AccessToken, e.totpCode(t, secret)), "verifyMfa")
	wantLevel(t, "verifyMfa", up.AccessToken, 2, "[fed otp]", true)
	if ids := e.identities(t, up.AccessToken); len(ids) != 1 {
		t.Errorf("identities = %+v", ids)
	}
}

// Linking from a signed-in session: a ticket of beginLinkIdentity (level 2)
// sends the browser through the provider; the callback links nothing but
// hands the app a link code, which the session that asked exchanges: the
// identity joins the account and the session goes on, with new tokens.
func TestFederationLinkFlow(t *testing.T) {
	m := startOIDC(t)
	e := newFedEnv(t, m)
	p, _, _ := e.withTotp(t, "fed_linker") // level 2, address unverified
	sid := jwtClaims(t, p.AccessToken)["sid"]

	tk := e.linkTicket(t, p.AccessToken)
	// The provider's address is another one, unverified even: a link from a
	// session does not go by the address.
	queue(m, "sub-link", "somewhere@else.test", false)
	q := e.newBrowser(t).signIn(t, "/auth/mock?link="+tk+"&redirect=/settings")
	code := wantLinkCode(t, q)
	if q.Get("redirect") != "/settings" {
		t.Fatalf("the app got %v, want the redirect", q)
	}
	if ids := e.identities(t, p.AccessToken); len(ids) != 0 {
		t.Fatalf("linked at the callback, before the exchange: %+v", ids)
	}
	if n := len(e.docs(t, "federation_codes", bson.D{{Key: "kind", Value: "link_code"}, {Key: "subject", Value: "sub-link"}})); n != 1 {
		t.Fatalf("%d link codes stored, want 1", n)
	}
	if strings.Contains(e.dump(t), code) {
		t.Fatal("the database holds the link code itself")
	}

	up := payload(t, e.exchangeAs(t, p.AccessToken, code), "exchangeAuthCode")
	// The same session, its level and methods kept; the refresh token rotated.
	c := wantLevel(t, "exchangeAuthCode of a link code", up.AccessToken, 2, "[pwd otp]", true)
	if c["sid"] != sid || up.User.ID != p.User.ID || up.RefreshToken == p.RefreshToken {
		t.Fatalf("exchangeAuthCode: sid %v user %s; want the linking session %v of %s, a new refresh token", c["sid"],
			up.User.ID, sid, p.User.ID)
	}
	res := e.post(t, up.AccessToken, `{ sessions { id current } }`, nil)
	var sessions []struct {
		ID      string `json:"id"`
		Current bool   `json:"current"`
	}
	if err := json.Unmarshal(res.Data["sessions"], &sessions); err != nil || len(sessions) != 1 || !sessions[0].Current ||
		sessions[0].ID != sid {
		t.Fatalf("sessions after the link: %s; want the one, current", res.Raw)
	}
	next := payload(t, e.refresh(t, "", up.RefreshToken), "refreshToken")
	if c := wantLevel(t, "refresh after the link", next.AccessToken, 2, "[pwd otp]", true); c["sid"] != sid {
		t.Errorf("refresh after the link: sid %v, want %v", c["sid"], sid)
	}
	ids := e.identities(t, up.AccessToken)
	if len(ids) != 1 || ids[0].Email != "somewhere@else.test" || ids[0].Provider != fedProvider {
		t.Fatalf("identities = %+v", ids)
	}
	waitMail(t, e.smtp, "fed_linker@example.test", subjectLinked, 1)
	if len(e.auditLines(t, "identity_linked")) != 1 {
		t.Error("no identity_linked audit line")
	}
	access := next.AccessToken
	// Once only.
	wantAuthCodeError(t, e.exchangeAs(t, access, code), "used")
	// The identity now signs in to the account.
	queue(m, "sub-link", "somewhere@else.test", false)
	if s := payload(t, e.exchange(t, e.newBrowser(t).signIn(t, "/auth/mock").Get("code")), "exchangeAuthCode"); s.User.ID != p.User.ID {
		t.Errorf("signed in as %s, want %s", s.User.ID, p.User.ID)
	}

	t.Run("ticket reuse", func(t *testing.T) {
		wantError(t, e.newBrowser(t).signIn(t, "/auth/mock?link="+tk), "invalid_state")
	})
	t.Run("link=1&ticket=", func(t *testing.T) {
		queue(m, "sub-link2", "second@else.test", true)
		code := wantLinkCode(t, e.newBrowser(t).signIn(t, "/auth/mock?link=1&ticket="+e.linkTicket(t, access)))
		access = payload(t, e.exchangeAs(t, access, code), "exchangeAuthCode").AccessToken
		if n := len(e.identities(t, access)); n != 2 {
			t.Errorf("%d identities, want 2", n)
		}
	})
	t.Run("already linked to this account", func(t *testing.T) {
		// The confirm step all the same, and a success that changes nothing.
		queue(m, "sub-link", "somewhere@else.test", false)
		code := wantLinkCode(t, e.newBrowser(t).signIn(t, "/auth/mock?link="+e.linkTicket(t, access)))
		again := payload(t, e.exchangeAs(t, access, code), "exchangeAuthCode")
		if c := wantLevel(t, "exchange", again.AccessToken, 2, "[pwd otp]", true); c["sid"] != sid {
			t.Errorf("sid %v, want %v", c["sid"], sid)
		}
		access = again.AccessToken
		if n := len(e.identities(t, access)); n != 2 {
			t.Errorf("%d identities, want 2", n)
		}
		time.Sleep(quietWait)
		if n := len(mailsTo(e.smtp, "fed_linker@example.test", subjectLinked)); n != 2 {
			t.Errorf("%d IDENTITY_LINKED mails, want 2 (one per new identity)", n)
		}
	})
	t.Run("made-up or expired ticket", func(t *testing.T) {
		wantError(t, e.newBrowser(t).signIn(t, "/auth/mock?link="+strings.Repeat("A", 43)), "invalid_state")
		old := e.linkTicket(t, access)
		e.clock.Advance(3 * time.Minute)
		wantError(t, e.newBrowser(t).signIn(t, "/auth/mock?link="+old), "expired")
	})
	t.Run("expired link code", func(t *testing.T) {
		queue(m, "sub-late", "late@else.test", true)
		code := wantLinkCode(t, e.newBrowser(t).signIn(t, "/auth/mock?link="+e.linkTicket(t, access)))
		e.clock.Advance(auth.SignInCodeTTL)
		wantAuthCodeError(t, e.exchangeAs(t, access, code), "expired")
		if len(e.docs(t, "identities", bson.D{{Key: "subject", Value: "sub-late"}})) != 0 {
			t.Error("an expired link code linked")
		}
	})
	t.Run("a link code is no sign-in", func(t *testing.T) {
		queue(m, "sub-nosignin", "nosignin@else.test", true)
		code := wantLinkCode(t, e.newBrowser(t).signIn(t, "/auth/mock?link="+e.linkTicket(t, access)))
		// A fresh client, no token: refused, nothing linked, no account.
		users := e.countUsers(t)
		wantAuthCodeError(t, e.exchange(t, code), "unknown")
		if e.countUsers(t) != users || len(e.docs(t, "identities", bson.D{{Key: "subject", Value: "sub-nosignin"}})) != 0 {
			t.Fatal("a link code used as a sign-in created or linked something")
		}
		// A presented but refused token: its own reason (the app refreshes
		// and retries).
		if r := e.exchangeAs(t, "not.a.token", code); r.ext("code") != "UNAUTHENTICATED" || r.ext("reason") != "token_invalid" {
			t.Errorf("with a bad token: %s", r.Raw)
		}
		// None of this spent the code: the linking session still can.
		access = payload(t, e.exchangeAs(t, access, code), "exchangeAuthCode").AccessToken
		if n := len(e.identities(t, access)); n != 3 {
			t.Errorf("%d identities, want 3", n)
		}
	})
	t.Run("an identity of another account", func(t *testing.T) {
		other := e.fedSignIn(t, m, "sub-other", "other@example.test")
		queue(m, "sub-other", "other@example.test", true)
		wantError(t, e.newBrowser(t).signIn(t, "/auth/mock?link="+e.linkTicket(t, access)), "account_exists")
		if ids := e.identities(t, other.AccessToken); len(ids) != 1 {
			t.Errorf("the other account's identities: %+v", ids)
		}
	})
	t.Run("linked to another account before the exchange", func(t *testing.T) {
		queue(m, "sub-meanwhile", "meanwhile@example.test", true)
		code := wantLinkCode(t, e.newBrowser(t).signIn(t, "/auth/mock?link="+e.linkTicket(t, access)))
		// Meanwhile the identity signs up an account of its own.
		other := e.fedSignIn(t, m, "sub-meanwhile", "meanwhile@example.test")
		res := e.exchangeAs(t, access, code)
		if res.ext("code") != "FORBIDDEN" || res.ext("reason") != "account_exists" {
			t.Fatalf("exchangeAuthCode: %s; want FORBIDDEN account_exists", res.Raw)
		}
		if n := len(e.identities(t, access)); n != 3 {
			t.Errorf("%d identities, want 3", n)
		}
		if ids := e.identities(t, other.AccessToken); len(ids) != 1 {
			t.Errorf("the other account's identities: %+v", ids)
		}
		wantAuthCodeError(t, e.exchangeAs(t, access, code), "used")
	})
	t.Run("a ticket of an ended session", func(t *testing.T) {
		q, _, _ := e.withTotp(t, "fed_leaver")
		tk := e.linkTicket(t, q.AccessToken)
		if !boolIn(t, e.post(t, q.AccessToken, `mutation { logout }`, nil), "logout") {
			t.Fatal("logout")
		}
		wantError(t, e.newBrowser(t).signIn(t, "/auth/mock?link="+tk), "invalid_state")
	})
	t.Run("a session that ends at the provider", func(t *testing.T) {
		// Checked at the callback too: no code for an ended session.
		q, _, _ := e.withTotp(t, "fed_leaver2")
		b := e.newBrowser(t)
		cb := b.toCallback(t, "/auth/mock?link="+e.linkTicket(t, q.AccessToken))
		if !boolIn(t, e.post(t, q.AccessToken, `mutation { logout }`, nil), "logout") {
			t.Fatal("logout")
		}
		wantError(t, b.callback(t, cb), "invalid_state")
	})
	t.Run("needs level 2", func(t *testing.T) {
		plain := e.mustRegister(t, "fed_plain", "fed_plain@example.test")
		for _, op := range []string{beginLinkMutation, `mutation { unlinkIdentity(id: "x") }`} {
			if res := e.post(t, plain.AccessToken, op, nil); res.ext("code") != "FORBIDDEN" || res.ext("reason") != "mfa_required" {
				t.Errorf("%s at level 1: %s", op, res.Raw)
			}
		}
		if res := e.post(t, "", beginLinkMutation, nil); res.ext("code") != "UNAUTHENTICATED" {
			t.Errorf("anonymous: %s", res.Raw)
		}
		// A level-1 token of the linking session (from before its second
		// factor) cannot confirm; its level-2 token can.
		first := e.mustRegister(t, "fed_stepper", "fed_stepper@example.test")
		en := e.enrollTotp(t, first.AccessToken)
		_, up := e.confirmTotp(t, first.AccessToken, en.Secret)
		queue(m, "sub-stepper", "stepper@else.test", true)
		code := wantLinkCode(t, e.newBrowser(t).signIn(t, "/auth/mock?link="+e.linkTicket(t, up.AccessToken)))
		if r := e.exchangeAs(t, first.AccessToken, code); r.ext("code") != "FORBIDDEN" || r.ext("reason") != "mfa_required" {
			t.Errorf("the level-1 token: %s", r.Raw)
		}
		payload(t, e.exchangeAs(t, up.AccessToken, code), "exchangeAuthCode")
		if n := len(e.identities(t, up.AccessToken)); n != 1 {
			t.Errorf("%d identities, want 1", n)
		}
	})
}

// Account-linking CSRF: A sends a victim the URL of A's link ticket; the
// victim consents at the provider. The victim's identity must not join A's
// account (it would sign the victim in to A's account later): the callback
// links nothing, and the code it hands the victim's browser links only for
// A's very session — which the victim's browser does not hold.
func TestFederationLinkCSRF(t *testing.T) {
	m := startOIDC(t)
	e := newFedEnv(t, m)
	a, secret, _ := e.withTotp(t, "fed_csrf_a")
	victim := e.mustRegister(t, "fed_csrf_v", "fed_csrf_v@example.test")
	tk := e.linkTicket(t, a.AccessToken)

	queue(m, "sub-csrf-victim", "fed_csrf_v@example.test", true)
	code := wantLinkCode(t, e.newBrowser(t).signIn(t, "/auth/mock?link="+tk))
	nothingLinked := func(when string) {
		t.Helper()
		if ids := e.identities(t, a.AccessToken); len(ids) != 0 {
			t.Fatalf("%s: A's identities %+v", when, ids)
		}
		if n := len(e.docs(t, "identities", bson.D{{Key: "subject", Value: "sub-csrf-victim"}})); n != 0 {
			t.Fatalf("%s: the victim's identity is stored", when)
		}
	}
	nothingLinked("after the callback")

	// The victim's app page exchanges the code: signed out, or signed in
	// to the victim's own account.
	wantAuthCodeError(t, e.exchange(t, code), "unknown")
	wantAuthCodeError(t, e.exchangeAs(t, victim.AccessToken, code), "unknown")
	nothingLinked("after the victim's exchanges")
	// Another session of A (signed in elsewhere, level 2) is not the one
	// that asked either.
	elsewhere := e.loginAs(t, "fed_csrf_a")
	elsewhere = payload(t, e.verifyMfa(t, elsewhere.AccessToken, e.totpCode(t, secret)), "verifyMfa")
	wantAuthCodeError(t, e.exchangeAs(t, elsewhere.AccessToken, code), "unknown")
	nothingLinked("after another session's exchange")
	if n := len(e.auditLines(t, "identity_link_confirm")); n < 3 {
		t.Errorf("%d identity_link_confirm audit lines, want the 3 refusals", n)
	}
	time.Sleep(quietWait)
	if n := len(mailsTo(e.smtp, "fed_csrf_a@example.test", subjectLinked)); n != 0 {
		t.Errorf("%d IDENTITY_LINKED mails to A", n)
	}
	// The refusals did not spend the code: A's own session, which asked,
	// could still finish. That is the design: the code is bound to A's
	// session, and only the browser that went through the provider (here
	// the victim's) ever holds it.
	linked := payload(t, e.exchangeAs(t, a.AccessToken, code), "exchangeAuthCode")
	if linked.User.ID != a.User.ID || jwtClaims(t, linked.AccessToken)["sid"] != jwtClaims(t, a.AccessToken)["sid"] {
		t.Errorf("A's exchange: user %s", linked.User.ID)
	}
	if ids := e.identities(t, a.AccessToken); len(ids) != 1 {
		t.Errorf("A's identities after A's own exchange: %+v", ids)
	}
	if ids := e.identities(t, victim.AccessToken); len(ids) != 0 {
		t.Errorf("the victim's identities: %+v", ids)
	}
}

// unlinkIdentity: the caller's own identities only, at level 2, and never
// the account's last way to sign in.
func TestFederationUnlink(t *testing.T) {
	m := startOIDC(t)
	e := newFedEnv(t, m)

	// A provider-made account (no password) with an authenticator app, to
	// reach level 2.
	s := e.fedSignIn(t, m, "sub-only", "only@example.test")
	en := e.enrollTotp(t, s.AccessToken)
	_, up := e.confirmTotp(t, s.AccessToken, en.Secret)
	wantLevel(t, "confirmTotp", up.AccessToken, 2, "[fed otp]", true)
	ids := e.identities(t, up.AccessToken)
	if len(ids) != 1 {
		t.Fatalf("identities = %+v", ids)
	}
	res := e.post(t, up.AccessToken, unlinkMutation, map[string]any{"id": ids[0].ID})
	wantRefusal(t, "unlink the last way to sign in", res, "BAD_USER_INPUT", "id", "last_sign_in_method")
	if n := len(e.identities(t, up.AccessToken)); n != 1 {
		t.Fatalf("%d identities after a refused unlink", n)
	}
	// With a passkey the identity may go; then the passkey is the last way
	// in, and deletePasskey refuses as unlinkIdentity did.
	_, key := e.addPasskey(t, up.AccessToken, "only key")
	if !boolIn(t, e.post(t, up.AccessToken, unlinkMutation, map[string]any{"id": ids[0].ID}), "unlinkIdentity") {
		t.Fatal("unlink with a passkey left")
	}
	res = e.post(t, up.AccessToken, `mutation($id: ID!) { deletePasskey(id: $id) }`, map[string]any{"id": key})
	wantRefusal(t, "delete the last passkey of a password-less account", res, "BAD_USER_INPUT", "id", "last_sign_in_method")
	if n := len(e.docs(t, "passkeys", bson.D{})); n != 1 {
		t.Fatalf("%d passkeys after a refused delete", n)
	}

	// An account with a password and an identity may drop the identity.
	p, _, _ := e.withTotp(t, "fed_unlinker")
	verifyAddress(t, e, "fed_unlinker@example.test")
	e.fedSignIn(t, m, "sub-unlinker", "fed_unlinker@example.test")
	mine := e.identities(t, p.AccessToken)
	if len(mine) != 1 {
		t.Fatalf("identities = %+v", mine)
	}
	// Not another user's identity, nor a made-up one.
	for _, id := range []string{mine[0].ID, "000000000000000000000000", ""} {
		res := e.post(t, up.AccessToken, unlinkMutation, map[string]any{"id": id})
		if res.ext("code") != "NOT_FOUND" || res.ext("field") != "id" {
			t.Errorf("unlink %q of another account: %s", id, res.Raw)
		}
	}
	if !boolIn(t, e.post(t, p.AccessToken, unlinkMutation, map[string]any{"id": mine[0].ID}), "unlinkIdentity") {
		t.Fatal("unlink")
	}
	if n := len(e.identities(t, p.AccessToken)); n != 0 {
		t.Errorf("%d identities after the unlink", n)
	}
	if n := len(e.auditLines(t, "identity_unlinked")); n != 2 {
		t.Errorf("%d identity_unlinked audit lines, want 2 (one per unlink)", n)
	}
	// The identity is free again: the next sign-in links it anew (the
	// address is verified on both sides).
	if again := e.fedSignIn(t, m, "sub-unlinker", "fed_unlinker@example.test"); again.User.ID != p.User.ID {
		t.Errorf("signed in as %s", again.User.ID)
	}
}

// disableUser and revocation end federated sessions like any other; a
// disabled account's code is refused as login refuses it.
func TestFederationDisabledAndRevoked(t *testing.T) {
	m := startOIDC(t)
	e := newFedEnv(t, m)
	admin := e.mustRegister(t, "fed_admin", "fed_admin@example.test")
	e.grantAdmin(t, "fed_admin")
	admin = e.loginAs(t, "fed_admin")

	s := e.fedSignIn(t, m, "sub-dis", "dis@example.test")
	other := e.fedSignIn(t, m, "sub-dis", "dis@example.test")
	if !e.meWorks(t, s.AccessToken) {
		t.Fatal("me before")
	}
	// logout ALL from one federated session ends the other.
	if !boolIn(t, e.post(t, other.AccessToken, `mutation { logout(scope: OTHERS) }`, nil), "logout") {
		t.Fatal("logout")
	}
	waitRevoked(t, e, s.AccessToken)
	if r := e.refresh(t, "", s.RefreshToken); r.ext("code") != "INVALID_REFRESH_TOKEN" {
		t.Errorf("refresh of a revoked federated session: %s", r.Raw)
	}

	// A pending code, then the account is disabled.
	queue(m, "sub-dis", "dis@example.test", true)
	pending := e.newBrowser(t).signIn(t, "/auth/mock").Get("code")
	if r := e.post(t, admin.AccessToken, `mutation($id: ID!) { disableUser(id: $id) { disabled } }`,
		map[string]any{"id": other.User.ID}); len(r.Errors) > 0 {
		t.Fatalf("disableUser: %s", r.Raw)
	}
	waitRevoked(t, e, other.AccessToken)
	if r := e.refresh(t, "", other.RefreshToken); len(r.Errors) == 0 {
		t.Errorf("refresh of a disabled account's federated session: %s", r.Raw)
	}
	for name, code := range map[string]string{"pending": pending, "new": func() string {
		queue(m, "sub-dis", "dis@example.test", true)
		return e.newBrowser(t).signIn(t, "/auth/mock").Get("code")
	}()} {
		r := e.exchange(t, code)
		if r.ext("code") != "FORBIDDEN" || r.ext("reason") != "user_disabled" {
			t.Errorf("%s code of a disabled account: %s", name, r.Raw)
		}
	}
}

// waitRevoked polls me with access until it is refused.
func waitRevoked(t *testing.T, e *env, access string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for e.meWorks(t, access) {
		if time.Now().After(deadline) {
			t.Fatal("a revoked session's access token still works")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// exportMyData lists the identities; account deletion removes them.
func TestFederationExportAndDeletion(t *testing.T) {
	m := startOIDC(t)
	e := newFedEnv(t, m)
	p := e.mustRegister(t, "fed_gone", "fed_gone@example.test")
	verifyAddress(t, e, "fed_gone@example.test")
	e.fedSignIn(t, m, "sub-gone", "fed_gone@example.test")
	res := e.post(t, p.AccessToken, `{ exportMyData }`, nil)
	var data struct {
		ExportMyData struct {
			Identities []map[string]any `json:"identities"`
		} `json:"exportMyData"`
	}
	if err := json.Unmarshal([]byte(res.Raw), &struct {
		Data any `json:"data"`
	}{&data}); err != nil || len(data.ExportMyData.Identities) != 1 ||
		data.ExportMyData.Identities[0]["provider"] != fedProvider || data.ExportMyData.Identities[0]["subject"] != "sub-gone" {
		t.Fatalf("exportMyData: %s", res.Raw)
	}
	if !boolIn(t, e.post(t, p.AccessToken, deleteAccountMutation, map[string]any{"p": testPassword}), "deleteAccount") {
		t.Fatal("deleteAccount")
	}
	if left := e.docs(t, "identities", bson.D{{Key: "user_id", Value: p.User.ID}}); len(left) != 0 {
		t.Errorf("identities left: %v", left)
	}
	if left := e.docs(t, "federation_codes", bson.D{{Key: "user_id", Value: p.User.ID}}); len(left) != 0 {
		t.Errorf("codes left: %v", left)
	}
	// The identity may sign up again: a new account.
	if s := e.fedSignIn(t, m, "sub-gone", "fed_gone@example.test"); s.User.ID == p.User.ID {
		t.Error("signed in to the deleted account")
	}
}

// Over https the binding cookie is Secure and host-only (__Host-).
func TestFederationBindingCookieTLS(t *testing.T) {
	m := startOIDC(t)
	o := fedOptions(m)
	o.cfg.PublicURL = "https://" + fedHost
	e := newEnvWith(t, o)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := noFollow.Do(mustRequest(t, e.srv.URL+"/auth/mock"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusFound {
		t.Fatalf("GET /auth/mock: %s", res.Status)
	}
	set := res.Header.Get("Set-Cookie")
	for _, want := range []string{fedBindingCookieTLS + "=", "Path=/", "Max-Age=600", "HttpOnly", "Secure", "SameSite=Lax"} {
		if !strings.Contains(set, want) {
			t.Errorf("Set-Cookie %q lacks %s", set, want)
		}
	}
	if strings.Contains(set, "Domain=") {
		t.Errorf("Set-Cookie %q has a Domain", set)
	}
	// The provider is told to come back to PUBLIC_URL.
	loc, _ := res.Location()
	if got := loc.Query().Get("redirect_uri"); got != "https://"+fedHost+"/auth/mock/callback" {
		t.Errorf("redirect_uri = %q", got)
	}
}

func mustRequest(t *testing.T, rawURL string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// The routes share the per-IP login limit: a flood from one address is
// answered 429 with a GraphQL-shaped error, before any flow is stored.
func TestFederationRateLimited(t *testing.T) {
	m := startOIDC(t)
	o := fedOptions(m)
	o.cfg.LoginRate = auth.Rate{N: 2, Per: time.Minute}
	e := newEnvWith(t, o)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var last *http.Response
	for range 3 {
		res, err := noFollow.Do(mustRequest(t, e.srv.URL+"/auth/mock"))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		last = res
	}
	if last.StatusCode != http.StatusTooManyRequests || last.Header.Get("Retry-After") == "" {
		t.Fatalf("third start: %s, Retry-After %q", last.Status, last.Header.Get("Retry-After"))
	}
	r := e.send(t, mustRequest(t, e.srv.URL+"/auth/mock/callback?state=x&code=y"))
	if r.Status != http.StatusTooManyRequests || r.ext("code") != "RATE_LIMITED" || r.ext("reason") != "ip" {
		t.Errorf("callback: %d %s", r.Status, r.Raw)
	}
	if n := len(e.docs(t, "federation_flows", bson.D{})); n != 2 {
		t.Errorf("%d flows stored, want 2", n)
	}
}

// The GitHub adapter signs in end to end too, against the local stand-in of
// GitHub's web flow and API; and both providers at once keep their
// identities apart.
func TestFederationGitHub(t *testing.T) {
	m := startOIDC(t)
	gh := githubtest.New(t, githubtest.Options{AutoApprove: true,
		CallbackURL: fedPublicURL + "/auth/github/callback"})
	o := fedOptions(m)
	o.cfg.OIDCProviders = append(o.cfg.OIDCProviders, federation.Provider{Name: "github", Kind: federation.KindGitHub,
		ClientID: gh.ClientID, ClientSecret: gh.ClientSecret, DisplayName: "GitHub", GitHubURL: gh.URL, GitHubAPIURL: gh.URL})
	e := newEnvWith(t, o)

	q := e.newBrowser(t).signIn(t, "/auth/github?redirect=/home")
	if q.Get("redirect") != "/home" {
		t.Fatalf("the app got %v", q)
	}
	s := payload(t, e.exchange(t, q.Get("code")), "exchangeAuthCode")
	wantLevel(t, "exchangeAuthCode", s.AccessToken, 1, "[fed]", false)
	if s.User.Username != "octocat" || s.User.Email != "octocat@example.com" {
		t.Errorf("the GitHub account: %+v", s.User)
	}
	// The same address at the OIDC provider: the account's address is
	// verified (made by GitHub's verified one), so the identity links.
	same := e.fedSignIn(t, m, "sub-octo", "octocat@example.com")
	if same.User.ID != s.User.ID {
		t.Errorf("the OIDC identity signed in %s, want %s", same.User.ID, s.User.ID)
	}
	ids := e.identities(t, s.AccessToken)
	if len(ids) != 2 || ids[0].Provider != "github" || ids[1].Provider != fedProvider {
		t.Errorf("identities = %+v", ids)
	}
	waitMail(t, e.smtp, "octocat@example.com", subjectLinked, 1)
	// A GitHub user without a verified address neither creates nor links.
	gh.SetUser(githubtest.User{ID: 7, Login: "nomail", Emails: []githubtest.Email{{Email: "nomail@example.com", Primary: true}}})
	wantError(t, e.newBrowser(t).signIn(t, "/auth/github"), "email_not_verified")
	if res := e.get(t, "", `{ providers { name displayName } }`, nil); !strings.Contains(res.Raw,
		`[{"name":"github","displayName":"GitHub"},{"name":"mock","displayName":"Mock ID"}]`) {
		t.Errorf("providers: %s", res.Raw)
	}
}

// A provider that cannot be reached at start does not stop the server: its
// flows end at the app with provider_error while the others work.
func TestFederationProviderUnreachable(t *testing.T) {
	m := startOIDC(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String() + "/oidc"
	ln.Close()
	o := fedOptions(m)
	o.cfg.OIDCProviders = append(o.cfg.OIDCProviders, federation.Provider{Name: "down", Issuer: dead, ClientID: "c",
		ClientSecret: "s"})
	e := newEnvWith(t, o)
	wantError(t, e.newBrowser(t).signIn(t, "/auth/down?redirect=/x"), "provider_error")
	if q := e.newBrowser(t).signIn(t, "/auth/mock"); q.Get("code") == "" {
		t.Errorf("the reachable provider: %v", q)
	}
	if !strings.Contains(e.logs.String(), "provider unreachable") {
		t.Error("the unreachable provider is not logged")
	}
}

// In cookie mode exchangeAuthCode answers a page of the app like login: the
// refresh token in the HttpOnly cookie, null in the body.
func TestFederationExchangeCookieMode(t *testing.T) {
	m := startOIDC(t)
	o := fedOptions(m)
	o.cfg.AuthCookie, o.cfg.AuthCookieSameSite = true, "Strict"
	o.cfg.CORSAllowedOrigins = []string{appOrigin}
	e := newEnvWith(t, o)
	queue(m, "sub-cookie", "cookie@example.test", true)
	code := e.newBrowser(t).signIn(t, "/auth/mock").Get("code")
	res := e.browser(t, browserReq{origin: appOrigin, query: exchangeMutation, vars: map[string]any{"c": code}})
	refresh := wantSessionCookie(t, res, "exchangeAuthCode", sessionTTL)
	next := e.browser(t, browserReq{origin: appOrigin, cookie: refresh,
		query: `mutation { refreshToken { accessToken refreshToken } }`})
	if len(next.Errors) > 0 {
		t.Fatalf("refresh by cookie: %s", next.Raw)
	}

	// A link code too: the page sends its bearer token, and the session's
	// rotated refresh token comes back in the cookie.
	p, _, _ := e.withTotp(t, "fed_cookie_linker")
	queue(m, "sub-cookie-link", "cookie-link@example.test", true)
	link := wantLinkCode(t, e.newBrowser(t).signIn(t, "/auth/mock?link="+e.linkTicket(t, p.AccessToken)))
	res = e.browser(t, browserReq{origin: appOrigin, query: exchangeMutation, vars: map[string]any{"c": link}})
	wantAuthCodeError(t, res, "unknown")
	res = e.browser(t, browserReq{origin: appOrigin, bearer: p.AccessToken, query: exchangeMutation,
		vars: map[string]any{"c": link}})
	// The session's remaining lifetime: it is the linking session, not a new one.
	refresh = wantSessionCookie(t, res, "exchangeAuthCode", p.RefreshTokenExpiresAt.Sub(e.clock.Now()))
	next = e.browser(t, browserReq{origin: appOrigin, cookie: refresh,
		query: `mutation { refreshToken { accessToken refreshToken } }`})
	var out struct {
		AccessToken string `json:"accessToken"`
	}
	if err := json.Unmarshal(next.Data["refreshToken"], &out); err != nil || len(next.Errors) > 0 ||
		jwtClaims(t, out.AccessToken)["sid"] != jwtClaims(t, p.AccessToken)["sid"] {
		t.Fatalf("refresh by the link's cookie: %s; want the linking session", next.Raw)
	}
	if n := len(e.identities(t, out.AccessToken)); n != 1 {
		t.Errorf("%d identities, want 1", n)
	}
}
