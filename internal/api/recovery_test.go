package api_test

// Issue 12, over real HTTP, a real database and a real SMTP server:
// verification, password reset, and what an attacker tries against their
// links (replay, kind confusion, expiry, superseded links, concurrent use,
// enumeration, mail bombing).

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/authgql/server/internal/auth"
)

// Registration mails a verification link; the link, opened with no access
// token, verifies the address.
func TestRegistrationMailsAVerificationLink(t *testing.T) {
	e := newEnv(t)
	reg := e.mustRegister(t, "vera", "vera@example.com")
	m := waitMail(t, e.smtp, "vera@example.com", subjectVerify, 1)
	if len(m.To) != 1 || m.Header.Get("To") == "" || !strings.Contains(m.Header.Get("To"), "vera@example.com") {
		t.Errorf("envelope To %q, header To %q: want vera@example.com only", m.To, m.Header.Get("To"))
	}
	link := regexp.MustCompile(`https://app\.example\.test/verify-email\?token=[A-Za-z0-9_-]{43}\b`)
	if !link.MatchString(m.Text) || !link.MatchString(m.HTML) {
		t.Fatalf("no verification link in the text and HTML:\n%s\n%s", m.Text, m.HTML)
	}
	tok := tokenIn(t, m, "/verify-email")
	if got := e.meAccount(t, reg.AccessToken); got.EmailVerified {
		t.Fatal("emailVerified is true before the link was used")
	}

	got := accountIn(t, e.verifyEmail(t, tok), "verifyEmail") // no Authorization header
	want := account{ID: reg.User.ID, Username: "vera", Email: "vera@example.com", EmailVerified: true}
	if got != want {
		t.Fatalf("verifyEmail = %+v, want %+v", got, want)
	}
	if !e.meAccount(t, reg.AccessToken).EmailVerified {
		t.Fatal("me.emailVerified is false after verifyEmail")
	}
	// Already verified: true, and nothing is sent.
	if !boolIn(t, e.post(t, reg.AccessToken, `mutation { requestEmailVerification }`, nil), "requestEmailVerification") {
		t.Fatal("requestEmailVerification answered false")
	}
	quiet(t, e.smtp, 1)
	// The link is not left in the database.
	if dump := e.dump(t); strings.Contains(dump, tok) {
		t.Fatalf("the raw token is stored:\n%s", dump)
	}
}

// Access tokens carry the standard email_verified claim as of issuance
// (issue 12: "access tokens carry the standard email_verified claim").
func TestAccessTokenEmailVerifiedClaim(t *testing.T) {
	e := newEnv(t)
	reg := e.mustRegister(t, "clara", "clara@example.com")
	before := jwtClaims(t, reg.AccessToken)
	if v, ok := before["email_verified"]; !ok || v != false {
		t.Fatalf("access token before verification: email_verified = %v (present %v), want false: %v", v, ok, before)
	}
	accountIn(t, e.verifyEmail(t, e.verifyToken(t, "clara@example.com", 1)), "verifyEmail")

	login := e.loginAs(t, "clara")
	if v := jwtClaims(t, login.AccessToken)["email_verified"]; v != true {
		t.Errorf("access token of a login after verification: email_verified = %v, want true", v)
	}
	refreshed := payload(t, e.refresh(t, "", reg.RefreshToken), "refreshToken")
	if v := jwtClaims(t, refreshed.AccessToken)["email_verified"]; v != true {
		t.Errorf("access token of a refresh after verification: email_verified = %v, want true", v)
	}
	// As of issuance: the old token still says false, and still works.
	if v := jwtClaims(t, reg.AccessToken)["email_verified"]; v != false {
		t.Errorf("token issued before verification changed: %v", v)
	}
}

