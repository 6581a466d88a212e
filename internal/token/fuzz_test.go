package token_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authgql/server/internal/auth"
	"github.com/authgql/server/internal/keys"
	"github.com/authgql/server/internal/token"
)

// FuzzVerify presents any string to Verify, as a client's bearer token: it
// must answer within a second, without panicking, with token_invalid or
// token_expired or claims. Claims, and token_expired (which says the
// signature was good), only for a token this test signed, byte for byte: a
// forged or altered token never verifies. Two verifiers answer each input,
// one in HS256 mode and one in ES256 mode (which refuses HS256 tokens).
//
// The keys and the tokens are fixed (fixed key material, deterministic
// signatures), so that every fuzzing process and every run signs the same
// tokens and the committed corpus (testdata/fuzz/FuzzVerify) means the same
// thing each time. `make fuzz-short` fuzzes; `go test` runs the seeds and
// the corpus.
func FuzzVerify(f *testing.F) {
	ks := fuzzKeySource(f)
	issued := map[string]fuzzToken{} // what this test signed, by its exact bytes
	var genuine []fuzzToken
	for _, alg := range []keys.Algorithm{keys.HS256, keys.ES256, keys.EdDSA, keys.RS256} {
		for _, expired := range []bool{false, true} {
			iat := t0s
			if expired {
				iat = t0s.Add(-time.Hour)
			}
			tok := fuzzToken{alg: alg, expired: expired, raw: fuzzSign(f, ks, alg, nil, fuzzClaims(iat))}
			issued[tok.raw] = tok
			genuine = append(genuine, tok)
		}
	}
	verifiers := []fuzzVerifier{fuzzIssuer(f, keys.HS256, ks), fuzzIssuer(f, keys.ES256, ks)}
	// The controls: the test's tokens have the header and the claims of
	// those Issue signs, and each verifies as it should.
	for _, v := range verifiers {
		at, err := v.iss.Issue(auth.Subject{UserID: testUserID, SessionID: testSession, Roles: []string{"USER"}, EmailVerified: true})
		if err != nil {
			f.Fatal(err)
		}
		for _, tok := range genuine {
			if tok.alg == v.mode && !tok.expired {
				if got, want := fuzzShape(f, tok.raw), fuzzShape(f, at.Value); got != want {
					f.Fatalf("%s: the test's token has %s, Issue's %s", v.name, got, want)
				}
			}
		}
	}
	for _, tok := range genuine {
		for _, v := range verifiers {
			if msg := v.judge(tok.raw, issued); msg != "" {
				f.Fatal(msg)
			}
		}
	}
	for _, seed := range fuzzSeeds(f, ks, genuine) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		for _, v := range verifiers {
			// A watchdog rather than a stopwatch: an input that never finishes
			// must fail here, with its text, not stall the fuzzer.
			var msg string
			done := make(chan struct{})
			go func() { defer close(done); msg = v.judge(raw, issued) }()
			select {
			case <-done:
			case <-time.After(time.Second):
				t.Fatalf("%s: %d bytes took over 1s: %q", v.name, len(raw), raw)
			}
			if msg != "" {
				t.Fatal(msg)
			}
		}
	})
}

// fuzzToken is a token the test signed.
type fuzzToken struct {
	raw     string
	alg     keys.Algorithm
	expired bool
}

type fuzzVerifier struct {
	name string
	mode keys.Algorithm
	iss  *token.Issuer
}

