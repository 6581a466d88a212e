package keys_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/authgql/server/internal/keys"
)

var algorithms = []keys.Algorithm{keys.ES256, keys.EdDSA, keys.RS256}

// privateMembers are the JWK members (RFC 7517, 7518, 8037) that carry
// private or symmetric key material.
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k", "priv"}

// rfc7638Input is the thumbprint input of RFC 7638 section 3.2, built here
// from the JWK's own members: the required members only, in lexicographic
// order, without whitespace.
func rfc7638Input(t *testing.T, jwk map[string]any) string {
	t.Helper()
	var members []string
	switch jwk["kty"] {
	case "EC":
		members = []string{"crv", "kty", "x", "y"}
	case "OKP":
		members = []string{"crv", "kty", "x"}
	case "RSA":
		members = []string{"e", "kty", "n"}
	default:
		t.Fatalf("kty = %v", jwk["kty"])
	}
	parts := make([]string, len(members))
	for i, m := range members {
		v, ok := jwk[m].(string)
		if !ok {
			t.Fatalf("member %q missing from %v", m, jwk)
		}
		parts[i] = `"` + m + `":"` + v + `"`
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func TestEachAlgorithm(t *testing.T) {
	for _, alg := range algorithms {
		t.Run(string(alg), func(t *testing.T) {
			priv, err := keys.Generate(alg)
			if err != nil {
				t.Fatal(err)
			}
			pub := priv.Public()
			switch k := pub.(type) {
			case *ecdsa.PublicKey:
				if alg != keys.ES256 || k.Curve.Params().Name != "P-256" {
					t.Fatalf("%s made a %s key", alg, k.Curve.Params().Name)
				}
			case ed25519.PublicKey:
				if alg != keys.EdDSA {
					t.Fatalf("%s made an Ed25519 key", alg)
				}
			case *rsa.PublicKey:
				if alg != keys.RS256 || k.N.BitLen() < keys.RSABits {
					t.Fatalf("%s made an RSA key of %d bits", alg, k.N.BitLen())
				}
			default:
				t.Fatalf("%s made a %T", alg, pub)
			}

			kid, err := keys.Thumbprint(pub)
			if err != nil {
				t.Fatal(err)
			}
			sum, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			if want := base64.RawURLEncoding.EncodeToString(sum); kid != want {
				t.Fatalf("Thumbprint = %s, go-jose's = %s", kid, want)
			}
			if again, _ := keys.Thumbprint(pub); again != kid {
				t.Fatalf("Thumbprint changed: %s, then %s", kid, again)
			}
			if len(kid) != 43 || strings.ContainsAny(kid, "+/=") {
				t.Fatalf("kid %q is not unpadded base64url of a SHA-256", kid)
			}

			body, err := keys.PublicJWK(pub, kid, alg)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			if err := json.Unmarshal(body, &m); err != nil {
				t.Fatal(err)
			}
			for _, p := range privateMembers {
				if _, ok := m[p]; ok {
					t.Errorf("JWK has private member %q: %s", p, body)
				}
			}
			if m["kid"] != kid || m["alg"] != string(alg) || m["use"] != "sig" {
				t.Errorf("JWK = %s; want kid %s, alg %s, use sig", body, kid, alg)
			}
			// The thumbprint is RFC 7638's over the published members, and
			// the published key is the same key.
			input := rfc7638Input(t, m)
			h := sha256.Sum256([]byte(input))
			if got := base64.RawURLEncoding.EncodeToString(h[:]); got != kid {
				t.Errorf("RFC 7638 thumbprint of %s = %s, kid %s", input, got, kid)
			}
			var parsed jose.JSONWebKey
			if err := parsed.UnmarshalJSON(body); err != nil {
				t.Fatal(err)
			}
			if !parsed.IsPublic() {
				t.Fatal("the published JWK parses as a private key")
			}
			if tp, _ := keys.Thumbprint(parsed.Key); tp != kid {
				t.Fatalf("the published key's thumbprint = %s, want %s", tp, kid)
			}

			// Signed with the Signer, verified by golang-jwt with the public key.
			method := jwt.GetSigningMethod(string(alg))
			tok := jwt.NewWithClaims(method, jwt.MapClaims{"sub": "u1", "exp": time.Now().Add(time.Minute).Unix()})
			tok.Header["kid"] = kid
			signed, err := tok.SignedString(priv)
			if err != nil {
				t.Fatal(err)
			}
			got, err := jwt.Parse(signed, func(tok *jwt.Token) (any, error) { return pub, nil },
				jwt.WithValidMethods([]string{string(alg)}), jwt.WithExpirationRequired())
			if err != nil || !got.Valid || got.Header["kid"] != kid {
				t.Fatalf("verify: %v", err)
			}
			// And not with another key of the same kind.
			other, _ := keys.Generate(alg)
			if _, err := jwt.Parse(signed, func(*jwt.Token) (any, error) { return other.Public(), nil },
				jwt.WithValidMethods([]string{string(alg)})); err == nil {
				t.Fatal("verified with another key")
			}

			// A private key is never published, nor under another algorithm.
			if b, err := keys.PublicJWK(priv, kid, alg); err == nil {
				t.Fatalf("PublicJWK of the private key = %s", b)
			}
			for _, a := range algorithms {
				if a != alg {
					if _, err := keys.PublicJWK(pub, kid, a); err == nil {
						t.Errorf("a %s key published as %s", alg, a)
					}
				}
			}
		})
	}
	if _, err := keys.Generate(keys.HS256); err == nil {
		t.Error("Generate(HS256) made a key")
	}
	if _, err := keys.Generate("none"); err == nil {
		t.Error(`Generate("none") made a key`)
	}
}

// The example of RFC 7638 section 3.1.
func TestThumbprintRFC7638Example(t *testing.T) {
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON([]byte(`{"kty":"RSA","e":"AQAB","alg":"RS256","kid":"2011-04-29",` +
		`"n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"}`)); err != nil {
		t.Fatal(err)
	}
	got, err := keys.Thumbprint(jwk.Key)
	if err != nil {
		t.Fatal(err)
	}
	if want := "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; got != want {
		t.Fatalf("Thumbprint = %s, want %s", got, want)
	}
}

func TestThumbprintRefusesWhatTheServerDoesNotUse(t *testing.T) {
	priv, _ := keys.Generate(keys.ES256)
	for name, k := range map[string]crypto.PublicKey{
		"a private key":   priv,
		"a symmetric key": []byte("0123456789abcdef0123456789abcdef"),
		"nil":             nil,
		"a short Ed25519": ed25519.PublicKey(make([]byte, 16)),
		"a 1024-bit RSA":  &rsa.PublicKey{N: new(big.Int).Lsh(big.NewInt(1), 1023), E: 65537},
	} {
		if tp, err := keys.Thumbprint(k); err == nil {
			t.Errorf("Thumbprint of %s = %s", name, tp)
		}
	}
}

func TestSeal(t *testing.T) {
	master := bytes.Repeat([]byte("m"), 32)
	priv, _ := keys.Generate(keys.EdDSA)
	pkcs8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	sealed := keys.Seal(master, "kid-a", pkcs8)
	if bytes.Contains(sealed, pkcs8) || bytes.Contains(sealed, priv.(ed25519.PrivateKey).Seed()) {
		t.Fatal("the sealed key contains the private key")
	}
	got, err := keys.Open(master, "kid-a", sealed)
	if err != nil || !bytes.Equal(got, pkcs8) {
		t.Fatalf("open(seal(x)) = %x, %v; want x", got, err)
	}
	if again := keys.Seal(master, "kid-a", pkcs8); bytes.Equal(again, sealed) {
		t.Fatal("two seals of one key are equal: the nonce is not random")
	}
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	for name, try := range map[string]func() ([]byte, error){
		"a wrong master":       func() ([]byte, error) { return keys.Open(bytes.Repeat([]byte("n"), 32), "kid-a", sealed) },
		"a longer master":      func() ([]byte, error) { return keys.Open(append(bytes.Clone(master), 'm'), "kid-a", sealed) },
		"moved to another kid": func() ([]byte, error) { return keys.Open(master, "kid-b", sealed) },
		"tampered":             func() ([]byte, error) { return keys.Open(master, "kid-a", tampered) },
		"truncated":            func() ([]byte, error) { return keys.Open(master, "kid-a", sealed[:20]) },
		"empty":                func() ([]byte, error) { return keys.Open(master, "kid-a", nil) },
		"the plain key":        func() ([]byte, error) { return keys.Open(master, "kid-a", pkcs8) },
	} {
		if got, err := try(); err == nil {
			t.Errorf("%s: opened to %x", name, got)
		}
	}
}
