package main

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// METRICS_ADDR serves /metrics on a listener of its own, with the database
// commands timed by the driver's monitor.
func TestRunServesMetricsOnItsOwnListener(t *testing.T) {
	env := map[string]string{"PORT": "0", "HOST": "127.0.0.1", "DATA_DIR": t.TempDir(), "BCRYPT_COST": "10",
		"METRICS_ADDR": "127.0.0.1:0"}
	base, out, stop := start(t, env)
	defer func() {
		if err := stop(); err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	gql(t, base, "", `mutation($i: RegisterInput!) { register(input: $i) { accessToken } }`,
		map[string]any{"i": map[string]any{"username": "mona", "email": "mona@example.com", "password": fixturePassword}})
	var addr string
	for deadline := time.Now().Add(5 * time.Second); addr == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := regexp.MustCompile(`msg="metrics are served" addr=(\S+)`).FindStringSubmatch(out.String()); m != nil {
			addr = m[1]
		}
	}
	if addr == "" || strings.HasSuffix(base, addr) {
		t.Fatalf("metrics address %q (public %s)\n%s", addr, base, out.String())
	}
	res, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{
		`authgql_registrations_total{outcome="success"} 1`,
		`authgql_mongodb_command_duration_seconds_count{command="insert",outcome="ok"}`,
		`authgql_mongodb_pool_connections_in_use`,
		`authgql_http_requests_total{code="2xx",route="/query"}`,
		`go_goroutines`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if res, err := http.Get(base + "/metrics"); err == nil {
		res.Body.Close()
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("GET /metrics on the public port: %d, want 404", res.StatusCode)
		}
	}
}
