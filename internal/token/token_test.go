package token_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authgql/server/internal/auth"
	"github.com/authgql/server/internal/token"
)

const (
	testIssuer   = "authgql-test"
	testAudience = "authgql-test-clients"
	testTTL      = 15 * time.Minute
	testUserID   = "user-42"
	testSession  = "session-7"
	// leeway mirrors the unexported leeway of package token.
	leeway = 30 * time.Second
)

var (
	// secret is exactly token.MinSecretBytes long.
	secret = []byte("0123456789abcdef0123456789abcdef")
	// otherSecret is another valid 32-byte secret.
	otherSecret = []byte("fedcba9876543210fedcba9876543210")
	// t0 has a sub-second part, to check that Issue truncates to seconds.
	t0 = time.Date(2025, time.March, 4, 5, 6, 7, 123456789, time.UTC)
	// t0s is t0 as it appears in an issued token.
	t0s = t0.Truncate(time.Second)
)

func clockAt(at time.Time) func() time.Time {
	return func() time.Time { return at }
}

// newIssuer returns an Issuer over secret whose clock always reads now.
func newIssuer(t *testing.T, now time.Time) *token.Issuer {
	t.Helper()
	iss, err := token.NewIssuer(secret, testIssuer, testAudience, testTTL, 30*time.Second, clockAt(now))
	if err != nil {
		t.Fatalf("NewIssuer: %v", err)
	}
	return iss
}

// issue returns a token issued for testUserID at t0.
func issue(t *testing.T) string {
	t.Helper()
	at, err := newIssuer(t, t0).Issue(testUserID, testSession, []string{"USER"})
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	return at.Value
}

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

func decodeSegment(t *testing.T, seg string) map[string]json.RawMessage {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatalf("decode segment %q: %v", seg, err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("unmarshal segment %s: %v", b, err)
	}
	return m
}

func parts(t *testing.T, raw string) []string {
	t.Helper()
	p := strings.Split(raw, ".")
	if len(p) != 3 {
		t.Fatalf("token has %d segments, want 3: %q", len(p), raw)
	}
	return p
}

// wantVerifyErr verifies raw and asserts that it fails with want and that no
// claims leak out with the error.
func wantVerifyErr(t *testing.T, iss *token.Issuer, raw string, want *auth.Error) {
	t.Helper()
	got, err := iss.Verify(raw)
	if !errors.Is(err, want) {
		t.Fatalf("Verify error: got %v, want %v", err, want)
	}
	if !reflect.DeepEqual(got, auth.Claims{}) {
		t.Errorf("Verify claims with error: got %+v, want zero claims", got)
	}
}

// wantVerifyOK verifies raw and asserts that it succeeds.
func wantVerifyOK(t *testing.T, iss *token.Issuer, raw string) auth.Claims {
	t.Helper()
	got, err := iss.Verify(raw)
	if err != nil {
		t.Fatalf("Verify: got error %v, want none", err)
	}
	return got
}

func TestIssueAndVerify(t *testing.T) {
	iss := newIssuer(t, t0)
	if got, want := iss.TTL(), testTTL; got != want {
		t.Errorf("TTL: got %v, want %v", got, want)
	}
	at, err := iss.Issue(testUserID, testSession, []string{"USER"})
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	if got, want := at.ExpiresAt, t0s.Add(testTTL); !got.Equal(want) {
		t.Errorf("AccessToken.ExpiresAt: got %v, want %v", got, want)
	}
	if got, want := at.TTL, testTTL; got != want {
		t.Errorf("AccessToken.TTL: got %v, want %v", got, want)
	}

	// Verified later in the token's life, by another Issuer over the same secret.
	c := wantVerifyOK(t, newIssuer(t, t0.Add(testTTL-time.Second)), at.Value)
	if got, want := c.UserID, testUserID; got != want {
		t.Errorf("UserID: got %q, want %q", got, want)
	}
	if got, want := c.SessionID, testSession; got != want {
		t.Errorf("SessionID: got %q, want %q", got, want)
	}
	if c.TokenID == "" {
		t.Errorf("TokenID: got empty, want the token's jti")
	}
	if got, want := c.IssuedAt, t0s; !got.Equal(want) {
		t.Errorf("IssuedAt: got %v, want %v", got, want)
	}
	if got, want := c.ExpiresAt, t0s.Add(testTTL); !got.Equal(want) {
		t.Errorf("ExpiresAt: got %v, want %v", got, want)
	}
	jti := decodeSegment(t, parts(t, at.Value)[1])["jti"]
	if got, want := `"`+c.TokenID+`"`, string(jti); got != want {
		t.Errorf("TokenID: got %s, want the jti claim %s", got, want)
	}
}

