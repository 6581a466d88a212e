package api_test

// The security suite: attacks on the properties of docs/security.md (the
// project's threat model) against the real server over HTTP. Each property is covered here or, where noted, by a test
// in another file of this package:
//
//	JWT: alg none, other HMAC sizes, RS/ES, tampering, splicing, segments  TestTokenAttacks
//	JWT: exp, nbf, iss, aud missing or wrong                               TestTokenAttacks
//	JWT: kid/jku/x5u/jwk never select keys                                 TestTokenAttacks (+ token package)
//	refresh token as access token and vice versa                           TestRefreshFailures
//	token of a deleted user                                                TestMeOfDeletedUser
//	issued claims are the minimum                                          token package TestIssue*
//	oversized or malformed Authorization headers                           TestTokenAttacks, server_test.go
//	password length window, blocklist, identity                            TestRegisterValidation
//	over 72 bytes at registration and login                                TestLoginEnforcesBcryptLimit
//	huge password rejected before hashing                                  TestHugePasswordsCostNoHashing
//	unknown user vs wrong password: bytes and timing                       TestLoginFailuresAreIdentical, TestLoginTimingDoesNotRevealAccounts
//	failed logins counted per account, shared, never a permanent lockout   TestBruteForceFromRotatingIPs, TestThrottleSharedByInstances
//	per-IP limits; forwarded header only from trusted proxies              TestSpoofedForwardedFor, TestClientIP
//	one request cannot buy many password checks                            TestAliasedLoginsCheckNoPassword
//	bcrypt bounded; other users keep being served                          TestLoginFloodKeepsMeAnswering
//	GET queries only; no form/multipart/text-plain                         TestGETRunsQueriesOnly, TestNonJSONBodiesExecuteNothing
//	introspection, suggestions, Playground off in production               TestIntrospectionAndSuggestions, config tests
//	depth, alias, complexity, token limits                                 TestDocumentLimits
//	fragment bombs refused in linear time; others keep being served        TestFragmentBombsRefusedQuickly, TestFragmentBombsKeepServing (+ graph FuzzDocumentLimits)
//	query cache bounded by bytes; long documents never cached              TestQueryCacheMemory (+ graph TestQueryCacheByteBound)
//	every path to a protected field hits @auth                             TestAuthOnEveryPath
//	errors carry no internals                                              TestDatabaseDown, TestRegisterDuplicateInAnotherCase, TestMalformedBodiesAreNotEchoed
//	body limit, header and slow-client timeouts                            TestBodyLimit, server_test.go TestSlowHeaders
//	CORS allow-list, nosniff, no-store, HSTS, TLS 1.2+                     TestCORS, TestResponseHeaders, tls_test.go TestTLS
//	concurrent registrations                                               TestConcurrentRegistrationsOfOneName
//	operator injection, regex, unknown fields                              TestRegisterRejectsMalformedInput, TestLoginWithRegexAndOperatorInput
//	database down, failures not counted, recovery when it returns          TestDatabaseDown, TestDatabaseComesBack
//	audit log of logins                                                    TestAuditLog
//
// From the attack review of 2026-11-30 (race_test.go unless noted):
//
//	a login in flight survives changePassword / disableUser               TestLoginInFlightDiesWithPasswordChange, TestLoginInFlightDiesWithDisable
//	one guess per lock window under parallel attempts; delays never shrink TestOneGuessPerLockWindow (+ auth TestParallelAttemptsGetOneGuessPerWindow)
//	the throttle links a username to its email                             throttle_test.go TestThrottleIsPerIdentifier
//	reversible identifier hashes                                           throttle_test.go TestIdentifierHashesAreKeyed
//	a revocation missed by other instances (skew, late writes)             TestRevocationSeenDespiteSkewedClock, TestDelayedRevocationIsSeen
//	revocation failing after a password change                             session_test.go TestChangePasswordRetriesRevocation
//	a tampered cursor                                                      users_test.go TestTamperedCursor
//	BOOTSTRAP_ADMINS granting at every start                               admin_test.go TestAdminBootstrap (+ auth TestBootstrapAdminsOnlyWithoutAnAdmin)
//	user cache storing a read older than an invalidation                   auth TestUserCacheDropsReadsOlderThanAnInvalidation
//	unlimited IPv6 buckets                                                 auth TestIPv6ClientsShareTheir64, TestIPLimiterIsBounded
//	atomicity on the embedded database (inserts only)                      mongodb TestThrottleReserveHasOneWinner, TestRevocationLogNumbersAreUniqueAndGapless

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgql/server/internal/auth"
)

// loginFrom sends a login as if relayed by a proxy for client ip.
func (e *env) loginFrom(t *testing.T, ip, username, password string) gqlResponse {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": loginMutation, "variables": map[string]any{
		"input": map[string]any{"username": username, "password": password}}})
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/query", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", ip)
	return e.send(t, req)
}

