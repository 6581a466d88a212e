package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgql/server/internal/api"
)

// Cookie mode (AUTH_COOKIE=on): the refresh token of a browser on an allowed
// origin travels in an HttpOnly cookie, and only such a request may use it.

const (
	ownOrigin     = "https://auth.example.test" // PUBLIC_URL's origin
	appOrigin     = "https://app.example.test"  // in CORS_ALLOWED_ORIGINS
	evilOrigin    = "https://evil.example"
	hostCookie    = "__Host-authgql_refresh"
	cookieRefresh = `mutation { refreshToken { ` + payloadFields + ` } }`
)

// sessionTTL is REFRESH_TOKEN_TTL's default, which these tests keep.
var sessionTTL = defaultOptions().cfg.RefreshTokenTTL

func cookieOptions() envOptions {
	o := defaultOptions()
	o.cfg.AuthCookie = true
	o.cfg.AuthCookieSameSite = "Strict"
	o.cfg.PublicURL = ownOrigin
	o.cfg.CORSAllowedOrigins = []string{appOrigin, "http://localhost:*"}
	return o
}

// browserReq is a request as a browser page sends it: a JSON POST with an
// Origin, the refresh cookie if it has one, and maybe an access token.
type browserReq struct {
	origin  string // "" sends no Origin header
	cookie  string // the refresh cookie's value; "" sends none
	bearer  string
	query   string
	vars    map[string]any
	headers map[string][]string // extra headers
}

func (e *env) browser(t *testing.T, b browserReq) gqlResponse {
	t.Helper()
	body, err := json.Marshal(map[string]any{"query": b.query, "variables": b.vars})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/query", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if b.origin != "" {
		req.Header.Set("Origin", b.origin)
	}
	if b.cookie != "" {
		req.AddCookie(&http.Cookie{Name: hostCookie, Value: b.cookie})
	}
	if b.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+b.bearer)
	}
	for k, vs := range b.headers {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	return e.send(t, req)
}

// setCookie returns the one Set-Cookie of a response, parsed, and its raw
// text; it fails when there is none or more than one.
func setCookie(t *testing.T, res gqlResponse) (*http.Cookie, string) {
	t.Helper()
	raw := res.Header.Values("Set-Cookie")
	if len(raw) != 1 {
		t.Fatalf("Set-Cookie: got %d headers %q, want exactly one: %s", len(raw), raw, res.Raw)
	}
	c, err := http.ParseSetCookie(raw[0])
	if err != nil {
		t.Fatalf("Set-Cookie %q: %v", raw[0], err)
	}
	return c, raw[0]
}

func noSetCookie(t *testing.T, res gqlResponse) {
	t.Helper()
	if raw := res.Header.Values("Set-Cookie"); len(raw) != 0 {
		t.Fatalf("Set-Cookie: got %q, want none", raw)
	}
}

// wantSessionCookie checks every attribute of a cookie that carries a
// refresh token, and that the body's refreshToken is null; it returns the
// token.
func wantSessionCookie(t *testing.T, res gqlResponse, field string, ttl time.Duration) string {
	t.Helper()
	c, raw := setCookie(t, res)
	if c.Name != hostCookie || c.Value == "" || c.Path != "/" || c.Domain != "" || !c.HttpOnly || !c.Secure ||
		c.SameSite != http.SameSiteStrictMode {
		t.Errorf("Set-Cookie %q: want %s=<token>; Path=/; HttpOnly; Secure; SameSite=Strict; no Domain", raw, hostCookie)
	}
	if c.MaxAge < int(ttl.Seconds())-5 || c.MaxAge > int(ttl.Seconds())+1 {
		t.Errorf("Max-Age: got %d, want the session's remaining lifetime %d", c.MaxAge, int(ttl.Seconds()))
	}
	if strings.Contains(strings.ToLower(raw), "expires=") || strings.Contains(strings.ToLower(raw), "domain=") {
		t.Errorf("Set-Cookie %q: want Max-Age only, no Expires and no Domain", raw)
	}
	var body map[string]any
	if err := json.Unmarshal(res.Data[field], &body); err != nil {
		t.Fatalf("decode %s: %v: %s", field, err, res.Raw)
	}
	if v, ok := body["refreshToken"]; !ok || v != nil {
		t.Errorf("%s.refreshToken: got %v (present %v), want null: the token is in the cookie", field, v, ok)
	}
	if a, _ := body["accessToken"].(string); a == "" || strings.Contains(raw, a) {
		t.Errorf("%s.accessToken: want it in the body and never in a cookie", field)
	}
	return c.Value
}