func TestIssueUniqueTokenID(t *testing.T) {
	iss := newIssuer(t, t0)
	seen := map[string]bool{}
	values := map[string]bool{}
	for range 2 {
		at, err := iss.Issue(testUserID, testSession, []string{"USER"})
		if err != nil {
			t.Fatalf("Issue: %v", err)
		}
		c := wantVerifyOK(t, iss, at.Value)
		if seen[c.TokenID] {
			t.Fatalf("TokenID %q issued twice, want a unique jti per token", c.TokenID)
		}
		seen[c.TokenID] = true
		if values[at.Value] {
			t.Fatalf("token %q issued twice", at.Value)
		}
		values[at.Value] = true
	}
}

func TestIssueTokenContents(t *testing.T) {
	p := parts(t, issue(t))

	header := decodeSegment(t, p[0])
	gotHeader := map[string]string{}
	for k, v := range header {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			t.Fatalf("header %q: got %s, want a string", k, v)
		}
		gotHeader[k] = s
	}
	wantHeader := map[string]string{"alg": "HS256", "typ": "at+jwt"}
	if !maps.Equal(gotHeader, wantHeader) {
		t.Errorf("header: got %v, want %v", gotHeader, wantHeader)
	}

	payload := decodeSegment(t, p[1])
	var gotKeys []string
	for k := range payload {
		gotKeys = append(gotKeys, k)
	}
	slices.Sort(gotKeys)
	wantKeys := []string{"aud", "exp", "iat", "iss", "jti", "nbf", "roles", "sid", "sub"}
	if !slices.Equal(gotKeys, wantKeys) {
		t.Errorf("claim names: got %v, want exactly %v", gotKeys, wantKeys)
	}

	var claims struct {
		Sub string   `json:"sub"`
		Iss string   `json:"iss"`
		Aud []string `json:"aud"`
		Iat int64    `json:"iat"`
		Nbf int64    `json:"nbf"`
		Exp int64    `json:"exp"`
		Jti string   `json:"jti"`
	}
	b, _ := base64.RawURLEncoding.DecodeString(p[1])
	if err := json.Unmarshal(b, &claims); err != nil {
		t.Fatalf("claims %s: %v", b, err)
	}
	if got, want := claims.Sub, testUserID; got != want {
		t.Errorf("sub: got %q, want %q", got, want)
	}
	if got, want := claims.Iss, testIssuer; got != want {
		t.Errorf("iss: got %q, want %q", got, want)
	}
	if got, want := claims.Aud, []string{testAudience}; !slices.Equal(got, want) {
		t.Errorf("aud: got %q, want %q", got, want)
	}
	if got, want := claims.Iat, t0s.Unix(); got != want {
		t.Errorf("iat: got %d, want %d", got, want)
	}
	if got, want := claims.Nbf, t0s.Unix(); got != want {
		t.Errorf("nbf: got %d, want %d", got, want)
	}
	if got, want := claims.Exp, t0s.Add(testTTL).Unix(); got != want {
		t.Errorf("exp: got %d, want %d", got, want)
	}
	if claims.Jti == "" {
		t.Errorf("jti: got empty, want a random id")
	}
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
		{"kid jku x5u jwk on a genuine token", sign(t, jwt.SigningMethodHS256, secret, validClaims(), map[string]any{
			"kid": "other-key",
			"jku": "https://attacker.example/jwks.json",
			"x5u": "https://attacker.example/cert.pem",
			"jwk": map[string]any{"kty": "oct", "k": base64.RawURLEncoding.EncodeToString(otherSecret)},
		})},
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

