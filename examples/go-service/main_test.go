package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// TestRun runs the service against a fake authgql server (discovery and a
// JWKS of one ES256 key) and asks /whoami with and without a token.
func TestRun(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwk, err := jwkset.NewJWKFromKey(key.Public(), jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: "k1", ALG: jwkset.AlgES256, USE: jwkset.UseSig}})
	if err != nil {
		t.Fatal(err)
	}
	var issuer *httptest.Server
	issuer = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			_ = json.NewEncoder(w).Encode(map[string]any{"issuer": issuer.URL, "jwks_uri": issuer.URL + "/.well-known/jwks.json",
				"id_token_signing_alg_values_supported": []string{"ES256"}})
		case "/.well-known/jwks.json":
			_ = json.NewEncoder(w).Encode(jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{jwk.Marshal()}})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(issuer.Close)

	ctx, cancel := context.WithCancel(t.Context())
	var logs lockedBuffer
	env := map[string]string{"AUTHGQL_ISSUER": issuer.URL, "AUTHGQL_AUDIENCE": "svc", "PORT": "0"}
	done := make(chan error, 1)
	go func() { done <- run(ctx, func(k string) string { return env[k] }, &logs) }()
	base := "http://" + waitForAddr(t, &logs)

	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": issuer.URL, "aud": "svc", "sub": "user-1", "sid": "s1", "jti": "j1", "roles": []string{"admin"},
		"email_verified": true, "iat": now.Unix(), "exp": now.Add(15 * time.Minute).Unix(),
	})
	tok.Header["typ"], tok.Header["kid"] = "at+jwt", "k1"
	raw, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}

	status, body := get(t, base+"/whoami", raw)
	var who struct {
		UserID string   `json:"userId"`
		Roles  []string `json:"roles"`
	}
	if err := json.Unmarshal(body, &who); status != http.StatusOK || err != nil || who.UserID != "user-1" || len(who.Roles) != 1 {
		t.Errorf("whoami with a token: got %d %s, want 200 with user-1 and its role", status, body)
	}
	if status, body := get(t, base+"/whoami", ""); status != http.StatusUnauthorized || !bytes.Contains(body, []byte(`"reason":"token_missing"`)) {
		t.Errorf("whoami without a token: got %d %s, want 401 token_missing", status, body)
	}
	if status, body := get(t, base+"/hello", ""); status != http.StatusOK || !bytes.Contains(body, []byte("anonymous")) {
		t.Errorf("hello without a token: got %d %s, want 200 anonymous", status, body)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}

func TestRunNeedsIssuer(t *testing.T) {
	if err := run(t.Context(), func(string) string { return "" }, io.Discard); err == nil {
		t.Error("run without AUTHGQL_ISSUER: got no error, want one")
	}
}

func get(t *testing.T, url, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

var addrLine = regexp.MustCompile(`msg=listening addr=(\S+)`)

// waitForAddr waits for run to log where it listens.
func waitForAddr(t *testing.T, logs *lockedBuffer) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if m := addrLine.FindStringSubmatch(logs.String()); m != nil {
			return m[1]
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("run did not start: %s", logs.String())
	return ""
}

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
