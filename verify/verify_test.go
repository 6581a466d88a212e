package verify

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

const audience = "my-audience"

// testKey is a signing key of the fake issuer.
type testKey struct {
	kid     string
	alg     string
	private crypto.Signer
}

func (k testKey) method() jwt.SigningMethod { return jwt.GetSigningMethod(k.alg) }

// jwk is the key as the issuer publishes it: kid, alg, use sig.
func (k testKey) jwk(t *testing.T) jwkset.JWKMarshal {
	t.Helper()
	j, err := jwkset.NewJWKFromKey(k.private.Public(), jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{
		KID: k.kid, ALG: jwkset.ALG(k.alg), USE: jwkset.UseSig,
	}})
	if err != nil {
		t.Fatalf("jwk of %s: %v", k.kid, err)
	}
	return j.Marshal()
}

var (
	keysOnce            sync.Once
	esKey, edKey, rsKey testKey
)

// keys are the three keys of the fake issuer, made once (RSA takes a while).
func keys(t *testing.T) (es, ed, rs testKey) {
	t.Helper()
	keysOnce.Do(func() {
		esKey = testKey{kid: "es-1", alg: "ES256", private: must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))}
		_, edPriv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			panic(err)
		}
		edKey = testKey{kid: "ed-1", alg: "EdDSA", private: edPriv}
		rsKey = testKey{kid: "rs-1", alg: "RS256", private: must(rsa.GenerateKey(rand.Reader, 2048))}
	})
	return esKey, edKey, rsKey
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// issuer is a fake authgql server: discovery and a JWKS of the keys it is
// given, counting the JWKS requests.
type issuer struct {
	srv *httptest.Server
	// name is what discovery says the issuer is (default: the server's URL).
	name  string
	algs  []string
	mu    sync.Mutex
	jwks  []jwkset.JWKMarshal
	fetch atomic.Int64
}

func newIssuer(t *testing.T, published ...jwkset.JWKMarshal) *issuer {
	t.Helper()
	is := &issuer{jwks: published, algs: []string{"ES256", "EdDSA", "RS256"}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		is.mu.Lock()
		name, algs := is.name, is.algs
		is.mu.Unlock()
		if name == "" {
			name = is.srv.URL
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer":                                name,
			"jwks_uri":                              is.srv.URL + "/.well-known/jwks.json",
			"id_token_signing_alg_values_supported": algs,
		})
	})
	mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		is.fetch.Add(1)
		is.mu.Lock()
		body, err := json.Marshal(jwkset.JWKSMarshal{Keys: append([]jwkset.JWKMarshal{}, is.jwks...)})
		is.mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	is.srv = httptest.NewServer(mux)
	t.Cleanup(is.srv.Close)
	return is
}

// publish replaces the key set the issuer serves.
func (is *issuer) publish(published ...jwkset.JWKMarshal) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.jwks = published
}

// newIssuerOf is an issuer publishing the given keys.
func newIssuerOf(t *testing.T, ks ...testKey) *issuer {
	t.Helper()
	var published []jwkset.JWKMarshal
	for _, k := range ks {
		published = append(published, k.jwk(t))
	}
	return newIssuer(t, published...)
}