// requestEmailVerification sends at most one mail per address interval.
func TestRequestEmailVerification(t *testing.T) {
	e := newEnv(t) // MAIL_ADDRESS_INTERVAL: the default minute
	reg := e.mustRegister(t, "ivan", "ivan@example.com")
	first := e.verifyToken(t, "ivan@example.com", 1)
	for range 3 {
		if !boolIn(t, e.post(t, reg.AccessToken, `mutation { requestEmailVerification }`, nil), "requestEmailVerification") {
			t.Fatal("requestEmailVerification answered false")
		}
	}
	quiet(t, e.smtp, 1)
	if got := e.post(t, "", `mutation { requestEmailVerification }`, nil); got.code(t) != "UNAUTHENTICATED" {
		t.Fatalf("anonymous requestEmailVerification: %s", got.Raw)
	}
	e.clock.Advance(61 * time.Second)
	boolIn(t, e.post(t, reg.AccessToken, `mutation { requestEmailVerification }`, nil), "requestEmailVerification")
	second := e.verifyToken(t, "ivan@example.com", 2)
	if second == first {
		t.Fatal("the second verification mail carries the first token")
	}
	accountIn(t, e.verifyEmail(t, second), "verifyEmail")
}

func TestEmailTokenRejections(t *testing.T) {
	o := defaultOptions()
	o.cfg.MailAddressInterval = 0
	e := newEnvWith(t, o)
	reg := e.mustRegister(t, "kate", "kate@example.com")
	verify := e.verifyToken(t, "kate@example.com", 1)
	reset := e.resetToken(t, "kate@example.com", 1)
	const newAddr = "kate.new@example.com"
	if !boolIn(t, e.post(t, reg.AccessToken, changeEmailMutation, map[string]any{"e": newAddr, "p": testPassword}), "changeEmail") {
		t.Fatal("changeEmail answered false")
	}
	change := tokenIn(t, waitMail(t, e.smtp, newAddr, subjectConfirm, 1), "/confirm-email")

	t.Run("malformed and unknown", func(t *testing.T) {
		for name, tok := range map[string]string{
			"empty":            "",
			"garbage":          "garbage",
			"a JWT":            reg.AccessToken,
			"a refresh token":  reg.RefreshToken,
			"too short":        verify[:42],
			"too long":         verify + "A",
			"padded":           verify + "=",
			"standard base64":  strings.NewReplacer("-", "+", "_", "/").Replace(verify) + "+/",
			"bad character":    verify[:42] + "!",
			"whitespace":       " " + verify,
			"huge":             strings.Repeat("A", 64<<10),
			"random":           randomToken(t),
			"the token's hash": strings.Repeat("ab", 32),
		} {
			t.Run(name, func(t *testing.T) {
				wantEmailTokenError(t, e.verifyEmail(t, tok), "unknown")
				wantEmailTokenError(t, e.resetPassword(t, tok, "a brand new passphrase"), "unknown")
				wantEmailTokenError(t, e.confirmEmail(t, tok), "unknown")
			})
		}
	})

	t.Run("kind confusion", func(t *testing.T) {
		wantEmailTokenError(t, e.verifyEmail(t, reset), "unknown")
		wantEmailTokenError(t, e.confirmEmail(t, reset), "unknown")
		wantEmailTokenError(t, e.resetPassword(t, verify, "a brand new passphrase"), "unknown")
		wantEmailTokenError(t, e.confirmEmail(t, verify), "unknown")
		wantEmailTokenError(t, e.verifyEmail(t, change), "unknown")
		wantEmailTokenError(t, e.resetPassword(t, change, "a brand new passphrase"), "unknown")
		// Nothing was consumed or changed by the wrong uses.
		if a := e.meAccount(t, reg.AccessToken); a.EmailVerified || a.Email != "kate@example.com" {
			t.Fatalf("after tokens of other kinds: %+v", a)
		}
		payload(t, e.login(t, "", "kate", testPassword), "login")
	})

	t.Run("used", func(t *testing.T) {
		accountIn(t, e.verifyEmail(t, verify), "verifyEmail")
		wantEmailTokenError(t, e.verifyEmail(t, verify), "used")
		// Used on another instance too: a marker in the database, not memory.
		o2 := defaultOptions()
		o2.db, o2.smtp = e.db, e.smtp
		b := newEnvWith(t, o2)
		wantEmailTokenError(t, b.verifyEmail(t, verify), "used")
	})
}

