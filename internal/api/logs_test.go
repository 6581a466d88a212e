package api_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// Nothing secret reaches the log: not the password, not a token, not a hash.
func TestLogsHoldNoSecrets(t *testing.T) {
	e := newEnv(t)
	p := e.mustRegister(t, "nina", "nina@example.com")
	e.login(t, "", "nina", testPassword)
	e.login(t, "", "nina", "wrong password!")
	e.post(t, p.AccessToken, meQuery, nil)
	e.get(t, p.AccessToken, meQuery, map[string]any{"password": testPassword})
	logs := e.logs.String()
	if !strings.Contains(logs, `"path":"/query"`) {
		t.Fatalf("no request log lines: %s", logs)
	}
	for _, secret := range []string{testPassword, "wrong password!", p.AccessToken, strings.Split(p.AccessToken, ".")[2], "$2a$"} {
		if strings.Contains(logs, secret) {
			t.Errorf("log contains a secret %q", secret)
		}
	}
}

func TestAuditLog(t *testing.T) {
	e := newEnv(t)
	p := e.mustRegister(t, "dora", "dora@example.com")
	e.login(t, "", "dora", testPassword)
	e.login(t, "", "dora", "wrong password!")
	e.login(t, "", "nobody-at-all", "wrong password!")
	r := payload(t, e.refresh(t, "", p.RefreshToken), "refreshToken")
	e.post(t, r.AccessToken, `mutation { logout }`, nil)

	var events []map[string]any
	for _, line := range strings.Split(e.logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["log"] == "audit" {
			events = append(events, m)
		}
	}
	want := []string{"register/success", "login/success", "login/failure", "login/failure", "refresh/success", "logout/success"}
	var got []string
	mails := map[string]int{}
	for _, ev := range events {
		if name, _ := ev["event"].(string); strings.HasPrefix(name, "mail_") {
			// Mail events come from the outbox worker, at its own pace, with
			// no client: counted apart.
			mails[name]++
			if ev["user_id"] == nil || ev["kind"] != "verify_email" {
				t.Errorf("mail event %v names no user or not the verification mail", ev)
			}
			continue
		}
		got = append(got, fmt.Sprint(ev["event"], "/", ev["outcome"]))
		if ev["ip"] != "127.0.0.1" {
			t.Errorf("event %v has no client ip", ev)
		}
		if ev["user_id"] == nil && ev["identifier_hash"] == nil {
			t.Errorf("event %v names no user id or identifier hash", ev)
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("audit events = %v, want %v", got, want)
	}
	if mails["mail_queued"] != 1 {
		t.Errorf("mail_queued events: %d, want 1 (the verification mail of register)", mails["mail_queued"])
	}
	logs := e.logs.String()
	for _, secret := range []string{testPassword, "wrong password!", "nobody-at-all", p.RefreshToken, r.AccessToken} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log holds %q", secret)
		}
	}
}