func newVerifier(t *testing.T, is *issuer, opts ...Option) *Verifier {
	t.Helper()
	v, err := New(t.Context(), is.srv.URL, audience, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return v
}

// claims are those the server puts in an access token, valid now.
func claims(iss string) jwt.MapClaims {
	now := time.Now().Truncate(time.Second)
	return jwt.MapClaims{
		"iss":            iss,
		"aud":            []string{audience},
		"sub":            "user-1",
		"sid":            "session-1",
		"roles":          []string{"admin", "editor"},
		"email_verified": true,
		"jti":            "token-1",
		"iat":            now.Unix(),
		"nbf":            now.Unix(),
		"exp":            now.Add(15 * time.Minute).Unix(),
	}
}

// sign signs c with k, with the server's header (typ at+jwt, kid), after
// edit changes the header or the claims.
func sign(t *testing.T, k testKey, c jwt.MapClaims, edit func(h map[string]any, c jwt.MapClaims)) string {
	t.Helper()
	tok := jwt.NewWithClaims(k.method(), c)
	tok.Header["typ"], tok.Header["kid"] = "at+jwt", k.kid
	if edit != nil {
		edit(tok.Header, c)
	}
	raw, err := tok.SignedString(k.private)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return raw
}

// encode builds a compact token from JSON header and claims and a signature.
func encode(t *testing.T, header map[string]any, c jwt.MapClaims, sig []byte) string {
	t.Helper()
	h := must(json.Marshal(header))
	p := must(json.Marshal(c))
	e := base64.RawURLEncoding.EncodeToString
	return e(h) + "." + e(p) + "." + e(sig)
}

func TestVerifyEachAlgorithm(t *testing.T) {
	es, ed, rs := keys(t)
	is := newIssuerOf(t, es, ed, rs)
	v := newVerifier(t, is)
	for _, k := range []testKey{es, ed, rs} {
		t.Run(k.alg, func(t *testing.T) {
			c := claims(is.srv.URL)
			got, err := v.Verify(t.Context(), sign(t, k, c, nil))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			want := Claims{
				UserID: "user-1", SessionID: "session-1", Roles: []string{"admin", "editor"}, EmailVerified: true,
				AAL: 1, AMR: []string{"pwd"}, TokenID: "token-1", IssuedAt: time.Unix(c["iat"].(int64), 0), ExpiresAt: time.Unix(c["exp"].(int64), 0),
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v, want %+v", got, want)
			}
			if !got.HasRole("editor") || got.HasRole("root") {
				t.Errorf("HasRole: got %v for editor and %v for root, want true and false", got.HasRole("editor"), got.HasRole("root"))
			}
		})
	}
}

func TestVerifyAccepts(t *testing.T) {
	es, _, _ := keys(t)
	is := newIssuerOf(t, es)
	v := newVerifier(t, is)
	for name, edit := range map[string]func(h map[string]any, c jwt.MapClaims){
		"aud among others":           func(h map[string]any, c jwt.MapClaims) { c["aud"] = []string{"other", audience} },
		"aud as a string":            func(h map[string]any, c jwt.MapClaims) { c["aud"] = audience },
		"expired within leeway":      func(h map[string]any, c jwt.MapClaims) { c["exp"] = time.Now().Add(-10 * time.Second).Unix() },
		"typ application/at+jwt":     func(h map[string]any, c jwt.MapClaims) { h["typ"] = "application/at+jwt" },
		"typ in capitals":            func(h map[string]any, c jwt.MapClaims) { h["typ"] = "AT+JWT" },
		"no roles, email unverified": func(h map[string]any, c jwt.MapClaims) { delete(c, "roles"); c["email_verified"] = false },
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := v.Verify(t.Context(), sign(t, es, claims(is.srv.URL), edit)); err != nil {
				t.Errorf("Verify: %v, want no error", err)
			}
		})
	}
}

