package token_test

import (
	"github.com/golang-jwt/jwt/v5"

	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

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
	at, err := newIssuer(t, t0).Issue(auth.Subject{UserID: testUserID, SessionID: testSession, Roles: []string{"USER"}})
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	return at.Value
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
	at, err := iss.Issue(auth.Subject{UserID: testUserID, SessionID: testSession, Roles: []string{"USER"}})
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
		at, err := iss.Issue(auth.Subject{UserID: testUserID, SessionID: testSession, Roles: []string{"USER"}})
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
	wantKeys := []string{"aal", "amr", "aud", "email_verified", "exp", "iat", "iss", "jti", "nbf", "roles", "sid", "sub"}
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
		// A pointer: absent and false must differ.
		EmailVerified *bool `json:"email_verified"`
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
	if claims.EmailVerified == nil || *claims.EmailVerified {
		t.Errorf("email_verified: got %v, want false (present)", claims.EmailVerified)
	}
}

func TestIssueEmailVerified(t *testing.T) {
	iss := newIssuer(t, t0)
	for _, verified := range []bool{false, true} {
		at, err := iss.Issue(auth.Subject{UserID: testUserID, SessionID: testSession, EmailVerified: verified})
		if err != nil {
			t.Fatal(err)
		}
		var claims struct {
			EmailVerified bool `json:"email_verified"`
		}
		b, _ := base64.RawURLEncoding.DecodeString(parts(t, at.Value)[1])
		if err := json.Unmarshal(b, &claims); err != nil {
			t.Fatal(err)
		}
		if claims.EmailVerified != verified {
			t.Errorf("email_verified in the token: got %v, want %v", claims.EmailVerified, verified)
		}
		if c := wantVerifyOK(t, iss, at.Value); c.EmailVerified != verified {
			t.Errorf("verified claims: EmailVerified %v, want %v", c.EmailVerified, verified)
		}
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
			at, err := iss.Issue(auth.Subject{UserID: testUserID, SessionID: testSession, Roles: []string{"USER"}})
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

// The assurance claims round-trip: aal, amr and mfa as issued; a token
// without them (issued before they existed) is a level-1 password session;
// an aal other than 1 or 2 is invalid.
func TestAssuranceClaims(t *testing.T) {
	iss := newIssuer(t, time.Now())
	at, err := iss.Issue(auth.Subject{UserID: "u1", SessionID: "s1", AAL: 2, AMR: []string{"pwd", "otp"}, MFA: true})
	if err != nil {
		t.Fatal(err)
	}
	c, err := iss.Verify(at.Value)
	if err != nil || c.AAL != 2 || !slices.Equal(c.AMR, []string{"pwd", "otp"}) || !c.MFA {
		t.Fatalf("got %+v, %v; want aal 2, amr [pwd otp], mfa", c, err)
	}
	old := signClaims(t, jwt.MapClaims{"sub": "u1", "sid": "s1", "iss": testIssuer, "aud": []string{testAudience},
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Minute).Unix(), "jti": "old"})
	if c, err := iss.Verify(old); err != nil || c.AAL != 1 || !slices.Equal(c.AMR, []string{"pwd"}) || c.MFA {
		t.Fatalf("a token without aal: got %+v, %v; want a level-1 password session", c, err)
	}
	for _, aal := range []int{-1, 3, 9} {
		bad := signClaims(t, jwt.MapClaims{"sub": "u1", "sid": "s1", "iss": testIssuer, "aud": []string{testAudience},
			"iat": time.Now().Unix(), "exp": time.Now().Add(time.Minute).Unix(), "jti": "bad", "aal": aal})
		if _, err := iss.Verify(bad); err != auth.ErrTokenInvalid {
			t.Errorf("aal %d: got %v, want token_invalid", aal, err)
		}
	}
}

// signClaims signs claims with the test secret as the issuer would.
func signClaims(t *testing.T, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
	tok.Header["typ"] = "at+jwt"
	s, err := tok.SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