func retryAfter(t *testing.T, res gqlResponse) int {
	t.Helper()
	v, ok := res.Errors[0].Extensions["retryAfter"].(float64)
	if !ok || v < 1 {
		t.Fatalf("retryAfter = %v: %s", res.Errors[0].Extensions["retryAfter"], res.Raw)
	}
	return int(v)
}

func wantRateLimited(t *testing.T, res gqlResponse, reason string) int {
	t.Helper()
	if got := res.code(t); got != "RATE_LIMITED" {
		t.Fatalf("code = %q, want RATE_LIMITED: %s", got, res.Raw)
	}
	if got := res.ext("reason"); got != reason {
		t.Fatalf("reason = %q, want %q", got, reason)
	}
	return retryAfter(t, res)
}

func TestBruteForceFromRotatingIPs(t *testing.T) {
	o := defaultOptions()
	o.cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	o.cfg.LoginRate = auth.Rate{N: 3, Per: time.Minute} // rotating IPs walk around this
	e := newEnvWith(t, o)
	e.mustRegister(t, "alice", "alice@example.com")

	attack := func(username string) (lockedAfter int, last gqlResponse) {
		for i := 1; i <= 10; i++ {
			res := e.loginFrom(t, fmt.Sprintf("198.51.100.%d", i), username, "wrong password!")
			if res.code(t) == "RATE_LIMITED" {
				return i, res
			}
			if res.code(t) != "INVALID_CREDENTIALS" {
				t.Fatalf("attempt %d: %s", i, res.Raw)
			}
		}
		t.Fatalf("%s was never throttled", username)
		return 0, gqlResponse{}
	}
	real, realRes := attack("alice")
	ghost, ghostRes := attack("ghost-account")
	if real != 6 || ghost != 6 {
		t.Errorf("throttled at attempt %d (existing) and %d (unknown), want 6 for both", real, ghost)
	}
	if realRes.Raw != ghostRes.Raw {
		t.Errorf("throttled answers differ:\n%s\n%s", realRes.Raw, ghostRes.Raw)
	}
	wantRateLimited(t, realRes, "account")

	// While locked, even the right password is refused, without hashing.
	checks := e.svc.PasswordChecks()
	wantRateLimited(t, e.loginFrom(t, "203.0.113.1", "alice", testPassword), "account")
	wantRateLimited(t, e.loginFrom(t, "203.0.113.2", "ALICE", testPassword), "account") // the same identifier in another case
	if n := e.svc.PasswordChecks() - checks; n != 0 {
		t.Errorf("%d password checks while locked, want 0", n)
	}

	// Delays grow: the next failure after the lock doubles it.
	e.clock.Advance(2 * time.Second)
	if got := e.loginFrom(t, "203.0.113.3", "alice", "wrong again!").code(t); got != "INVALID_CREDENTIALS" {
		t.Fatalf("after the first delay: %s", got)
	}
	if wait := wantRateLimited(t, e.loginFrom(t, "203.0.113.4", "alice", testPassword), "account"); wait != 2 {
		t.Errorf("second delay = %ds, want 2", wait)
	}

	// Never a permanent lockout: after the delay the owner gets in, and the
	// count starts over.
	e.clock.Advance(3 * time.Second)
	payload(t, e.loginFrom(t, "203.0.113.5", "alice", testPassword), "login")
	if got := e.loginFrom(t, "203.0.113.6", "alice", "one typo").code(t); got != "INVALID_CREDENTIALS" {
		t.Errorf("after a success, one failure is %s, want INVALID_CREDENTIALS", got)
	}
	// The cap bounds the wait however long the attack goes on.
	for range 30 {
		e.clock.Advance(16 * time.Minute)
		e.loginFrom(t, "203.0.113.7", "ghost-account", "wrong password!")
	}
	res := e.loginFrom(t, "203.0.113.8", "ghost-account", "wrong password!")
	if wait := wantRateLimited(t, res, "account"); wait > 15*60 {
		t.Errorf("delay %ds exceeds the 15 minute cap", wait)
	}
}

func TestSpoofedForwardedFor(t *testing.T) {
	o := defaultOptions()
	o.cfg.LoginRate = auth.Rate{N: 3, Per: time.Minute}
	e := newEnvWith(t, o) // no trusted proxies: the header is ignored
	for i := range 3 {
		if got := e.loginFrom(t, fmt.Sprintf("198.51.100.%d", i), "nobody", "wrong password!").code(t); got != "INVALID_CREDENTIALS" {
			t.Fatalf("attempt %d: %s", i, got)
		}
	}
	res := e.loginFrom(t, "198.51.100.99", "nobody", "wrong password!")
	if wait := wantRateLimited(t, res, "ip"); wait > 20 {
		t.Errorf("retryAfter = %d, want about 20s (3 per minute)", wait)
	}
	// The bucket refills with time.
	e.clock.Advance(21 * time.Second)
	if got := e.loginFrom(t, "198.51.100.100", "nobody", "wrong password!").code(t); got != "INVALID_CREDENTIALS" {
		t.Errorf("after refill: %s", got)
	}

	t.Run("register and refresh have buckets too", func(t *testing.T) {
		o := defaultOptions()
		o.cfg.RegisterRate = auth.Rate{N: 1, Per: time.Hour}
		o.cfg.RefreshRate = auth.Rate{N: 1, Per: time.Hour}
		e := newEnvWith(t, o)
		p := e.mustRegister(t, "first", "first@example.com")
		wantRateLimited(t, e.register(t, "second", "second@example.com", testPassword), "ip")
		payload(t, e.refresh(t, "", p.RefreshToken), "refreshToken")
		wantRateLimited(t, e.refresh(t, "", p.RefreshToken), "ip")
		if n := e.countUsers(t); n != 1 {
			t.Errorf("%d users, want 1", n)
		}
	})
}