func TestVerifyRefuses(t *testing.T) {
	es, ed, rs := keys(t)
	is := newIssuerOf(t, es, ed, rs)
	v := newVerifier(t, is)
	iss := is.srv.URL
	attacker := testKey{kid: es.kid, alg: "ES256", private: must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))}
	pubDER := must(x509.MarshalPKIXPublicKey(es.private.Public()))
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(rs.private.Public()))})
	hmac := func(alg string, k testKey, secret []byte) string {
		tok := jwt.NewWithClaims(jwt.GetSigningMethod(alg), claims(iss))
		tok.Header["typ"], tok.Header["kid"] = "at+jwt", k.kid
		return must(tok.SignedString(secret))
	}
	valid := sign(t, es, claims(iss), nil)
	parts := strings.Split(valid, ".")
	tampered := claims(iss)
	tampered["roles"] = []string{"admin", "root"}
	none := func(alg string) string {
		return encode(t, map[string]any{"alg": alg, "typ": "at+jwt", "kid": es.kid}, claims(iss), nil)
	}

	tests := []struct {
		name  string
		raw   string
		want  error // ErrTokenInvalid, ErrTokenExpired or ErrTokenMissing
		cause error // the finer cause, when this package decides it
	}{
		{"empty", "", ErrTokenMissing, nil},
		{"wrong iss", sign(t, es, claims("https://evil.example"), nil), ErrTokenInvalid, jwt.ErrTokenInvalidIssuer},
		{"iss with a trailing slash", sign(t, es, claims(iss+"/"), nil), ErrTokenInvalid, jwt.ErrTokenInvalidIssuer},
		{"no iss", sign(t, es, claims(iss), func(h map[string]any, c jwt.MapClaims) { delete(c, "iss") }), ErrTokenInvalid, jwt.ErrTokenRequiredClaimMissing},
		{"wrong aud", sign(t, es, claims(iss), func(h map[string]any, c jwt.MapClaims) { c["aud"] = []string{"other"} }), ErrTokenInvalid, jwt.ErrTokenInvalidAudience},
		{"no aud", sign(t, es, claims(iss), func(h map[string]any, c jwt.MapClaims) { delete(c, "aud") }), ErrTokenInvalid, jwt.ErrTokenRequiredClaimMissing},
		{"expired", sign(t, es, claims(iss), func(h map[string]any, c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Minute).Unix() }), ErrTokenExpired, jwt.ErrTokenExpired},
		{"expired and wrong aud", sign(t, es, claims(iss), func(h map[string]any, c jwt.MapClaims) {
			c["exp"], c["aud"] = time.Now().Add(-time.Minute).Unix(), "other"
		}), ErrTokenInvalid, jwt.ErrTokenInvalidAudience},
		{"expired and no sid", sign(t, es, claims(iss), func(h map[string]any, c jwt.MapClaims) {
			c["exp"] = time.Now().Add(-time.Minute).Unix()
			delete(c, "sid")
		}), ErrTokenInvalid, errMissingClaims},
		{"no exp", sign(t, es, claims(iss), func(h map[string]any, c jwt.MapClaims) { delete(c, "exp") }), ErrTokenInvalid, jwt.ErrTokenRequiredClaimMissing},
		{"nbf in the future", sign(t, es, claims(iss), func(h map[string]any, c jwt.MapClaims) { c["nbf"] = time.Now().Add(time.Hour).Unix() }), ErrTokenInvalid, jwt.ErrTokenNotValidYet},
		{"iat in the future", sign(t, es, claims(iss), func(h map[string]any, c jwt.MapClaims) { c["iat"] = time.Now().Add(time.Hour).Unix() }), ErrTokenInvalid, jwt.ErrTokenUsedBeforeIssued},
		{"no sub", sign(t, es, claims(iss), func(h map[string]any, c jwt.MapClaims) { delete(c, "sub") }), ErrTokenInvalid, errMissingClaims},
		{"no sid", sign(t, es, claims(iss), func(h map[string]any, c jwt.MapClaims) { delete(c, "sid") }), ErrTokenInvalid, errMissingClaims},
		{"no jti", sign(t, es, claims(iss), func(h map[string]any, c jwt.MapClaims) { delete(c, "jti") }), ErrTokenInvalid, errMissingClaims},
		{"typ missing", sign(t, es, claims(iss), func(h map[string]any, c jwt.MapClaims) { delete(h, "typ") }), ErrTokenInvalid, errType},
		{"typ JWT", sign(t, es, claims(iss), func(h map[string]any, c jwt.MapClaims) { h["typ"] = "JWT" }), ErrTokenInvalid, errType},
		{"typ not a string", sign(t, es, claims(iss), func(h map[string]any, c jwt.MapClaims) { h["typ"] = 1 }), ErrTokenInvalid, errType},
		{"alg none", none("none"), ErrTokenInvalid, jwt.ErrTokenSignatureInvalid},
		{"alg None", none("None"), ErrTokenInvalid, jwt.ErrTokenUnverifiable},
		{"alg NONE", none("NONE"), ErrTokenInvalid, jwt.ErrTokenUnverifiable},
		{"HS256 with the ES256 public key as PEM", hmac("HS256", es, pubPEM), ErrTokenInvalid, jwt.ErrTokenSignatureInvalid},
		{"HS256 with the ES256 public key as DER", hmac("HS256", es, pubDER), ErrTokenInvalid, jwt.ErrTokenSignatureInvalid},
		{"HS256 with the RS256 public key as PEM", hmac("HS256", rs, rsaPEM), ErrTokenInvalid, jwt.ErrTokenSignatureInvalid},
		{"HS512 with the RS256 public key as PEM", hmac("HS512", rs, rsaPEM), ErrTokenInvalid, jwt.ErrTokenSignatureInvalid},
		{"unknown kid", sign(t, es, claims(iss), func(h map[string]any, c jwt.MapClaims) { h["kid"] = "no-such-key" }), ErrTokenInvalid, errUnknownKID},
		{"no kid", sign(t, es, claims(iss), func(h map[string]any, c jwt.MapClaims) { delete(h, "kid") }), ErrTokenInvalid, errNoKID},
		{"kid not a string", sign(t, es, claims(iss), func(h map[string]any, c jwt.MapClaims) { h["kid"] = 1 }), ErrTokenInvalid, errNoKID},
		{"RS256 under the kid of the ES256 key", sign(t, rs, claims(iss), func(h map[string]any, c jwt.MapClaims) { h["kid"] = es.kid }), ErrTokenInvalid, errAlgMismatch},
		{"ES256 under the kid of the RS256 key", sign(t, es, claims(iss), func(h map[string]any, c jwt.MapClaims) { h["kid"] = rs.kid }), ErrTokenInvalid, errAlgMismatch},
		{"EdDSA under the kid of the ES256 key", sign(t, ed, claims(iss), func(h map[string]any, c jwt.MapClaims) { h["kid"] = es.kid }), ErrTokenInvalid, errAlgMismatch},
		{"an attacker's key under a real kid", sign(t, attacker, claims(iss), nil), ErrTokenInvalid, jwt.ErrTokenSignatureInvalid},
		{"jwk header", sign(t, attacker, claims(iss), func(h map[string]any, c jwt.MapClaims) { h["jwk"] = attacker.jwk(t) }), ErrTokenInvalid, errKeyHeader},
		{"jku header", sign(t, es, claims(iss), func(h map[string]any, c jwt.MapClaims) { h["jku"] = "https://evil.example/jwks.json" }), ErrTokenInvalid, errKeyHeader},
		{"x5u header", sign(t, es, claims(iss), func(h map[string]any, c jwt.MapClaims) { h["x5u"] = "https://evil.example/cert.pem" }), ErrTokenInvalid, errKeyHeader},
		{"x5c header", sign(t, es, claims(iss), func(h map[string]any, c jwt.MapClaims) { h["x5c"] = []string{"MIIB"} }), ErrTokenInvalid, errKeyHeader},
		{"crit header", sign(t, es, claims(iss), func(h map[string]any, c jwt.MapClaims) { h["crit"] = []string{"exp"} }), ErrTokenInvalid, errCritHeader},
		{"tampered payload", parts[0] + "." + base64.RawURLEncoding.EncodeToString(must(json.Marshal(tampered))) + "." + parts[2], ErrTokenInvalid, jwt.ErrTokenSignatureInvalid},
		{"tampered signature", parts[0] + "." + parts[1] + "." + flip(parts[2]), ErrTokenInvalid, jwt.ErrTokenSignatureInvalid},
		{"empty signature", parts[0] + "." + parts[1] + ".", ErrTokenInvalid, jwt.ErrTokenSignatureInvalid},
		{"signature of another token", parts[0] + "." + parts[1] + "." + strings.Split(sign(t, es, claims(iss), func(h map[string]any, c jwt.MapClaims) { c["jti"] = "other" }), ".")[2], ErrTokenInvalid, jwt.ErrTokenSignatureInvalid},
		{"extra segment", valid + "." + parts[2], ErrTokenInvalid, jwt.ErrTokenMalformed},
		{"two segments", parts[0] + "." + parts[1], ErrTokenInvalid, jwt.ErrTokenMalformed},
		{"line break inside", parts[0] + ".\n" + parts[1] + "." + parts[2], ErrTokenInvalid, errMalformed},
		{"padding", parts[0] + "." + parts[1] + "=." + parts[2], ErrTokenInvalid, errMalformed},
		{"oversized", valid + "." + strings.Repeat("A", MaxTokenBytes), ErrTokenInvalid, errMalformed},
		{"garbage", "not-a-token", ErrTokenInvalid, jwt.ErrTokenMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v.Verify(t.Context(), tt.raw)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify: got error %v, want %v", err, tt.want)
			}
			if tt.cause != nil && !errors.Is(err, tt.cause) {
				t.Errorf("Verify: got error %v, want it caused by %v", err, tt.cause)
			}
			if !reflect.DeepEqual(got, Claims{}) {
				t.Errorf("Verify: got claims %+v with an error, want none", got)
			}
			if r := ReasonOf(err); r != tt.want.(*Error).Reason {
				t.Errorf("ReasonOf: got %q, want %q", r, tt.want.(*Error).Reason)
			}
		})
	}
	if n := is.fetch.Load(); n != 2 {
		// One at New, one for the first unknown kid; the rest of the unknown
		// kids were within the rate limit.
		t.Errorf("JWKS fetched %d times, want 2", n)
	}
}