// Links expire after their lifetime, judged by the service's clock.
func TestEmailTokensExpire(t *testing.T) {
	for _, tc := range []struct {
		name string
		ttl  time.Duration // the default lifetime
		use  func(e *env, t *testing.T, tok string) gqlResponse
		make func(e *env, t *testing.T, p authPayload) string
	}{
		{"verification", 24 * time.Hour,
			func(e *env, t *testing.T, tok string) gqlResponse { return e.verifyEmail(t, tok) },
			func(e *env, t *testing.T, p authPayload) string { return e.verifyToken(t, p.User.Email, 1) }},
		{"reset", time.Hour,
			func(e *env, t *testing.T, tok string) gqlResponse {
				return e.resetPassword(t, tok, "a brand new passphrase")
			},
			func(e *env, t *testing.T, p authPayload) string { return e.resetToken(t, p.User.Email, 1) }},
		{"email change", time.Hour,
			func(e *env, t *testing.T, tok string) gqlResponse { return e.confirmEmail(t, tok) },
			func(e *env, t *testing.T, p authPayload) string {
				boolIn(t, e.post(t, p.AccessToken, changeEmailMutation, map[string]any{"e": "moved@example.com", "p": testPassword}), "changeEmail")
				return tokenIn(t, waitMail(t, e.smtp, "moved@example.com", subjectConfirm, 1), "/confirm-email")
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			p := e.mustRegister(t, "eli", "eli@example.com")
			tok := tc.make(e, t, p)
			e.clock.Advance(tc.ttl + time.Minute)
			wantEmailTokenError(t, tc.use(e, t, tok), "expired")
			// Nothing changed.
			a := accountIn(t, e.post(t, e.loginAs(t, "eli").AccessToken, meAccountQuery, nil), "me")
			if a.EmailVerified || a.Email != "eli@example.com" {
				t.Fatalf("an expired link changed the account: %+v", a)
			}
		})
	}
}

// requestPasswordReset answers the same whether or not an account has the
// address; only the account's address gets a mail.
func TestPasswordResetRequestDoesNotTellAccountsApart(t *testing.T) {
	e := newEnv(t)
	e.mustRegister(t, "kim", "kim@example.com")
	waitMail(t, e.smtp, "kim@example.com", subjectVerify, 1)

	known := e.requestReset(t, "kim@example.com")
	unknown := e.requestReset(t, "nobody@example.com")
	if !boolIn(t, known, "requestPasswordReset") {
		t.Fatal("requestPasswordReset answered false")
	}
	if known.Status != unknown.Status || known.Raw != unknown.Raw {
		t.Fatalf("answers differ:\n%d %s\n%d %s", known.Status, known.Raw, unknown.Status, unknown.Raw)
	}
	for _, h := range []string{"Content-Type", "Content-Length", "Cache-Control", "X-Content-Type-Options", "Set-Cookie"} {
		if known.Header.Get(h) != unknown.Header.Get(h) {
			t.Errorf("header %s: %q for a known address, %q for an unknown one", h, known.Header.Get(h), unknown.Header.Get(h))
		}
	}
	m := waitMail(t, e.smtp, "kim@example.com", subjectReset, 1)
	tok := tokenIn(t, m, "/reset-password")
	quiet(t, e.smtp, 2) // the verification mail and this one: nothing to nobody@
	if got := mailsTo(e.smtp, "nobody@example.com", subjectReset); len(got) != 0 {
		t.Fatalf("a reset mail went to an unknown address")
	}

	// Audited with a hash of the address, never the address.
	reqs := e.auditLines(t, "password_reset_requested")
	if len(reqs) != 2 {
		t.Fatalf("%d password_reset_requested events, want 2", len(reqs))
	}
	hashes := map[string]bool{}
	for _, r := range reqs {
		h, _ := r["address_hash"].(string)
		if len(h) < 16 {
			t.Errorf("password_reset_requested without an address_hash: %v", r)
		}
		hashes[h] = true
		if _, ok := r["user_id"]; ok {
			t.Errorf("the request event tells whether the address has an account: %v", r)
		}
	}
	if len(hashes) != 2 {
		t.Errorf("the two addresses have one hash: %v", reqs)
	}
	logs := e.logs.String()
	for _, secret := range []string{"nobody@example.com", "kim@example.com", tok} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log holds %q", secret)
		}
	}
	// Delivered: the outbox no longer holds the link, nor the unknown address.
	if out := e.docs(t, "mail_outbox", bson.D{}); len(out) != 0 {
		t.Errorf("mail_outbox after delivery: %v", out)
	}
	if dump := e.dump(t); strings.Contains(dump, tok) || strings.Contains(dump, "nobody@example.com") {
		t.Errorf("the database keeps the link or the unknown address:\n%s", dump)
	}

	t.Run("malformed address", func(t *testing.T) {
		for _, addr := range []string{"", "not an address", "kim@", "Kim <kim@example.com>", strings.Repeat("a", 300) + "@example.com"} {
			wantInputError(t, e.requestReset(t, addr), "email", "")
		}
		quiet(t, e.smtp, 2)
	})
}

