package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// tokenOf returns the token of a mailed link.
func tokenOf(t *testing.T, link string) string {
	t.Helper()
	_, tok, ok := strings.Cut(link, "?token=")
	if !ok || len(tok) != 43 {
		t.Fatalf("link %q has no 43-character token", link)
	}
	return tok
}

// resetLink asks for a reset of name's address and prepares the mail as the
// outbox worker would, returning its link.
func (f *fixture) resetLink(t *testing.T, name string) string {
	t.Helper()
	if ok, err := f.svc.RequestPasswordReset(t.Context(), name+"@example.com"); err != nil || !ok {
		t.Fatalf("RequestPasswordReset: %v, %v", ok, err)
	}
	reqs := f.outbox.queued(MailResetRequest)
	m, err := f.svc.PrepareMail(t.Context(), &reqs[len(reqs)-1])
	if err != nil || m == nil {
		t.Fatalf("PrepareMail: %v, %v", m, err)
	}
	if m.Kind != MailResetPassword || !strings.HasPrefix(m.Link, "https://app.example"+PathResetPassword+"?token=") {
		t.Fatalf("prepared mail %+v, want a reset link", m)
	}
	return m.Link
}

func wantEmailTokenErr(t *testing.T, err error, reason string) {
	t.Helper()
	e, ok := errors.AsType[*Error](err)
	if !ok || e.Code != CodeInvalidEmailToken || e.Reason != reason {
		t.Fatalf("got %v, want INVALID_EMAIL_TOKEN %s", err, reason)
	}
}

func TestResetRequestForUnknownAddressIsDropped(t *testing.T) {
	f := newFixture(t)
	f.register(t, "alice")
	for _, addr := range []string{"alice@example.com", "nobody@example.com"} {
		if ok, err := f.svc.RequestPasswordReset(t.Context(), addr); err != nil || !ok {
			t.Fatalf("RequestPasswordReset(%s): %v, %v", addr, ok, err)
		}
	}
	reqs := f.outbox.queued(MailResetRequest)
	if len(reqs) != 2 {
		t.Fatalf("queued requests: %d, want one per address, known or not", len(reqs))
	}
	for i, want := range []bool{true, false} {
		m, err := f.svc.PrepareMail(t.Context(), &reqs[i])
		if err != nil || (m != nil) != want {
			t.Errorf("PrepareMail(%s) = %+v, %v; want a mail: %v", reqs[i].To, m, err, want)
		}
	}
}

func TestEmailTokenChecks(t *testing.T) {
	f := newFixture(t)
	f.register(t, "alice")
	verify := tokenOf(t, f.outbox.queued(MailVerifyEmail)[0].Link)
	reset := tokenOf(t, f.resetLink(t, "alice"))

	for name, raw := range map[string]string{
		"empty": "", "short": verify[:42], "long": verify + "A", "not base64": strings.Repeat("!", 43),
		"padded": verify[:42] + "=", "well formed, unknown": strings.Repeat("A", 43),
	} {
		_, err := f.svc.VerifyEmail(t.Context(), raw)
		t.Run(name, func(t *testing.T) { wantEmailTokenErr(t, err, ReasonUnknown) })
	}
	// Kind confusion, both ways.
	_, err := f.svc.VerifyEmail(t.Context(), reset)
	wantEmailTokenErr(t, err, ReasonUnknown)
	_, err = f.svc.ResetPassword(t.Context(), verify, "a brand new passphrase")
	wantEmailTokenErr(t, err, ReasonUnknown)
	_, err = f.svc.ConfirmEmailChange(t.Context(), verify)
	wantEmailTokenErr(t, err, ReasonUnknown)

	u, err := f.svc.VerifyEmail(t.Context(), verify)
	if err != nil || !u.EmailVerified {
		t.Fatalf("VerifyEmail: %+v, %v", u, err)
	}
	_, err = f.svc.VerifyEmail(t.Context(), verify)
	wantEmailTokenErr(t, err, ReasonUsed)

	f.clock.Advance(time.Hour + time.Second)
	_, err = f.svc.ResetPassword(t.Context(), reset, "a brand new passphrase")
	wantEmailTokenErr(t, err, ReasonExpired)
}

