package api_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authgql/server/internal/keys"
)

// asymOptions is the default test server signing with alg.
func asymOptions(alg keys.Algorithm) envOptions {
	o := defaultOptions()
	o.cfg.JWTAlgorithm = alg
	return o
}

// tokenHeader decodes a JWT's header.
func tokenHeader(t *testing.T, raw string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

type jwks struct {
	Keys []map[string]any `json:"keys"`
}

func (e *env) jwks(t *testing.T) (jwks, *http.Response) {
	t.Helper()
	res, err := http.Get(e.srv.URL + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	var set jwks
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatalf("JWKS %s: %v", body, err)
	}
	return set, res
}

func (s jwks) kids() []string {
	var out []string
	for _, k := range s.Keys {
		kid, _ := k["kid"].(string)
		out = append(out, kid)
	}
	return out
}

func TestEachAlgorithmEndToEnd(t *testing.T) {
	for _, alg := range []keys.Algorithm{keys.ES256, keys.EdDSA, keys.RS256} {
		t.Run(string(alg), func(t *testing.T) {
			e := newEnvWith(t, asymOptions(alg))
			p := e.mustRegister(t, "alice", "alice@example.com")
			h := tokenHeader(t, p.AccessToken)
			kid, _ := h["kid"].(string)
			if h["alg"] != string(alg) || h["typ"] != "at+jwt" || kid == "" {
				t.Fatalf("token header %v, want alg %s, typ at+jwt and a kid", h, alg)
			}
			if got := me(t, e.post(t, p.AccessToken, meQuery, nil)); got.ID != p.User.ID {
				t.Errorf("me.id %q, want %q", got.ID, p.User.ID)
			}
			r := payload(t, e.refresh(t, "", p.RefreshToken), "refreshToken")
			me(t, e.post(t, r.AccessToken, meQuery, nil))
			set, res := e.jwks(t)
			if !slices.Contains(set.kids(), kid) {
				t.Errorf("JWKS kids %v lack the token's %s", set.kids(), kid)
			}
			for _, k := range set.Keys {
				for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
					if _, ok := k[private]; ok {
						t.Errorf("JWK %v has the private member %q", k["kid"], private)
					}
				}
				if k["alg"] != string(alg) || k["use"] != "sig" {
					t.Errorf("JWK %v: alg %v use %v", k["kid"], k["alg"], k["use"])
				}
			}
			if res.Header.Get("Cache-Control") != "public, max-age=300" || res.Header.Get("ETag") == "" ||
				res.Header.Get("Access-Control-Allow-Origin") != "*" {
				t.Errorf("JWKS headers %v", res.Header)
			}
			// A token signed by another key under this kid is refused.
			forged := payload(t, newEnvWith(t, asymOptions(alg)).register(t, "mallory", "m@example.com", testPassword), "register").AccessToken
			parts := strings.Split(forged, ".")
			hb, _ := json.Marshal(map[string]any{"alg": string(alg), "typ": "at+jwt", "kid": kid})
			parts[0] = base64.RawURLEncoding.EncodeToString(hb)
			if res := e.post(t, strings.Join(parts, "."), meQuery, nil); res.code(t) != "UNAUTHENTICATED" || res.ext("reason") != "token_invalid" {
				t.Errorf("a foreign key's token under our kid: %s", res.Raw)
			}
		})
	}
}

func TestWellKnownDocuments(t *testing.T) {
	e := newEnvWith(t, asymOptions(keys.ES256))
	res, err := http.Get(e.srv.URL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Issuer  string   `json:"issuer"`
		JWKSURI string   `json:"jwks_uri"`
		Algs    []string `json:"id_token_signing_alg_values_supported"`
		Token   string   `json:"token_endpoint"`
	}
	if err := json.NewDecoder(res.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if doc.Issuer != testIssuer || !strings.HasSuffix(doc.JWKSURI, "/.well-known/jwks.json") ||
		!slices.Equal(doc.Algs, []string{"ES256"}) || doc.Token != "" {
		t.Errorf("discovery %+v", doc)
	}
	// The issuer is exactly the tokens' iss.
	p := e.mustRegister(t, "alice", "alice@example.com")
	b, _ := base64.RawURLEncoding.DecodeString(strings.Split(p.AccessToken, ".")[1])
	var claims struct {
		Iss string `json:"iss"`
	}
	_ = json.Unmarshal(b, &claims)
	if claims.Iss != doc.Issuer {
		t.Errorf("token iss %q, discovery issuer %q", claims.Iss, doc.Issuer)
	}
	// ETag: a revalidation costs nothing.
	_, first := e.jwks(t)
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/.well-known/jwks.json", nil)
	req.Header.Set("If-None-Match", first.Header.Get("ETag"))
	again, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	again.Body.Close()
	if again.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match with the ETag: status %d, want 304", again.StatusCode)
	}

	pre, err := http.NewRequest(http.MethodOptions, e.srv.URL+"/.well-known/jwks.json", nil)
	if err != nil {
		t.Fatal(err)
	}
	pre.Header.Set("Origin", "https://app.example.com")
	pre.Header.Set("Access-Control-Request-Method", "GET")
	pre.Header.Set("Access-Control-Request-Headers", "if-none-match")
	if res, err := http.DefaultClient.Do(pre); err != nil || res.StatusCode != http.StatusNoContent ||
		res.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("preflight of the JWKS: %v %v", res, err)
	} else {
		res.Body.Close()
	}

	hs := newEnv(t) // HS256
	set, _ := hs.jwks(t)
	if len(set.Keys) != 0 {
		t.Errorf("HS256 mode publishes %v, want no keys", set.kids())
	}
}