// flip changes the first character of a base64url string.
func flip(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}

func TestLeeway(t *testing.T) {
	es, _, _ := keys(t)
	is := newIssuerOf(t, es)
	raw := sign(t, es, claims(is.srv.URL), func(h map[string]any, c jwt.MapClaims) { c["exp"] = time.Now().Add(-5 * time.Second).Unix() })
	if _, err := newVerifier(t, is).Verify(t.Context(), raw); err != nil {
		t.Errorf("default leeway: got %v, want no error 5 s past exp", err)
	}
	if _, err := newVerifier(t, is, WithLeeway(0)).Verify(t.Context(), raw); !errors.Is(err, ErrTokenExpired) {
		t.Errorf("no leeway: got %v, want %v", err, ErrTokenExpired)
	}
}

// TestKeysThatVerifyNothing: keys a JWKS may hold that must not verify a
// token even when the token's signature by them is good.
func TestKeysThatVerifyNothing(t *testing.T) {
	es, _, _ := keys(t)
	noAlg := es.jwk(t)
	noAlg.ALG, noAlg.KID = "", "no-alg"
	enc := es.jwk(t)
	enc.USE, enc.KID = jwkset.UseEnc, "enc"
	small := testKey{kid: "rsa-1024", alg: "RS256", private: must(rsa.GenerateKey(rand.Reader, 1024))}
	p384 := testKey{kid: "p384", alg: "ES256", private: must(ecdsa.GenerateKey(elliptic.P384(), rand.Reader))}
	p384JWK := p384.jwk(t)
	rsaAsES := testKey{kid: "rsa-as-es", alg: "ES256", private: must(rsa.GenerateKey(rand.Reader, 2048))}
	is := newIssuer(t, noAlg, enc, small.jwk(t), p384JWK, rsaAsES.jwk(t))
	v := newVerifier(t, is)
	iss := is.srv.URL
	tests := []struct {
		name  string
		raw   string
		cause error
	}{
		// keyfunc's own Keyfunc would accept this one: it skips the alg
		// check when the key names no alg.
		{"key without alg", sign(t, es, claims(iss), func(h map[string]any, c jwt.MapClaims) { h["kid"] = "no-alg" }), errAlgMismatch},
		{"key for encryption", sign(t, es, claims(iss), func(h map[string]any, c jwt.MapClaims) { h["kid"] = "enc" }), errKeyUse},
		{"RSA key of 1024 bits", sign(t, small, claims(iss), nil), errKeyType},
		{"P-384 key that says ES256", encode(t, map[string]any{"alg": "ES256", "typ": "at+jwt", "kid": "p384"}, claims(iss), make([]byte, 64)), errKeyType},
		{"RSA key that says ES256", encode(t, map[string]any{"alg": "ES256", "typ": "at+jwt", "kid": "rsa-as-es"}, claims(iss), make([]byte, 64)), errKeyType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(t.Context(), tt.raw)
			if !errors.Is(err, ErrTokenInvalid) || !errors.Is(err, tt.cause) {
				t.Errorf("Verify: got %v, want %v caused by %v", err, ErrTokenInvalid, tt.cause)
			}
		})
	}
}

