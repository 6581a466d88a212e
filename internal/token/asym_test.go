package token_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authgql/server/internal/auth"
	"github.com/authgql/server/internal/keys"
	"github.com/authgql/server/internal/token"
)

// fakeKeys is a KeySource of keys made in the test.
type fakeKeys struct {
	mu      sync.Mutex
	signing string
	byKID   map[string]keys.Key
	revoked map[string]bool
	first   time.Time
}

func newKey(t *testing.T, alg keys.Algorithm, kid string) keys.Key {
	t.Helper()
	var signer crypto.Signer
	var err error
	switch alg {
	case keys.ES256:
		signer, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case keys.EdDSA:
		_, signer, err = ed25519.GenerateKey(rand.Reader)
	case keys.RS256:
		signer, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		t.Fatal(err)
	}
	return keys.Key{KID: kid, Alg: alg, Signer: signer, Public: signer.Public()}
}

func (f *fakeKeys) add(k keys.Key, signs bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.byKID == nil {
		f.byKID, f.revoked = map[string]keys.Key{}, map[string]bool{}
	}
	f.byKID[k.KID] = k
	if signs {
		f.signing = k.KID
	}
}

func (f *fakeKeys) revoke(kid string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.revoked[kid] = true
}

func (f *fakeKeys) Signing() (keys.Key, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.byKID[f.signing], nil
}

func (f *fakeKeys) Verifying(kid string) (keys.Key, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k, ok := f.byKID[kid]
	return k, ok && !f.revoked[kid]
}

func (f *fakeKeys) FirstCreated() time.Time { return f.first }

func asymIssuer(t *testing.T, alg keys.Algorithm, ks *fakeKeys, now time.Time) *token.Issuer {
	t.Helper()
	iss := newIssuer(t, now)
	if err := iss.UseKeys(alg, ks); err != nil {
		t.Fatal(err)
	}
	return iss
}

func header(t *testing.T, raw string) map[string]any {
	t.Helper()
	var h map[string]any
	if err := json.Unmarshal(mustDecode(t, parts(t, raw)[0]), &h); err != nil {
		t.Fatal(err)
	}
	return h
}

func TestAsymmetricAlgorithms(t *testing.T) {
	for _, alg := range []keys.Algorithm{keys.ES256, keys.EdDSA, keys.RS256} {
		t.Run(string(alg), func(t *testing.T) {
			ks := &fakeKeys{}
			ks.add(newKey(t, alg, "k-"+string(alg)), true)
			iss := asymIssuer(t, alg, ks, t0)
			at, err := iss.Issue(auth.Subject{UserID: testUserID, SessionID: testSession})
			if err != nil {
				t.Fatal(err)
			}
			h := header(t, at.Value)
			if h["alg"] != string(alg) || h["kid"] != "k-"+string(alg) || h["typ"] != "at+jwt" {
				t.Errorf("header %v, want alg %s, its kid and typ at+jwt", h, alg)
			}
			if c := wantVerifyOK(t, iss, at.Value); c.UserID != testUserID {
				t.Errorf("UserID %q", c.UserID)
			}
			// The public key verifies it with the standard library of any verifier.
			if _, err := jwt.Parse(at.Value, func(*jwt.Token) (any, error) { return ks.byKID["k-"+string(alg)].Public, nil },
				jwt.WithValidMethods([]string{string(alg)}), jwt.WithTimeFunc(func() time.Time { return t0 })); err != nil {
				t.Errorf("golang-jwt with the public key: %v", err)
			}
		})
	}
}