func TestResetLinksDieWithNewerLinksAndPasswordChanges(t *testing.T) {
	f := newFixture(t)
	res := f.register(t, "alice")
	older := tokenOf(t, f.resetLink(t, "alice"))
	f.clock.Advance(time.Minute) // the next address window
	newer := tokenOf(t, f.resetLink(t, "alice"))
	_, err := f.svc.ResetPassword(t.Context(), older, "a brand new passphrase")
	wantEmailTokenErr(t, err, ReasonExpired)

	if _, err := f.svc.ChangePassword(f.as(t, res), fixturePassword, "another good passphrase"); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.ResetPassword(t.Context(), newer, "a brand new passphrase")
	wantEmailTokenErr(t, err, ReasonExpired)
}

func TestResetPassword(t *testing.T) {
	f := newFixture(t)
	first := f.register(t, "alice")
	// Failed logins, counted under the username, the address and the account.
	for range 3 {
		if _, err := f.svc.Login(t.Context(), "alice", "wrong password!"); err == nil {
			t.Fatal("login with a wrong password succeeded")
		}
	}
	raw := tokenOf(t, f.resetLink(t, "alice"))

	// A password the policy refuses consumes nothing.
	_, err := f.svc.ResetPassword(t.Context(), raw, "short")
	if e, ok := errors.AsType[*Error](err); !ok || e.Code != CodeBadUserInput || e.Field != "newPassword" {
		t.Fatalf("weak password: %v, want BAD_USER_INPUT newPassword", err)
	}
	res, err := f.svc.ResetPassword(t.Context(), raw, "a brand new passphrase")
	if err != nil {
		t.Fatal(err)
	}
	if !res.User.EmailVerified {
		t.Error("the reset mail proved the address, but it is not verified")
	}
	if _, err := f.svc.VerifyAccessToken(first.AccessToken.Value); err != ErrSessionRevoked {
		t.Errorf("the session from before the reset: %v, want revoked", err)
	}
	if _, err := f.svc.VerifyAccessToken(res.AccessToken.Value); err != nil {
		t.Errorf("the new session: %v", err)
	}
	if n := len(f.throttle.attempts[f.svc.identifierHash("login", "alice")]); n != 0 {
		t.Errorf("failed logins still counted after the reset: %d", n)
	}
	if _, err := f.svc.Login(t.Context(), "alice", "a brand new passphrase"); err != nil {
		t.Errorf("login with the new password: %v", err)
	}
	_, err = f.svc.ResetPassword(t.Context(), raw, "yet another passphrase")
	wantEmailTokenErr(t, err, ReasonUsed)
}

func TestMailWindowPerAddress(t *testing.T) {
	f := newFixture(t)
	f.clock.Advance(40 * time.Second) // inside a window, not at its start
	f.register(t, "alice")
	f.register(t, "bob")
	resets := func() int { return len(f.outbox.queued(MailResetRequest)) }
	for range 3 {
		if ok, err := f.svc.RequestPasswordReset(t.Context(), "alice@example.com"); err != nil || !ok {
			t.Fatalf("RequestPasswordReset: %v, %v", ok, err)
		}
	}
	if got := resets(); got != 1 {
		t.Fatalf("three requests in a row queued %d mails, want 1", got)
	}
	// The next window begins, but less than an interval after the last mail:
	// still nothing. A full interval after it: one more.
	step := time.Minute - time.Duration(f.clock.Now().UnixNano()%int64(time.Minute)) // to the next window
	f.clock.Advance(step)
	if _, err := f.svc.RequestPasswordReset(t.Context(), "alice@example.com"); err != nil {
		t.Fatal(err)
	}
	if resets() != 1 {
		t.Errorf("a mail %s after the last one went out; the interval is a minute", step)
	}
	f.clock.Advance(time.Minute)
	if _, err := f.svc.RequestPasswordReset(t.Context(), "alice@example.com"); err != nil {
		t.Fatal(err)
	}
	if got := resets(); got != 2 {
		t.Errorf("after a full interval: %d mails, want 2", got)
	}
	// Other kinds and other addresses have windows of their own.
	if _, err := f.svc.RequestPasswordReset(t.Context(), "bob@example.com"); err != nil {
		t.Fatal(err)
	}
	if got := resets(); got != 3 {
		t.Errorf("another address: %d mails, want 3", got)
	}
}