func wantCleared(t *testing.T, res gqlResponse) {
	t.Helper()
	c, raw := setCookie(t, res)
	if c.Name != hostCookie || c.Value != "" || c.MaxAge != -1 || c.Path != "/" || c.Domain != "" || !c.HttpOnly ||
		!c.Secure || c.SameSite != http.SameSiteStrictMode || !strings.Contains(raw, "Max-Age=0") {
		t.Errorf("Set-Cookie %q: want %s cleared with Max-Age=0 and the same attributes", raw, hostCookie)
	}
}

func wantRefused(t *testing.T, res gqlResponse, code, reason string) {
	t.Helper()
	if len(res.Errors) == 0 || res.code(t) != code || res.ext("reason") != reason {
		t.Fatalf("got %s, want %s with reason %s", res.Raw, code, reason)
	}
	if string(res.Data["refreshToken"]) != "" && string(res.Data["refreshToken"]) != "null" {
		t.Errorf("data.refreshToken: got %s, want null", res.Data["refreshToken"])
	}
}

func TestCookieEveryRotationSetsTheCookie(t *testing.T) {
	e := newEnvWith(t, cookieOptions())
	ttl := sessionTTL

	reg := e.browser(t, browserReq{origin: appOrigin, query: registerMutation, vars: map[string]any{
		"input": map[string]any{"username": "cookie_ann", "email": "ann@example.test", "password": testPassword}}})
	c1 := wantSessionCookie(t, reg, "register", ttl)

	login := e.browser(t, browserReq{origin: appOrigin, query: loginMutation, vars: map[string]any{
		"input": map[string]any{"username": "cookie_ann", "password": testPassword}}})
	c2 := wantSessionCookie(t, login, "login", ttl)

	ref := e.browser(t, browserReq{origin: appOrigin, cookie: c2, query: cookieRefresh})
	c3 := wantSessionCookie(t, ref, "refreshToken", ttl)
	if c3 == c2 {
		t.Fatal("refreshToken: the cookie was not rotated")
	}
	access := payload(t, ref, "refreshToken").AccessToken
	if u := me(t, e.post(t, access, meQuery, nil)); u.Username != "cookie_ann" {
		t.Fatalf("me: got %+v", u)
	}

	const next = "a whole new passphrase"
	cp := e.browser(t, browserReq{origin: appOrigin, bearer: access, query: changePasswordMutation,
		vars: map[string]any{"c": testPassword, "n": next}})
	c4 := wantSessionCookie(t, cp, "changePassword", ttl)

	tok := e.resetToken(t, "ann@example.test", 1)
	rp := e.browser(t, browserReq{origin: ownOrigin, query: resetPasswordMutation,
		vars: map[string]any{"t": tok, "p": "yet another passphrase"}})
	c5 := wantSessionCookie(t, rp, "resetPassword", ttl)

	// A reset ends every older session: only the newest cookie still refreshes.
	for name, c := range map[string]string{"register": c1, "login": c2, "refresh": c3, "changePassword": c4} {
		res := e.browser(t, browserReq{origin: appOrigin, cookie: c, query: cookieRefresh})
		if len(res.Errors) == 0 || res.code(t) != "INVALID_REFRESH_TOKEN" {
			t.Errorf("refresh with the %s cookie after the reset: got %s, want INVALID_REFRESH_TOKEN", name, res.Raw)
		}
	}
	wantSessionCookie(t, e.browser(t, browserReq{origin: appOrigin, cookie: c5, query: cookieRefresh}), "refreshToken", ttl)
}