// clock is a settable time for the verifier's rate limit and claim checks.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) advance(d time.Duration) { c.offset.Add(int64(d)) }

func TestKeyRotation(t *testing.T) {
	es, ed, _ := keys(t)
	is := newIssuerOf(t, es)
	v := newVerifier(t, is)
	var clk clock
	v.now = clk.now
	iss := is.srv.URL

	if _, err := v.Verify(t.Context(), sign(t, es, claims(iss), nil)); err != nil {
		t.Fatalf("old key: %v", err)
	}
	if n := is.fetch.Load(); n != 1 {
		t.Fatalf("JWKS fetched %d times after New, want 1", n)
	}

	// The issuer starts signing with a key the verifier has not seen (keys
	// rotate --now): many requests at once carry it.
	next := testKey{kid: "es-2", alg: "ES256", private: must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))}
	is.publish(es.jwk(t), next.jwk(t))
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			_, err := v.Verify(t.Context(), sign(t, next, claims(iss), nil))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("new key: %v", err)
		}
	}
	if n := is.fetch.Load(); n != 2 {
		t.Fatalf("JWKS fetched %d times after the new kid, want 2 (one refetch shared by every request)", n)
	}
	if _, err := v.Verify(t.Context(), sign(t, es, claims(iss), nil)); err != nil {
		t.Errorf("old key after the refresh: %v", err)
	}

	// An attacker sends made-up kids: one refetch per interval at most, and
	// each is refused.
	random := func() string {
		return sign(t, es, claims(iss), func(h map[string]any, c jwt.MapClaims) { h["kid"] = rand.Text() })
	}
	for range 100 {
		if _, err := v.Verify(t.Context(), random()); !errors.Is(err, errUnknownKID) {
			t.Fatalf("random kid: got %v, want %v", err, errUnknownKID)
		}
	}
	if n := is.fetch.Load(); n != 2 {
		t.Errorf("JWKS fetched %d times after 100 random kids within the interval, want 2", n)
	}
	clk.advance(DefaultUnknownKIDInterval + time.Second)
	for range 100 {
		_, _ = v.Verify(t.Context(), random())
	}
	if n := is.fetch.Load(); n != 3 {
		t.Errorf("JWKS fetched %d times after 100 random kids one interval later, want 3", n)
	}

	// Within the interval, a real new key waits for the next interval (the
	// server publishes keys an hour before they sign, so this is rare).
	is.publish(es.jwk(t), next.jwk(t), ed.jwk(t))
	if _, err := v.Verify(t.Context(), sign(t, ed, claims(iss), nil)); !errors.Is(err, errUnknownKID) {
		t.Errorf("new key within the interval: got %v, want %v", err, errUnknownKID)
	}
	clk.advance(DefaultUnknownKIDInterval + time.Second)
	if _, err := v.Verify(t.Context(), sign(t, ed, claims(iss), nil)); err != nil {
		t.Errorf("new key after the interval: %v", err)
	}
}