// A reset asked for another spelling of the address goes to the account's
// address as stored, never to the address the requester typed.
func TestResetMailGoesToTheStoredAddress(t *testing.T) {
	o := defaultOptions()
	o.cfg.MailAddressInterval = 0
	e := newEnvWith(t, o)
	e.mustRegister(t, "lena", "lena@example.com")
	waitMail(t, e.smtp, "lena@example.com", subjectVerify, 1)
	asked := 0
	for _, typed := range []string{"LENA@EXAMPLE.COM", "Lena@Example.com", "ｌｅｎａ@example.com", " lena@example.com "} {
		res := e.requestReset(t, typed)
		if len(res.Errors) > 0 {
			wantInputError(t, res, "email", "")
			continue
		}
		asked++
		waitMail(t, e.smtp, "lena@example.com", subjectReset, asked)
	}
	quiet(t, e.smtp, 1+asked)
	for _, m := range e.smtp.Messages() {
		if len(m.To) != 1 || m.To[0] != "lena@example.com" {
			t.Errorf("a mail went to %q", m.To)
		}
	}
}

const newPassword = "a brand new passphrase"

// resetPassword: the policy applies before the link is consumed; then the
// password changes, every old session ends (on every instance, within the
// revocation bound), the address counts as verified and the account's failed
// logins are forgotten.
func TestResetPassword(t *testing.T) {
	o := defaultOptions()
	o.cfg.MailAddressInterval = 0
	a := newEnvWith(t, o)
	o2 := defaultOptions()
	o2.cfg.MailAddressInterval = 0
	o2.db, o2.smtp = a.db, a.smtp
	b := newEnvWith(t, o2)

	reg := a.mustRegister(t, "rosa", "rosa@example.com")
	other := a.loginAs(t, "rosa")
	for _, s := range []authPayload{reg, other} {
		if !b.meWorks(t, s.AccessToken) {
			t.Fatal("the second instance refuses a fresh session")
		}
	}
	// Throttle the account's logins.
	for range 5 {
		if got := a.login(t, "", "rosa", "wrong password!").code(t); got != "INVALID_CREDENTIALS" {
			t.Fatalf("failed login: %s", got)
		}
	}
	wantRateLimited(t, a.login(t, "", "rosa", testPassword), "account")
	hashBefore := a.passwordHash(t, reg.User.ID)

	tok := a.resetToken(t, "rosa@example.com", 1)

	// The policy applies, and a refused password consumes nothing.
	for _, bad := range []struct{ password, reason string }{
		{"short", "too_short"},
		{"", ""},
		{"rosa@example.com", ""},
		{strings.Repeat("x", 73), "too_long"},
	} {
		wantInputError(t, a.resetPassword(t, tok, bad.password), "newPassword", bad.reason)
	}
	if got := a.passwordHash(t, reg.User.ID); got != hashBefore {
		t.Fatal("a refused reset changed the password")
	}
	if !a.meWorks(t, reg.AccessToken) {
		t.Fatal("a refused reset ended the sessions")
	}

	p := payload(t, a.resetPassword(t, tok, newPassword), "resetPassword")
	if p.User.ID != reg.User.ID || p.TokenType != "Bearer" {
		t.Fatalf("resetPassword returned %+v", p)
	}
	if acc := a.meAccount(t, p.AccessToken); !acc.EmailVerified {
		t.Error("the address does not count as verified after a reset")
	}
	// The throttle was cleared: the new password logs in at once.
	payload(t, a.login(t, "", "rosa", newPassword), "login")
	if got := a.login(t, "", "rosa", testPassword).code(t); got != "INVALID_CREDENTIALS" {
		t.Fatalf("the old password: %s", got)
	}
	// Every old session is over: refresh tokens at once, access tokens on
	// this instance at once and on the other within the bound.
	for _, s := range []authPayload{reg, other} {
		if res := a.refresh(t, "", s.RefreshToken); res.code(t) != "INVALID_REFRESH_TOKEN" {
			t.Fatalf("an old refresh token after the reset: %s", res.Raw)
		}
		wantUnauthenticated(t, a.post(t, s.AccessToken, meQuery, nil), "session_revoked")
		waitRefused(t, b, s.AccessToken, 2*time.Second)
	}
	// The link is single use.
	wantEmailTokenError(t, a.resetPassword(t, tok, "another new passphrase"), "used")
	// The session the reset started survives its own revocation, everywhere.
	time.Sleep(2 * time.Second)
	for i, inst := range []*env{a, b} {
		if !inst.meWorks(t, p.AccessToken) {
			t.Fatalf("instance %d refuses the session the reset started", i)
		}
	}
	payload(t, a.refresh(t, "", p.RefreshToken), "refreshToken")
}