func TestChangeEmail(t *testing.T) {
	f := newFixture(t)
	res := f.register(t, "alice")
	f.register(t, "bob")
	ctx := f.as(t, res)
	if _, err := f.svc.ChangeEmail(ctx, "new@example.com", "wrong password!"); ErrorCode(err) != CodeBadUserInput {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := f.svc.ChangeEmail(ctx, "BOB@example.com", fixturePassword); ErrorReason(err) != ReasonTaken {
		t.Fatalf("a taken address: %v, want taken", err)
	}
	if ok, err := f.svc.ChangeEmail(ctx, "new@example.com", fixturePassword); err != nil || !ok {
		t.Fatalf("ChangeEmail: %v, %v", ok, err)
	}
	confirm := f.outbox.queued(MailConfirmEmailChange)
	notice := f.outbox.queued(MailEmailChangeNotice)
	if len(confirm) != 1 || confirm[0].To != "new@example.com" || len(notice) != 1 || notice[0].To != "alice@example.com" || notice[0].Link != "" {
		t.Fatalf("mails: confirm %+v, notice %+v", confirm, notice)
	}
	if u, _ := f.users.ByID(t.Context(), res.User.ID); u.Email != "alice@example.com" {
		t.Fatalf("the address changed before the link was used: %s", u.Email)
	}
	// A reset link sent to the old address dies with the change.
	oldReset := tokenOf(t, f.resetLink(t, "alice"))
	u, err := f.svc.ConfirmEmailChange(t.Context(), tokenOf(t, confirm[0].Link))
	if err != nil || u.Email != "new@example.com" || !u.EmailVerified {
		t.Fatalf("ConfirmEmailChange: %+v, %v", u, err)
	}
	_, err = f.svc.ResetPassword(t.Context(), oldReset, "a brand new passphrase")
	wantEmailTokenErr(t, err, ReasonExpired)
	if _, err := f.svc.Login(t.Context(), "new@example.com", fixturePassword); err != nil {
		t.Errorf("login with the new address: %v", err)
	}
	if _, err := f.svc.Login(t.Context(), "alice@example.com", fixturePassword); err == nil {
		t.Error("login with the old address still works")
	}
}

func TestDeletedAccountTokensAreUserNotFound(t *testing.T) {
	f := newFixture(t)
	res := f.register(t, "alice")
	other, err := f.svc.Login(t.Context(), "alice", fixturePassword)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.DeleteAccount(f.as(t, res), "wrong password!"); ErrorCode(err) != CodeBadUserInput {
		t.Fatalf("wrong password: %v", err)
	}
	if ok, err := f.svc.DeleteAccount(f.as(t, res), fixturePassword); err != nil || !ok {
		t.Fatalf("DeleteAccount: %v, %v", ok, err)
	}
	for _, tok := range []string{res.AccessToken.Value, other.AccessToken.Value} {
		if _, err := f.svc.VerifyAccessToken(tok); ErrorReason(err) != ReasonUserNotFound {
			t.Errorf("a token of the deleted account: %v, want user_not_found", err)
		}
	}
	// Another instance learns it from the log, with the same reason.
	entries, _ := f.log.After(context.Background(), 0, 100)
	if len(entries) == 0 || !entries[len(entries)-1].AccountDeleted {
		t.Fatalf("the revocation log says nothing of the deletion: %+v", entries)
	}
	if got := len(f.outbox.queued(MailAccountDeleted)); got != 1 {
		t.Errorf("deletion notices: %d, want 1", got)
	}
	if got := len(f.outbox.queued(MailVerifyEmail)); got != 0 {
		t.Errorf("undelivered mails of the deleted account left: %d", got)
	}
	f.register(t, "alice") // the username and address are free again
}