func TestAliasedLoginsCheckNoPassword(t *testing.T) {
	e := newEnv(t)
	e.mustRegister(t, "bob", "bob@example.com")
	var b strings.Builder
	b.WriteString("mutation {")
	for i := range 100 {
		fmt.Fprintf(&b, ` a%d: login(input: {username: "bob", password: "guess-%03d-xyz"}) { accessToken }`, i, i)
	}
	b.WriteString(" }")
	docs := map[string]string{
		"100 aliased logins": b.String(),
		"two logins":         `mutation { a: login(input: {username: "bob", password: "guess-one"}) { accessToken } b: login(input: {username: "bob", password: "guess-two"}) { accessToken } }`,
		"login and register": `mutation { login(input: {username: "bob", password: "guess-one"}) { accessToken } register(input: {username: "eve", email: "eve@example.com", password: "correct horse battery"}) { accessToken } }`,
		"via fragments":      `mutation { ...A ...B } fragment A on Mutation { login(input: {username: "bob", password: "g1-guess"}) { accessToken } } fragment B on Mutation { x: login(input: {username: "bob", password: "g2-guess"}) { accessToken } }`,
	}
	for name, doc := range docs {
		t.Run(name, func(t *testing.T) {
			checks := e.svc.PasswordChecks()
			res := e.post(t, "", doc, nil)
			code := res.code(t)
			if code != "PASSWORD_FIELD_LIMIT_EXCEEDED" && code != "ALIAS_LIMIT_EXCEEDED" {
				t.Errorf("code = %q: %.300s", code, res.Raw)
			}
			if n := e.svc.PasswordChecks() - checks; n != 0 {
				t.Errorf("%d password checks ran, want 0", n)
			}
			if strings.Contains(res.Raw, "accessToken\":\"") {
				t.Errorf("a token was issued")
			}
		})
	}
	if n := e.countUsers(t); n != 1 {
		t.Errorf("%d users, want 1", n)
	}
}

func TestHugePasswordsCostNoHashing(t *testing.T) {
	e := newEnv(t)
	checks := e.svc.PasswordChecks()
	huge := strings.Repeat("x", 500<<10)
	if got := e.register(t, "henry", "henry@example.com", huge).code(t); got != "BAD_USER_INPUT" {
		t.Errorf("register: %s", got)
	}
	if got := e.login(t, "", "henry", huge).code(t); got != "INVALID_CREDENTIALS" {
		t.Errorf("login: %s", got)
	}
	if n := e.svc.PasswordChecks() - checks; n != 0 {
		t.Errorf("%d password checks for oversized passwords, want 0", n)
	}
}

// A login flood larger than the hashing capacity: auth mutations beyond the
// bound fail fast as busy, nothing fails otherwise, and me keeps answering.
// (Latency under the flood is measured by make bench, not here.)
func TestLoginFloodKeepsMeAnswering(t *testing.T) {
	o := defaultOptions()
	o.cfg.BcryptCost = 10
	o.cfg.HashConcurrency = 1
	o.cfg.HashQueueTimeout = 20 * time.Millisecond
	e := newEnvWith(t, o)
	p := e.mustRegister(t, "flood", "flood@example.com")

	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[string]int{}
	stop := make(chan struct{})
	for i := range 8 {
		wg.Go(func() {
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				// Distinct unknown accounts, so the per-account throttle stays out of it.
				res := e.login(t, "", fmt.Sprintf("flooder-%d-%d", i, j), "wrong password!")
				mu.Lock()
				codes[res.code(t)+"/"+res.ext("reason")]++
				mu.Unlock()
			}
		})
	}
	var meOK, meFail int
	for range 40 {
		if e.meWorks(t, p.AccessToken) {
			meOK++
		} else {
			meFail++
		}
	}
	close(stop)
	wg.Wait()
	if meFail != 0 {
		t.Errorf("me failed %d of 40 times during the flood", meFail)
	}
	for c := range codes {
		if c != "INVALID_CREDENTIALS/" && c != "RATE_LIMITED/busy" {
			t.Errorf("flood got %s", c)
		}
	}
	if codes["RATE_LIMITED/busy"] == 0 {
		t.Errorf("no login was turned away by the hashing bound: %v", codes)
	}
	t.Logf("flood outcomes: %v; me answered %d times", codes, meOK)
}