func TestVerifyAlgNone(t *testing.T) {
	iss := newIssuer(t, t0)
	type tc struct {
		name string
		raw  string
	}
	var tests []tc
	fakeSig := base64.RawURLEncoding.EncodeToString([]byte("not a signature"))
	realSig := parts(t, hs256(t, validClaims()))[2]
	for _, alg := range []string{"none", "None", "NONE", "nOnE"} {
		header := map[string]any{"alg": alg, "typ": "at+jwt"}
		tests = append(tests,
			tc{alg + " empty signature", byHand(t, header, validClaims(), "")},
			tc{alg + " fake signature", byHand(t, header, validClaims(), fakeSig)},
			tc{alg + " signature of a genuine token", byHand(t, header, validClaims(), realSig)},
		)
	}
	tests = append(tests, tc{"library SigningMethodNone",
		sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, validClaims(), nil)})
	tests = append(tests, tc{"alg missing",
		byHand(t, map[string]any{"typ": "at+jwt"}, validClaims(), realSig)})
	tests = append(tests, tc{"alg empty",
		byHand(t, map[string]any{"alg": "", "typ": "at+jwt"}, validClaims(), "")})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantVerifyErr(t, iss, tt.raw, auth.ErrTokenInvalid)
		})
	}
}

func TestVerifyOtherAlgorithms(t *testing.T) {
	iss := newIssuer(t, t0)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("rsa key: %v", err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("ecdsa key: %v", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	if err != nil {
		t.Fatalf("marshal public key: %v", err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})

	tests := []struct {
		name string
		raw  string
	}{
		{"HS384 with the same secret", sign(t, jwt.SigningMethodHS384, secret, validClaims(), nil)},
		{"HS512 with the same secret", sign(t, jwt.SigningMethodHS512, secret, validClaims(), nil)},
		{"RS256", sign(t, jwt.SigningMethodRS256, rsaKey, validClaims(), nil)},
		{"PS256", sign(t, jwt.SigningMethodPS256, rsaKey, validClaims(), nil)},
		{"ES256", sign(t, jwt.SigningMethodES256, ecKey, validClaims(), nil)},
		{"HS256 keyed with an RSA public key (key confusion)", sign(t, jwt.SigningMethodHS256, pubPEM, validClaims(), nil)},
		{"HS384 header over an HS256 signature", func() string {
			h := map[string]any{"alg": "HS384", "typ": "at+jwt"}
			return byHand(t, h, validClaims(), parts(t, hs256(t, validClaims()))[2])
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantVerifyErr(t, iss, tt.raw, auth.ErrTokenInvalid)
		})
	}
}

func TestVerifySignatureAttacks(t *testing.T) {
	iss := newIssuer(t, t0)
	genuine := issue(t)
	other := issue(t)
	gp := parts(t, genuine)
	op := parts(t, other)

	// Tampered payload: the same claims with another subject, old signature.
	payload := decodeSegment(t, gp[1])
	payload["sub"] = json.RawMessage(`"admin"`)
	tampered := gp[0] + "." + segment(t, payload) + "." + gp[2]

	// Tampered header: a kid added, old signature.
	header := map[string]any{"alg": "HS256", "typ": "at+jwt", "kid": "x"}
	tamperedHeader := segment(t, header) + "." + gp[1] + "." + gp[2]

	// Flip one bit of the signature.
	sig, err := base64.RawURLEncoding.DecodeString(gp[2])
	if err != nil {
		t.Fatalf("decode signature: %v", err)
	}
	sig[0] ^= 1
	flipped := gp[0] + "." + gp[1] + "." + base64.RawURLEncoding.EncodeToString(sig)

	tests := []struct {
		name string
		raw  string
	}{
		{"tampered payload", tampered},
		{"tampered header", tamperedHeader},
		{"empty signature", gp[0] + "." + gp[1] + "."},
		{"spliced signature of another token", gp[0] + "." + gp[1] + "." + op[2]},
		{"spliced payload of another token", gp[0] + "." + op[1] + "." + gp[2]},
		{"flipped signature bit", flipped},
		{"truncated signature", gp[0] + "." + gp[1] + "." + gp[2][:len(gp[2])-2]},
		{"padded signature", genuine + "="},
		{"standard base64 signature", gp[0] + "." + gp[1] + "." + base64.StdEncoding.EncodeToString(mustDecode(t, gp[2]))},
		{"four segments", genuine + ".x"},
		{"four segments, empty last", genuine + "."},
		{"five segments", genuine + "." + gp[2] + "." + gp[2]},
		{"two segments", gp[0] + "." + gp[1]},
		{"different 32-byte secret", sign(t, jwt.SigningMethodHS256, otherSecret, validClaims(), nil)},
		{"empty secret", sign(t, jwt.SigningMethodHS256, []byte{}, validClaims(), nil)},
		{"secret prefix", sign(t, jwt.SigningMethodHS256, secret[:31], validClaims(), nil)},
		{"jwk of the signing key in the header", sign(t, jwt.SigningMethodHS256, otherSecret, validClaims(), map[string]any{
			"jwk": map[string]any{"kty": "oct", "k": base64.RawURLEncoding.EncodeToString(otherSecret)},
		})},
		{"kid pointing to another key", sign(t, jwt.SigningMethodHS256, otherSecret, validClaims(), map[string]any{
			"kid": "../../../../dev/null",
		})},
		{"jku pointing to an attacker's key set", sign(t, jwt.SigningMethodHS256, otherSecret, validClaims(), map[string]any{
			"jku": "https://attacker.example/jwks.json",
			"x5u": "https://attacker.example/cert.pem",
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantVerifyErr(t, iss, tt.raw, auth.ErrTokenInvalid)
		})
	}
}

func mustDecode(t *testing.T, seg string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatalf("decode %q: %v", seg, err)
	}
	return b
}

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

func TestVerifyGarbage(t *testing.T) {
	iss := newIssuer(t, t0)
	genuine := issue(t)
	tests := []struct {
		name string
		raw  string
	}{
		{"empty", ""},
		{"one dot", "."},
		{"two dots", ".."},
		{"a.b.c", "a.b.c"},
		{"four dots", "...."},
		{"no dots", "notatoken"},
		{"non-base64 segments", "!!!.@@@.###"},
		{"spaces", "   .   .   "},
		{"Bearer prefix kept", "Bearer " + genuine},
		{"leading space", " " + genuine},
		{"NUL byte", genuine[:10] + "\x00" + genuine[10:]},
		{"header not JSON", base64.RawURLEncoding.EncodeToString([]byte("{")) + "." + parts(t, genuine)[1] + "." + parts(t, genuine)[2]},
		{"invalid UTF-8", "\xff\xfe.\xff.\xff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantVerifyErr(t, iss, tt.raw, auth.ErrTokenInvalid)
		})
	}
}

// TestVerifyLineBreaks checks that a token is accepted only as issued. Go's
// base64 decoders skip CR and LF, and the signature segment is not part of
// the signed input, so line breaks there must be refused explicitly.
func TestVerifyLineBreaks(t *testing.T) {
	iss := newIssuer(t, t0)
	genuine := issue(t)
	p := parts(t, genuine)
	tests := []struct {
		name string
		raw  string
	}{
		{"LF inside the header", p[0][:5] + "\n" + p[0][5:] + "." + p[1] + "." + p[2]},
		{"LF inside the payload", p[0] + "." + p[1][:5] + "\n" + p[1][5:] + "." + p[2]},
		{"trailing LF", genuine + "\n"},
		{"trailing CRLF", genuine + "\r\n"},
		{"CRLF inside the signature", p[0] + "." + p[1] + "." + p[2][:10] + "\r\n" + p[2][10:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantVerifyErr(t, iss, tt.raw, auth.ErrTokenInvalid)
		})
	}
}

// padded returns a correctly signed, otherwise valid token with a junk claim
// of n bytes.
func padded(t *testing.T, n int) string {
	t.Helper()
	return hs256(t, with(validClaims(), "pad", strings.Repeat("x", n)))
}

func TestVerifySize(t *testing.T) {
	iss := newIssuer(t, t0)

	// The largest token that fits under the limit verifies; so the limit, not
	// the padding, is what refuses the larger ones.
	var fits string
	for n := 0; ; n++ {
		raw := padded(t, n)
		if len(raw) > token.MaxTokenBytes {
			break
		}
		fits = raw
	}
	if len(fits) < token.MaxTokenBytes-3 {
		t.Fatalf("largest fitting token: got %d bytes, want close to %d", len(fits), token.MaxTokenBytes)
	}
	t.Run("largest under the limit", func(t *testing.T) {
		wantVerifyOK(t, iss, fits)
	})

	tests := []struct {
		name string
		raw  string
	}{
		{"just over the limit", padded(t, (token.MaxTokenBytes*3)/4)},
		{"1 MiB", padded(t, 1<<20)},
		{"1 MiB of dots", strings.Repeat(".", 1<<20)},
		{"1 MiB of letters", strings.Repeat("a", 1<<20)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.raw) <= token.MaxTokenBytes {
				t.Fatalf("test token: got %d bytes, want more than %d", len(tt.raw), token.MaxTokenBytes)
			}
			wantVerifyErr(t, iss, tt.raw, auth.ErrTokenInvalid)
		})
	}
}

