package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func fakeEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// start runs the server with env until the test ends and returns its base URL
// and a function that stops it and returns run's error. The address comes
// from ADDR_FILE, the one way every client of PORT=0 learns it.
func start(t *testing.T, env map[string]string) (string, *syncBuffer, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error, 1)
	withAddr := map[string]string{"ADDR_FILE": filepath.Join(t.TempDir(), "addr")}
	for k, v := range env {
		withAddr[k] = v
	}
	go func() { done <- run(ctx, []string{"server"}, fakeEnv(withAddr), out, out) }()
	stop := func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(20 * time.Second):
			return fmt.Errorf("run did not return within 20s of cancel")
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("run returned early: %v\n%s", err, out.String())
		default:
		}
		if b, err := os.ReadFile(withAddr["ADDR_FILE"]); err == nil {
			addr := strings.TrimSpace(string(b))
			base := "http://" + addr
			if env["TLS_CERT_FILE"] != "" {
				return "https://" + addr, out, stop
			}
			waitHealthy(t, base)
			return base, out, stop
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = stop()
	t.Fatalf("server did not start:\n%s", out.String())
	return "", nil, nil
}

func waitHealthy(t *testing.T, base string) {
	t.Helper()
	for range 100 {
		res, err := http.Get(base + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s/healthz never answered 200", base)
}

func gql(t *testing.T, base, bearer, query string, vars map[string]any) map[string]any {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, base+"/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("not JSON: %s", raw)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", res.StatusCode, raw)
	}
	return out
}

func field(t *testing.T, resp map[string]any, path ...string) string {
	t.Helper()
	var v any = resp["data"]
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("no %s in %v", strings.Join(path, "."), resp)
		}
		v = m[p]
	}
	s, ok := v.(string)
	if !ok {
		t.Fatalf("%s is %v in %v", strings.Join(path, "."), v, resp)
	}
	return s
}

const fixturePassword = "correct horse battery" // a fixture, not a real password

