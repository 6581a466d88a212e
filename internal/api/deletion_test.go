package api_test

// Issue 12: the end of an account (deleteAccount, deleteUser) and what the
// server holds about it (exportMyData).

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/authgql/server/internal/mail/mailtest"
)

// waitUserNotFound polls e with access until me is refused as user_not_found.
func waitUserNotFound(t *testing.T, e *env, access string, within time.Duration) {
	t.Helper()
	start := time.Now()
	for {
		res := e.post(t, access, meQuery, nil)
		if len(res.Errors) > 0 {
			wantUnauthenticated(t, res, "user_not_found")
			return
		}
		if time.Since(start) > within {
			t.Fatalf("access token of a deleted account still accepted after %v", within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// leftOf returns what the collections hold about user id, but for audit
// events named except.
func (e *env) leftOf(t *testing.T, id, except string) []string {
	t.Helper()
	var left []string
	oid, err := bson.ObjectIDFromHex(id)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range e.docs(t, "users", bson.D{{Key: "_id", Value: oid}}) {
		left = append(left, "users: "+extJSON(t, d))
	}
	for _, coll := range []string{"sessions", "email_tokens", "mail_outbox", "audit_events"} {
		for _, d := range e.docs(t, coll, bson.D{{Key: "user_id", Value: id}}) {
			if coll == "audit_events" && d["event"] == except {
				continue
			}
			left = append(left, coll+": "+extJSON(t, d))
		}
	}
	return left
}

func extJSON(t *testing.T, d bson.M) string {
	t.Helper()
	b, err := bson.MarshalExtJSON(d, false, false)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDeleteAccount(t *testing.T) {
	a := newEnv(t)
	o := defaultOptions()
	o.db, o.smtp = a.db, a.smtp
	b := newEnvWith(t, o)

	reg := a.mustRegister(t, "dora", "dora@example.com")
	other := a.loginAs(t, "dora")
	waitMail(t, a.smtp, "dora@example.com", subjectVerify, 1)
	// Something of each kind: a pending change link and audit events.
	boolIn(t, a.changeEmail(t, reg.AccessToken, "dora.new@example.com", testPassword), "changeEmail")
	waitMail(t, a.smtp, "dora@example.com", subjectNotice, 1)
	change := tokenIn(t, waitMail(t, a.smtp, "dora.new@example.com", subjectConfirm, 1), "/confirm-email")
	for _, s := range []authPayload{reg, other} {
		if !b.meWorks(t, s.AccessToken) {
			t.Fatal("the second instance refuses a fresh session")
		}
	}

	t.Run("wrong password", func(t *testing.T) {
		for _, pw := range []string{"wrong password!", ""} {
			wantInputError(t, a.post(t, reg.AccessToken, deleteAccountMutation, map[string]any{"p": pw}), "currentPassword", "")
		}
		if !a.meWorks(t, reg.AccessToken) || a.countUsers(t) != 1 {
			t.Fatal("a refused deleteAccount deleted something")
		}
		wantUnauthenticatedAny(t, a.post(t, "", deleteAccountMutation, map[string]any{"p": testPassword}))
	})
	time.Sleep(300 * time.Millisecond) // the audit trail is written in the background

	if !boolIn(t, a.post(t, reg.AccessToken, deleteAccountMutation, map[string]any{"p": testPassword}), "deleteAccount") {
		t.Fatal("deleteAccount answered false")
	}
	for _, s := range []authPayload{reg, other} {
		wantUnauthenticated(t, a.post(t, s.AccessToken, meQuery, nil), "user_not_found")
		waitUserNotFound(t, b, s.AccessToken, 2*time.Second)
		if res := a.refresh(t, "", s.RefreshToken); res.code(t) != "INVALID_REFRESH_TOKEN" {
			t.Fatalf("refresh of a deleted account: %s", res.Raw)
		}
	}
	if got := a.login(t, "", "dora", testPassword).code(t); got != "INVALID_CREDENTIALS" {
		t.Fatalf("login to a deleted account: %s", got)
	}

	// One last mail, with no link.
	bye := waitMail(t, a.smtp, "dora@example.com", subjectDeleted, 1)
	if strings.Contains(bye.Text, "token=") || strings.Contains(bye.HTML, "token=") {
		t.Errorf("the deletion mail carries a link:\n%s", bye.Text)
	}
	// The pending change link went with the account.
	wantEmailTokenError(t, a.confirmEmail(t, change), "unknown")
	quiet(t, a.smtp, 4) // verification, notice, confirmation, deletion

	// Nothing of the account is left but the audit event of its deletion.
	time.Sleep(300 * time.Millisecond)
	if left := a.leftOf(t, reg.User.ID, "account_deleted"); len(left) > 0 {
		t.Errorf("left of the deleted account:\n%s", strings.Join(left, "\n"))
	}
	if n := len(a.docs(t, "audit_events", bson.D{{Key: "user_id", Value: reg.User.ID}, {Key: "event", Value: "account_deleted"}})); n != 1 {
		t.Errorf("%d account_deleted audit events, want 1", n)
	}
	if dump := a.dump(t); strings.Contains(dump, "dora@example.com") || strings.Contains(dump, "dora.new@example.com") {
		t.Errorf("the database still holds the address once the last mail went:\n%s", dump)
	}

	// The username and the address are free.
	again := a.mustRegister(t, "dora", "dora@example.com")
	if again.User.ID == reg.User.ID {
		t.Fatal("the new account has the deleted one's id")
	}
	if !b.meWorks(t, again.AccessToken) {
		t.Fatal("the new account's token is refused on the second instance")
	}
}

// Mails of an account still waiting in the outbox (the SMTP server refusing
// them for now) go with the account: only the deletion notice is delivered.
func TestDeleteAccountDropsQueuedMails(t *testing.T) {
	e := newEnv(t)
	e.smtp.FailNext(1000, 451)
	p := e.mustRegister(t, "fay", "fay@example.com")
	deadline := time.Now().Add(mailWait)
	for {
		var m struct {
			Attempts int `bson:"attempts"`
		}
		err := e.db.Collection("mail_outbox").FindOne(context.Background(), bson.D{{Key: "user_id", Value: p.User.ID}}).Decode(&m)
		if err == nil && m.Attempts >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the verification mail was never attempted (%v)", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	boolIn(t, e.post(t, p.AccessToken, deleteAccountMutation, map[string]any{"p": testPassword}), "deleteAccount")
	if left := e.docs(t, "mail_outbox", bson.D{{Key: "user_id", Value: p.User.ID}}); len(left) > 0 {
		t.Fatalf("queued mails of the deleted account: %v", left)
	}
	e.smtp.FailNext(0, 451)
	waitMail(t, e.smtp, "fay@example.com", subjectDeleted, 1)
	quiet(t, e.smtp, 1)
}

const meAdminQuery = `{ me { id roles disabled } }`

func TestDeleteUser(t *testing.T) {
	e := newEnv(t)
	e.mustRegister(t, "root", "root@example.com")
	e.grantAdmin(t, "root")
	admin := e.loginAs(t, "root")
	victim := e.mustRegister(t, "victim", "victim@example.com")
	plain := e.mustRegister(t, "plain", "plain@example.com")
	del := func(access, id string) gqlResponse {
		return e.post(t, access, deleteUserMutation, map[string]any{"id": id})
	}

	t.Run("by a user", func(t *testing.T) {
		res := del(plain.AccessToken, victim.User.ID)
		if got := res.code(t); got != "FORBIDDEN" {
			t.Fatalf("deleteUser by a USER: %s", res.Raw)
		}
		wantUnauthenticatedAny(t, del("", victim.User.ID))
		if !e.meWorks(t, victim.AccessToken) || e.countUsers(t) != 3 {
			t.Fatal("a refused deleteUser deleted something")
		}
	})
	t.Run("unknown id", func(t *testing.T) {
		for _, id := range []string{"000000000000000000000000", "not an id", ""} {
			res := del(admin.AccessToken, id)
			if len(res.Errors) == 0 || res.Errors[0].Extensions["code"] == nil || res.code(t) == "INTERNAL_SERVER_ERROR" {
				t.Fatalf("deleteUser(%q): %s", id, res.Raw)
			}
		}
		if e.countUsers(t) != 3 {
			t.Fatal("users were deleted")
		}
	})
	t.Run("by an admin", func(t *testing.T) {
		if !boolIn(t, del(admin.AccessToken, victim.User.ID), "deleteUser") {
			t.Fatal("deleteUser answered false")
		}
		wantUnauthenticated(t, e.post(t, victim.AccessToken, meQuery, nil), "user_not_found")
		waitMail(t, e.smtp, "victim@example.com", subjectDeleted, 1)
		if n := e.countUsers(t); n != 2 {
			t.Fatalf("%d users, want 2", n)
		}
	})
	t.Run("the last admin", func(t *testing.T) {
		res := del(admin.AccessToken, admin.User.ID)
		wantInputError(t, res, res.ext("field"), "last_admin")
		res = e.post(t, admin.AccessToken, deleteAccountMutation, map[string]any{"p": testPassword})
		wantInputError(t, res, res.ext("field"), "last_admin")
		// Still there, enabled, and still an admin.
		var got struct {
			Roles    []string `json:"roles"`
			Disabled bool     `json:"disabled"`
		}
		r := e.post(t, admin.AccessToken, meAdminQuery, nil)
		if err := json.Unmarshal(r.Data["me"], &got); err != nil || got.Disabled || len(got.Roles) != 2 {
			t.Fatalf("the last admin after refused deletions: %s", r.Raw)
		}
		payload(t, e.login(t, "", "root", testPassword), "login")
		// With a second admin, either can go.
		e.grantAdmin(t, "plain")
		if !boolIn(t, del(admin.AccessToken, plain.User.ID), "deleteUser") {
			t.Fatal("deleteUser of an admin answered false")
		}
		res = del(admin.AccessToken, admin.User.ID)
		wantInputError(t, res, res.ext("field"), "last_admin")
	})
}

// exportMyData returns the profile, the sessions with their user agents and
// IPs, and recent audit events; never a hash or a token.
func TestExportMyData(t *testing.T) {
	e := newEnv(t)
	reg := e.mustRegister(t, "xavi", "xavi@example.com")
	bob := e.mustRegister(t, "bob", "bob@example.com")
	body, _ := json.Marshal(map[string]any{"query": loginMutation, "variables": loginVars("xavi", testPassword)})
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/query", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "ExportTest/1.0 (phone)")
	phone := payload(t, e.send(t, req), "login")

	var export struct {
		User struct {
			ID            string   `json:"id"`
			Username      string   `json:"username"`
			Email         string   `json:"email"`
			EmailVerified *bool    `json:"emailVerified"`
			Roles         []string `json:"roles"`
		} `json:"user"`
		Sessions []struct {
			ID        string `json:"id"`
			UserAgent string `json:"userAgent"`
			IP        string `json:"ip"`
		} `json:"sessions"`
		AuditEvents []struct {
			Event string `json:"event"`
			At    string `json:"at"`
		} `json:"auditEvents"`
	}
	var raw string
	deadline := time.Now().Add(5 * time.Second)
	for {
		res := e.post(t, reg.AccessToken, `{ exportMyData }`, nil)
		if len(res.Errors) > 0 {
			t.Fatalf("exportMyData: %s", res.Raw)
		}
		raw = string(res.Data["exportMyData"])
		if err := json.Unmarshal(res.Data["exportMyData"], &export); err != nil {
			t.Fatalf("decode: %v: %s", err, raw)
		}
		events := map[string]bool{}
		for _, ev := range export.AuditEvents {
			events[ev.Event] = true
		}
		if events["register"] && events["login"] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no register and login events in the export: %s", raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
	u := export.User
	if u.ID != reg.User.ID || u.Username != "xavi" || u.Email != "xavi@example.com" || u.EmailVerified == nil || *u.EmailVerified ||
		len(u.Roles) != 1 || u.Roles[0] != "USER" {
		t.Errorf("user = %+v", u)
	}
	if len(export.Sessions) != 2 {
		t.Fatalf("%d sessions, want 2: %s", len(export.Sessions), raw)
	}
	agents := map[string]bool{}
	for _, s := range export.Sessions {
		agents[s.UserAgent] = true
		if s.IP != "127.0.0.1" || s.ID == "" {
			t.Errorf("session %+v: want id and ip 127.0.0.1", s)
		}
	}
	if !agents["ExportTest/1.0 (phone)"] {
		t.Errorf("no session with the phone's user agent: %s", raw)
	}
	for _, secret := range []string{"$2a$", "$2b$", "password", "Password", "hash", "Hash", "stamp",
		reg.AccessToken, reg.RefreshToken, phone.AccessToken, phone.RefreshToken,
		bob.User.ID, "bob@example.com"} {
		if strings.Contains(raw, secret) {
			t.Errorf("the export holds %q: %s", secret, raw)
		}
	}
	for _, tok := range []string{reg.RefreshToken, phone.RefreshToken} {
		if i := strings.LastIndexByte(tok, '.'); i >= 0 && strings.Contains(raw, tok[i+1:]) {
			t.Errorf("the export holds the secret part of a refresh token: %s", raw)
		}
	}
	wantUnauthenticatedAny(t, e.post(t, "", `{ exportMyData }`, nil))
}

// A mail on its way to the SMTP server when the account is deleted leaves
// nothing of the account behind either: its delivery must not add an audit
// event about the deleted account afterwards.
func TestDeleteAccountDuringDelivery(t *testing.T) {
	o := defaultOptions()
	o.smtp = mailtest.Start(t)
	o.cfg.SMTPURL = slowProxy(t, o.smtp.Addr(), 300*time.Millisecond) // a send takes seconds
	e := newEnvWith(t, o)
	p := e.mustRegister(t, "slowpoke", "slowpoke@example.com")
	time.Sleep(200 * time.Millisecond) // the verification mail is being sent
	boolIn(t, e.post(t, p.AccessToken, deleteAccountMutation, map[string]any{"p": testPassword}), "deleteAccount")
	waitMail(t, e.smtp, "slowpoke@example.com", subjectDeleted, 1)
	time.Sleep(time.Second) // the audit trail is written in the background
	if left := e.leftOf(t, p.User.ID, "account_deleted"); len(left) > 0 {
		t.Errorf("left of the deleted account:\n%s", strings.Join(left, "\n"))
	}
}
