package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
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
	// A fixed issuer: with PORT=0 it would follow the address, which changes
	// with the restart below (and so would every token's iss).
	env := map[string]string{"PORT": "0", "HOST": "127.0.0.1", "DATA_DIR": dataDir, "BCRYPT_COST": "10", "JWT_ISSUER": "authgql-test"}
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