// passwordHash returns the stored hash of user id.
func (e *env) passwordHash(t *testing.T, id string) string {
	t.Helper()
	oid, err := bson.ObjectIDFromHex(id)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Hash []byte `bson:"password_hash"`
	}
	if err := e.db.Collection("users").FindOne(context.Background(), bson.D{{Key: "_id", Value: oid}}).Decode(&doc); err != nil {
		t.Fatalf("read user %s: %v", id, err)
	}
	return string(doc.Hash)
}

// A newer reset request makes older links unusable; so does a password
// change or a reset.
func TestResetLinksSuperseded(t *testing.T) {
	o := defaultOptions()
	o.cfg.MailAddressInterval = 0
	e := newEnvWith(t, o)
	e.mustRegister(t, "otto", "otto@example.com")

	t.Run("by a newer request", func(t *testing.T) {
		older := e.resetToken(t, "otto@example.com", 1)
		newer := e.resetToken(t, "otto@example.com", 2)
		wantEmailTokenError(t, e.resetPassword(t, older, newPassword), "expired")
		payload(t, e.login(t, "", "otto", testPassword), "login") // unchanged
		payload(t, e.resetPassword(t, newer, newPassword), "resetPassword")
	})
	t.Run("by changePassword", func(t *testing.T) {
		tok := e.resetToken(t, "otto@example.com", 3)
		p := payload(t, e.login(t, "", "otto", newPassword), "login")
		payload(t, e.post(t, p.AccessToken, changePasswordMutation, map[string]any{"c": newPassword, "n": "yet another passphrase"}), "changePassword")
		wantEmailTokenError(t, e.resetPassword(t, tok, "a passphrase of the attacker"), "expired")
		payload(t, e.login(t, "", "otto", "yet another passphrase"), "login")
	})
}

