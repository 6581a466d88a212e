package api_test

import (
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"
)

func TestRegisterLoginMe(t *testing.T) {
	e := newEnv(t)
	before := time.Now().Add(-time.Second)
	reg := e.mustRegister(t, "  Alice.Smith ", " Alice@Example.com ")

	if reg.TokenType != "Bearer" {
		t.Errorf("tokenType = %q, want Bearer", reg.TokenType)
	}
	if reg.ExpiresIn != 900 {
		t.Errorf("expiresIn = %d, want 900", reg.ExpiresIn)
	}
	if d := reg.ExpiresAt.Sub(before.Add(15 * time.Minute)); d < 0 || d > 5*time.Second {
		t.Errorf("expiresAt = %v, want about 15m from now", reg.ExpiresAt)
	}
	if reg.User.Username != "Alice.Smith" || reg.User.Email != "Alice@Example.com" {
		t.Errorf("user = %+v, want trimmed username and email as typed", reg.User)
	}
	if reg.User.ID == "" || reg.User.CreatedAt.Before(before) || reg.User.CreatedAt.After(time.Now()) {
		t.Errorf("user id/createdAt = %q/%v", reg.User.ID, reg.User.CreatedAt)
	}

	got := me(t, e.post(t, reg.AccessToken, meQuery, nil))
	if got != reg.User {
		t.Errorf("me = %+v, want %+v", got, reg.User)
	}

	for _, login := range []string{"alice.smith", "ALICE.SMITH", "Alice.Smith", "alice@example.com", " ALICE@EXAMPLE.COM "} {
		t.Run("login as "+login, func(t *testing.T) {
			p := payload(t, e.login(t, "", login, testPassword), "login")
			if p.User != reg.User {
				t.Errorf("login user = %+v, want %+v", p.User, reg.User)
			}
			if p.AccessToken == reg.AccessToken {
				t.Errorf("login returned the registration token again")
			}
			if got := me(t, e.post(t, p.AccessToken, meQuery, nil)); got.ID != reg.User.ID {
				t.Errorf("me.id = %q, want %q", got.ID, reg.User.ID)
			}
		})
	}
}

func TestLoginFailuresAreIdentical(t *testing.T) {
	e := newEnv(t)
	e.mustRegister(t, "dave", "dave@example.com")

	unknown := e.login(t, "", "nobody", testPassword)
	unknownEmail := e.login(t, "", "nobody@example.com", testPassword)
	wrong := e.login(t, "", "dave", "wrong password!")
	wrongByEmail := e.login(t, "", "dave@example.com", "wrong password!")
	empty := e.login(t, "", "", "")
	for name, res := range map[string]gqlResponse{"unknown email": unknownEmail, "wrong password": wrong, "wrong by email": wrongByEmail, "empty": empty} {
		if res.Raw != unknown.Raw || res.Status != unknown.Status {
			t.Errorf("%s: %d %s\nwant identical to unknown user: %d %s", name, res.Status, res.Raw, unknown.Status, unknown.Raw)
		}
	}
	if got := unknown.code(t); got != "INVALID_CREDENTIALS" {
		t.Errorf("code = %q, want INVALID_CREDENTIALS", got)
	}
}

// TestLoginTimingDoesNotRevealAccounts checks that an unknown user costs a
// bcrypt comparison just like a wrong password does. Without the dummy hash an
// unknown user answers about 50 times faster; the bound is loose on purpose.
func TestLoginTimingDoesNotRevealAccounts(t *testing.T) {
	o := defaultOptions()
	o.cfg.BcryptCost = 10
	e := newEnvWith(t, o)
	e.mustRegister(t, "erin", "erin@example.com")
	median := func(user string) time.Duration {
		var d []time.Duration
		for range 5 {
			start := time.Now()
			res := e.login(t, "", user, "wrong password!")
			d = append(d, time.Since(start))
			if res.code(t) != "INVALID_CREDENTIALS" {
				t.Fatalf("login %s: %s", user, res.Raw)
			}
		}
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return d[len(d)/2]
	}
	known, unknown := median("erin"), median("nobody-here")
	ratio := float64(unknown) / float64(known)
	if ratio < 0.5 || ratio > 2 {
		t.Errorf("unknown user %v vs wrong password %v (ratio %.2f): timing reveals whether the account exists", unknown, known, ratio)
	}
}

func TestLoginEnforcesBcryptLimit(t *testing.T) {
	e := newEnv(t)
	pw72 := strings.Repeat("k", 60) + "0123456789ab" // exactly 72 bytes
	if res := e.register(t, "frank", "frank@example.com", pw72); len(res.Errors) > 0 {
		t.Fatalf("register with 72 bytes: %s", res.Raw)
	}
	if res := e.login(t, "", "frank", pw72); len(res.Errors) > 0 {
		t.Fatalf("login with the 72-byte password: %s", res.Raw)
	}
	// bcrypt compares only the first 72 bytes: the server must not.
	res := e.login(t, "", "frank", pw72+"XYZ")
	if got := res.code(t); got != "INVALID_CREDENTIALS" {
		t.Errorf("72 bytes + suffix: code = %q, want INVALID_CREDENTIALS", got)
	}
	res = e.login(t, "", "frank", strings.Repeat("x", 200000))
	if got := res.code(t); got != "INVALID_CREDENTIALS" {
		t.Errorf("huge password: code = %q, want INVALID_CREDENTIALS", got)
	}
}