// One deployment serves native apps too: no Origin, the token in the body,
// no cookie; the same for an Origin that is not allowed (a page there cannot
// read the answer, and must not plant a session in the browser).
func TestCookieOnlyForAllowedBrowserOrigins(t *testing.T) {
	e := newEnvWith(t, cookieOptions())
	e.mustRegister(t, "cookie_bob", "bob@example.test")
	login := func(origin string) gqlResponse {
		return e.browser(t, browserReq{origin: origin, query: loginMutation,
			vars: map[string]any{"input": map[string]any{"username": "cookie_bob", "password": testPassword}}})
	}
	for _, origin := range []string{"", evilOrigin, "null", "http://127.0.0.1:5174", "https://app.example.test.evil.example"} {
		res := login(origin)
		p := payload(t, res, "login")
		if p.RefreshToken == "" {
			t.Errorf("login with Origin %q: refreshToken empty, want it in the body", origin)
		}
		noSetCookie(t, res)
		// ... and it is a working token, passed as an argument.
		ref := e.browser(t, browserReq{origin: origin, query: refreshMutation, vars: map[string]any{"token": p.RefreshToken}})
		if payload(t, ref, "refreshToken").RefreshToken == "" {
			t.Errorf("refreshToken(token:) with Origin %q: want the new token in the body", origin)
		}
		noSetCookie(t, ref)
	}
	// The server's own origin, a listed one and a wildcard match are browsers.
	for _, origin := range []string{ownOrigin, appOrigin, "http://localhost:5173", "HTTPS://APP.EXAMPLE.TEST"} {
		wantSessionCookie(t, login(origin), "login", sessionTTL)
	}
}

// refreshToken(token:) works as in off mode even from a browser: the token
// that came in goes out in the body, and no cookie is read or written.
func TestCookieRefreshWithArgumentUsesTheBody(t *testing.T) {
	e := newEnvWith(t, cookieOptions())
	p := e.mustRegister(t, "cookie_arg", "arg@example.test") // no Origin: the token is in the body
	cookie := wantSessionCookie(t, e.browser(t, browserReq{origin: appOrigin, query: loginMutation,
		vars: map[string]any{"input": map[string]any{"username": "cookie_arg", "password": testPassword}}}),
		"login", sessionTTL)
	res := e.browser(t, browserReq{origin: appOrigin, cookie: cookie, query: refreshMutation,
		vars: map[string]any{"token": p.RefreshToken}})
	if payload(t, res, "refreshToken").RefreshToken == "" {
		t.Fatalf("refreshToken(token:): want the token in the body: %s", res.Raw)
	}
	noSetCookie(t, res)
	// The cookie's session was not touched.
	wantSessionCookie(t, e.browser(t, browserReq{origin: appOrigin, cookie: cookie, query: cookieRefresh}),
		"refreshToken", sessionTTL)
}