// Ten concurrent uses of one reset link: exactly one resets the password,
// the nine others are refused. (Which reason the losers get is pinned
// down by TestResetLinkRaceLoserSeesUsed.)
func TestConcurrentResetPassword(t *testing.T) {
	o := defaultOptions()
	o.cfg.MailAddressInterval = 0
	e := newEnvWith(t, o)
	e.mustRegister(t, "cora", "cora@example.com")
	for trial := 1; trial <= 5; trial++ {
		tok := e.resetToken(t, "cora@example.com", trial)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var won []string
		reasons := map[string]int{}
		for i := range 10 {
			pw := fmt.Sprintf("concurrent passphrase %d-%d", trial, i)
			wg.Go(func() {
				res, err := e.postAsync("", resetPasswordMutation, map[string]any{"t": tok, "p": pw})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					t.Errorf("resetPassword: %v", err)
				case len(res.Errors) == 0:
					won = append(won, pw)
				case res.Errors[0].Extensions["code"] == "INVALID_EMAIL_TOKEN":
					reason, _ := res.Errors[0].Extensions["reason"].(string)
					reasons[reason]++
				default:
					t.Errorf("resetPassword: %s", res.Raw)
				}
			})
		}
		wg.Wait()
		if len(won) != 1 || reasons["used"]+reasons["expired"] != 9 {
			t.Fatalf("trial %d: %d succeeded, refused: %v; want 1 success and 9 refusals", trial, len(won), reasons)
		}
		t.Logf("trial %d: refused %v", trial, reasons)
		payload(t, e.login(t, "", "cora", won[0]), "login")
		for _, pw := range []string{testPassword, fmt.Sprintf("concurrent passphrase %d-x", trial)} {
			if got := e.login(t, "", "cora", pw).code(t); got != "INVALID_CREDENTIALS" {
				t.Fatalf("login with %q: %s", pw, got)
			}
		}
	}
}

// holdByID pauses the first ByID after arm, before it reads, until release.
type holdByID struct {
	auth.UserStore
	mu      sync.Mutex
	armed   bool
	reached chan struct{}
	release chan struct{}
}

func (h *holdByID) arm() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.armed, h.reached, h.release = true, make(chan struct{}), make(chan struct{})
}

func (h *holdByID) ByID(ctx context.Context, id string) (*auth.User, error) {
	h.mu.Lock()
	armed := h.armed
	h.armed = false
	reached, release := h.reached, h.release
	h.mu.Unlock()
	if armed {
		close(reached)
		<-release
	}
	return h.UserStore.ByID(ctx, id)
}