func TestLoginWithRegexAndOperatorInput(t *testing.T) {
	e := newEnv(t)
	e.mustRegister(t, "grace", "grace@example.com")
	for _, login := range []string{".*", "gr.ce", "^grace$", "grace*", `{"$ne": null}`, "grace\x00"} {
		res := e.login(t, "", login, testPassword)
		if got := res.code(t); got != "INVALID_CREDENTIALS" {
			t.Errorf("login %q: code = %q, want INVALID_CREDENTIALS", login, got)
		}
	}
	res := e.post(t, "", loginMutation, map[string]any{"input": map[string]any{"username": map[string]any{"$ne": nil}, "password": testPassword}})
	if got := res.code(t); got != "GRAPHQL_VALIDATION_FAILED" {
		t.Errorf("object as username: code = %q, want GRAPHQL_VALIDATION_FAILED: %s", got, res.Raw)
	}
}

func TestLoginWorksWithStaleToken(t *testing.T) {
	e := newEnv(t)
	e.mustRegister(t, "heidi", "heidi@example.com")
	expired := forge(t, claims{"sub": "000000000000000000000000", "exp": time.Now().Add(-time.Hour).Unix()}, signHS256)
	for name, bearer := range map[string]string{"expired": expired, "garbage": "not-a-jwt", "refresh-like": "dGhpcyBpcyBub3QgYSBKV1Q"} {
		t.Run(name, func(t *testing.T) {
			p := payload(t, e.login(t, bearer, "heidi", testPassword), "login")
			if p.User.Username != "heidi" {
				t.Errorf("username = %q", p.User.Username)
			}
		})
	}
}

func TestMeOfDeletedUser(t *testing.T) {
	e := newEnv(t)
	p := e.mustRegister(t, "ivan", "ivan@example.com")
	payload(t, e.login(t, "", "ivan", testPassword), "login") // the server now knows ivan's key
	if _, err := testDB.Client.Database(e.db.Name()).Collection("users").DeleteMany(t.Context(), map[string]any{}); err != nil {
		t.Fatal(err)
	}
	wantUnauthenticated(t, e.post(t, p.AccessToken, meQuery, nil), "user_not_found")
	if got := e.login(t, "", "ivan", testPassword).code(t); got != "INVALID_CREDENTIALS" {
		t.Errorf("login of a deleted user: %s", got)
	}
	// The name is free again, and belongs to the new account.
	again := e.mustRegister(t, "ivan", "ivan@example.com")
	if got := payload(t, e.login(t, "", "IVAN", testPassword), "login").User.ID; got != again.User.ID || got == p.User.ID {
		t.Errorf("login as the new ivan: id %s, want %s", got, again.User.ID)
	}
}

func TestMeWithoutToken(t *testing.T) {
	e := newEnv(t)
	for name, header := range map[string]string{"absent": "", "empty": " ", "bearer and nothing": "Bearer "} {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/query", strings.NewReader(`{"query":"{ me { id } }"}`))
			req.Header.Set("Content-Type", "application/json")
			if header != "" {
				req.Header.Set("Authorization", header)
			}
			wantUnauthenticated(t, e.send(t, req), "token_missing")
		})
	}
}

// Every path to a protected field runs @auth: aliases, fragments, inline
// fragments and the choice among several operations.
func TestAuthOnEveryPath(t *testing.T) {
	e := newEnv(t)
	p := e.mustRegister(t, "judy", "judy@example.com")
	docs := map[string]string{
		"aliases":          `{ a: me { id } b: me { username } }`,
		"fragment":         `query { ...F } fragment F on Query { me { id } }`,
		"inline fragment":  `query { ... on Query { me { email } } }`,
		"nested fragments": `query { ...A } fragment A on Query { ...B } fragment B on Query { x: me { id } }`,
	}
	for name, doc := range docs {
		t.Run(name, func(t *testing.T) {
			res := e.post(t, "", doc, nil)
			if len(res.Errors) == 0 {
				t.Fatalf("anonymous request succeeded: %s", res.Raw)
			}
			for _, er := range res.Errors {
				if er.Extensions["code"] != "UNAUTHENTICATED" {
					t.Errorf("error %+v, want UNAUTHENTICATED", er)
				}
			}
			if strings.Contains(res.Raw, "judy") {
				t.Errorf("anonymous response leaks user data: %s", res.Raw)
			}
			if res := e.post(t, p.AccessToken, doc, nil); len(res.Errors) > 0 {
				t.Errorf("with a token: %s", res.Raw)
			}
		})
	}
	t.Run("operation name selects me", func(t *testing.T) {
		body := `{"query":"query A { __typename } query B { me { id } }","operationName":"B"}`
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/query", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		wantUnauthenticated(t, e.send(t, req), "token_missing")
	})
}