func TestAsymmetricConfusions(t *testing.T) {
	ks := &fakeKeys{}
	es := newKey(t, keys.ES256, "es")
	rs := newKey(t, keys.RS256, "rs")
	ks.add(rs, false)
	ks.add(es, true)
	iss := asymIssuer(t, keys.ES256, ks, t0)
	c := validClaims()
	rsPub, err := x509.MarshalPKIXPublicKey(rs.Public)
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]string{
		// The classic: HS256 with the published public key as the HMAC secret.
		"HS256 signed with a public key, its kid": sign(t, jwt.SigningMethodHS256, rsPub, c, map[string]any{"kid": "rs"}),
		"HS256 with the server secret and a kid":  sign(t, jwt.SigningMethodHS256, secret, c, map[string]any{"kid": "es"}),
		"HS256 without kid after the switch":      hs256(t, c),
		"RS256 header on the ES256 key's kid":     sign(t, jwt.SigningMethodRS256, rs.Signer, c, map[string]any{"kid": "es"}),
		"ES256 by another key under our kid":      sign(t, jwt.SigningMethodES256, newKey(t, keys.ES256, "x").Signer, c, map[string]any{"kid": "es"}),
		"unknown kid":                             sign(t, jwt.SigningMethodES256, es.Signer, c, map[string]any{"kid": "nope"}),
		"no kid, ES256":                           sign(t, jwt.SigningMethodES256, es.Signer, c, nil),
		"alg none with a kid":                     byHand(t, map[string]any{"alg": "none", "typ": "at+jwt", "kid": "es"}, c, ""),
		"jwk header with our key":                 sign(t, jwt.SigningMethodES256, es.Signer, c, map[string]any{"kid": "es", "jwk": map[string]any{"kty": "EC"}}),
	}
	for name, raw := range tests {
		t.Run(name, func(t *testing.T) { wantVerifyErr(t, iss, raw, auth.ErrTokenInvalid) })
	}
	// The controls: our key under its kid verifies, by whichever algorithm it has.
	wantVerifyOK(t, iss, sign(t, jwt.SigningMethodES256, es.Signer, c, map[string]any{"kid": "es"}))
	wantVerifyOK(t, iss, sign(t, jwt.SigningMethodRS256, rs.Signer, c, map[string]any{"kid": "rs"}))
}

// TestSwitchFromHS256 checks both directions of a change of JWT_ALGORITHM:
// HS256 tokens issued before the first asymmetric key still verify until they
// expire, later ones do not; in HS256 mode, tokens of existing keys verify.
func TestSwitchFromHS256(t *testing.T) {
	ks := &fakeKeys{first: t0s.Add(time.Minute)}
	ks.add(newKey(t, keys.ES256, "es"), true)
	iss := asymIssuer(t, keys.ES256, ks, t0.Add(2*time.Minute))
	before := hs256(t, claimsAt(t0s))                    // issued before the first key
	after := hs256(t, claimsAt(t0s.Add(90*time.Second))) // issued after it: forged, or a misconfigured instance
	wantVerifyOK(t, iss, before)
	wantVerifyErr(t, iss, after, auth.ErrTokenInvalid)
	// Backdated, but living on past one token lifetime after the switch: a
	// holder of the old secret cannot mint lasting tokens.
	wantVerifyErr(t, iss, hs256(t, with(claimsAt(t0s), "exp", t0s.Add(24*time.Hour).Unix())), auth.ErrTokenInvalid)
	wantVerifyErr(t, iss, hs256(t, with(claimsAt(t0s.Add(-time.Hour)), "exp", t0s.Add(time.Minute+testTTL+time.Second).Unix())), auth.ErrTokenInvalid)

	es256, err := iss.Issue(auth.Subject{UserID: testUserID, SessionID: testSession})
	if err != nil {
		t.Fatal(err)
	}
	back := asymIssuer(t, keys.HS256, ks, t0.Add(2*time.Minute))
	wantVerifyOK(t, back, es256.Value)
	if h := header(t, mustIssue(t, back)); h["alg"] != "HS256" || h["kid"] != nil {
		t.Errorf("HS256 mode issues %v", h)
	}
}

func mustIssue(t *testing.T, iss *token.Issuer) string {
	t.Helper()
	at, err := iss.Issue(auth.Subject{UserID: testUserID, SessionID: testSession})
	if err != nil {
		t.Fatal(err)
	}
	return at.Value
}

// TestRevokedKeyBeatsTheCache: a token verified (and remembered) before its
// key was revoked is refused after.
func TestRevokedKeyBeatsTheCache(t *testing.T) {
	ks := &fakeKeys{}
	ks.add(newKey(t, keys.EdDSA, "ed"), true)
	iss := asymIssuer(t, keys.EdDSA, ks, t0)
	raw := mustIssue(t, iss)
	wantVerifyOK(t, iss, raw)
	wantVerifyOK(t, iss, raw) // from the cache
	ks.revoke("ed")
	wantVerifyErr(t, iss, raw, auth.ErrTokenInvalid)
}