// Cross-site request forgery: only a request from an allowed origin may use
// the cookie, and a refused one changes nothing.
func TestCookieRefreshCSRF(t *testing.T) {
	e := newEnvWith(t, cookieOptions())
	ttl := sessionTTL
	e.mustRegister(t, "cookie_csrf", "csrf@example.test")
	cookie := wantSessionCookie(t, e.browser(t, browserReq{origin: appOrigin, query: loginMutation,
		vars: map[string]any{"input": map[string]any{"username": "cookie_csrf", "password": testPassword}}}), "login", ttl)

	for _, tt := range []struct {
		name    string
		origin  string
		headers map[string][]string
	}{
		{"no Origin", "", nil},
		{"null Origin", "null", nil},
		{"another site", evilOrigin, nil},
		{"a lookalike", "https://app.example.test.evil.example", nil},
		{"another scheme", "http://app.example.test", nil},
		{"another port", "https://app.example.test:8443", nil},
		{"two Origin headers", "", map[string][]string{"Origin": {appOrigin, evilOrigin}}},
		{"Referer only", "", map[string][]string{"Referer": {appOrigin + "/"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := e.browser(t, browserReq{origin: tt.origin, cookie: cookie, query: cookieRefresh, headers: tt.headers})
			wantRefused(t, res, "FORBIDDEN", "origin_not_allowed")
			noSetCookie(t, res)
		})
	}
	// An allowed page without the cookie (signed out, or cookies blocked).
	res := e.browser(t, browserReq{origin: appOrigin, query: cookieRefresh})
	wantRefused(t, res, "INVALID_REFRESH_TOKEN", "missing")
	noSetCookie(t, res)

	// None of the refusals used the cookie up: it still rotates once.
	wantSessionCookie(t, e.browser(t, browserReq{origin: appOrigin, cookie: cookie, query: cookieRefresh}), "refreshToken", ttl)

	// A form POST (what a cross-site page can send without a preflight) never
	// reaches an operation, whatever its Origin.
	for _, ct := range []string{"application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x"} {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/query",
			strings.NewReader(`{"query":"mutation { refreshToken { accessToken } }"}`))
		req.Header.Set("Content-Type", ct)
		req.Header.Set("Origin", appOrigin)
		req.AddCookie(&http.Cookie{Name: hostCookie, Value: cookie})
		res := e.send(t, req)
		if res.Status != http.StatusUnsupportedMediaType {
			t.Errorf("form POST as %s: got %d %s, want 415", ct, res.Status, res.Raw)
		}
		noSetCookie(t, res)
	}
	// Nor a GET (mutations are POST only).
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/query?query="+
		"mutation%7BrefreshToken%7BaccessToken%7D%7D", nil)
	req.Header.Set("Origin", appOrigin)
	req.AddCookie(&http.Cookie{Name: hostCookie, Value: cookie})
	if res := e.send(t, req); res.Status != http.StatusMethodNotAllowed || len(res.Header.Values("Set-Cookie")) != 0 {
		t.Errorf("GET refreshToken: got %d %q, want 405 and no cookie", res.Status, res.Header.Values("Set-Cookie"))
	}
}

func TestCookieRefreshFailuresClearTheCookie(t *testing.T) {
	e := newEnvWith(t, cookieOptions())
	ttl := sessionTTL
	for _, tt := range []struct {
		name, cookie, reason string
	}{
		{"garbage", "not-a-refresh-token", "unknown"},
		{"forged", strings.Repeat("A", 43) + "." + strings.Repeat("B", 43), "unknown"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := e.browser(t, browserReq{origin: appOrigin, cookie: tt.cookie, query: cookieRefresh})
			wantRefused(t, res, "INVALID_REFRESH_TOKEN", tt.reason)
			wantCleared(t, res)
		})
	}

	t.Run("expired", func(t *testing.T) {
		e.mustRegister(t, "cookie_exp", "exp@example.test")
		cookie := wantSessionCookie(t, e.browser(t, browserReq{origin: appOrigin, query: loginMutation,
			vars: map[string]any{"input": map[string]any{"username": "cookie_exp", "password": testPassword}}}), "login", ttl)
		e.clock.Advance(ttl + time.Minute)
		res := e.browser(t, browserReq{origin: appOrigin, cookie: cookie, query: cookieRefresh})
		wantRefused(t, res, "INVALID_REFRESH_TOKEN", "expired")
		wantCleared(t, res)
	})

	// A copy older than the previous token is theft: the session ends (the
	// answer says "reused"), and the browser's cookie is cleared on its next
	// refresh, which finds the session revoked.
	t.Run("reused", func(t *testing.T) {
		e.mustRegister(t, "cookie_reuse", "reuse@example.test")
		c1 := wantSessionCookie(t, e.browser(t, browserReq{origin: appOrigin, query: loginMutation,
			vars: map[string]any{"input": map[string]any{"username": "cookie_reuse", "password": testPassword}}}), "login", ttl)
		c2 := wantSessionCookie(t, e.browser(t, browserReq{origin: appOrigin, cookie: c1, query: cookieRefresh}), "refreshToken", ttl)
		// Within REFRESH_REUSE_INTERVAL the previous cookie is a slow tab: it gets the same new cookie.
		if again := wantSessionCookie(t, e.browser(t, browserReq{origin: appOrigin, cookie: c1, query: cookieRefresh}), "refreshToken", ttl); again != c2 {
			t.Fatal("the previous cookie within the reuse interval: want the same new cookie")
		}
		c3 := wantSessionCookie(t, e.browser(t, browserReq{origin: appOrigin, cookie: c2, query: cookieRefresh}), "refreshToken", ttl)
		stolen := e.browser(t, browserReq{origin: appOrigin, cookie: c1, query: cookieRefresh})
		wantRefused(t, stolen, "INVALID_REFRESH_TOKEN", "reused")
		noSetCookie(t, stolen)
		res := e.browser(t, browserReq{origin: appOrigin, cookie: c3, query: cookieRefresh})
		wantRefused(t, res, "INVALID_REFRESH_TOKEN", "revoked")
		wantCleared(t, res)
	})
}