// judge verifies raw and says what is wrong with the answer ("": nothing).
func (v fuzzVerifier) judge(raw string, issued map[string]fuzzToken) string {
	c, err := v.iss.Verify(raw)
	tok, ok := issued[raw]
	// In ES256 mode a token without kid (HS256) is refused: the key source
	// has no FirstCreated, so none predates the switch.
	ok = ok && !(v.mode != keys.HS256 && tok.alg == keys.HS256)
	var problem string
	switch {
	case err == nil && !ok:
		problem = "a token the test did not sign verified"
	case err == nil && tok.expired:
		problem = "an expired token verified"
	case err == nil && (c.UserID != testUserID || c.SessionID != testSession || c.TokenID != "jti-fuzz" ||
		!slices.Equal(c.Roles, []string{"USER"}) || !c.EmailVerified || !c.ExpiresAt.Equal(t0s.Add(testTTL))):
		problem = fmt.Sprintf("wrong claims %+v", c)
	case errors.Is(err, auth.ErrTokenExpired) && !(ok && tok.expired):
		problem = "token_expired (a good signature) for a token the test did not sign, or a valid one"
	case errors.Is(err, auth.ErrTokenInvalid) && ok:
		problem = "a token the test signed is token_invalid"
	case err != nil && !errors.Is(err, auth.ErrTokenInvalid) && !errors.Is(err, auth.ErrTokenExpired):
		problem = fmt.Sprintf("error %v, want token_invalid or token_expired", err)
	case err != nil && !reflect.DeepEqual(c, auth.Claims{}):
		problem = fmt.Sprintf("claims %+v with the error %v", c, err)
	default:
		return ""
	}
	return fmt.Sprintf("%s: %s: %q", v.name, problem, raw)
}

func fuzzIssuer(tb testing.TB, mode keys.Algorithm, ks *fakeKeys) fuzzVerifier {
	tb.Helper()
	iss, err := token.NewIssuer(secret, testIssuer, testAudience, testTTL, 30*time.Second, clockAt(t0))
	if err != nil {
		tb.Fatal(err)
	}
	if err := iss.UseKeys(mode, ks); err != nil {
		tb.Fatal(err)
	}
	return fuzzVerifier{name: string(mode) + " mode", mode: mode, iss: iss}
}

// fuzzClaims are the claims Issue writes, with a fixed jti.
func fuzzClaims(iat time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"sub": testUserID, "sid": testSession, "roles": []string{"USER"}, "email_verified": true, "aal": 1, "amr": []string{"pwd"},
		"iss": testIssuer, "aud": []string{testAudience},
		"iat": iat.Unix(), "nbf": iat.Unix(), "exp": iat.Add(testTTL).Unix(), "jti": "jti-fuzz",
	}
}

// The kids of the fuzz keys.
const (
	kidES = "fuzz-es"
	kidED = "fuzz-ed"
	kidRS = "fuzz-rs"
)

// fuzzKeySource holds one fixed key per asymmetric algorithm: derived from
// fixed bytes (P-256, Ed25519) or parsed (RSA; "TESTING KEY" keeps secret
// scanners quiet, as in Go's own tests).
func fuzzKeySource(tb testing.TB) *fakeKeys {
	tb.Helper()
	seed := func(s string) []byte { b := sha256.Sum256([]byte(s)); return b[:] }
	es, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), seed("authgql fuzz P-256"))
	if err != nil {
		tb.Fatal(err)
	}
	ed := ed25519.NewKeyFromSeed(seed("authgql fuzz Ed25519"))
	block, _ := pem.Decode([]byte(strings.ReplaceAll(fuzzRSAKey, "TESTING KEY", "PRIVATE KEY")))
	if block == nil {
		tb.Fatal("the fuzz RSA key is not PEM")
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		tb.Fatal(err)
	}
	rs, ok := parsed.(*rsa.PrivateKey)
	if !ok {
		tb.Fatalf("the fuzz RSA key is a %T", parsed)
	}
	ks := &fakeKeys{}
	ks.add(keys.Key{KID: kidES, Alg: keys.ES256, Signer: es, Public: es.Public()}, true)
	ks.add(keys.Key{KID: kidED, Alg: keys.EdDSA, Signer: ed, Public: ed.Public()}, false)
	ks.add(keys.Key{KID: kidRS, Alg: keys.RS256, Signer: rs, Public: rs.Public()}, false)
	return ks
}

