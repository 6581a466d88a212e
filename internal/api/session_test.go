package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/authgql/server/internal/auth"
)

func (e *env) loginAs(t *testing.T, username string) authPayload {
	t.Helper()
	return payload(t, e.login(t, "", username, testPassword), "login")
}

func (e *env) meWorks(t *testing.T, access string) bool {
	t.Helper()
	res := e.post(t, access, meQuery, nil)
	if len(res.Errors) == 0 {
		return true
	}
	if res.code(t) != "UNAUTHENTICATED" {
		t.Fatalf("me: %s", res.Raw)
	}
	return false
}

func TestStoredSessionsHoldNoTokens(t *testing.T) {
	e := newEnv(t)
	reg := e.mustRegister(t, "wendy", "wendy@example.com")
	p := payload(t, e.refresh(t, "", reg.RefreshToken), "refreshToken")
	cur, err := testDB.Client.Database(e.db.Name()).Collection("sessions").Find(t.Context(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var docs []bson.M
	if err := cur.All(t.Context(), &docs); err != nil {
		t.Fatal(err)
	}
	if len(docs) != 1 {
		t.Fatalf("%d sessions, want 1", len(docs))
	}
	raw, _ := json.Marshal(docs)
	for _, tok := range []string{reg.RefreshToken, p.RefreshToken, strings.SplitN(p.RefreshToken, ".", 2)[1], p.AccessToken} {
		if strings.Contains(string(raw), tok) {
			t.Errorf("a session document holds a token: %s", raw)
		}
	}
}

func TestLogoutScopes(t *testing.T) {
	e := newEnv(t)
	e.mustRegister(t, "xena", "xena@example.com")
	a, b, c := e.loginAs(t, "xena"), e.loginAs(t, "xena"), e.loginAs(t, "xena")
	stranger := e.mustRegister(t, "yuri", "yuri@example.com")

	logout := func(access, scope string) {
		t.Helper()
		q := `mutation { logout }`
		if scope != "" {
			q = `mutation { logout(scope: ` + scope + `) }`
		}
		res := e.post(t, access, q, nil)
		if len(res.Errors) > 0 || string(res.Data["logout"]) != "true" {
			t.Fatalf("logout %s: %s", scope, res.Raw)
		}
	}
	logout(a.AccessToken, "") // CURRENT is the default
	wantUnauthenticated(t, e.post(t, a.AccessToken, meQuery, nil), "session_revoked")
	wantRefreshError(t, e.refresh(t, "", a.RefreshToken), "revoked")
	if !e.meWorks(t, b.AccessToken) || !e.meWorks(t, c.AccessToken) {
		t.Fatal("logout CURRENT ended other sessions")
	}

	logout(b.AccessToken, "OTHERS")
	if !e.meWorks(t, b.AccessToken) {
		t.Fatal("logout OTHERS ended the current session")
	}
	wantUnauthenticated(t, e.post(t, c.AccessToken, meQuery, nil), "session_revoked")
	wantRefreshError(t, e.refresh(t, "", c.RefreshToken), "revoked")

	d := e.loginAs(t, "xena")
	logout(b.AccessToken, "ALL")
	for _, p := range []authPayload{b, d} {
		wantUnauthenticated(t, e.post(t, p.AccessToken, meQuery, nil), "session_revoked")
	}
	if !e.meWorks(t, stranger.AccessToken) {
		t.Error("logout ALL ended another user's session")
	}
	wantUnauthenticated(t, e.post(t, "", `mutation { logout }`, nil), "token_missing")
}

func TestSessionsAndRevokeSession(t *testing.T) {
	e := newEnv(t)
	e.mustRegister(t, "zoe", "zoe@example.com")
	a, b := e.loginAs(t, "zoe"), e.loginAs(t, "zoe")
	other := e.mustRegister(t, "adam", "adam@example.com")

	type session struct {
		ID        string  `json:"id"`
		UserAgent *string `json:"userAgent"`
		IP        *string `json:"ip"`
		Current   bool    `json:"current"`
	}
	list := func(access string) []session {
		t.Helper()
		res := e.post(t, access, `{ sessions { id createdAt lastUsedAt expiresAt userAgent ip current } }`, nil)
		if len(res.Errors) > 0 {
			t.Fatalf("sessions: %s", res.Raw)
		}
		var out []session
		if err := json.Unmarshal(res.Data["sessions"], &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	sessions := list(a.AccessToken)
	if len(sessions) != 3 { // register, a, b
		t.Fatalf("%d sessions, want 3", len(sessions))
	}
	var current, victim string
	for _, s := range sessions {
		if s.UserAgent == nil || !strings.HasPrefix(*s.UserAgent, "Go-http-client") || s.IP == nil || *s.IP != "127.0.0.1" {
			t.Errorf("session %+v: want user agent and ip recorded", s)
		}
		if s.Current {
			current = s.ID
		} else if victim == "" {
			victim = s.ID
		}
	}
	if current != strings.SplitN(a.RefreshToken, ".", 2)[0] {
		t.Errorf("current session %q is not a's", current)
	}

	// Another user's session id is "not found", and that session lives on.
	otherID := strings.SplitN(other.RefreshToken, ".", 2)[0]
	for _, id := range []string{otherID, "no-such-session"} {
		res := e.post(t, a.AccessToken, `mutation($id: ID!) { revokeSession(id: $id) }`, map[string]any{"id": id})
		if got := res.code(t); got != "NOT_FOUND" {
			t.Errorf("revoke %s: code = %q, want NOT_FOUND", id, got)
		}
	}
	if !e.meWorks(t, other.AccessToken) {
		t.Error("revokeSession of another user's session ended it")
	}

	victim = strings.SplitN(b.RefreshToken, ".", 2)[0]
	res := e.post(t, a.AccessToken, `mutation($id: ID!) { revokeSession(id: $id) }`, map[string]any{"id": victim})
	if len(res.Errors) > 0 || string(res.Data["revokeSession"]) != "true" {
		t.Fatalf("revokeSession: %s", res.Raw)
	}
	wantUnauthenticated(t, e.post(t, b.AccessToken, meQuery, nil), "session_revoked")
	if got := len(list(a.AccessToken)); got != 2 {
		t.Errorf("%d sessions after revoking one, want 2", got)
	}
}

func TestChangePassword(t *testing.T) {
	e := newEnv(t)
	e.mustRegister(t, "beth", "beth@example.com")
	a, b := e.loginAs(t, "beth"), e.loginAs(t, "beth")
	const newPassword = "a brand new passphrase"
	change := func(access, current, next string) gqlResponse {
		return e.post(t, access, `mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) { `+payloadFields+` } }`,
			map[string]any{"c": current, "n": next})
	}

	bad := []struct{ name, current, next, field, reason string }{
		{"wrong current", "wrong password!", newPassword, "currentPassword", "incorrect"},
		{"current over 72 bytes", testPassword + strings.Repeat("x", 80), newPassword, "currentPassword", "incorrect"},
		{"weak new", testPassword, "password1", "newPassword", "too_common"},
		{"short new", testPassword, "short", "newPassword", "too_short"},
		{"new equals email", testPassword, "Beth@Example.com", "newPassword", "matches_identity"},
		{"unchanged", testPassword, testPassword, "newPassword", "unchanged"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			res := change(a.AccessToken, tc.current, tc.next)
			if got := res.code(t); got != "BAD_USER_INPUT" {
				t.Fatalf("code = %q: %s", got, res.Raw)
			}
			if res.ext("field") != tc.field || res.ext("reason") != tc.reason {
				t.Errorf("field/reason = %s/%s, want %s/%s", res.ext("field"), res.ext("reason"), tc.field, tc.reason)
			}
			if !e.meWorks(t, b.AccessToken) {
				t.Error("a failed password change ended another session")
			}
			if res := e.login(t, "", "beth", testPassword); len(res.Errors) > 0 {
				t.Errorf("a failed password change changed the password: %s", res.Raw)
			}
		})
	}

	p := payload(t, change(a.AccessToken, testPassword, newPassword), "changePassword")
	if !e.meWorks(t, p.AccessToken) {
		t.Error("the new access token does not work")
	}
	if got, want := strings.SplitN(p.RefreshToken, ".", 2)[0], strings.SplitN(a.RefreshToken, ".", 2)[0]; got != want {
		t.Errorf("changePassword moved to session %s, want the current %s", got, want)
	}
	wantUnauthenticated(t, e.post(t, b.AccessToken, meQuery, nil), "session_revoked")
	wantRefreshError(t, e.refresh(t, "", b.RefreshToken), "revoked")
	if got := e.login(t, "", "beth", testPassword).code(t); got != "INVALID_CREDENTIALS" {
		t.Errorf("old password: code = %q", got)
	}
	if res := e.login(t, "", "beth", newPassword); len(res.Errors) > 0 {
		t.Errorf("new password: %s", res.Raw)
	}
	if next := payload(t, e.refresh(t, "", p.RefreshToken), "refreshToken"); !e.meWorks(t, next.AccessToken) {
		t.Error("the session does not go on after changePassword")
	}
}

// failingLog fails the first n Appends, as a database that blips does.
type failingLog struct {
	auth.RevocationLog
	left atomic.Int32
}

func (f *failingLog) Append(ctx context.Context, e auth.RevocationEntry) (int64, error) {
	if f.left.Add(-1) >= 0 {
		return 0, errors.New("injected failure")
	}
	return f.RevocationLog.Append(ctx, e)
}

// changePassword cannot be undone once the hash is stored: the revocation of
// the other sessions is retried until it holds, not abandoned with an error.
func TestChangePasswordRetriesRevocation(t *testing.T) {
	flaky := &failingLog{}
	o := defaultOptions()
	o.wrapLog = func(l auth.RevocationLog) auth.RevocationLog { flaky.RevocationLog = l; return flaky }
	e := newEnvWith(t, o)
	first := e.mustRegister(t, "alice", "alice@example.com")
	other := payload(t, e.login(t, "", "alice", testPassword), "login")
	flaky.left.Store(2)
	res := e.post(t, first.AccessToken, `mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) { accessToken } }`,
		map[string]any{"c": testPassword, "n": "a brand new passphrase"})
	if len(res.Errors) > 0 {
		t.Fatalf("changePassword with two failed revocation writes: %s", res.Raw)
	}
	wantUnauthenticated(t, e.post(t, other.AccessToken, meQuery, nil), "session_revoked")
	if got := e.post(t, "", refreshMutation, map[string]any{"token": other.RefreshToken}).code(t); got != "INVALID_REFRESH_TOKEN" {
		t.Fatalf("other session's refresh: %s", got)
	}
}

// Two servers on one database: a logout on one is honoured by the other
// within the revocation bound, with no database read per request.
func TestRevocationAcrossInstances(t *testing.T) {
	o := defaultOptions()
	o.db = testDB.Fresh(t)
	o.cfg.RevocationSync = time.Second // the production default
	a := newEnvWith(t, o)
	b := newEnvWith(t, o)

	a.mustRegister(t, "carl", "carl@example.com")
	p := a.loginAs(t, "carl")
	if !b.meWorks(t, p.AccessToken) {
		t.Fatal("instance B refuses A's token")
	}
	res := a.post(t, p.AccessToken, `mutation { logout }`, nil)
	if len(res.Errors) > 0 {
		t.Fatal(res.Raw)
	}
	wantUnauthenticated(t, a.post(t, p.AccessToken, meQuery, nil), "session_revoked")
	start := time.Now()
	deadline := start.Add(2 * time.Second)
	for b.meWorks(t, p.AccessToken) {
		if time.Now().After(deadline) {
			t.Fatalf("instance B still accepts the token %v after logout on A", time.Since(start))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("instance B refused the token %v after the logout on A", time.Since(start).Round(time.Millisecond))
	wantRefreshError(t, b.refresh(t, "", p.RefreshToken), "revoked")
}

// A server that starts after a revocation knows about it before serving.
func TestNewInstanceKnowsPastRevocations(t *testing.T) {
	o := defaultOptions()
	o.db = testDB.Fresh(t)
	a := newEnvWith(t, o)
	a.mustRegister(t, "dina", "dina@example.com")
	p := a.loginAs(t, "dina")
	a.post(t, p.AccessToken, `mutation { logout }`, nil)
	b := newEnvWith(t, o)
	wantUnauthenticated(t, b.post(t, p.AccessToken, meQuery, nil), "session_revoked")
}