// Two tabs restoring the session at once send the same cookie: both succeed
// and end with the same cookie (the reuse interval), and nothing is revoked.
func TestCookieConcurrentRefresh(t *testing.T) {
	e := newEnvWith(t, cookieOptions())
	ttl := sessionTTL
	e.mustRegister(t, "cookie_tabs", "tabs@example.test")
	cookie := wantSessionCookie(t, e.browser(t, browserReq{origin: appOrigin, query: loginMutation,
		vars: map[string]any{"input": map[string]any{"username": "cookie_tabs", "password": testPassword}}}), "login", ttl)
	const tabs = 6
	got := make([]gqlResponse, tabs)
	var wg sync.WaitGroup
	for i := range tabs {
		wg.Go(func() { got[i] = e.browser(t, browserReq{origin: appOrigin, cookie: cookie, query: cookieRefresh}) })
	}
	wg.Wait()
	values := map[string]bool{}
	for _, res := range got {
		values[wantSessionCookie(t, res, "refreshToken", ttl)] = true
	}
	if len(values) != 1 {
		t.Fatalf("concurrent refreshes ended with %d different cookies, want 1", len(values))
	}
	for v := range values {
		wantSessionCookie(t, e.browser(t, browserReq{origin: appOrigin, cookie: v, query: cookieRefresh}), "refreshToken", ttl)
	}
}

// Two rotations in one document answer with one cookie.
func TestCookieOnePerAnswer(t *testing.T) {
	e := newEnvWith(t, cookieOptions())
	e.mustRegister(t, "cookie_two", "two@example.test")
	cookie := wantSessionCookie(t, e.browser(t, browserReq{origin: appOrigin, query: loginMutation,
		vars: map[string]any{"input": map[string]any{"username": "cookie_two", "password": testPassword}}}), "login", sessionTTL)
	res := e.browser(t, browserReq{origin: appOrigin, cookie: cookie, query: `mutation {
		a: refreshToken { refreshToken user { id } }
		b: refreshToken { refreshToken user { id } } }`})
	c, _ := setCookie(t, res)
	if string(res.Data["a"]) == "" || strings.Contains(res.Raw, c.Value) {
		t.Fatalf("got %s, want both logins with refreshToken null", res.Raw)
	}
	wantSessionCookie(t, e.browser(t, browserReq{origin: appOrigin, cookie: c.Value, query: cookieRefresh}),
		"refreshToken", sessionTTL)
}