func TestNewIssuer(t *testing.T) {
	tests := []struct {
		name     string
		secret   []byte
		issuer   string
		audience string
		ttl      time.Duration
		wantErr  bool
	}{
		{"nil secret", nil, testIssuer, testAudience, testTTL, true},
		{"empty secret", []byte{}, testIssuer, testAudience, testTTL, true},
		{"16-byte secret", secret[:16], testIssuer, testAudience, testTTL, true},
		{"31-byte secret", secret[:31], testIssuer, testAudience, testTTL, true},
		{"32-byte secret", secret[:32], testIssuer, testAudience, testTTL, false},
		{"64-byte secret", append(append([]byte{}, secret...), otherSecret...), testIssuer, testAudience, testTTL, false},
		{"empty issuer", secret, "", testAudience, testTTL, true},
		{"empty audience", secret, testIssuer, "", testTTL, true},
		{"zero ttl", secret, testIssuer, testAudience, 0, true},
		{"negative ttl", secret, testIssuer, testAudience, -time.Minute, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iss, err := token.NewIssuer(tt.secret, tt.issuer, tt.audience, tt.ttl, 30*time.Second, clockAt(t0))
			if tt.wantErr {
				if err == nil {
					t.Fatalf("NewIssuer: got no error, want one")
				}
				if iss != nil {
					t.Errorf("NewIssuer with error: got issuer %v, want nil", iss)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewIssuer: got error %v, want none", err)
			}
			at, err := iss.Issue(testUserID, testSession, []string{"USER"})
			if err != nil {
				t.Fatalf("Issue: %v", err)
			}
			wantVerifyOK(t, iss, at.Value)
		})
	}
	if got, want := token.MinSecretBytes, 32; got != want {
		t.Errorf("MinSecretBytes: got %d, want %d", got, want)
	}
}

// TestVerifyOtherIssuerConfig checks that a genuine token of one deployment is
// refused by another with a different issuer, audience or secret.
func TestVerifyOtherIssuerConfig(t *testing.T) {
	raw := issue(t)
	tests := []struct {
		name     string
		secret   []byte
		issuer   string
		audience string
	}{
		{"other issuer", secret, "other-issuer", testAudience},
		{"other audience", secret, testIssuer, "other-audience"},
		{"other secret", otherSecret, testIssuer, testAudience},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iss, err := token.NewIssuer(tt.secret, tt.issuer, tt.audience, testTTL, 30*time.Second, clockAt(t0))
			if err != nil {
				t.Fatalf("NewIssuer: %v", err)
			}
			wantVerifyErr(t, iss, raw, auth.ErrTokenInvalid)
		})
	}
}
