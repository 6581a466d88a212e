package auth

import (
	"sync"
	"testing"
	"time"
)

func refreshErr(t *testing.T, err error, reason string) {
	t.Helper()
	e, ok := err.(*Error)
	if !ok || e.Code != CodeInvalidRefresh || e.Reason != reason {
		t.Fatalf("err = %v, want INVALID_REFRESH_TOKEN %s", err, reason)
	}
}

func TestRotationAndReuseInterval(t *testing.T) {
	f := newFixture(t)
	first := f.register(t, "alice")
	ctx := t.Context()
	second, err := f.svc.Refresh(ctx, first.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if second.RefreshToken == first.RefreshToken {
		t.Fatal("rotation returned the same token")
	}
	// Within the reuse interval the replaced token gets the same new pair.
	f.clock.Advance(5 * time.Second)
	again, err := f.svc.Refresh(ctx, first.RefreshToken)
	if err != nil || again.RefreshToken != second.RefreshToken {
		t.Fatalf("replaced token within the interval: %v, same token %v", err, err == nil && again.RefreshToken == second.RefreshToken)
	}
	// After it, presenting the replaced token is reuse: the session ends.
	f.clock.Advance(6 * time.Second)
	_, err = f.svc.Refresh(ctx, first.RefreshToken)
	refreshErr(t, err, ReasonReused)
	_, err = f.svc.Refresh(ctx, second.RefreshToken)
	refreshErr(t, err, ReasonRevoked)
	if _, err := f.svc.VerifyAccessToken(second.AccessToken.Value); err != ErrSessionRevoked {
		t.Fatalf("access token after reuse: %v", err)
	}
}

func TestRefreshTokenForgeriesAreUnknown(t *testing.T) {
	f := newFixture(t)
	res := f.register(t, "alice")
	sid := res.RefreshToken[:22]
	for _, raw := range []string{"", "x", sid + ".AAAA", res.RefreshToken + "A", sid + "." + res.RefreshToken[23:len(res.RefreshToken)-2] + "AA"} {
		_, err := f.svc.Refresh(t.Context(), raw)
		refreshErr(t, err, ReasonUnknown)
	}
	// A forgery never counts as reuse: the real token still works.
	if _, err := f.svc.Refresh(t.Context(), res.RefreshToken); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentRefreshesShareOneChild(t *testing.T) {
	f := newFixture(t)
	res := f.register(t, "alice")
	var wg sync.WaitGroup
	tokens := make([]string, 10)
	for i := range tokens {
		wg.Go(func() {
			r, err := f.svc.Refresh(t.Context(), res.RefreshToken)
			if err != nil {
				t.Error(err)
				return
			}
			tokens[i] = r.RefreshToken
		})
	}
	wg.Wait()
	for _, tok := range tokens[1:] {
		if tok != tokens[0] {
			t.Fatalf("concurrent refreshes got different tokens: %v", tokens)
		}
	}
}

func TestRefreshOfAnExpiredOrDisabledSession(t *testing.T) {
	f := newFixture(t)
	res := f.register(t, "alice")
	f.clock.Advance(31 * 24 * time.Hour)
	_, err := f.svc.Refresh(t.Context(), res.RefreshToken)
	refreshErr(t, err, ReasonExpired)

	res = f.register(t, "bob")
	if _, err := f.users.SetDisabled(t.Context(), res.User.ID, true); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(3 * time.Second) // past the user cache
	_, err = f.svc.Refresh(t.Context(), res.RefreshToken)
	refreshErr(t, err, ReasonRevoked)
}
