package api_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func (e *env) refresh(t *testing.T, bearer, token string) gqlResponse {
	t.Helper()
	return e.post(t, bearer, refreshMutation, map[string]any{"token": token})
}

func wantRefreshError(t *testing.T, res gqlResponse, reason string) {
	t.Helper()
	if res.Status != http.StatusOK {
		t.Fatalf("status = %d: %s", res.Status, res.Raw)
	}
	if got := res.code(t); got != "INVALID_REFRESH_TOKEN" {
		t.Fatalf("code = %q, want INVALID_REFRESH_TOKEN: %s", got, res.Raw)
	}
	if got := res.ext("reason"); got != reason {
		t.Fatalf("reason = %q, want %q: %s", got, reason, res.Raw)
	}
}

func TestRefreshRotation(t *testing.T) {
	e := newEnv(t)
	reg := e.mustRegister(t, "rita", "rita@example.com")
	if reg.RefreshToken == "" || len(reg.RefreshToken) < 43 {
		t.Fatalf("refresh token %q is too short for 256 bits", reg.RefreshToken)
	}
	if d := time.Until(reg.RefreshTokenExpiresAt); d < 29*24*time.Hour || d > 31*24*time.Hour {
		t.Errorf("refreshTokenExpiresAt in %v, want about 30 days", d)
	}

	// No Authorization header, and an expired access token attached: both fine.
	expired := forge(t, claims{"sub": reg.User.ID, "exp": time.Now().Add(-time.Hour).Unix()}, signHS256)
	p1 := payload(t, e.refresh(t, expired, reg.RefreshToken), "refreshToken")
	if p1.RefreshToken == reg.RefreshToken || p1.AccessToken == reg.AccessToken {
		t.Fatal("refresh returned the old tokens")
	}
	if p1.User.ID != reg.User.ID || p1.TokenType != "Bearer" {
		t.Errorf("payload = %+v", p1)
	}
	if !e.meWorks(t, p1.AccessToken) {
		t.Fatal("the new access token does not work")
	}
	p2 := payload(t, e.refresh(t, "", p1.RefreshToken), "refreshToken")

	// After the reuse interval, presenting a replaced token is reuse: the
	// session ends, and with it every access token it issued.
	e.clock.Advance(11 * time.Second)
	wantRefreshError(t, e.refresh(t, "", reg.RefreshToken), "reused")
	wantUnauthenticated(t, e.post(t, p2.AccessToken, meQuery, nil), "session_revoked")
	wantUnauthenticated(t, e.post(t, p1.AccessToken, meQuery, nil), "session_revoked")
	wantRefreshError(t, e.refresh(t, "", p2.RefreshToken), "revoked")

	// Other sessions of the user are untouched.
	other := e.loginAs(t, "rita")
	if !e.meWorks(t, other.AccessToken) {
		t.Error("a new login after reuse does not work")
	}
}

func TestRefreshReuseInterval(t *testing.T) {
	e := newEnv(t)
	reg := e.mustRegister(t, "sam", "sam@example.com")
	first := payload(t, e.refresh(t, "", reg.RefreshToken), "refreshToken")
	// A second tab presents the same token a moment later: it gets the same
	// new refresh token, and the session lives on.
	e.clock.Advance(5 * time.Second)
	second := payload(t, e.refresh(t, "", reg.RefreshToken), "refreshToken")
	if second.RefreshToken != first.RefreshToken {
		t.Errorf("duplicate refresh got another refresh token")
	}
	for _, p := range []authPayload{first, second} {
		if !e.meWorks(t, p.AccessToken) {
			t.Error("an access token of the duplicate refresh does not work")
		}
	}
	third := payload(t, e.refresh(t, "", first.RefreshToken), "refreshToken")
	if !e.meWorks(t, third.AccessToken) {
		t.Error("the session does not go on after a duplicate refresh")
	}
	// Only the token replaced by the latest rotation is honoured: an older one,
	// even inside the interval, is reuse.
	wantRefreshError(t, e.refresh(t, "", reg.RefreshToken), "reused")
	wantUnauthenticated(t, e.post(t, third.AccessToken, meQuery, nil), "session_revoked")
}

func TestConcurrentRefreshesOfOneToken(t *testing.T) {
	e := newEnv(t)
	reg := e.mustRegister(t, "tara", "tara@example.com")
	const n = 10
	results := make([]gqlResponse, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i] = e.refresh(t, "", reg.RefreshToken) })
	}
	wg.Wait()
	var refreshToken string
	for i, res := range results {
		p := payload(t, res, "refreshToken")
		if i == 0 {
			refreshToken = p.RefreshToken
		} else if p.RefreshToken != refreshToken {
			t.Errorf("refresh %d got a different refresh token", i)
		}
		if !e.meWorks(t, p.AccessToken) {
			t.Errorf("refresh %d: access token refused", i)
		}
	}
	next := payload(t, e.refresh(t, "", refreshToken), "refreshToken")
	if !e.meWorks(t, next.AccessToken) {
		t.Error("the session does not work after the concurrent refreshes")
	}
}

func TestRefreshFailures(t *testing.T) {
	e := newEnv(t)
	reg := e.mustRegister(t, "uma", "uma@example.com")

	t.Run("expired session", func(t *testing.T) {
		p := e.loginAs(t, "uma")
		e.clock.Advance(31 * 24 * time.Hour)
		defer e.clock.Advance(-31 * 24 * time.Hour)
		wantRefreshError(t, e.refresh(t, "", p.RefreshToken), "expired")
	})
	t.Run("malformed and unknown answer alike", func(t *testing.T) {
		p := e.loginAs(t, "uma")
		id := strings.SplitN(p.RefreshToken, ".", 2)[0]
		if _, err := testDB.Client.Database(e.db.Name()).Collection("sessions").DeleteOne(t.Context(), bson.D{{Key: "_id", Value: id}}); err != nil {
			t.Fatal(err)
		}
		unknown := e.refresh(t, "", p.RefreshToken)
		wantRefreshError(t, unknown, "unknown")
		for _, tok := range []string{"garbage", "", reg.AccessToken, p.RefreshToken + "x", strings.Repeat("A", 10000),
			id + "." + strings.Repeat("A", 64), reg.RefreshToken[:len(reg.RefreshToken)-2] + "AA"} {
			res := e.refresh(t, "", tok)
			if res.Raw != unknown.Raw {
				t.Errorf("token %.20q: %s\nwant the same as unknown: %s", tok, res.Raw, unknown.Raw)
			}
		}
		// The made-up tokens did not end the real session.
		if !e.meWorks(t, reg.AccessToken) {
			t.Error("a forged refresh token for a real session ended it")
		}
	})
	t.Run("refresh token as bearer", func(t *testing.T) {
		wantUnauthenticated(t, e.post(t, reg.RefreshToken, meQuery, nil), "token_invalid")
	})
	t.Run("deleted user", func(t *testing.T) {
		p := e.mustRegister(t, "victor", "victor@example.com")
		if _, err := testDB.Client.Database(e.db.Name()).Collection("users").DeleteOne(t.Context(), bson.D{{Key: "username_key", Value: "victor"}}); err != nil {
			t.Fatal(err)
		}
		wantRefreshError(t, e.refresh(t, "", p.RefreshToken), "unknown")
	})
}