func TestBackgroundRefresh(t *testing.T) {
	es, ed, _ := keys(t)
	is := newIssuerOf(t, es, ed)
	var logs lockedBuffer
	v := newVerifier(t, is, WithRefreshInterval(20*time.Millisecond), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	iss := is.srv.URL
	if _, err := v.Verify(t.Context(), sign(t, ed, claims(iss), nil)); err != nil {
		t.Fatalf("before revocation: %v", err)
	}
	// The server revokes the EdDSA key: it leaves the JWKS, and the next
	// background refresh drops it.
	is.publish(es.jwk(t))
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := v.Verify(t.Context(), sign(t, ed, claims(iss), nil))
		if errors.Is(err, errUnknownKID) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("revoked key still verifies after 5 s: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := v.Verify(t.Context(), sign(t, es, claims(iss), nil)); err != nil {
		t.Errorf("remaining key: %v", err)
	}

	// One broken key fails the whole fetch (jwkset): the keys fetched
	// before stay in use, and the failure is logged.
	is.publish(es.jwk(t), jwkset.JWKMarshal{KTY: "EC", KID: "broken", CRV: "P-256", X: "AA", Y: "AA"})
	time.Sleep(100 * time.Millisecond)
	if _, err := v.Verify(t.Context(), sign(t, es, claims(iss), nil)); err != nil {
		t.Errorf("after a broken key set: %v", err)
	}
	if got := logs.String(); !strings.Contains(got, "fetching the key set failed") {
		t.Errorf("log: got %q, want the failed fetch", got)
	}
}

// lockedBuffer is a log destination written by the refresh goroutine and
// read by the test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestNewRefuses(t *testing.T) {
	es, _, _ := keys(t)
	tests := []struct {
		name   string
		change func(is *issuer) (issuerURL, aud string)
	}{
		{"discovery names another issuer", func(is *issuer) (string, string) { is.name = "https://evil.example"; return is.srv.URL, audience }},
		{"discovery names the issuer with a slash", func(is *issuer) (string, string) { is.name = is.srv.URL + "/"; return is.srv.URL, audience }},
		{"issuer asked with a slash", func(is *issuer) (string, string) { return is.srv.URL + "/", audience }},
		{"no discovery", func(is *issuer) (string, string) { return is.srv.URL + "/nothing", audience }},
		{"HS256 only", func(is *issuer) (string, string) { is.algs = []string{"HS256"}; return is.srv.URL, audience }},
		{"no audience", func(is *issuer) (string, string) { return is.srv.URL, "" }},
		{"not http", func(is *issuer) (string, string) {
			return "ftp://" + strings.TrimPrefix(is.srv.URL, "http://"), audience
		}},
		{"query", func(is *issuer) (string, string) { return is.srv.URL + "?a=b", audience }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := newIssuerOf(t, es)
			issuerURL, aud := tt.change(is)
			if v, err := New(t.Context(), issuerURL, aud); err == nil {
				t.Errorf("New: got %v, want an error", v)
			}
		})
	}

	t.Run("key set unreachable", func(t *testing.T) {
		gone := httptest.NewServer(http.NotFoundHandler())
		gone.Close()
		srv := discoveryServer(t, func(self string) string { return gone.URL + "/jwks.json" })
		if _, err := New(t.Context(), srv.URL, audience); err == nil {
			t.Error("New: got no error, want one")
		}
	})
	t.Run("relative jwks_uri", func(t *testing.T) {
		srv := discoveryServer(t, func(self string) string { return "/jwks.json" })
		if _, err := New(t.Context(), srv.URL, audience); err == nil {
			t.Error("New: got no error, want one")
		}
	})
	t.Run("http jwks_uri for an https issuer", func(t *testing.T) {
		plain := newIssuerOf(t, es)
		srv := httptest.NewTLSServer(discoveryHandler(func(self string) string { return plain.srv.URL + "/.well-known/jwks.json" }))
		t.Cleanup(srv.Close)
		if _, err := New(t.Context(), srv.URL, audience, WithHTTPClient(srv.Client())); err == nil {
			t.Error("New: got no error, want one")
		}
	})
	t.Run("huge discovery document", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, `{"x":"`+strings.Repeat("a", 2<<20)+`"}`)
		}))
		t.Cleanup(srv.Close)
		if _, err := New(t.Context(), srv.URL, audience); err == nil {
			t.Error("New: got no error, want one")
		}
	})
}

