package token_test

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authgql/server/internal/auth"
)

func TestVerifyClaims(t *testing.T) {
	iss := newIssuer(t, t0)
	c := validClaims()
	tests := []struct {
		name string
		raw  string
	}{
		{"missing exp", hs256(t, without(c, "exp"))},
		{"exp null", hs256(t, with(c, "exp", nil))},
		{"exp not a number", hs256(t, with(c, "exp", "tomorrow"))},
		{"nbf in the future beyond leeway", hs256(t, with(c, "nbf", t0s.Add(leeway+time.Minute).Unix()))},
		{"iat in the future beyond leeway", hs256(t, with(with(c, "iat", t0s.Add(time.Hour).Unix()), "exp", t0s.Add(2*time.Hour).Unix()))},
		{"wrong iss", hs256(t, with(c, "iss", "someone-else"))},
		{"iss differing in case", hs256(t, with(c, "iss", strings.ToUpper(testIssuer)))},
		{"missing iss", hs256(t, without(c, "iss"))},
		{"empty iss", hs256(t, with(c, "iss", ""))},
		{"wrong aud", hs256(t, with(c, "aud", []string{"another-service"}))},
		{"wrong aud as a string", hs256(t, with(c, "aud", "another-service"))},
		{"missing aud", hs256(t, without(c, "aud"))},
		{"empty aud", hs256(t, with(c, "aud", []string{}))},
		{"missing sub", hs256(t, without(c, "sub"))},
		{"empty sub", hs256(t, with(c, "sub", ""))},
		{"sub not a string", hs256(t, with(c, "sub", 42))},
		{"missing jti", hs256(t, without(c, "jti"))},
		{"missing sid", hs256(t, without(c, "sid"))},
		{"empty sid", hs256(t, with(c, "sid", ""))},
		{"empty jti", hs256(t, with(c, "jti", ""))},
		{"missing typ", sign(t, jwt.SigningMethodHS256, secret, c, map[string]any{"typ": nil})},
		{"typ JWT", sign(t, jwt.SigningMethodHS256, secret, c, map[string]any{"typ": "JWT"})},
		{"typ refresh", sign(t, jwt.SigningMethodHS256, secret, c, map[string]any{"typ": "rt+jwt"})},
		{"typ not a string", sign(t, jwt.SigningMethodHS256, secret, c, map[string]any{"typ": 1})},
		{"payload not an object", handSignedPayload(t, `["sub"]`)},
		{"payload not JSON", handSignedPayload(t, `sub=user-42`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantVerifyErr(t, iss, tt.raw, auth.ErrTokenInvalid)
		})
	}
}

// handSignedPayload signs an arbitrary payload with the server's secret.
func handSignedPayload(t *testing.T, payload string) string {
	t.Helper()
	input := segment(t, map[string]any{"alg": "HS256", "typ": "at+jwt"}) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(payload))
	sig, err := jwt.SigningMethodHS256.Sign(input, secret)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestVerifyExpiry(t *testing.T) {
	raw := issue(t)
	exp := t0s.Add(testTTL)
	tests := []struct {
		name string
		at   time.Time
		want *auth.Error // nil: valid
	}{
		{"just issued", t0, nil},
		{"one second before exp", exp.Add(-time.Second), nil},
		{"10s after exp, within leeway", exp.Add(10 * time.Second), nil},
		{"29s after exp, within leeway", exp.Add(29 * time.Second), nil},
		{"31s after exp, beyond leeway", exp.Add(31 * time.Second), auth.ErrTokenExpired},
		{"a day after exp", exp.Add(24 * time.Hour), auth.ErrTokenExpired},
		{"before nbf beyond leeway", t0s.Add(-leeway - time.Second), auth.ErrTokenInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iss := newIssuer(t, tt.at)
			if tt.want == nil {
				c := wantVerifyOK(t, iss, raw)
				if got, want := c.UserID, testUserID; got != want {
					t.Errorf("UserID: got %q, want %q", got, want)
				}
				return
			}
			wantVerifyErr(t, iss, raw, tt.want)
		})
	}
}

// TestVerifyExpiredAndForeign checks that a token with something wrong besides
// its age is invalid, not merely expired: "expired" invites a refresh.
func TestVerifyExpiredAndForeign(t *testing.T) {
	late := t0s.Add(testTTL + time.Hour)
	iss := newIssuer(t, late)
	c := validClaims()
	tests := []struct {
		name string
		raw  string
		want *auth.Error
	}{
		{"only expired", hs256(t, c), auth.ErrTokenExpired},
		{"expired, wrong iss", hs256(t, with(c, "iss", "someone-else")), auth.ErrTokenInvalid},
		{"expired, missing iss", hs256(t, without(c, "iss")), auth.ErrTokenInvalid},
		{"expired, wrong aud", hs256(t, with(c, "aud", []string{"another-service"})), auth.ErrTokenInvalid},
		{"expired, missing aud", hs256(t, without(c, "aud")), auth.ErrTokenInvalid},
		{"expired, wrong iss and aud", hs256(t, with(with(c, "iss", "x"), "aud", "y")), auth.ErrTokenInvalid},
		{"expired, other secret", sign(t, jwt.SigningMethodHS256, otherSecret, c, nil), auth.ErrTokenInvalid},
		{"expired, HS512", sign(t, jwt.SigningMethodHS512, secret, c, nil), auth.ErrTokenInvalid},
		{"expired, alg none", byHand(t, map[string]any{"alg": "none", "typ": "at+jwt"}, c, ""), auth.ErrTokenInvalid},
		{"expired, tampered payload", func() string {
			p := parts(t, hs256(t, c))
			return p[0] + "." + segment(t, with(c, "sub", "admin")) + "." + p[2]
		}(), auth.ErrTokenInvalid},
		{"expired, typ JWT", sign(t, jwt.SigningMethodHS256, secret, c, map[string]any{"typ": "JWT"}), auth.ErrTokenInvalid},
		{"expired, missing typ", sign(t, jwt.SigningMethodHS256, secret, c, map[string]any{"typ": nil}), auth.ErrTokenInvalid},
		{"expired, empty sub", hs256(t, with(c, "sub", "")), auth.ErrTokenInvalid},
		{"expired, missing jti", hs256(t, without(c, "jti")), auth.ErrTokenInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantVerifyErr(t, iss, tt.raw, tt.want)
		})
	}
}