// fuzzSign signs claims with the fuzz key of alg (the secret for HS256) as
// Issue does (typ at+jwt, the key's kid), then applies header: a nil value
// removes a field. Every signature is deterministic, ES256's by RFC 6979.
func fuzzSign(tb testing.TB, ks *fakeKeys, alg keys.Algorithm, header map[string]any, claims jwt.MapClaims) string {
	tb.Helper()
	h := map[string]any{"alg": string(alg), "typ": "at+jwt"}
	var key any = secret
	if alg != keys.HS256 {
		k := ks.byKID[map[keys.Algorithm]string{keys.ES256: kidES, keys.EdDSA: kidED, keys.RS256: kidRS}[alg]]
		h["kid"], key = k.KID, k.Signer
	}
	for name, v := range header {
		if v == nil {
			delete(h, name)
		} else {
			h[name] = v
		}
	}
	input := fuzzSegment(tb, h) + "." + fuzzSegment(tb, claims)
	return input + "." + base64.RawURLEncoding.EncodeToString(fuzzSignature(tb, alg, key, input))
}

// fuzzSignature signs input with key by alg's method; ES256 deterministically.
func fuzzSignature(tb testing.TB, alg keys.Algorithm, key any, input string) []byte {
	tb.Helper()
	if alg != keys.ES256 {
		sig, err := jwt.GetSigningMethod(string(alg)).Sign(input, key)
		if err != nil {
			tb.Fatal(err)
		}
		return sig
	}
	digest := sha256.Sum256([]byte(input))
	der, err := key.(*ecdsa.PrivateKey).Sign(nil, digest[:], crypto.SHA256) // nil: RFC 6979
	if err != nil {
		tb.Fatal(err)
	}
	var rs struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &rs); err != nil {
		tb.Fatal(err)
	}
	sig := make([]byte, 64) // JWS: R and S, 32 bytes each
	rs.R.FillBytes(sig[:32])
	rs.S.FillBytes(sig[32:])
	return sig
}

// fuzzShape is a token's header and the names of its claims.
func fuzzShape(tb testing.TB, raw string) string {
	tb.Helper()
	p := strings.Split(raw, ".")
	var header, claims map[string]any
	for i, v := range []*map[string]any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(p[i])
		if err != nil {
			tb.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			tb.Fatal(err)
		}
	}
	return fmt.Sprintf("header %v, claims %v", header, slices.Sorted(maps.Keys(claims)))
}

