package main

import (
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is an in-test OTLP/HTTP trace receiver.
type otlpReceiver struct {
	*httptest.Server
	mu    sync.Mutex
	spans []*tracepb.Span
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	r := &otlpReceiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var ex coltrace.ExportTraceServiceRequest
		if req.URL.Path != "/v1/traces" || proto.Unmarshal(body, &ex) != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		for _, rs := range ex.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				r.spans = append(r.spans, ss.Spans...)
			}
		}
		r.mu.Unlock()
		out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *otlpReceiver) all() []*tracepb.Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*tracepb.Span(nil), r.spans...)
}

// tracedServer runs the server exporting to a receiver; the SDK reads the
// OTEL_* variables from the process environment, as in production.
func tracedServer(t *testing.T, extra map[string]string) (string, *syncBuffer, func() error, *otlpReceiver) {
	recv := newOTLPReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", recv.URL)
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
	t.Setenv("OTEL_SERVICE_NAME", "authgql-test")
	env := map[string]string{"PORT": "0", "HOST": "127.0.0.1", "DATA_DIR": t.TempDir(), "BCRYPT_COST": "10",
		"OTEL_EXPORTER_OTLP_ENDPOINT": recv.URL}
	for k, v := range extra {
		env[k] = v
	}
	base, out, stop := start(t, env)
	return base, out, stop, recv
}

const clientTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"

func loginWithTraceparent(t *testing.T, base string) {
	t.Helper()
	body := `{"query":"mutation($i: LoginInput!) { login(input: $i) { accessToken } }","variables":{"i":{"username":"tess","password":"` + fixturePassword + `"}}}`
	req, _ := http.NewRequest(http.MethodPost, base+"/query", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Traceparent", "00-"+clientTraceID+"-00f067aa0ba902b7-01")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(b), "accessToken") {
		t.Fatalf("login: %s", b)
	}
}

// One login's spans: the request, the operation, the resolver, the password
// check with its queue wait and the database commands, linked parent to
// child; no attribute holds a secret or an identity; the client's trace
// context is not continued from an untrusted peer; the request's log lines
// carry the trace id.
func TestRunExportsTracesOfALogin(t *testing.T) {
	base, out, stop, recv := tracedServer(t, nil)
	reg := gql(t, base, "", `mutation($i: RegisterInput!) { register(input: $i) { accessToken refreshToken } }`,
		map[string]any{"i": map[string]any{"username": "tess", "email": "tess@example.com", "password": fixturePassword}})
	secrets := []string{fixturePassword, "tess", "tess@example.com", field(t, reg, "register", "accessToken"),
		field(t, reg, "register", "refreshToken")}
	loginWithTraceparent(t, base)
	if err := stop(); err != nil { // flushes the spans
		t.Fatalf("run: %v", err)
	}

	spans := recv.all()
	t.Logf("%d spans: %v", len(spans), names(spans))
	byID := map[string]*tracepb.Span{}
	for _, s := range spans {
		byID[hex.EncodeToString(s.SpanId)] = s
		for _, a := range s.Attributes {
			v := a.Value.String()
			for _, secret := range secrets {
				if strings.Contains(v, secret) {
					t.Errorf("span %q attribute %s holds a secret or identity: %s", s.Name, a.Key, v)
				}
			}
		}
	}
	// The login's resolver span, and its ancestors.
	var resolver *tracepb.Span
	for _, s := range spans {
		if s.Name == "graphql.resolve Mutation.login" {
			resolver = s
		}
	}
	if resolver == nil {
		t.Fatalf("no graphql.resolve Mutation.login span among %d: %v", len(spans), names(spans))
	}
	op := byID[hex.EncodeToString(resolver.ParentSpanId)]
	if op == nil || op.Name != "graphql.mutation" {
		t.Fatalf("the resolver's parent: %v, want graphql.mutation", op)
	}
	httpSpan := byID[hex.EncodeToString(op.ParentSpanId)]
	if httpSpan == nil || httpSpan.Name != "POST /query" || httpSpan.Kind != tracepb.Span_SPAN_KIND_SERVER {
		t.Fatalf("the operation's parent: %v, want the server span POST /query", httpSpan)
	}
	traceID := hex.EncodeToString(httpSpan.TraceId)
	if traceID == clientTraceID || len(httpSpan.ParentSpanId) != 0 {
		t.Errorf("the trace continued the client's traceparent from an untrusted peer")
	}
	// Within the resolver: the password check and the database commands.
	descends := func(s *tracepb.Span, from *tracepb.Span) bool {
		for p := s; p != nil; p = byID[hex.EncodeToString(p.ParentSpanId)] {
			if string(p.SpanId) == string(from.SpanId) {
				return true
			}
		}
		return false
	}
	var compare, find bool
	for _, s := range spans {
		if s.Name == "password.compare" && descends(s, resolver) {
			compare = true
			if !hasAttr(s, "authgql.hash.queue_wait_ms") {
				t.Errorf("password.compare lacks its queue wait")
			}
		}
		if s.Name == "mongodb.find" && descends(s, resolver) && s.Kind == tracepb.Span_SPAN_KIND_CLIENT {
			find = true
		}
	}
	if !compare || !find {
		t.Errorf("under the login resolver: password.compare %v, mongodb.find %v; spans %v", compare, find, names(spans))
	}
	// Log lines of the request carry its trace id.
	if !strings.Contains(out.String(), "trace_id="+traceID) {
		t.Errorf("no log line carries trace_id=%s", traceID)
	}
}

// Behind a trusted proxy, the incoming traceparent is continued.
func TestRunTracesContinueFromTrustedProxies(t *testing.T) {
	base, _, stop, recv := tracedServer(t, map[string]string{"TRUSTED_PROXIES": "127.0.0.1/32"})
	gql(t, base, "", `mutation($i: RegisterInput!) { register(input: $i) { accessToken } }`,
		map[string]any{"i": map[string]any{"username": "tess", "email": "tess@example.com", "password": fixturePassword}})
	loginWithTraceparent(t, base)
	if err := stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
	for _, s := range recv.all() {
		if s.Name == "POST /query" && hex.EncodeToString(s.TraceId) == clientTraceID {
			return
		}
	}
	t.Fatalf("no request span continued trace %s from the trusted proxy", clientTraceID)
}

func hasAttr(s *tracepb.Span, key string) bool {
	for _, a := range s.Attributes {
		if a.Key == key {
			return true
		}
	}
	return false
}

func names(spans []*tracepb.Span) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}