// Two uses of one reset link (a double-submitted form): the one that loses
// is told the link was used, not that it expired or was replaced by a newer
// one. Here the loser has found the link unused and is held before it reads
// the account; the winner resets the password meanwhile.
func TestResetLinkRaceLoserSeesUsed(t *testing.T) {
	hold := &holdByID{}
	o := defaultOptions()
	o.cfg.MailAddressInterval = 0
	o.wrapUsers = func(s auth.UserStore) auth.UserStore { hold.UserStore = s; return hold }
	e := newEnvWith(t, o)
	e.mustRegister(t, "dina", "dina@example.com")
	tok := e.resetToken(t, "dina@example.com", 1)

	hold.arm()
	done := make(chan gqlResponse, 1)
	go func() {
		res, err := e.postAsync("", resetPasswordMutation, map[string]any{"t": tok, "p": "the losing passphrase"})
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	select {
	case <-hold.reached:
	case <-time.After(10 * time.Second):
		t.Fatal("the first resetPassword never read the account")
	}
	payload(t, e.resetPassword(t, tok, newPassword), "resetPassword")
	close(hold.release)
	loser := <-done
	if got := e.login(t, "", "dina", "the losing passphrase").code(t); got != "INVALID_CREDENTIALS" {
		t.Fatalf("the losing reset set its password too: %s", got)
	}
	payload(t, e.login(t, "", "dina", newPassword), "login")
	wantEmailTokenError(t, loser, "used")
}

// At most one mail of a kind per address per MAIL_ADDRESS_INTERVAL; the
// requests still answer true.
func TestResetMailsPerAddressInterval(t *testing.T) {
	e := newEnv(t) // the default interval: a minute
	e.mustRegister(t, "ada", "ada@example.com")
	waitMail(t, e.smtp, "ada@example.com", subjectVerify, 1)
	var first gqlResponse
	for i := range 3 {
		res := e.requestReset(t, "ada@example.com")
		if !boolIn(t, res, "requestPasswordReset") {
			t.Fatal("requestPasswordReset answered false")
		}
		if i == 0 {
			first = res
		} else if res.Raw != first.Raw {
			t.Fatalf("a refused request answers differently: %s vs %s", res.Raw, first.Raw)
		}
	}
	waitMail(t, e.smtp, "ada@example.com", subjectReset, 1)
	quiet(t, e.smtp, 2)
	e.clock.Advance(61 * time.Second)
	e.requestReset(t, "ada@example.com")
	waitMail(t, e.smtp, "ada@example.com", subjectReset, 2)
}

// RATE_LIMIT_MAIL: a token bucket per client IP over the three mailing
// mutations.
func TestMailRateLimit(t *testing.T) {
	o := defaultOptions()
	o.cfg.MailRate = auth.Rate{N: 2, Per: 10 * time.Minute}
	e := newEnvWith(t, o)
	p := e.mustRegister(t, "rae", "rae@example.com") // register is not a mailing mutation
	for _, addr := range []string{"a@example.com", "b@example.com"} {
		boolIn(t, e.requestReset(t, addr), "requestPasswordReset")
	}
	wantRateLimited(t, e.requestReset(t, "rae@example.com"), "ip")
	wantRateLimited(t, e.post(t, p.AccessToken, `mutation { requestEmailVerification }`, nil), "ip")
	wantRateLimited(t, e.post(t, p.AccessToken, changeEmailMutation, map[string]any{"e": "rae2@example.com", "p": testPassword}), "ip")
	quiet(t, e.smtp, 1) // the verification mail of the registration only
	if a := e.meAccount(t, p.AccessToken); a.Email != "rae@example.com" {
		t.Fatalf("a refused changeEmail changed the address: %+v", a)
	}
}

// A reset link mailed before an admin disabled the account changes nothing:
// no reset mail goes to a disabled account (the outbox drops the request),
// and a link already out must not set its password either. The answer is
// not UNAUTHENTICATED, which tells clients their access token is bad
// (resetPassword is sent with none).
func TestResetPasswordOfDisabledAccountChangesNothing(t *testing.T) {
	o := defaultOptions()
	o.cfg.MailAddressInterval = 0
	e := newEnvWith(t, o)
	e.mustRegister(t, "root", "root@example.com")
	e.grantAdmin(t, "root")
	admin := e.loginAs(t, "root")
	v := e.mustRegister(t, "vic", "vic@example.com")
	tok := e.resetToken(t, "vic@example.com", 1)
	if r := e.post(t, admin.AccessToken, `mutation($id: ID!) { disableUser(id: $id) { disabled } }`, map[string]any{"id": v.User.ID}); len(r.Errors) > 0 {
		t.Fatalf("disableUser: %s", r.Raw)
	}
	before := e.passwordHash(t, v.User.ID)

	res := e.resetPassword(t, tok, newPassword)
	if len(res.Errors) == 0 {
		t.Fatalf("resetPassword of a disabled account succeeded: %s", res.Raw)
	}
	if got := res.code(t); got == "UNAUTHENTICATED" || got == "INTERNAL_SERVER_ERROR" {
		t.Errorf("resetPassword of a disabled account: code %s (no access token was sent): %s", got, res.Raw)
	}
	if e.passwordHash(t, v.User.ID) != before {
		t.Errorf("resetPassword answered an error but changed the password of the disabled account")
	}
}

// Every bad input to the recovery mutations is a GraphQL error with a code,
// and changes nothing: not the password, the address, its verification, the
// sessions, nor the outbox.
func TestRecoveryBadInputsChangeNothing(t *testing.T) {
	e := newEnv(t)
	p := e.mustRegister(t, "nina", "nina@example.com")
	e.mustRegister(t, "omar", "omar@example.com")
	waitMails(t, e.smtp, "nina@example.com", subjectVerify, 1)
	waitMails(t, e.smtp, "omar@example.com", subjectVerify, 1)
	reset := e.resetToken(t, "nina@example.com", 1)
	hash := e.passwordHash(t, p.User.ID)
	sessions := len(e.docs(t, "sessions", bson.D{{Key: "user_id", Value: p.User.ID}}))

	for _, tc := range []struct {
		name, access, doc string
		vars              map[string]any
	}{
		{"resetPassword: policy", "", resetPasswordMutation, map[string]any{"t": reset, "p": "nina"}},
		{"resetPassword: common password", "", resetPasswordMutation, map[string]any{"t": reset, "p": "password123"}},
		{"resetPassword: no token", "", resetPasswordMutation, map[string]any{"t": "", "p": newPassword}},
		{"resetPassword: operator injection", "", resetPasswordMutation, map[string]any{"t": map[string]any{"$ne": nil}, "p": newPassword}},
		{"resetPassword: missing argument", "", `mutation { resetPassword(token: "x") { accessToken } }`, nil},
		{"verifyEmail: operator injection", "", verifyEmailMutation, map[string]any{"t": map[string]any{"$gt": ""}}},
		{"verifyEmail: a reset token", "", verifyEmailMutation, map[string]any{"t": reset}},
		{"confirmEmailChange: a list", "", confirmEmailMutation, map[string]any{"t": []string{reset}}},
		{"requestPasswordReset: operator injection", "", requestResetMutation, map[string]any{"e": map[string]any{"$regex": ".*"}}},
		{"requestPasswordReset: not an address", "", requestResetMutation, map[string]any{"e": "nina"}},
		{"changeEmail: wrong password", p.AccessToken, changeEmailMutation, map[string]any{"e": "nina.new@example.com", "p": "wrong password!"}},
		{"changeEmail: huge password", p.AccessToken, changeEmailMutation, map[string]any{"e": "nina.new@example.com", "p": strings.Repeat("x", 100)}},
		{"changeEmail: taken", p.AccessToken, changeEmailMutation, map[string]any{"e": "omar@example.com", "p": testPassword}},
		{"changeEmail: not an address", p.AccessToken, changeEmailMutation, map[string]any{"e": "nina.new@", "p": testPassword}},
		{"changeEmail: anonymous", "", changeEmailMutation, map[string]any{"e": "nina.new@example.com", "p": testPassword}},
		{"deleteAccount: wrong password", p.AccessToken, deleteAccountMutation, map[string]any{"p": "wrong password!"}},
		{"deleteAccount: anonymous", "", deleteAccountMutation, map[string]any{"p": testPassword}},
		{"deleteUser: not an admin", p.AccessToken, deleteUserMutation, map[string]any{"id": p.User.ID}},
		{"exportMyData: anonymous", "", `{ exportMyData }`, nil},
		{"requestEmailVerification: anonymous", "", `mutation { requestEmailVerification }`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := e.post(t, tc.access, tc.doc, tc.vars)
			if len(res.Errors) == 0 {
				t.Fatalf("accepted: %s", res.Raw)
			}
			for _, er := range res.Errors {
				if c, _ := er.Extensions["code"].(string); c == "" || c == "INTERNAL_SERVER_ERROR" {
					t.Fatalf("error without a proper code: %s", res.Raw)
				}
			}
			if strings.Contains(res.Raw, "$ne") || strings.Contains(res.Raw, "$regex") || strings.Contains(res.Raw, reset) {
				t.Errorf("the error echoes the input: %s", res.Raw)
			}
		})
	}
	quiet(t, e.smtp, 3) // the two verifications and the reset
	if e.passwordHash(t, p.User.ID) != hash {
		t.Error("the password changed")
	}
	if a := e.meAccount(t, p.AccessToken); a.Email != "nina@example.com" || a.EmailVerified {
		t.Errorf("the account changed: %+v", a)
	}
	if n := len(e.docs(t, "sessions", bson.D{{Key: "user_id", Value: p.User.ID}})); n != sessions {
		t.Errorf("%d sessions, want %d", n, sessions)
	}
	if n := e.countUsers(t); n != 2 {
		t.Errorf("%d users, want 2", n)
	}
	if out := e.docs(t, "mail_outbox", bson.D{}); len(out) != 0 {
		t.Errorf("mail_outbox: %v", out)
	}
	// The reset link survived every misuse.
	payload(t, e.resetPassword(t, reset, newPassword), "resetPassword")
}