// discoveryHandler serves a discovery document naming its own URL as the
// issuer and the jwks_uri that uri returns.
func discoveryHandler(uri func(self string) string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		self := scheme + "://" + r.Host
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": self, "jwks_uri": uri(self)})
	})
}

func discoveryServer(t *testing.T, uri func(self string) string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(discoveryHandler(uri))
	t.Cleanup(srv.Close)
	return srv
}

func TestNewOverTLS(t *testing.T) {
	es, _, _ := keys(t)
	var srv *httptest.Server
	jwks := must(json.Marshal(jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{es.jwk(t)}}))
	mux := http.NewServeMux()
	mux.Handle("GET /.well-known/openid-configuration", discoveryHandler(func(self string) string { return self + "/.well-known/jwks.json" }))
	mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(jwks) })
	srv = httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	v, err := New(t.Context(), srv.URL, audience, WithHTTPClient(srv.Client()))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if _, err := v.Verify(t.Context(), sign(t, es, claims(srv.URL), nil)); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

// serve runs one request through h, with the Authorization header values.
func serve(h http.Handler, authorization ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "/whoami", nil)
	for _, a := range authorization {
		r.Header.Add("Authorization", a)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// whoami answers 200 with the user id, or "anonymous".
var whoami = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	c, ok := ClaimsFrom(r.Context())
	if !ok {
		_, _ = io.WriteString(w, "anonymous")
		return
	}
	_, _ = io.WriteString(w, c.UserID)
})

func TestMiddleware(t *testing.T) {
	es, _, _ := keys(t)
	is := newIssuerOf(t, es)
	v := newVerifier(t, is)
	iss := is.srv.URL
	valid := sign(t, es, claims(iss), nil)
	expired := sign(t, es, claims(iss), func(h map[string]any, c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() })
	forged := sign(t, es, claims(iss), func(h map[string]any, c jwt.MapClaims) { h["jku"] = "https://evil.example" })

	const (
		challenge = `Bearer error="invalid_token"`
		missing   = `{"error":"invalid_token","reason":"token_missing"}`
		invalid   = `{"error":"invalid_token","reason":"token_invalid"}`
		expiredJS = `{"error":"invalid_token","reason":"token_expired"}`
	)
	tests := []struct {
		name          string
		require       bool
		authorization []string
		status        int
		body          string // the JSON of a 401, or what whoami says
		challenge     string // WWW-Authenticate of a 401
	}{
		{"Handler: no header", false, nil, 200, "anonymous", ""},
		{"Handler: empty header", false, []string{""}, 200, "anonymous", ""},
		{"Handler: Bearer alone", false, []string{"Bearer "}, 200, "anonymous", ""},
		{"Handler: valid", false, []string{"Bearer " + valid}, 200, "user-1", ""},
		{"Handler: lower-case scheme", false, []string{"bearer " + valid}, 200, "user-1", ""},
		{"Handler: expired", false, []string{"Bearer " + expired}, 401, expiredJS, challenge},
		{"Handler: forged", false, []string{"Bearer " + forged}, 401, invalid, challenge},
		{"Handler: garbage", false, []string{"Bearer garbage"}, 401, invalid, challenge},
		{"Handler: Basic", false, []string{"Basic dXNlcjpwYXNz"}, 401, invalid, challenge},
		{"Handler: token without scheme", false, []string{valid}, 401, invalid, challenge},
		{"Handler: two headers", false, []string{"Bearer " + valid, "Bearer " + valid}, 401, invalid, challenge},
		{"Handler: oversized", false, []string{"Bearer " + strings.Repeat("a", 1<<20)}, 401, invalid, challenge},
		{"Require: no header", true, nil, 401, missing, "Bearer"},
		{"Require: Bearer alone", true, []string{"Bearer "}, 401, missing, "Bearer"},
		{"Require: valid", true, []string{"Bearer " + valid}, 200, "user-1", ""},
		{"Require: expired", true, []string{"Bearer " + expired}, 401, expiredJS, challenge},
		{"Require: forged", true, []string{"Bearer " + forged}, 401, invalid, challenge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := v.Handler(whoami)
			if tt.require {
				h = v.Require(whoami)
			}
			w := serve(h, tt.authorization...)
			if w.Code != tt.status {
				t.Fatalf("status: got %d, want %d", w.Code, tt.status)
			}
			if got := strings.TrimSpace(w.Body.String()); got != tt.body {
				t.Errorf("body: got %q, want %q", got, tt.body)
			}
			if got := w.Header().Get("WWW-Authenticate"); got != tt.challenge {
				t.Errorf("WWW-Authenticate: got %q, want %q", got, tt.challenge)
			}
			if tt.status == 401 {
				if got := w.Header().Get("Content-Type"); got != "application/json" {
					t.Errorf("Content-Type: got %q, want application/json", got)
				}
				if got := w.Header().Get("Cache-Control"); got != "no-store" {
					t.Errorf("Cache-Control: got %q, want no-store", got)
				}
				var body struct{ Error, Reason string }
				if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
					t.Errorf("body is not JSON: %v", err)
				}
			}
		})
	}
}

