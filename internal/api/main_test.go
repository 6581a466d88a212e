package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"golang.org/x/crypto/bcrypt"

	"github.com/authgql/server/internal/app"
	"github.com/authgql/server/internal/auth"
	"github.com/authgql/server/internal/config"
	"github.com/authgql/server/internal/devdb/devdbtest"
	"github.com/authgql/server/internal/keys"
	"github.com/authgql/server/internal/mail/mailtest"
	"github.com/authgql/server/internal/metrics"
	"github.com/authgql/server/internal/token"
)

// The embedded database is started once for the package; each test gets a
// database of its own.
var testDB *devdbtest.Server

func TestMain(m *testing.M) { devdbtest.Main(m, &testDB) }

const (
	testSecret   = "test-secret-0123456789abcdef-0123456789" // at least 32 bytes; a fixture, not a real key
	testIssuer   = "authgql-test"
	testAudience = "authgql-test-clients"
	testPassword = "correct horse battery" // a fixture password
)

// syncBuffer is a log sink that tests read while handlers write.
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

// env is one server under test: the real handler over real HTTP on a fresh
// database.
type env struct {
	srv    *httptest.Server
	db     *mongo.Database
	client *mongo.Client
	issuer *token.Issuer
	svc    *auth.Service
	clock  *clock
	logs   *syncBuffer
	// smtp receives the server's mails (an in-process SMTP server).
	smtp *mailtest.Server
	app  *app.App
}

// clock is the service's time, which tests move forward.
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

type envOptions struct {
	// cfg is the server's configuration; defaultOptions starts from test
	// values (the minimum bcrypt cost, no per-IP limits, fast sync).
	cfg    config.Config
	client *mongo.Client   // default: the shared client
	db     *mongo.Database // default: a fresh database (set it to share one between two servers)
	// wrapUsers and wrapLog, when set, wrap the real stores (to hold a
	// request at a chosen point, or to fail a write).
	wrapUsers func(auth.UserStore) auth.UserStore
	wrapLog   func(auth.RevocationLog) auth.RevocationLog
	// smtp is where mails go; default: a new in-process SMTP server.
	smtp *mailtest.Server
	mail app.MailDeps
	// metrics, when set, is instrumented (as with METRICS_ADDR); the
	// database client's monitors are not (they belong to the shared client).
	metrics *metrics.Metrics
}

func defaultOptions() envOptions {
	cfg, err := config.Load(func(string) string { return "" })
	if err != nil {
		panic(err)
	}
	cfg.JWTSecret = []byte(testSecret)
	// HS256: these tests forge tokens with the secret; the asymmetric
	// algorithms have tests of their own (keys_test.go).
	cfg.JWTAlgorithm = keys.HS256
	cfg.JWTIssuer, cfg.JWTAudience = testIssuer, testAudience
	cfg.BcryptCost = bcrypt.MinCost
	cfg.RevocationSync = 100 * time.Millisecond
	// No per-IP limits unless a test sets them: every request here comes from 127.0.0.1.
	cfg.LoginRate, cfg.RegisterRate, cfg.RefreshRate, cfg.MailRate = auth.Rate{}, auth.Rate{}, auth.Rate{}, auth.Rate{}
	cfg.AppURL = "https://app.example.test"
	cfg.MailRetryBase = 100 * time.Millisecond
	cfg.HashConcurrency, cfg.HashQueueTimeout = 4, 10*time.Second
	cfg.CORSAllowedOrigins = nil
	return envOptions{cfg: cfg}
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, defaultOptions())
}

// newEnvWith builds the server exactly as the process does (internal/app),
// on a fresh database, behind a real HTTP listener.
func newEnvWith(t *testing.T, o envOptions) *env {
	t.Helper()
	client := o.client
	if client == nil {
		client = testDB.Client
	}
	db := o.db
	if db == nil {
		db = testDB.Fresh(t)
	}
	db = client.Database(db.Name())
	if o.cfg.DataDir == "./data" {
		o.cfg.DataDir = t.TempDir()
	}
	if o.smtp == nil && o.cfg.SMTPURL == "" {
		o.smtp = mailtest.Start(t)
	}
	if o.smtp != nil && o.cfg.SMTPURL == "" {
		o.cfg.SMTPURL = o.smtp.URL()
	}
	if o.mail.Poll == 0 {
		o.mail.Poll = 50 * time.Millisecond
	}
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	clk := &clock{}
	a, err := app.New(context.Background(), app.Deps{Config: o.cfg, Logger: logger, DB: db, Now: clk.Now,
		WrapStores: func(s auth.Stores) auth.Stores {
			if o.wrapUsers != nil {
				s.Users = o.wrapUsers(s.Users)
			}
			if o.wrapLog != nil {
				s.Revocations = o.wrapLog(s.Revocations)
			}
			return s
		}, Mail: o.mail, Metrics: o.metrics})
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })
	srv := httptest.NewServer(a.Handler)
	t.Cleanup(srv.Close)
	return &env{srv: srv, db: db, client: client, issuer: a.Tokens, svc: a.Auth, clock: clk, logs: logs, smtp: o.smtp, app: a}
}

type gqlError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

type gqlResponse struct {
	Status int                        `json:"-"`
	Header http.Header                `json:"-"`
	Raw    string                     `json:"-"`
	Data   map[string]json.RawMessage `json:"data"`
	Errors []gqlError                 `json:"errors"`
}