// TestRunEndToEnd starts the real server with the embedded database, signs a
// user up, restarts the server on the same data directory and signs in again.
func TestRunEndToEnd(t *testing.T) {
	dataDir := t.TempDir()
	env := map[string]string{"PORT": "0", "HOST": "127.0.0.1", "DATA_DIR": dataDir, "BCRYPT_COST": "10"}
	base, out, stop := start(t, env)

	reg := gql(t, base, "", `mutation($i: RegisterInput!) { register(input: $i) { accessToken user { id username } } }`,
		map[string]any{"i": map[string]any{"username": "olivia", "email": "olivia@example.com", "password": fixturePassword}})
	tok := field(t, reg, "register", "accessToken")
	id := field(t, reg, "register", "user", "id")
	if got := field(t, gql(t, base, tok, `{ me { username } }`, nil), "me", "username"); got != "olivia" {
		t.Errorf("me.username = %q", got)
	}
	res, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("GET / = %d, want the Playground", res.StatusCode)
	}
	// run() limits request headers to 64 KiB.
	req, _ := http.NewRequest(http.MethodPost, base+"/query", strings.NewReader(`{"query":"{ me { id } }"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+strings.Repeat("x", 100<<10))
	if res, err := http.DefaultClient.Do(req); err == nil {
		res.Body.Close()
		if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("100 KiB header: status %d, want 431", res.StatusCode)
		}
	}

	if err := stop(); err != nil {
		t.Fatalf("run after cancel: %v", err)
	}
	logs := out.String()
	if !strings.Contains(logs, "shutting down") {
		t.Errorf("no shutdown log:\n%s", logs)
	}
	if strings.Contains(logs, "component=ferretdb") {
		t.Errorf("embedded database logs reached the server log at info level")
	}
	for _, secret := range []string{fixturePassword, tok} {
		if strings.Contains(logs, secret) {
			t.Errorf("log contains a secret")
		}
	}
	fi, err := os.Stat(filepath.Join(dataDir, "jwt-secret"))
	if err != nil {
		t.Fatalf("development key not kept: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("development key mode = %v, want 0600", fi.Mode().Perm())
	}

	// A restart keeps the users and the development key.
	base, _, stop = start(t, env)
	defer func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	}()
	login := gql(t, base, "", `mutation { login(input: {username: "OLIVIA", password: "`+fixturePassword+`"}) { user { id } } }`, nil)
	if got := field(t, login, "login", "user", "id"); got != id {
		t.Errorf("after restart login id = %q, want %q", got, id)
	}
	if got := field(t, gql(t, base, tok, `{ me { id } }`, nil), "me", "id"); got != id {
		t.Errorf("token from before the restart: me.id = %q, want %q", got, id)
	}
}

func TestRunRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"production without secret or database", map[string]string{"APP_ENV": "production", "PORT": "0"}, []string{"JWT_SECRET", "MONGODB_URI"}},
		{"production with a short secret", map[string]string{"APP_ENV": "production", "JWT_SECRET": "too-short", "MONGODB_URI": "mongodb://127.0.0.1:1/"}, []string{"JWT_SECRET", "32"}},
		{"bad cost", map[string]string{"BCRYPT_COST": "4", "PORT": "0"}, []string{"BCRYPT_COST"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var out bytes.Buffer
			err := run(ctx, []string{"server"}, fakeEnv(tc.env), &out, &out)
			if err == nil {
				t.Fatal("run started")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %s", err, w)
				}
			}
			if strings.Contains(out.String(), "listening") {
				t.Errorf("server listened before failing")
			}
		})
	}
}

// A client that sends its headers too slowly is cut off.
func TestSlowHeaders(t *testing.T) {
	base, _, stop := start(t, map[string]string{"PORT": "0", "HOST": "127.0.0.1", "DATA_DIR": t.TempDir(),
		"BCRYPT_COST": "10", "HTTP_READ_HEADER_TIMEOUT": "300ms"})
	defer stop()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("POST /query HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: app")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.ReadAll(conn) // returns when the server closes the connection
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Errorf("connection held %v, want it closed after about 300ms (err %v)", elapsed, err)
	}
}

// With TLS configured: TLS 1.2 and up only, and HSTS on every response.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	base, _, stop := start(t, map[string]string{"PORT": "0", "HOST": "127.0.0.1", "DATA_DIR": dir,
		"BCRYPT_COST": "10", "TLS_CERT_FILE": certFile, "TLS_KEY_FILE": keyFile})
	defer stop()
	client := func(maxVersion uint16) *http.Client {
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS10, MaxVersion: maxVersion}}}
	}
	var res *http.Response
	var err error
	for range 100 { // the server may still be starting
		if res, err = client(tls.VersionTLS13).Get(base + "/healthz"); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("TLS 1.3: %v", err)
	}
	res.Body.Close()
	if got := res.Header.Get("Strict-Transport-Security"); !strings.Contains(got, "max-age=") {
		t.Errorf("Strict-Transport-Security = %q", got)
	}
	if res, err := client(tls.VersionTLS12).Get(base + "/healthz"); err != nil {
		t.Errorf("TLS 1.2: %v", err)
	} else {
		res.Body.Close()
	}
	if res, err := client(tls.VersionTLS11).Get(base + "/healthz"); err == nil {
		res.Body.Close()
		t.Error("TLS 1.1 was accepted")
	}
}

func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// The first admin is made without a database shell: "admin grant" on the
// server binary, or BOOTSTRAP_ADMINS at start. Both are idempotent.
func TestAdminBootstrap(t *testing.T) {
	dataDir := t.TempDir()
	env := map[string]string{"PORT": "0", "HOST": "127.0.0.1", "DATA_DIR": dataDir, "BCRYPT_COST": "10"}
	base, _, stop := start(t, env)
	gql(t, base, "", `mutation { register(input: {username: "founder", email: "founder@example.com", password: "`+fixturePassword+`"}) { accessToken } }`, nil)
	gql(t, base, "", `mutation { register(input: {username: "second", email: "second@example.com", password: "`+fixturePassword+`"}) { accessToken } }`, nil)
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	admin := func(args ...string) (string, error) {
		var out bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := run(ctx, append([]string{"server", "admin"}, args...), fakeEnv(env), &out, &out)
		return out.String(), err
	}
	for i := range 2 {
		out, err := admin("grant", "Founder")
		if err != nil || !strings.Contains(out, "founder (") || !strings.Contains(out, "holds ADMIN") {
			t.Fatalf("admin grant: %v\n%s", err, out)
		}
		// The first grant is an audit event; the second changes nothing.
		if logged := strings.Contains(out, "event=grant_role"); logged != (i == 0) {
			t.Errorf("grant %d: audit event logged = %v:\n%s", i+1, logged, out)
		}
	}
	if _, err := admin("grant", "nobody"); err == nil || !strings.Contains(err.Error(), "register it first") {
		t.Errorf("grant of an unknown user: %v", err)
	}
	if _, err := admin("promote"); err == nil || !strings.Contains(err.Error(), "usage") {
		t.Errorf("bad subcommand: %v", err)
	}

	// An enabled ADMIN exists: BOOTSTRAP_ADMINS grants nothing, and says why.
	env["BOOTSTRAP_ADMINS"] = "second, ghost"
	base, logs, stop := start(t, env)
	if !strings.Contains(logs.String(), "username=second reason=admin_exists") || !strings.Contains(logs.String(), "username=ghost reason=admin_exists") {
		t.Errorf("skipped BOOTSTRAP_ADMINS not logged:\n%s", logs.String())
	}
	isAdmin := func(base, name string) bool {
		t.Helper()
		tok := field(t, gql(t, base, "", `mutation { login(input: {username: "`+name+`", password: "`+fixturePassword+`"}) { accessToken } }`, nil), "login", "accessToken")
		return gql(t, base, tok, `{ users { edges { node { username roles } } } }`, nil)["errors"] == nil
	}
	if !isAdmin(base, "founder") || isAdmin(base, "second") {
		t.Errorf("with an admin present: founder admin %v (want true), second admin %v (want false)", isAdmin(base, "founder"), isAdmin(base, "second"))
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// A new database with no admin: the listed users that exist get ADMIN.
	env["DATA_DIR"] = t.TempDir()
	delete(env, "BOOTSTRAP_ADMINS")
	base, _, stop = start(t, env)
	gql(t, base, "", `mutation { register(input: {username: "second", email: "second@example.com", password: "`+fixturePassword+`"}) { accessToken } }`, nil)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	env["BOOTSTRAP_ADMINS"] = "second, ghost"
	base, logs, stop = start(t, env)
	if !strings.Contains(logs.String(), "granted ADMIN") || !strings.Contains(logs.String(), "username=ghost reason=no_such_user") {
		t.Errorf("bootstrap not logged:\n%s", logs.String())
	}
	if !isAdmin(base, "second") {
		t.Error("second is not an admin after the bootstrap")
	}
	// The attack: register a listed name that did not exist, wait for a
	// restart. An admin exists now, so nothing is granted.
	gql(t, base, "", `mutation { register(input: {username: "ghost", email: "ghost@example.com", password: "`+fixturePassword+`"}) { accessToken } }`, nil)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	base, _, stop = start(t, env)
	defer func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	}()
	if isAdmin(base, "ghost") {
		t.Error("a listed name registered later became ADMIN at restart")
	}
}

// A front-end developer watching their refresh logic: ACCESS_TOKEN_TTL=2s and
// JWT_CLOCK_SKEW=0s start in development, and an issued token is refused
// about 2 s later.
func TestShortAccessTokenInDevelopment(t *testing.T) {
	env := map[string]string{"PORT": "0", "HOST": "127.0.0.1", "DATA_DIR": t.TempDir(), "BCRYPT_COST": "10",
		"ACCESS_TOKEN_TTL": "2s", "JWT_CLOCK_SKEW": "0s"}
	base, _, stop := start(t, env)
	defer func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	}()
	res := gql(t, base, "", `mutation { register(input: {username: "dev", email: "dev@example.com", password: "`+fixturePassword+`"}) { accessToken expiresIn } }`, nil)
	tok := field(t, res, "register", "accessToken")
	if n := res["data"].(map[string]any)["register"].(map[string]any)["expiresIn"]; n != float64(2) {
		t.Fatalf("expiresIn = %v, want 2", n)
	}
	issued := time.Now()
	if r := gql(t, base, tok, `{ me { id } }`, nil); r["errors"] != nil {
		t.Fatalf("fresh token refused: %v", r)
	}
	for {
		r := gql(t, base, tok, `{ me { id } }`, nil)
		if r["errors"] != nil {
			reason := r["errors"].([]any)[0].(map[string]any)["extensions"].(map[string]any)["reason"]
			if reason != "token_expired" {
				t.Fatalf("refused with %v, want token_expired", r)
			}
			// exp has one-second resolution: refused between 1 and 3 s after issue.
			if d := time.Since(issued); d < time.Second || d > 3*time.Second {
				t.Fatalf("refused %v after issue, want about 2s", d)
			}
			return
		}
		if time.Since(issued) > 5*time.Second {
			t.Fatal("a 2s token is still accepted after 5s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Production keeps its floors and says why.
func TestShortAccessTokenRefusedInProduction(t *testing.T) {
	var out bytes.Buffer
	err := run(t.Context(), []string{"server"}, fakeEnv(map[string]string{
		"APP_ENV": "production", "JWT_SECRET": strings.Repeat("k", 32), "MONGODB_URI": "mongodb://127.0.0.1:1",
		"ACCESS_TOKEN_TTL": "2s"}), &out, &out)
	if err == nil || !strings.Contains(err.Error(), "ACCESS_TOKEN_TTL must be at least 1m0s in production") {
		t.Fatalf("run = %v, want the production floor named", err)
	}
}