func TestClaimsContext(t *testing.T) {
	if _, ok := ClaimsFrom(context.Background()); ok {
		t.Error("ClaimsFrom of an empty context: got true, want false")
	}
	want := Claims{UserID: "u", Roles: []string{"admin"}}
	got, ok := ClaimsFrom(WithClaims(context.Background(), want))
	if !ok || !reflect.DeepEqual(got, want) {
		t.Errorf("ClaimsFrom: got %+v, %v; want %+v, true", got, ok, want)
	}
}

// TestIntegrationRealServer verifies tokens of a running authgql server. It
// runs only with AUTHGQL_VERIFY_ISSUER set (the server's PUBLIC_URL, e.g.
// http://127.0.0.1:8080), with AUTHGQL_VERIFY_AUDIENCE (default authgql) and,
// to check a real token, AUTHGQL_VERIFY_TOKEN (an access token from login).
func TestIntegrationRealServer(t *testing.T) {
	issuerURL := os.Getenv("AUTHGQL_VERIFY_ISSUER")
	if issuerURL == "" {
		t.Skip("AUTHGQL_VERIFY_ISSUER is not set: no server to verify against")
	}
	aud := os.Getenv("AUTHGQL_VERIFY_AUDIENCE")
	if aud == "" {
		aud = "authgql"
	}
	v, err := New(t.Context(), issuerURL, aud)
	if err != nil {
		t.Fatalf("New(%q, %q): %v", issuerURL, aud, err)
	}
	if raw := os.Getenv("AUTHGQL_VERIFY_TOKEN"); raw != "" {
		c, err := v.Verify(t.Context(), raw)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if c.UserID == "" || c.SessionID == "" || c.TokenID == "" || c.ExpiresAt.IsZero() {
			t.Errorf("Verify: got %+v, want sub, sid, jti and exp", c)
		}
	}
	es, _, _ := keys(t)
	forged := sign(t, es, claims(issuerURL), func(h map[string]any, c jwt.MapClaims) { c["aud"] = aud })
	if _, err := v.Verify(t.Context(), forged); !errors.Is(err, ErrTokenInvalid) {
		t.Errorf("a token of a key the server does not publish: got %v, want %v", err, ErrTokenInvalid)
	}
}

// The assurance claims come through: aal, amr, mfa as signed; a token
// without them reads as a level-1 password session.
func TestVerifyAssuranceClaims(t *testing.T) {
	es, _, _ := keys(t)
	is := newIssuerOf(t, es)
	v := newVerifier(t, is)
	c, err := v.Verify(t.Context(), sign(t, es, claims(is.srv.URL), func(h map[string]any, c jwt.MapClaims) {
		c["aal"], c["amr"], c["mfa"] = 2, []string{"pwd", "otp"}, true
	}))
	if err != nil || c.AAL != 2 || !slices.Equal(c.AMR, []string{"pwd", "otp"}) || !c.MFA {
		t.Fatalf("got %+v, %v; want aal 2, amr [pwd otp], mfa", c, err)
	}
	c, err = v.Verify(t.Context(), sign(t, es, claims(is.srv.URL), func(h map[string]any, c jwt.MapClaims) {
		delete(c, "aal")
		delete(c, "amr")
	}))
	if err != nil || c.AAL != 1 || !slices.Equal(c.AMR, []string{"pwd"}) || c.MFA {
		t.Fatalf("without the claims: got %+v, %v; want a level-1 password session", c, err)
	}
}
