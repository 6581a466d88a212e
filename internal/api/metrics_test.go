package api_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/authgql/server/internal/metrics"
)

// scrape reads the metrics as Prometheus would, over HTTP.
type scrape map[string]*dto.MetricFamily

func scrapeMetrics(t *testing.T, m *metrics.Metrics) (scrape, string) {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	res, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams, string(raw)
}

// value sums the samples of name whose labels include want (counter, gauge,
// or a histogram's count).
func (s scrape) value(name string, want map[string]string) float64 {
	f, ok := s["authgql_"+name]
	if !ok {
		return 0
	}
	total := 0.0
	for _, m := range f.Metric {
		match := true
		for k, v := range want {
			found := false
			for _, l := range m.Label {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			match = match && found
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			total += m.Counter.GetValue()
		case m.Gauge != nil:
			total += m.Gauge.GetValue()
		case m.Histogram != nil:
			total += float64(m.Histogram.GetSampleCount())
		}
	}
	return total
}

// Each kind of operation moves its metrics, and no label holds a username,
// email, IP address or token.
func TestMetricsMoveWithTheAPI(t *testing.T) {
	o := defaultOptions()
	m := metrics.New()
	o.metrics = m
	e := newEnvWith(t, o)

	before, _ := scrapeMetrics(t, m)
	p := e.mustRegister(t, "metric_ann", "metric_ann@example.test")
	e.loginAs(t, "metric_ann")
	if res := e.login(t, "", "metric_ann", "wrong password here"); len(res.Errors) == 0 {
		t.Fatal("a wrong password logged in")
	}
	payload(t, e.refresh(t, "", p.RefreshToken), "refreshToken")
	wantRefreshError(t, e.refresh(t, "", "garbage"), "unknown")
	wantUnauthenticated(t, e.post(t, "not-a-jwt", meQuery, nil), "token_invalid")
	me(t, e.post(t, p.AccessToken, meQuery, nil))
	if res := e.post(t, "", `{ me { id `, nil); len(res.Errors) == 0 {
		t.Fatal("a broken document ran")
	}
	if res := e.post(t, p.AccessToken, `mutation { logout }`, nil); len(res.Errors) > 0 {
		t.Fatal(res.Raw)
	}
	wantUnauthenticated(t, e.post(t, p.AccessToken, meQuery, nil), "session_revoked")
	for _, path := range []string{"/healthz", "/readyz", "/nope/alice"} {
		res, err := e.srv.Client().Get(e.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	c := e.dialWS(t, wsDial{})
	c.init(nil)

	after, raw := scrapeMetrics(t, m)
	moved := func(name string, labels map[string]string, atLeast float64) {
		t.Helper()
		if d := after.value(name, labels) - before.value(name, labels); d < atLeast {
			t.Errorf("%s%v moved by %v, want at least %v", name, labels, d, atLeast)
		}
	}
	moved("http_requests_total", map[string]string{"route": "/query", "code": "2xx"}, 9)
	moved("http_requests_total", map[string]string{"route": "/healthz", "code": "2xx"}, 1)
	moved("http_requests_total", map[string]string{"route": "/readyz", "code": "2xx"}, 1)
	moved("http_requests_total", map[string]string{"route": "other", "code": "4xx"}, 1)
	moved("http_request_duration_seconds", map[string]string{"route": "/query"}, 9)
	moved("graphql_operations_total", map[string]string{"field": "register", "outcome": "ok"}, 1)
	moved("graphql_operations_total", map[string]string{"field": "login", "outcome": "INVALID_CREDENTIALS"}, 1)
	moved("graphql_operations_total", map[string]string{"field": "me", "outcome": "UNAUTHENTICATED"}, 2)
	moved("graphql_operations_total", map[string]string{"field": "other", "outcome": "GRAPHQL_PARSE_FAILED"}, 1)
	moved("graphql_operation_duration_seconds", map[string]string{"field": "me"}, 3)
	moved("logins_total", map[string]string{"outcome": "success"}, 1)
	moved("logins_total", map[string]string{"outcome": "invalid_credentials"}, 1)
	moved("registrations_total", map[string]string{"outcome": "success"}, 1)
	moved("refreshes_total", map[string]string{"outcome": "success"}, 1)
	moved("refreshes_total", map[string]string{"outcome": "unknown"}, 1)
	moved("token_verification_failures_total", map[string]string{"reason": "token_invalid"}, 1)
	moved("token_verification_failures_total", map[string]string{"reason": "session_revoked"}, 1)
	moved("sessions_revoked_total", map[string]string{"cause": "logout"}, 1)
	moved("hash_wait_seconds", nil, 3)
	if after.value("hash_slots", nil) != 8 { // HASH_CONCURRENCY 4: twice as many admissions
		t.Errorf("hash_slots: got %v, want 8", after.value("hash_slots", nil))
	}
	if after.value("websocket_connections", nil) != 1 {
		t.Errorf("websocket_connections: got %v, want 1", after.value("websocket_connections", nil))
	}
	if after.value("revoked_sessions", nil) < 1 {
		t.Errorf("revoked_sessions: got %v, want the logged-out session", after.value("revoked_sessions", nil))
	}
	if after.value("readiness", nil) != 1 {
		t.Errorf("readiness: got %v, want 1", after.value("readiness", nil))
	}
	if after.value("mail_outbox_depth", nil) < 0 {
		t.Errorf("mail_outbox_depth: got %v", after.value("mail_outbox_depth", nil))
	}
	for _, fam := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := after[fam]; !ok {
			t.Errorf("%s missing: the Go and process collectors are registered", fam)
		}
	}
	// Bounded labels only.
	for _, secret := range []string{"metric_ann", "example.test", "127.0.0.1", p.AccessToken[:20], "alice", "nope"} {
		if strings.Contains(raw, secret) {
			t.Errorf("/metrics contains %q", secret)
		}
	}
}

// A flood of password checks on one hashing slot shows refusals (busy) and
// saturation.
func TestMetricsShowHashingRefusals(t *testing.T) {
	o := defaultOptions()
	o.cfg.HashConcurrency, o.cfg.HashQueueTimeout = 1, 5*time.Millisecond
	o.cfg.BcryptCost = 10
	m := metrics.New()
	o.metrics = m
	e := newEnvWith(t, o)
	e.mustRegister(t, "metric_flood", "metric_flood@example.test")
	var wg sync.WaitGroup
	for range 12 {
		wg.Go(func() { e.login(t, "", "metric_flood", "wrong password here") })
	}
	wg.Wait()
	s, _ := scrapeMetrics(t, m)
	if s.value("hash_refusals_total", nil) < 1 || s.value("logins_total", map[string]string{"outcome": "busy"}) < 1 {
		t.Fatalf("hash refusals %v, busy logins %v: want both above 0 after a flood on one slot",
			s.value("hash_refusals_total", nil), s.value("logins_total", map[string]string{"outcome": "busy"}))
	}
}

// The public port never serves metrics.
func TestMetricsNotOnThePublicPort(t *testing.T) {
	o := defaultOptions()
	o.metrics = metrics.New()
	e := newEnvWith(t, o)
	res, err := e.srv.Client().Get(e.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound || strings.Contains(string(body), "authgql_") {
		t.Fatalf("GET /metrics on the public port: %d %s", res.StatusCode, body)
	}
}

// The Grafana dashboard and the Prometheus alert rules in deploy/ use only
// metrics the server registers (an unobserved one is registered too: a
// scrape would not show it).
func TestDeployDashboardsUseRealMetrics(t *testing.T) {
	o := defaultOptions()
	m := metrics.New()
	o.metrics = m
	newEnvWith(t, o) // the app registers its gauges
	known := map[string]bool{}
	for _, n := range m.Names() {
		known[n] = true
	}
	name := regexp.MustCompile(`\bauthgql_[a-z0-9_]+`)
	for _, file := range []string{"../../deploy/grafana/authgql.json", "../../deploy/prometheus/alerts.yml"} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		used := 0
		for _, n := range name.FindAllString(string(b), -1) {
			base := n
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if strings.HasSuffix(n, suffix) && known[strings.TrimSuffix(n, suffix)] {
					base = strings.TrimSuffix(n, suffix)
				}
			}
			if !known[base] {
				t.Errorf("%s uses %s, which the server does not export", file, n)
			}
			used++
		}
		if used == 0 {
			t.Errorf("%s uses no authgql_ metric", file)
		}
	}
}