func TestCookieLogoutClears(t *testing.T) {
	e := newEnvWith(t, cookieOptions())
	ttl := sessionTTL
	e.mustRegister(t, "cookie_out", "out@example.test")
	session := func() (access, cookie string) {
		res := e.browser(t, browserReq{origin: appOrigin, query: loginMutation,
			vars: map[string]any{"input": map[string]any{"username": "cookie_out", "password": testPassword}}})
		return payload(t, res, "login").AccessToken, wantSessionCookie(t, res, "login", ttl)
	}
	for _, tt := range []struct {
		name, query string
		clears      bool
	}{
		{"logout", `mutation { logout }`, true},
		{"logout CURRENT", `mutation { logout(scope: CURRENT) }`, true},
		{"logout ALL", `mutation { logout(scope: ALL) }`, true},
		{"logout OTHERS", `mutation { logout(scope: OTHERS) }`, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			access, cookie := session()
			res := e.browser(t, browserReq{origin: appOrigin, cookie: cookie, bearer: access, query: tt.query})
			if !boolIn(t, res, "logout") {
				t.Fatalf("logout: %s", res.Raw)
			}
			after := e.browser(t, browserReq{origin: appOrigin, cookie: cookie, query: cookieRefresh})
			if tt.clears {
				wantCleared(t, res)
				wantRefused(t, after, "INVALID_REFRESH_TOKEN", "revoked")
			} else {
				noSetCookie(t, res)
				wantSessionCookie(t, after, "refreshToken", ttl)
			}
		})
	}
	t.Run("revokeSession of this session", func(t *testing.T) {
		access, cookie := session()
		sid, _ := jwtClaims(t, access)["sid"].(string)
		other, _ := session()
		otherSid, _ := jwtClaims(t, other)["sid"].(string)
		res := e.browser(t, browserReq{origin: appOrigin, bearer: access, query: `mutation($id: ID!) { revokeSession(id: $id) }`,
			vars: map[string]any{"id": otherSid}})
		noSetCookie(t, res) // another session: this browser's cookie stays
		res = e.browser(t, browserReq{origin: appOrigin, cookie: cookie, bearer: access,
			query: `mutation($id: ID!) { revokeSession(id: $id) }`, vars: map[string]any{"id": sid}})
		if !boolIn(t, res, "revokeSession") {
			t.Fatalf("revokeSession: %s", res.Raw)
		}
		wantCleared(t, res)
	})
	t.Run("deleteAccount", func(t *testing.T) {
		access, _ := session()
		res := e.browser(t, browserReq{origin: appOrigin, bearer: access,
			query: `mutation($p: String!) { deleteAccount(currentPassword: $p) }`, vars: map[string]any{"p": testPassword}})
		if !boolIn(t, res, "deleteAccount") {
			t.Fatalf("deleteAccount: %s", res.Raw)
		}
		wantCleared(t, res)
	})
	t.Run("a failed logout keeps the cookie", func(t *testing.T) {
		res := e.browser(t, browserReq{origin: appOrigin, bearer: "not-a-jwt", query: `mutation { logout }`})
		if len(res.Errors) == 0 || res.code(t) != "UNAUTHENTICATED" {
			t.Fatalf("logout with a bad token: %s", res.Raw)
		}
		noSetCookie(t, res)
	})
}

func TestCookieDomainAndSameSite(t *testing.T) {
	o := cookieOptions()
	o.cfg.AuthCookieDomain = "example.test"
	o.cfg.AuthCookieSameSite = "Lax"
	e := newEnvWith(t, o)
	e.mustRegister(t, "cookie_dom", "dom@example.test")
	res := e.browser(t, browserReq{origin: appOrigin, query: loginMutation,
		vars: map[string]any{"input": map[string]any{"username": "cookie_dom", "password": testPassword}}})
	c, raw := setCookie(t, res)
	if c.Name != "authgql_refresh" || c.Domain != "example.test" || c.Path != "/" || !c.HttpOnly || !c.Secure ||
		c.SameSite != http.SameSiteLaxMode || c.MaxAge <= 0 {
		t.Fatalf("Set-Cookie %q: want authgql_refresh; Domain=example.test; Path=/; HttpOnly; Secure; SameSite=Lax", raw)
	}
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/query", strings.NewReader(`{"query":"mutation { refreshToken { accessToken } }"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", appOrigin)
	req.AddCookie(&http.Cookie{Name: "authgql_refresh", Value: c.Value})
	res = e.send(t, req)
	next, raw := setCookie(t, res)
	if len(res.Errors) > 0 || next.Name != "authgql_refresh" || next.Value == c.Value || next.Domain != "example.test" {
		t.Fatalf("refresh by the domain cookie: %s, Set-Cookie %q", res.Raw, raw)
	}
	// The host-only name is not this deployment's cookie.
	res = e.browser(t, browserReq{origin: appOrigin, cookie: next.Value, query: cookieRefresh})
	wantRefused(t, res, "INVALID_REFRESH_TOKEN", "missing")
}