func fuzzSegment(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// fuzzSeeds are the genuine tokens and what attackers and broken clients
// make of them.
func fuzzSeeds(tb testing.TB, ks *fakeKeys, genuine []fuzzToken) []string {
	tb.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	valid := fuzzClaims(t0s)
	var seeds []string
	for _, tok := range genuine {
		seeds = append(seeds, tok.raw)
	}
	for _, tok := range genuine {
		if tok.expired {
			continue
		}
		p := strings.Split(tok.raw, ".")
		seeds = append(seeds,
			// Line breaks and spaces, which Go's base64 decoders skip.
			p[0][:7]+"\n"+p[0][7:]+"."+p[1]+"."+p[2],
			p[0]+"."+p[1]+"."+p[2][:9]+"\r\n"+p[2][9:],
			tok.raw+"\n",
			" "+tok.raw,
			"Bearer "+tok.raw,
			// Padding, the standard alphabet, a non-canonical last character.
			tok.raw+"==",
			strings.NewReplacer("-", "+", "_", "/").Replace(tok.raw),
			p[0]+"."+p[1]+"."+p[2][:len(p[2])-1]+string(p[2][len(p[2])-1]^1),
			// Segments: missing, extra, empty, the shape of a JWE.
			p[0]+"."+p[1],
			p[0]+"."+p[1]+".",
			tok.raw+".",
			tok.raw+"."+p[2],
			p[0]+"."+p[1]+".."+p[2]+"."+p[2],
			"."+p[1]+"."+p[2],
			// Non-UTF-8, raw and inside the JSON.
			p[0]+"."+p[1]+"\xff."+p[2],
			b64([]byte(`{"alg":"`+string(tok.alg)+`","typ":"at+jwt","kid":"`+"\xff"+kidES+`"}`))+"."+p[1]+"."+p[2],
			p[0]+"."+b64([]byte("{\"sub\":\"\xff\xfe\",\"sid\":\"s\",\"jti\":\"j\",\"exp\":4102444800}"))+"."+p[2],
			// The payload changed under the same signature.
			p[0]+"."+fuzzSegment(tb, with(valid, "exp", t0s.Add(24*time.Hour).Unix()))+"."+p[2],
			p[0]+"."+fuzzSegment(tb, with(valid, "sub", "admin"))+"."+p[2],
			// alg none, with and without the signature.
			fuzzSegment(tb, map[string]any{"alg": "none", "typ": "at+jwt"})+"."+p[1]+".",
			fuzzSegment(tb, map[string]any{"alg": "none", "typ": "at+jwt", "kid": kidES})+"."+p[1]+"."+p[2],
			fuzzSegment(tb, map[string]any{"alg": "NONE"})+"."+p[1]+".",
		)
	}
	es := ks.byKID[kidES]
	rsPub, err := x509.MarshalPKIXPublicKey(ks.byKID[kidRS].Public)
	if err != nil {
		tb.Fatal(err)
	}
	huge := strings.Repeat("A", token.MaxTokenBytes)
	seeds = append(seeds,
		// Header junk: key material, duplicate and odd-typed fields, not an
		// object, deep nesting.
		fuzzSign(tb, ks, keys.ES256, map[string]any{"jwk": map[string]any{"kty": "EC", "crv": "P-256"}}, valid),
		fuzzSign(tb, ks, keys.ES256, map[string]any{"jku": "https://attacker.example/jwks.json"}, valid),
		fuzzSign(tb, ks, keys.RS256, map[string]any{"x5c": []string{"MIIB"}}, valid),
		fuzzSign(tb, ks, keys.EdDSA, map[string]any{"x5u": "https://attacker.example/cert"}, valid),
		fuzzSign(tb, ks, keys.ES256, map[string]any{"kid": 7}, valid),
		fuzzSign(tb, ks, keys.ES256, map[string]any{"kid": ""}, valid),
		fuzzSign(tb, ks, keys.ES256, map[string]any{"typ": "JWT"}, valid),
		fuzzSign(tb, ks, keys.ES256, map[string]any{"typ": nil}, valid),
		fuzzSign(tb, ks, keys.HS256, map[string]any{"kid": kidES}, valid),
		b64([]byte(`{"alg":"ES256","alg":"none","typ":"at+jwt","kid":"`+kidES+`"}`))+"."+fuzzSegment(tb, valid)+".",
		b64([]byte(`null`))+"."+fuzzSegment(tb, valid)+".c2ln",
		b64([]byte(`["ES256"]`))+"."+fuzzSegment(tb, valid)+".c2ln",
		b64([]byte(`{"alg":"ES256","typ":"at+jwt","x":`+strings.Repeat("[", 1500)+strings.Repeat("]", 1500)+`}`))+".e30.c2ln",
		// The confusions: HS256 keyed with a published public key under its
		// kid; a kid's key with another algorithm; a signature by another key.
		fuzzSegment(tb, map[string]any{"alg": "HS256", "typ": "at+jwt", "kid": kidRS})+"."+fuzzSegment(tb, valid)+"."+
			b64(fuzzSignature(tb, keys.HS256, rsPub, fuzzSegment(tb, map[string]any{"alg": "HS256", "typ": "at+jwt", "kid": kidRS})+"."+fuzzSegment(tb, valid))),
		fuzzSign(tb, ks, keys.RS256, map[string]any{"kid": kidES}, valid),
		fuzzSign(tb, ks, keys.EdDSA, map[string]any{"kid": kidES}, valid),
		fuzzSign(tb, ks, keys.ES256, map[string]any{"kid": "unknown"}, valid),
		fuzzSign(tb, ks, keys.ES256, map[string]any{"kid": nil}, valid),
		fuzzSign(tb, ks, keys.HS256, nil, with(valid, "iss", "someone-else")),
		fuzzSign(tb, ks, keys.ES256, nil, without(valid, "sid")),
		fuzzSign(tb, ks, keys.ES256, nil, with(valid, "exp", "tomorrow")),
		// Huge segments: just over the limit, and far over it.
		fuzzSegment(tb, map[string]any{"alg": "ES256", "kid": es.KID})+"."+huge+".c2ln",
		huge+huge,
		// Nothing much.
		"", ".", "..", "...", "a.b.c", "\x00", "\xff\xfe\xfd",
	)
	return seeds
}

// fuzzRSAKey is a 2048-bit RSA key made for this test only.
const fuzzRSAKey = `-----BEGIN TESTING KEY-----
MIIEvwIBADANBgkqhkiG9w0BAQEFAASCBKkwggSlAgEAAoIBAQDTif1wePt9ZLcA
GhxwQYhLCp6ATPsU4mBCjfBReR5Tz8lGM+ShItBhw5LZ8abXCGdaDTAWshQ6fQaA
64HiTLrEVAQw8BG+01swB8SWy4/kKXIhAUUop70X1G9FBaXC54W+msdOtx4nub/K
l2lDQl64j56pVwqYk8nM/OpZdUhCCNB3CNiospr3CEp+xOQ3eSX8MjG/FfWjSQUI
WtPoS39Nc6kCo1afw5bVDMCx1NWJfz0Rc0ekoEKOYxR86WUQIwzSZuLwtugodayN
ixRhaGpu/w4na/A3fJsWpaJlwmZX5iqpE+9JBAXTl0OslaBJbG7aaCMqzfcTBi0n
HkRKS7z/AgMBAAECggEAA2vj8YHDb4/Fdfb2Jsqoja4qSiD0nq3aqLjq/iZbWzet
JbmJJSIPBMXJBkVmUWwNX+N+t59BvIBxLnygqSxciPhi6Pe5EcERZIF7qIS6WxJg
ijAfEj1ETbJd6lvhBnoAK8kNGDTWBAZ5F6nDRhc4uPt5sXt67GTXir08fR3sgUTj
sw4NbpP+Ep+T3IzXjHqMc2P1SLSQ79EcZrEhVLTuXA+1N8CFGiFjPezL9sSrdrKe
sQ/Ct/Jg9+Q0D1DqHbkoHYmZX5RfHOoz6QqS76f46OOP/IPxEtr70G+yvm6Ij1RJ
z04jaKoGg/Ka5r/+VxcFljWPYRKXaCY78/heGrOOQQKBgQDrGSygubYOoi3wC5bD
yYnVAoIeUyyn+3nhCH0ld0mUQ4unyqhWxorsbvFlMFCyvTU0krc/S95B0DyVUDPa
K+EkQF3PEuNA+Ju+XBbRZ6ggSqszT/WP31/16DwrdjKmR6CJ0c69ZV5Xuel2UpXM
k9XUtx+XLv2Sv9pf7QaIAQY5VwKBgQDmWJtgWta3K+F7Q6ynWxLV0ftDkCyHhngl
A1w6EsFrSDML+bwALKpTnxgAza4aQaSBU6L3/qa7mxcNTFpjnPI/1EcqxEnTUGD5
99uiEyG5Bzt+FU5ikRgi6AJL6mxAGMLwJ3bF+3Ok7e/FS8aRRio+ESJ823V38yMV
Jbp+r0VImQKBgQCpN+GLfqCwP8PY+D54hmQTUk7eDPgjoTrE4xtREF+BvGyVRaWN
cDMmo2RVdUVgohfd04zann1H2d8Bik0ISHUxZrMfDXVNmqRfjGFQMNAvDg/US0Vx
XVLw6UwF7HngfcXr7XxljsUtV7/XTvJL4k0TYwv2Afi63CUOzsjYtAQK2QKBgQCw
eb5AqhfKqiHMMGL8rPfXPVMFxlV3V3yAzvw/udLaAKyrRh/U+mNcQY1AQFRc5WHF
e3BmE4FmRkH4/EBcBQhMArSrfUsaTICfwldQ6ttxSKs5w9UUCxm01I+93dIloVLo
bzO+JxHIkEqcm5t7/YermbEUe4aZ6Xs9XnRtTpcEMQKBgQCUi5HGE6eDUFG4kfcy
TQiNC+N4jNm5FX6OdJPI9UdSMNnfKZLND3Jv7ZHKgnJrNCQA6EgqU7bgmEx+04JJ
rW+i+AdU0G78JRP7W6DyEpFULPmzbj2rp2yoNiAXnOOUIR2qYSglT946D3NDUZxI
tQ5hDqxJ4Yk6TLdnlO/EYetlpw==
-----END TESTING KEY-----`
