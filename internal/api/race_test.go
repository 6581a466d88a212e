package api_test

// Attacks from the review of 2026-11-30 (issue 10): races around credential
// changes, the login throttle under parallel attempts, and revocations missed
// by other instances. Every test here runs on the embedded database, which
// does not isolate updates: the properties rest on inserts against unique keys
// only. The review's other findings are tested with their theme: what the
// throttle and its hashes reveal in throttle_test.go, a revocation failing
// after a password change in session_test.go, a tampered cursor in
// users_test.go.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgql/server/internal/auth"
)

// postAsync is post for goroutines other than the test's: it reports
// transport failures instead of stopping the test.
func (e *env) postAsync(bearer, query string, vars map[string]any) (gqlResponse, error) {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		return gqlResponse{}, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return gqlResponse{}, err
	}
	out := gqlResponse{Status: res.StatusCode, Raw: string(raw)}
	return out, json.Unmarshal(raw, &out)
}

func loginVars(username, password string) map[string]any {
	return map[string]any{"input": map[string]any{"username": username, "password": password}}
}

// holdUsers pauses the first user read after arm, once it has read, until
// release: a login is then held between reading the password hash and
// creating its session.
type holdUsers struct {
	auth.UserStore
	mu      sync.Mutex
	armed   bool
	reached chan struct{}
	release chan struct{}
}

func (h *holdUsers) arm() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.armed, h.reached, h.release = true, make(chan struct{}), make(chan struct{})
}

func (h *holdUsers) hold() {
	h.mu.Lock()
	if !h.armed {
		h.mu.Unlock()
		return
	}
	h.armed = false
	reached, release := h.reached, h.release
	h.mu.Unlock()
	close(reached)
	<-release
}

func (h *holdUsers) ByID(ctx context.Context, id string) (*auth.User, error) {
	u, err := h.UserStore.ByID(ctx, id)
	h.hold()
	return u, err
}

func (h *holdUsers) ByUsernameKey(ctx context.Context, key string) (*auth.User, error) {
	u, err := h.UserStore.ByUsernameKey(ctx, key)
	h.hold()
	return u, err
}

func (h *holdUsers) ByEmailKey(ctx context.Context, key string) (*auth.User, error) {
	u, err := h.UserStore.ByEmailKey(ctx, key)
	h.hold()
	return u, err
}

