package api_test

// Issue 12: changing the address of an account (changeEmail, then
// confirmEmailChange with the link mailed to the new address).

import (
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func (e *env) changeEmail(t *testing.T, access, newEmail, password string) gqlResponse {
	t.Helper()
	return e.post(t, access, changeEmailMutation, map[string]any{"e": newEmail, "p": password})
}

func TestChangeEmail(t *testing.T) {
	e := newEnv(t)
	alma := e.mustRegister(t, "alma", "alma@example.com")
	e.mustRegister(t, "tom", "tom@example.com")
	oldVerify := e.verifyToken(t, "alma@example.com", 1)
	waitMail(t, e.smtp, "tom@example.com", subjectVerify, 1)
	unchanged := func(t *testing.T) {
		t.Helper()
		if a := e.meAccount(t, alma.AccessToken); a.Email != "alma@example.com" || a.EmailVerified {
			t.Fatalf("the account changed: %+v", a)
		}
	}

	t.Run("wrong password", func(t *testing.T) {
		wantInputError(t, e.changeEmail(t, alma.AccessToken, "alma.new@example.com", "wrong password!"), "currentPassword", "incorrect")
		unchanged(t)
		var failure bool
		for _, r := range e.auditLines(t, "change_email") {
			failure = failure || (r["outcome"] == "failure" && r["user_id"] == alma.User.ID)
		}
		if !failure {
			t.Fatalf("no change_email failure in the audit log:\n%s", e.logs.String())
		}
	})
	t.Run("address of another account", func(t *testing.T) {
		for _, addr := range []string{"tom@example.com", "TOM@Example.com"} {
			wantInputError(t, e.changeEmail(t, alma.AccessToken, addr, testPassword), "newEmail", "taken")
		}
		unchanged(t)
	})
	t.Run("bad addresses", func(t *testing.T) {
		for _, addr := range []string{"", "not an address", "Alma <alma.new@example.com>", "a@b", strings.Repeat("a", 250) + "@example.com"} {
			wantInputError(t, e.changeEmail(t, alma.AccessToken, addr, testPassword), "newEmail", "")
		}
		wantInputError(t, e.changeEmail(t, alma.AccessToken, "ALMA@example.com", testPassword), "newEmail", "unchanged")
		unchanged(t)
	})
	t.Run("anonymous", func(t *testing.T) {
		wantUnauthenticatedAny(t, e.changeEmail(t, "", "alma.new@example.com", testPassword))
	})
	// None of the refused requests sent anything.
	quiet(t, e.smtp, 2)

	const newAddr = "alma.new@example.com"
	if !boolIn(t, e.changeEmail(t, alma.AccessToken, newAddr, testPassword), "changeEmail") {
		t.Fatal("changeEmail answered false")
	}
	confirm := waitMail(t, e.smtp, newAddr, subjectConfirm, 1)
	tok := tokenIn(t, confirm, "/confirm-email")
	notice := waitMail(t, e.smtp, "alma@example.com", subjectNotice, 1)
	for part, body := range map[string]string{"text": notice.Text, "HTML": notice.HTML} {
		if strings.Contains(body, "token=") || strings.Contains(body, "http") || strings.Contains(body, tok) {
			t.Errorf("the notice to the old address carries a link (%s):\n%s", part, body)
		}
		if strings.Contains(body, newAddr) || !strings.Contains(body, "a***@example.com") {
			t.Errorf("the notice (%s) must show the new address masked (a***@example.com), never whole:\n%s", part, body)
		}
	}
	quiet(t, e.smtp, 4)

	// Nothing changes until the link is used.
	unchanged(t)
	e.clock.Advance(61 * time.Second) // past the address interval of the verification mail
	staleReset := e.resetToken(t, "alma@example.com", 1)
	if got := e.login(t, "", newAddr, testPassword).code(t); got != "INVALID_CREDENTIALS" {
		t.Fatalf("login with the unconfirmed address: %s", got)
	}

	got := accountIn(t, e.confirmEmail(t, tok), "confirmEmailChange") // no Authorization header
	if want := (account{ID: alma.User.ID, Username: "alma", Email: newAddr, EmailVerified: true}); got != want {
		t.Fatalf("confirmEmailChange = %+v, want %+v", got, want)
	}
	if a := e.meAccount(t, alma.AccessToken); a.Email != newAddr || !a.EmailVerified {
		t.Fatalf("me after the confirmation: %+v", a)
	}
	payload(t, e.login(t, "", newAddr, testPassword), "login")
	if got := e.login(t, "", "alma@example.com", testPassword).code(t); got != "INVALID_CREDENTIALS" {
		t.Fatalf("login with the old address: %s", got)
	}
	wantEmailTokenError(t, e.confirmEmail(t, tok), "used")
	// Links sent to the old address do nothing now.
	wantEmailTokenError(t, e.verifyEmail(t, oldVerify), "expired")
	wantEmailTokenError(t, e.resetPassword(t, staleReset, newPassword), "expired")
	// The old address is free again.
	e.mustRegister(t, "alma2", "alma@example.com")
}

// The address is checked again when the link is used: if another account
// took it meanwhile, nothing changes.
func TestConfirmEmailChangeAfterAddressTaken(t *testing.T) {
	e := newEnv(t)
	p := e.mustRegister(t, "bea", "bea@example.com")
	if !boolIn(t, e.changeEmail(t, p.AccessToken, "wanted@example.com", testPassword), "changeEmail") {
		t.Fatal("changeEmail answered false")
	}
	tok := tokenIn(t, waitMail(t, e.smtp, "wanted@example.com", subjectConfirm, 1), "/confirm-email")
	other := e.mustRegister(t, "squatter", "Wanted@example.com")

	wantInputError(t, e.confirmEmail(t, tok), "email", "taken")
	if a := e.meAccount(t, p.AccessToken); a.Email != "bea@example.com" || a.EmailVerified {
		t.Fatalf("bea after the refused confirmation: %+v", a)
	}
	if a := e.meAccount(t, other.AccessToken); a.Email != "Wanted@example.com" {
		t.Fatalf("the other account after the refused confirmation: %+v", a)
	}
	if n := e.countUsers(t); n != 2 {
		t.Fatalf("%d users, want 2", n)
	}
	payload(t, e.login(t, "", "bea@example.com", testPassword), "login")
}

// A change link dies with a password change: whoever asked for it with a
// stolen password cannot finish after the owner changed it.
func TestEmailChangeLinkDiesWithPasswordChange(t *testing.T) {
	e := newEnv(t)
	p := e.mustRegister(t, "cleo", "cleo@example.com")
	boolIn(t, e.changeEmail(t, p.AccessToken, "thief@example.com", testPassword), "changeEmail")
	tok := tokenIn(t, waitMail(t, e.smtp, "thief@example.com", subjectConfirm, 1), "/confirm-email")
	payload(t, e.post(t, p.AccessToken, changePasswordMutation, map[string]any{"c": testPassword, "n": newPassword}), "changePassword")
	wantEmailTokenError(t, e.confirmEmail(t, tok), "expired")
	if a := e.meAccount(t, e.loginWith(t, "cleo", newPassword).AccessToken); a.Email != "cleo@example.com" {
		t.Fatalf("the address changed: %+v", a)
	}
}

func (e *env) loginWith(t *testing.T, username, password string) authPayload {
	t.Helper()
	return payload(t, e.login(t, "", username, password), "login")
}

// Two accounts confirming a change to one address at once: exactly one gets
// it, and one account holds it.
func TestConcurrentConfirmToOneAddress(t *testing.T) {
	o := defaultOptions()
	o.cfg.MailAddressInterval = 0
	e := newEnvWith(t, o)
	const wanted = "shared@example.com"
	var toks []string
	for i, name := range []string{"gina", "hugo"} {
		p := e.mustRegister(t, name, name+"@example.com")
		boolIn(t, e.changeEmail(t, p.AccessToken, wanted, testPassword), "changeEmail")
		toks = append(toks, tokenIn(t, waitMail(t, e.smtp, wanted, subjectConfirm, i+1), "/confirm-email"))
	}
	var wg sync.WaitGroup
	results := make([]gqlResponse, len(toks))
	for i, tok := range toks {
		wg.Go(func() {
			res, err := e.postAsync("", confirmEmailMutation, map[string]any{"t": tok})
			if err != nil {
				t.Error(err)
			}
			results[i] = res
		})
	}
	wg.Wait()
	won := 0
	for _, res := range results {
		if len(res.Errors) == 0 {
			won++
			continue
		}
		wantInputError(t, res, "email", "taken")
	}
	if won != 1 {
		t.Fatalf("%d confirmations succeeded, want 1: %s / %s", won, results[0].Raw, results[1].Raw)
	}
	if n := len(e.docs(t, "users", bson.D{{Key: "email_key", Value: wanted}})); n != 1 {
		t.Fatalf("%d accounts hold %s, want 1", n, wanted)
	}
}
