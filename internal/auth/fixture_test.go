package auth

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// fakeTokens issues "userID|sessionID" tokens: the domain only needs them to
// carry the session.
type fakeTokens struct{ now func() time.Time }

func (f fakeTokens) Issue(s Subject) (AccessToken, error) {
	return AccessToken{Value: s.UserID + "|" + s.SessionID, ExpiresAt: f.now().Add(f.TTL()), TTL: f.TTL()}, nil
}

func (f fakeTokens) Verify(raw string) (Claims, error) {
	u, s, ok := strings.Cut(raw, "|")
	if !ok {
		return Claims{}, ErrTokenInvalid
	}
	return Claims{UserID: u, SessionID: s}, nil
}

func (fakeTokens) TTL() time.Duration    { return 15 * time.Minute }
func (fakeTokens) Leeway() time.Duration { return 30 * time.Second }

// testClock is a settable clock.
type testClock struct{ ns atomic.Int64 }

func newTestClock() *testClock {
	c := &testClock{}
	c.ns.Store(time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *testClock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *testClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

type fixture struct {
	svc      *Service
	users    *memUsers
	sessions *memSessions
	throttle *memThrottles
	log      *memLog
	tokens   *memEmailTokens
	markers  *memMarkers
	outbox   *memOutbox
	clock    *testClock
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{users: newMemUsers(), sessions: newMemSessions(), throttle: newMemThrottles(), log: &memLog{},
		tokens: newMemEmailTokens(), markers: newMemMarkers(), outbox: &memOutbox{}, clock: newTestClock()}
	f.svc = f.service(t, nil)
	return f
}

// service returns a Service on f's stores: another instance. wrap, when not
// nil, may change its stores and settings first.
func (f *fixture) service(t *testing.T, wrap func(*Stores, *Settings)) *Service {
	t.Helper()
	st := Stores{Users: f.users, Sessions: f.sessions, Throttles: f.throttle, Revocations: f.log,
		EmailTokens: f.tokens, Markers: f.markers, Outbox: f.outbox}
	set := Settings{
		BcryptCost: bcrypt.MinCost, RefreshTTL: 30 * 24 * time.Hour, ReuseInterval: 10 * time.Second,
		Key: []byte("unit-test-key-0123456789abcdef-012345"), UserCacheTTL: 2 * time.Second,
		Limits: Limits{ThrottleAfter: 5, ThrottleBase: time.Second, ThrottleMax: 15 * time.Minute,
			HashConcurrency: 4, HashQueueTimeout: 10 * time.Second},
		Audit: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:   f.clock.Now,
		Mail: MailSettings{AppURL: "https://app.example", VerificationTTL: 24 * time.Hour, ResetTTL: time.Hour,
			ChangeTTL: time.Hour, AddressInterval: time.Minute},
	}
	if wrap != nil {
		wrap(&st, &set)
	}
	svc, err := NewService(st, fakeTokens{f.clock.Now}, set)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

const fixturePassword = "correct horse battery"

func (f *fixture) register(t *testing.T, name string) *Result {
	t.Helper()
	res, err := f.svc.Register(t.Context(), name, name+"@example.com", fixturePassword)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// as returns a context authenticated with res's access token.
func (f *fixture) as(t *testing.T, res *Result) context.Context {
	t.Helper()
	c, err := f.svc.VerifyAccessToken(res.AccessToken.Value)
	if err != nil {
		t.Fatal(err)
	}
	return WithClaims(t.Context(), c)
}