// CORS: credentials for the allowed origins in cookie mode only.
func TestCookieCORSCredentials(t *testing.T) {
	preflight := func(t *testing.T, e *env, origin string) http.Header {
		req, _ := http.NewRequest(http.MethodOptions, e.srv.URL+"/query", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type")
		res, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.Header
	}
	on := newEnvWith(t, cookieOptions())
	h := preflight(t, on, appOrigin)
	if h.Get("Access-Control-Allow-Origin") != appOrigin || h.Get("Access-Control-Allow-Credentials") != "true" {
		t.Errorf("cookie mode preflight from %s: got %v, want the origin and credentials", appOrigin, h)
	}
	if h := preflight(t, on, evilOrigin); h.Get("Access-Control-Allow-Origin") != "" || h.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("cookie mode preflight from %s: got %v, want no CORS headers", evilOrigin, h)
	}
	res := on.browser(t, browserReq{origin: appOrigin, query: `{ __typename }`})
	if res.Header.Get("Access-Control-Allow-Origin") != appOrigin || res.Header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Errorf("cookie mode answer: got %v, want the origin and credentials", res.Header)
	}

	o := defaultOptions()
	o.cfg.CORSAllowedOrigins = []string{appOrigin}
	off := newEnvWith(t, o)
	h = preflight(t, off, appOrigin)
	if h.Get("Access-Control-Allow-Origin") != appOrigin || h.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("off mode preflight: got %v, want the origin without credentials", h)
	}
}

// Off mode is today's behaviour: no cookie, ever, and refreshToken needs its
// argument.
func TestCookieOffMode(t *testing.T) {
	o := defaultOptions()
	o.cfg.CORSAllowedOrigins = []string{appOrigin}
	o.cfg.PublicURL = ownOrigin
	e := newEnvWith(t, o)
	reg := e.browser(t, browserReq{origin: appOrigin, query: registerMutation, vars: map[string]any{
		"input": map[string]any{"username": "cookie_off", "email": "off@example.test", "password": testPassword}}})
	p := payload(t, reg, "register")
	if p.RefreshToken == "" {
		t.Fatal("off mode: refreshToken must be in the body")
	}
	noSetCookie(t, reg)
	for _, origin := range []string{"", appOrigin, ownOrigin} {
		res := e.browser(t, browserReq{origin: origin, cookie: p.RefreshToken, query: cookieRefresh})
		wantRefused(t, res, "INVALID_REFRESH_TOKEN", "missing")
		noSetCookie(t, res)
	}
	res := e.browser(t, browserReq{origin: appOrigin, bearer: p.AccessToken, query: `mutation { logout }`})
	if !boolIn(t, res, "logout") {
		t.Fatalf("logout: %s", res.Raw)
	}
	noSetCookie(t, res)
}

func TestCookieName(t *testing.T) {
	if n := (api.CookieOptions{}).Name(); n != hostCookie {
		t.Errorf("host-only name: got %q", n)
	}
	if n := (api.CookieOptions{Domain: "example.com"}).Name(); n != "authgql_refresh" {
		t.Errorf("domain name: got %q", n)
	}
}