// racingLogin starts a login of username that is held after reading the
// user; change runs while it is held; then the login goes on.
func racingLogin(t *testing.T, e *env, hold *holdUsers, username, password string, change func()) gqlResponse {
	t.Helper()
	hold.arm()
	done := make(chan gqlResponse, 1)
	go func() {
		res, err := e.postAsync("", loginMutation, loginVars(username, password))
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	select {
	case <-hold.reached:
	case <-time.After(10 * time.Second):
		t.Fatal("the login never read the user")
	}
	change()
	close(hold.release)
	return <-done
}

// wantNoUsableSession asserts that a login raced by a credential change left
// nothing usable: it failed with one of codes, or its tokens are dead on
// every instance within the revocation bound.
func wantNoUsableSession(t *testing.T, res gqlResponse, instances []*env, codes ...string) {
	t.Helper()
	if len(res.Errors) > 0 {
		got := res.code(t)
		for _, c := range codes {
			if got == c {
				return
			}
		}
		t.Fatalf("racing login: code %s, want one of %v: %s", got, codes, res.Raw)
	}
	p := payload(t, res, "login")
	for i, e := range instances {
		deadline := time.Now().Add(3 * time.Second)
		for len(e.post(t, p.AccessToken, meQuery, nil).Errors) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("instance %d still accepts the access token of a login that raced the change", i)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if res := instances[0].post(t, "", refreshMutation, map[string]any{"token": p.RefreshToken}); len(res.Errors) == 0 {
		t.Fatalf("the raced login's refresh token still works: %s", res.Raw)
	}
}

// A login that read the old password hash before changePassword wrote the new
// one must not leave a session behind (it did 3 times out of 4 before).
func TestLoginInFlightDiesWithPasswordChange(t *testing.T) {
	hold := &holdUsers{}
	o := defaultOptions()
	o.wrapUsers = func(s auth.UserStore) auth.UserStore { hold.UserStore = s; return hold }
	a := newEnvWith(t, o)
	o2 := defaultOptions()
	o2.db = a.db
	b := newEnvWith(t, o2)
	alice := a.mustRegister(t, "alice", "alice@example.com")
	const next = "a brand new passphrase"
	var changed authPayload
	res := racingLogin(t, a, hold, "alice", testPassword, func() {
		changed = payload(t, a.post(t, alice.AccessToken,
			`mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) { `+payloadFields+` } }`,
			map[string]any{"c": testPassword, "n": next}), "changePassword")
	})
	wantNoUsableSession(t, res, []*env{a, b}, "INVALID_CREDENTIALS")
	var list []struct{ Current bool }
	r := a.post(t, changed.AccessToken, `{ sessions { id current } }`, nil)
	if err := json.Unmarshal(r.Data["sessions"], &list); err != nil || len(list) != 1 || !list[0].Current {
		t.Fatalf("sessions after the change = %s, want only the one that changed the password", r.Raw)
	}
	// The new password works; the old one does not.
	payload(t, a.login(t, "", "alice", next), "login")
	if got := a.login(t, "", "alice", testPassword).code(t); got != "INVALID_CREDENTIALS" {
		t.Fatalf("old password: %s", got)
	}
}

// disableUser racing a login likewise leaves no usable session.
func TestLoginInFlightDiesWithDisable(t *testing.T) {
	hold := &holdUsers{}
	o := defaultOptions()
	o.wrapUsers = func(s auth.UserStore) auth.UserStore { hold.UserStore = s; return hold }
	e := newEnvWith(t, o)
	e.mustRegister(t, "root", "root@example.com")
	e.grantAdmin(t, "root")
	admin := e.loginAs(t, "root")
	victim := e.mustRegister(t, "mallory", "mallory@example.com")
	res := racingLogin(t, e, hold, "mallory", testPassword, func() {
		r := e.post(t, admin.AccessToken, `mutation($id: ID!) { disableUser(id: $id) { disabled } }`, map[string]any{"id": victim.User.ID})
		if len(r.Errors) > 0 {
			t.Fatalf("disableUser: %s", r.Raw)
		}
	})
	wantNoUsableSession(t, res, []*env{e}, "FORBIDDEN", "INVALID_CREDENTIALS")
}

// After a lock window, parallel wrong logins get exactly one password check
// between them (8 gave 5 before), on the embedded database; and the delays
// announced never shrink (lock writes landed out of order before).
func TestOneGuessPerLockWindow(t *testing.T) {
	e := newEnv(t)
	e.mustRegister(t, "bob", "bob@example.com")
	for range 5 {
		if got := e.login(t, "", "bob", "wrong password!").code(t); got != "INVALID_CREDENTIALS" {
			t.Fatalf("first failures: %s", got)
		}
	}
	prev := wantRateLimited(t, e.login(t, "", "bob", "wrong password!"), "account")
	for _, n := range []int{8, 32, 8, 32} {
		e.clock.Advance(time.Duration(prev)*time.Second + 10*time.Millisecond) // the lock window has passed
		checks := e.svc.PasswordChecks()
		var wg sync.WaitGroup
		var invalid, limited atomic.Int32
		for range n {
			wg.Go(func() {
				res, err := e.postAsync("", loginMutation, loginVars("bob", "wrong password!"))
				if err != nil || len(res.Errors) == 0 {
					t.Errorf("parallel login: %v %s", err, res.Raw)
					return
				}
				switch c, _ := res.Errors[0].Extensions["code"].(string); c {
				case "INVALID_CREDENTIALS":
					invalid.Add(1)
				case "RATE_LIMITED":
					limited.Add(1)
				default:
					t.Errorf("parallel login: %s", res.Raw)
				}
			})
		}
		wg.Wait()
		if got := e.svc.PasswordChecks() - checks; invalid.Load() != 1 || got != 1 {
			t.Fatalf("%d parallel wrong logins after a lock window: %d INVALID_CREDENTIALS, %d password checks; want exactly 1",
				n, invalid.Load(), got)
		}
		wait := wantRateLimited(t, e.login(t, "", "bob", testPassword), "account")
		if wait < prev {
			t.Fatalf("delay shrank from %ds to %ds", prev, wait)
		}
		t.Logf("%d parallel: 1 checked, %d refused; next delay %ds", n, limited.Load(), wait)
		prev = wait
	}
}

// A revocation written with a clock far behind the others' (or landing late)
// is still seen by every instance: the log is read by sequence number, not by
// time (before, anything stamped over 10 s before the reader's last sync was
// never seen, and logout held on one instance only).
func TestRevocationSeenDespiteSkewedClock(t *testing.T) {
	a := newEnv(t)
	// 20 s behind: within the tokens' 30 s leeway, so a's verifier accepts
	// b's tokens, but beyond the 10 s a time-based sync looked back.
	a.clock.Advance(-20 * time.Second)
	o := defaultOptions()
	o.db = a.db
	b := newEnvWith(t, o)
	p := b.mustRegister(t, "alice", "alice@example.com")
	me(t, b.post(t, p.AccessToken, meQuery, nil))
	time.Sleep(300 * time.Millisecond) // b has synced since
	if res := a.post(t, p.AccessToken, `mutation { logout }`, nil); len(res.Errors) > 0 {
		t.Fatalf("logout on the skewed instance: %s", res.Raw)
	}
	waitRefused(t, b, p.AccessToken, 3*time.Second)
}

// delayedLog holds each Append for a while, like a write stuck behind a
// failover, while other instances keep writing.
type delayedLog struct {
	auth.RevocationLog
	delay time.Duration
}

func (d delayedLog) Append(ctx context.Context, e auth.RevocationEntry) (int64, error) {
	time.Sleep(d.delay)
	e.At = e.At.Add(-time.Minute)
	return d.RevocationLog.Append(ctx, e) // and stamped long before it lands
}

func TestDelayedRevocationIsSeen(t *testing.T) {
	o := defaultOptions()
	o.wrapLog = func(l auth.RevocationLog) auth.RevocationLog { return delayedLog{l, 1500 * time.Millisecond} }
	slow := newEnvWith(t, o)
	o = defaultOptions()
	o.db = slow.db
	fast := newEnvWith(t, o)
	reader := newEnvWith(t, o)
	p1 := fast.mustRegister(t, "alice", "alice@example.com")
	p2 := fast.mustRegister(t, "bob", "bob@example.com")
	done := make(chan error, 1)
	go func() {
		res, err := slow.postAsync(p1.AccessToken, `mutation { logout }`, nil)
		if err == nil && len(res.Errors) > 0 {
			err = errors.New(res.Raw)
		}
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	fast.post(t, p2.AccessToken, `mutation { logout }`, nil) // written, and read, while the slow one waits
	waitRefused(t, reader, p2.AccessToken, 3*time.Second)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	waitRefused(t, reader, p1.AccessToken, 3*time.Second)
}

func waitRefused(t *testing.T, e *env, access string, within time.Duration) {
	t.Helper()
	start := time.Now()
	for {
		res := e.post(t, access, meQuery, nil)
		if len(res.Errors) > 0 {
			wantUnauthenticated(t, res, "session_revoked")
			t.Logf("refused after %v", time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Since(start) > within {
			t.Fatalf("access token still accepted %v after its session ended", within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