// TestRotationAcrossInstances: two instances on one database; a successor is
// published ahead of signing, old tokens keep working, new ones use the new
// key, and the old key leaves the JWKS once its tokens have expired.
func TestRotationAcrossInstances(t *testing.T) {
	o := asymOptions(keys.ES256)
	o.cfg.JWTKeyRotation, o.cfg.JWTKeyPublishAhead = 2*time.Hour, 10*time.Minute
	o.cfg.AccessTokenTTL = 3 * time.Hour
	a := newEnvWith(t, o)
	o.db = a.db
	b := newEnvWith(t, o)
	advance := func(d time.Duration) {
		a.clock.Advance(d)
		b.clock.Advance(d)
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("not within 3 s: %s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	kidOf := func(raw string) string { k, _ := tokenHeader(t, raw)["kid"].(string); return k }

	first := a.mustRegister(t, "alice", "alice@example.com")
	k1 := kidOf(first.AccessToken)
	if k := kidOf(b.loginAs(t, "alice").AccessToken); k != k1 {
		t.Fatalf("instance b signs with %s, a with %s: one key for both", k, k1)
	}
	advance(2*time.Hour - 9*time.Minute) // within the publish-ahead window
	var k2 string
	waitFor("a successor in both key sets", func() bool {
		sa, _ := a.jwks(t)
		sb, _ := b.jwks(t)
		if len(sa.Keys) != 2 || !slices.Equal(sa.kids(), sb.kids()) {
			return false
		}
		k2 = sa.kids()[0]
		return k2 != k1
	})
	if k := kidOf(a.loginAs(t, "alice").AccessToken); k != k1 {
		t.Errorf("the successor signs before its time: %s", k)
	}
	advance(10 * time.Minute)
	waitFor("both instances sign with the successor", func() bool {
		return kidOf(a.loginAs(t, "alice").AccessToken) == k2 && kidOf(b.loginAs(t, "alice").AccessToken) == k2
	})
	for _, e := range []*env{a, b} {
		me(t, e.post(t, first.AccessToken, meQuery, nil)) // signed by the retired key: still good
	}
	advance(3*time.Hour + time.Minute) // the retired key's tokens have expired
	waitFor("the retired key leaves the key sets", func() bool {
		sa, _ := a.jwks(t)
		sb, _ := b.jwks(t)
		return slices.Equal(sa.kids(), []string{k2}) && slices.Equal(sb.kids(), []string{k2})
	})
}

// TestRevokedKeyAcrossInstances: revoking the signing key on one instance
// makes every instance refuse its tokens within the revocation bound, and a
// new key signs at once.
func TestRevokedKeyAcrossInstances(t *testing.T) {
	o := asymOptions(keys.EdDSA)
	a := newEnvWith(t, o)
	o.db = a.db
	b := newEnvWith(t, o)
	p := a.mustRegister(t, "alice", "alice@example.com")
	old, _ := tokenHeader(t, p.AccessToken)["kid"].(string)
	me(t, b.post(t, p.AccessToken, meQuery, nil)) // verified, and remembered, on b
	if err := a.app.Keys.Revoke(t.Context(), old); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		res := b.post(t, p.AccessToken, meQuery, nil)
		if len(res.Errors) > 0 && res.code(t) == "UNAUTHENTICATED" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance b still accepts a token of the revoked key after 2 s: %s", res.Raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if res := a.post(t, p.AccessToken, meQuery, nil); res.code(t) != "UNAUTHENTICATED" {
		t.Errorf("instance a accepts a token of the key it revoked: %s", res.Raw)
	}
	fresh := a.loginAs(t, "alice")
	if kid, _ := tokenHeader(t, fresh.AccessToken)["kid"].(string); kid == old || kid == "" {
		t.Errorf("a login after the revocation signs with %q", kid)
	}
	me(t, b.post(t, fresh.AccessToken, meQuery, nil))
	for _, e := range []*env{a, b} {
		if set, _ := e.jwks(t); slices.Contains(set.kids(), old) {
			t.Errorf("the revoked key is still published: %v", set.kids())
		}
	}
}
