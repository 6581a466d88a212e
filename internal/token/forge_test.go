package token_test

import (
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authgql/server/internal/auth"
)

// claimsAt returns the claims Issue would write for a token issued at iat.
func claimsAt(iat time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"sub": testUserID,
		"iss": testIssuer,
		"aud": []string{testAudience},
		"iat": iat.Unix(),
		"nbf": iat.Unix(),
		"exp": iat.Add(testTTL).Unix(),
		"jti": "jti-forged-1",
		"sid": testSession,
	}
}

// validClaims returns claims that verify at t0 when signed correctly.
func validClaims() jwt.MapClaims { return claimsAt(t0s) }

// without returns a copy of c without the given keys.
func without(c jwt.MapClaims, keys ...string) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	for _, k := range keys {
		delete(out, k)
	}
	return out
}

// with returns a copy of c with key set to v.
func with(c jwt.MapClaims, key string, v any) jwt.MapClaims {
	out := without(c)
	out[key] = v
	return out
}

// sign signs claims with m and key. The header gets typ "at+jwt" unless
// header says otherwise; a nil value in header removes the field.
func sign(t *testing.T, m jwt.SigningMethod, key any, claims jwt.MapClaims, header map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claims)
	tok.Header["typ"] = "at+jwt"
	for k, v := range header {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", m.Alg(), err)
	}
	return s
}

// hs256 signs claims as the server would, with the server's secret.
func hs256(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	return sign(t, jwt.SigningMethodHS256, secret, claims, nil)
}

func segment(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal segment: %v", err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// byHand builds a token from a header and claims with the given signature
// segment, without any library checks.
func byHand(t *testing.T, header map[string]any, claims jwt.MapClaims, sig string) string {
	t.Helper()
	return segment(t, header) + "." + segment(t, claims) + "." + sig
}

// TestForgedControl proves the forging helpers: a token they build with the
// server's secret and nothing wrong verifies, so each attack below fails for
// the one reason it varies.
func TestForgedControl(t *testing.T) {
	iss := newIssuer(t, t0)
	tests := []struct {
		name string
		raw  string
	}{
		{"library", hs256(t, validClaims())},
		{"by hand", handSigned(t, map[string]any{"alg": "HS256", "typ": "at+jwt"}, validClaims(), secret)},
		{"aud as a single string", hs256(t, with(validClaims(), "aud", testAudience))},
		{"without iat", hs256(t, without(validClaims(), "iat"))},
		{"without nbf", hs256(t, without(validClaims(), "nbf"))},
		{"nbf in the future within leeway", hs256(t, with(validClaims(), "nbf", t0s.Add(leeway-5*time.Second).Unix()))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := wantVerifyOK(t, iss, tt.raw)
			if got, want := c.UserID, testUserID; got != want {
				t.Errorf("UserID: got %q, want %q", got, want)
			}
			if got, want := c.TokenID, "jti-forged-1"; got != want {
				t.Errorf("TokenID: got %q, want %q", got, want)
			}
		})
	}
}

// TestKeyMaterialHeadersRefused: a token that carries or points at key
// material (jwk, jku, x5u, x5c) or names a key this server does not have is
// refused, even when its signature is good.
func TestKeyMaterialHeadersRefused(t *testing.T) {
	iss := newIssuer(t, t0)
	for name, header := range map[string]map[string]any{
		"jku":              {"jku": "https://attacker.example/jwks.json"},
		"x5u":              {"x5u": "https://attacker.example/cert.pem"},
		"x5c":              {"x5c": []string{"MIIB"}},
		"jwk":              {"jwk": map[string]any{"kty": "oct", "k": base64.RawURLEncoding.EncodeToString(otherSecret)}},
		"kid of no key":    {"kid": "other-key"},
		"kid not a string": {"kid": 7},
		"crit":             {"crit": []string{"exp"}},
	} {
		t.Run(name, func(t *testing.T) {
			wantVerifyErr(t, iss, sign(t, jwt.SigningMethodHS256, secret, validClaims(), header), auth.ErrTokenInvalid)
		})
	}
}

// handSigned builds an HS256 signature by hand over whatever header is given.
func handSigned(t *testing.T, header map[string]any, claims jwt.MapClaims, key []byte) string {
	t.Helper()
	signingInput := segment(t, header) + "." + segment(t, claims)
	sig, err := jwt.SigningMethodHS256.Sign(signingInput, key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return signingInput + "." + base64.RawURLEncoding.EncodeToString(sig)
}
