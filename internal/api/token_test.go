package api_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

type claims map[string]any

// signer turns a header and claims into a compact token.
type signer func(t *testing.T, header map[string]any, c claims) string

func b64(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func hmacSign(input string) string {
	m := hmac.New(sha256.New, []byte(testSecret))
	m.Write([]byte(input))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func signHS256(t *testing.T, header map[string]any, c claims) string {
	t.Helper()
	if header == nil {
		header = map[string]any{"alg": "HS256", "typ": "at+jwt"}
	}
	input := b64(t, header) + "." + b64(t, c)
	return input + "." + hmacSign(input)
}

func signWith(method jwt.SigningMethod, key any) signer {
	return func(t *testing.T, header map[string]any, c claims) string {
		t.Helper()
		tok := jwt.NewWithClaims(method, jwt.MapClaims(c))
		tok.Header["typ"] = "at+jwt"
		for k, v := range header {
			tok.Header[k] = v
		}
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

// forge builds a token from valid claims for the test issuer, overridden by c.
func forge(t *testing.T, c claims, sign signer) string {
	t.Helper()
	now := time.Now()
	base := claims{
		"sub": "000000000000000000000000", "iss": testIssuer, "aud": []string{testAudience},
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(), "jti": "test-jti", "sid": "test-session",
	}
	for k, v := range c {
		if v == nil {
			delete(base, k)
		} else {
			base[k] = v
		}
	}
	return sign(t, nil, base)
}

func TestTokenAttacks(t *testing.T) {
	e := newEnv(t)
	p := e.mustRegister(t, "mallory", "mallory@example.com")
	sub := p.User.ID
	good := forge(t, claims{"sub": sub}, signHS256)
	if got := me(t, e.post(t, good, meQuery, nil)); got.ID != sub {
		t.Fatalf("a well-formed forged-by-test token must work (test setup): %+v", got)
	}
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	parts := strings.Split(p.AccessToken, ".")
	none := func(alg string) string {
		return b64(t, map[string]any{"alg": alg, "typ": "at+jwt"}) + "." + strings.Split(good, ".")[1] + "."
	}

	tests := []struct {
		name, token, reason string
	}{
		{"alg none", none("none"), "token_invalid"},
		{"alg None", none("None"), "token_invalid"},
		{"alg NONE", none("NONE"), "token_invalid"},
		{"alg nOnE with signature", none("nOnE") + parts[2], "token_invalid"},
		{"HS384 with our secret", forge(t, claims{"sub": sub}, signWith(jwt.SigningMethodHS384, []byte(testSecret))), "token_invalid"},
		{"HS512 with our secret", forge(t, claims{"sub": sub}, signWith(jwt.SigningMethodHS512, []byte(testSecret))), "token_invalid"},
		{"ES256", forge(t, claims{"sub": sub}, signWith(jwt.SigningMethodES256, ecKey)), "token_invalid"},
		{"HS256 with another secret", forge(t, claims{"sub": sub}, signWith(jwt.SigningMethodHS256, []byte(strings.Repeat("z", 32)))), "token_invalid"},
		{"expired", forge(t, claims{"sub": sub, "iat": time.Now().Add(-time.Hour).Unix(), "nbf": time.Now().Add(-time.Hour).Unix(), "exp": time.Now().Add(-time.Minute).Unix()}, signHS256), "token_expired"},
		{"expired and wrong issuer", forge(t, claims{"sub": sub, "iss": "evil", "exp": time.Now().Add(-time.Minute).Unix()}, signHS256), "token_invalid"},
		{"nbf in the future", forge(t, claims{"sub": sub, "nbf": time.Now().Add(time.Hour).Unix()}, signHS256), "token_invalid"},
		{"iat in the future", forge(t, claims{"sub": sub, "iat": time.Now().Add(time.Hour).Unix()}, signHS256), "token_invalid"},
		{"wrong iss", forge(t, claims{"sub": sub, "iss": "someone-else"}, signHS256), "token_invalid"},
		{"missing iss", forge(t, claims{"sub": sub, "iss": nil}, signHS256), "token_invalid"},
		{"wrong aud", forge(t, claims{"sub": sub, "aud": []string{"another-api"}}, signHS256), "token_invalid"},
		{"missing aud", forge(t, claims{"sub": sub, "aud": nil}, signHS256), "token_invalid"},
		{"missing exp", forge(t, claims{"sub": sub, "exp": nil}, signHS256), "token_invalid"},
		{"missing sub", forge(t, claims{"sub": nil}, signHS256), "token_invalid"},
		{"missing jti", forge(t, claims{"sub": sub, "jti": nil}, signHS256), "token_invalid"},
		{"missing sid", forge(t, claims{"sub": sub, "sid": nil}, signHS256), "token_invalid"},
		{"typ JWT", signHS256(t, map[string]any{"alg": "HS256", "typ": "JWT"}, claims{"sub": sub, "iss": testIssuer, "aud": testAudience, "exp": time.Now().Add(time.Minute).Unix(), "jti": "x"}), "token_invalid"},
		{"kid and jku pointing elsewhere", forge(t, claims{"sub": sub}, func(t *testing.T, _ map[string]any, c claims) string {
			return signWith(jwt.SigningMethodHS256, []byte(strings.Repeat("k", 32)))(t, map[string]any{"kid": "../../dev/null", "jku": "http://127.0.0.1:1/jwks"}, c)
		}), "token_invalid"},
		{"tampered payload", parts[0] + "." + b64(t, claims{"sub": "ffffffffffffffffffffffff", "iss": testIssuer, "aud": []string{testAudience}, "exp": time.Now().Add(time.Hour).Unix(), "jti": "x", "iat": time.Now().Unix()}) + "." + parts[2], "token_invalid"},
		{"empty signature", parts[0] + "." + parts[1] + ".", "token_invalid"},
		{"spliced signature", parts[0] + "." + parts[1] + "." + strings.Split(good, ".")[2], "token_invalid"},
		{"extra segment", p.AccessToken + ".extra", "token_invalid"},
		{"two segments", parts[0] + "." + parts[1], "token_invalid"},
		{"garbage", "garbage", "token_invalid"},
		{"dots", "...", "token_invalid"},
		{"oversized", strings.Repeat("A", 8000), "token_invalid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := e.post(t, tc.token, meQuery, nil)
			wantUnauthenticated(t, res, tc.reason)
			if strings.Contains(res.Raw, "mallory") {
				t.Errorf("response leaks user data: %s", res.Raw)
			}
		})
	}

	t.Run("other schemes", func(t *testing.T) {
		for _, h := range []string{"Basic " + p.AccessToken, "Token " + p.AccessToken, p.AccessToken, "Bearer" + p.AccessToken} {
			req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/query", strings.NewReader(`{"query":"{ me { id } }"}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", h)
			wantUnauthenticated(t, e.send(t, req), "token_invalid")
		}
	})
	t.Run("two authorization headers", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/query", strings.NewReader(`{"query":"{ me { id } }"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Add("Authorization", "Bearer "+p.AccessToken)
		req.Header.Add("Authorization", "Bearer "+good)
		wantUnauthenticated(t, e.send(t, req), "token_invalid")
	})
	t.Run("lower-case bearer scheme", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/query", strings.NewReader(`{"query":"{ me { id } }"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "bearer "+p.AccessToken)
		if got := me(t, e.send(t, req)); got.ID != sub {
			t.Errorf("me.id = %q, want %q", got.ID, sub)
		}
	})
	t.Run("oversized header", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/query", strings.NewReader(`{"query":"{ me { id } }"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+strings.Repeat("x", 100<<10))
		wantUnauthenticated(t, e.send(t, req), "token_invalid")
	})
}
