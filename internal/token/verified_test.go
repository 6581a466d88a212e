package token_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authgql/server/internal/auth"
	"github.com/authgql/server/internal/token"
)

// movableIssuer returns an Issuer whose clock reads what *at holds.
func movableIssuer(t *testing.T, at *atomic.Pointer[time.Time]) *token.Issuer {
	t.Helper()
	iss, err := token.NewIssuer(secret, testIssuer, testAudience, testTTL, leeway, func() time.Time { return *at.Load() })
	if err != nil {
		t.Fatalf("NewIssuer: %v", err)
	}
	return iss
}

func setClock(at *atomic.Pointer[time.Time], t time.Time) { at.Store(&t) }

// TestVerifiedCacheKeepsTime checks that a token verified once is still
// judged by the clock on every later request: a cached token expires, and a
// clock that moves back before its nbf sees it as not yet valid.
func TestVerifiedCacheKeepsTime(t *testing.T) {
	var at atomic.Pointer[time.Time]
	setClock(&at, t0)
	iss := movableIssuer(t, &at)
	raw := issue(t)
	wantVerifyOK(t, iss, raw)
	if got := iss.CachedTokens(); got != 1 {
		t.Fatalf("cached tokens after one verification: %d, want 1", got)
	}
	exp := t0s.Add(testTTL)
	steps := []struct {
		name string
		at   time.Time
		want *auth.Error
	}{
		{"within the lifetime", t0.Add(time.Minute), nil},
		{"just before exp + leeway", exp.Add(leeway - time.Second), nil},
		{"at exp + leeway", exp.Add(leeway), auth.ErrTokenExpired},
		{"a day later", exp.Add(24 * time.Hour), auth.ErrTokenExpired},
		{"back within the lifetime", t0.Add(time.Minute), nil},
		{"clock moved back before nbf - leeway", t0s.Add(-leeway - time.Second), auth.ErrTokenInvalid},
	}
	for _, s := range steps {
		setClock(&at, s.at)
		if s.want == nil {
			wantVerifyOK(t, iss, raw)
		} else {
			wantVerifyErr(t, iss, raw, s.want)
		}
	}
}

// TestVerifiedCacheRefusesNearMisses presents tokens that differ from a
// cached good one in one byte or in framing: none may ride on the cache.
func TestVerifiedCacheRefusesNearMisses(t *testing.T) {
	iss := newIssuer(t, t0)
	raw := issue(t)
	wantVerifyOK(t, iss, raw)
	p := parts(t, raw)
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	forged := map[string]string{
		"last signature byte changed":  flip(raw, len(raw)-1),
		"first signature byte changed": p[0] + "." + p[1] + "." + flip(p[2], 0),
		"payload byte changed":         p[0] + "." + flip(p[1], 5) + "." + p[2],
		"header byte changed":          flip(p[0], 3) + "." + p[1] + "." + p[2],
		"signature dropped":            p[0] + "." + p[1] + ".",
		"trailing dot":                 raw + ".",
		"prefix":                       raw[:len(raw)-1],
		"another secret's signature":   sign(t, jwt.SigningMethodHS256, otherSecret, validClaims(), nil),
	}
	for name, bad := range forged {
		t.Run(name, func(t *testing.T) {
			wantVerifyErr(t, iss, bad, auth.ErrTokenInvalid)
		})
	}
	if got := iss.CachedTokens(); got != 1 {
		t.Errorf("cached tokens after the forgeries: %d, want 1 (only the good token)", got)
	}
	wantVerifyOK(t, iss, raw)
}

// TestVerifiedCacheCopiesRoles checks that a caller changing the roles it
// was given cannot change what the next request reads.
func TestVerifiedCacheCopiesRoles(t *testing.T) {
	iss := newIssuer(t, t0)
	raw := issue(t)
	wantVerifyOK(t, iss, raw)
	c := wantVerifyOK(t, iss, raw)
	c.Roles[0] = "ADMIN"
	if got := wantVerifyOK(t, iss, raw).Roles; len(got) != 1 || got[0] != "USER" {
		t.Errorf("roles after a caller changed its copy: %v, want [USER]", got)
	}
}

// TestVerifiedCacheBounded floods the cache with more distinct valid tokens
// than it holds: it stays within its bound and every token still verifies.
func TestVerifiedCacheBounded(t *testing.T) {
	iss := newIssuer(t, t0)
	n := token.MaxVerified + token.MaxVerified/2
	raws := make([]string, n)
	for i := range raws {
		at, err := iss.Issue(auth.Subject{UserID: fmt.Sprintf("user-%d", i), SessionID: testSession, Roles: nil})
		if err != nil {
			t.Fatal(err)
		}
		raws[i] = at.Value
	}
	for i, raw := range raws {
		if c := wantVerifyOK(t, iss, raw); c.UserID != fmt.Sprintf("user-%d", i) {
			t.Fatalf("token %d: UserID %q", i, c.UserID)
		}
		if got := iss.CachedTokens(); got > token.MaxVerified {
			t.Fatalf("after %d tokens the cache holds %d, bound %d", i+1, got, token.MaxVerified)
		}
	}
	for i, raw := range raws {
		if c := wantVerifyOK(t, iss, raw); c.UserID != fmt.Sprintf("user-%d", i) {
			t.Fatalf("token %d again: UserID %q", i, c.UserID)
		}
	}
}

// TestVerifiedCacheConcurrent verifies good and forged tokens from many
// goroutines (run with -race): each answer is the one the full check gives.
func TestVerifiedCacheConcurrent(t *testing.T) {
	iss := newIssuer(t, t0)
	good := make([]string, 8)
	for i := range good {
		at, err := iss.Issue(auth.Subject{UserID: fmt.Sprintf("user-%d", i), SessionID: testSession, Roles: []string{"USER"}})
		if err != nil {
			t.Fatal(err)
		}
		good[i] = at.Value
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 16 {
		wg.Go(func() {
			for i := range 200 {
				raw := good[(g+i)%len(good)]
				if i%3 == 0 {
					b := []byte(raw)
					mid := len(b) - 20 // inside the signature, where every bit counts
					if b[mid] = 'q'; raw[mid] == 'q' {
						b[mid] = 'r'
					}
					raw = string(b)
					if _, err := iss.Verify(raw); err != auth.ErrTokenInvalid {
						errs <- fmt.Errorf("forged token: %v, want token_invalid", err)
						return
					}
					continue
				}
				if _, err := iss.Verify(raw); err != nil {
					errs <- fmt.Errorf("good token: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
