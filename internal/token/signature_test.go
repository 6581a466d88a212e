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
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authgql/server/internal/auth"
)

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