func (r gqlResponse) code(t *testing.T) string {
	t.Helper()
	if len(r.Errors) == 0 {
		t.Fatalf("no errors in response: %s", r.Raw)
	}
	c, _ := r.Errors[0].Extensions["code"].(string)
	return c
}

// ext returns extensions[key] of the first error as a string.
func (r gqlResponse) ext(key string) string {
	if len(r.Errors) == 0 {
		return ""
	}
	v, _ := r.Errors[0].Extensions[key].(string)
	return v
}

// post sends a GraphQL request as application/json with an optional bearer token.
func (e *env) post(t *testing.T, bearer, query string, vars map[string]any) gqlResponse {
	t.Helper()
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/query", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	return e.send(t, req)
}

// get sends a GraphQL request by GET, as urql does for queries.
func (e *env) get(t *testing.T, bearer, query string, vars map[string]any) gqlResponse {
	t.Helper()
	q := url.Values{"query": {query}}
	if vars != nil {
		b, _ := json.Marshal(vars)
		q.Set("variables", string(b))
	}
	req, err := http.NewRequest(http.MethodGet, e.srv.URL+"/query?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	return e.send(t, req)
}

func (e *env) send(t *testing.T, req *http.Request) gqlResponse {
	t.Helper()
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := gqlResponse{Status: res.StatusCode, Header: res.Header, Raw: string(raw)}
	if len(raw) > 0 && strings.HasPrefix(res.Header.Get("Content-Type"), "application/") {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("response is not JSON: %v: %s", err, raw)
		}
	}
	return out
}

const payloadFields = `accessToken tokenType expiresIn expiresAt refreshToken refreshTokenExpiresAt user { id username email createdAt }`

const registerMutation = `mutation Register($input: RegisterInput!) { register(input: $input) { ` + payloadFields + ` } }`

const loginMutation = `mutation Login($input: LoginInput!) { login(input: $input) { ` + payloadFields + ` } }`

const refreshMutation = `mutation Refresh($token: String!) { refreshToken(token: $token) { ` + payloadFields + ` } }`

const meQuery = `query Me { me { id username email createdAt } }`

type authPayload struct {
	AccessToken           string    `json:"accessToken"`
	TokenType             string    `json:"tokenType"`
	ExpiresIn             int       `json:"expiresIn"`
	ExpiresAt             time.Time `json:"expiresAt"`
	RefreshToken          string    `json:"refreshToken"`
	RefreshTokenExpiresAt time.Time `json:"refreshTokenExpiresAt"`
	User                  user      `json:"user"`
}

type user struct {
	ID        string    `json:"id"`
	Username  string    `json:"username"`
	Email     string    `json:"email"`
	CreatedAt time.Time `json:"createdAt"`
}

func (e *env) register(t *testing.T, username, email, password string) gqlResponse {
	t.Helper()
	return e.post(t, "", registerMutation, map[string]any{
		"input": map[string]any{"username": username, "email": email, "password": password},
	})
}

func (e *env) login(t *testing.T, bearer, username, password string) gqlResponse {
	t.Helper()
	return e.post(t, bearer, loginMutation, map[string]any{
		"input": map[string]any{"username": username, "password": password},
	})
}

// mustRegister registers a user and returns the payload.
func (e *env) mustRegister(t *testing.T, username, email string) authPayload {
	t.Helper()
	res := e.register(t, username, email, testPassword)
	return payload(t, res, "register")
}

func payload(t *testing.T, res gqlResponse, field string) authPayload {
	t.Helper()
	if len(res.Errors) > 0 || res.Status != http.StatusOK {
		t.Fatalf("%s failed: status %d: %s", field, res.Status, res.Raw)
	}
	var p authPayload
	if err := json.Unmarshal(res.Data[field], &p); err != nil {
		t.Fatalf("decode %s: %v: %s", field, err, res.Raw)
	}
	return p
}

func me(t *testing.T, res gqlResponse) user {
	t.Helper()
	if len(res.Errors) > 0 || res.Status != http.StatusOK {
		t.Fatalf("me failed: status %d: %s", res.Status, res.Raw)
	}
	var u user
	if err := json.Unmarshal(res.Data["me"], &u); err != nil {
		t.Fatalf("decode me: %v: %s", err, res.Raw)
	}
	return u
}

// countUsers returns how many user documents the test's database holds.
func (e *env) countUsers(t *testing.T) int64 {
	t.Helper()
	n, err := testDB.Client.Database(e.db.Name()).Collection("users").CountDocuments(context.Background(), bson.D{})
	if err != nil {
		t.Fatalf("count users: %v", err)
	}
	return n
}

// wantUnauthenticated asserts an UNAUTHENTICATED error with reason and a null data.me.
func wantUnauthenticated(t *testing.T, res gqlResponse, reason string) {
	t.Helper()
	if res.Status != http.StatusOK {
		t.Fatalf("status = %d, want 200: %s", res.Status, res.Raw)
	}
	if got := res.code(t); got != "UNAUTHENTICATED" {
		t.Fatalf("code = %q, want UNAUTHENTICATED: %s", got, res.Raw)
	}
	if got := res.ext("reason"); got != reason {
		t.Fatalf("reason = %q, want %q: %s", got, reason, res.Raw)
	}
	if me, ok := res.Data["me"]; ok && string(me) != "null" {
		t.Fatalf("data.me = %s, want null", me)
	}
}
