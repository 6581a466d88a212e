package api_test

import (
	"encoding/json"
	"fmt"
	"github.com/authgql/server/internal/auth/passkeytest"
	"strings"
	"testing"
	"time"
)

// The test server runs with the development defaults: RP ID localhost, any
// loopback origin (a front-end dev server on another port).
const (
	devRPID   = "localhost"
	devOrigin = "http://localhost:5173"
)

const passkeyFields = `id name createdAt lastUsedAt`

// jsonField decodes data[field] of a successful response.
func jsonField[T any](t *testing.T, res gqlResponse, field string) T {
	t.Helper()
	if len(res.Errors) > 0 {
		t.Fatalf("%s: %s", field, res.Raw)
	}
	var v T
	if err := json.Unmarshal(res.Data[field], &v); err != nil {
		t.Fatalf("decode %s: %v: %s", field, err, res.Raw)
	}
	return v
}

func (e *env) begin(t *testing.T, access, field string) map[string]any {
	t.Helper()
	return jsonField[map[string]any](t, e.post(t, access, "mutation { "+field+" }", nil), field)
}

// addPasskey registers a passkey for access's account and returns its
// authenticator and ID.
func (e *env) addPasskey(t *testing.T, access, name string) (*passkeytest.Authenticator, string) {
	t.Helper()
	a := passkeytest.New(t, devRPID, devOrigin)
	res := e.finishRegistration(t, access, a.Create(t, e.begin(t, access, "beginPasskeyRegistration")), name)
	p := jsonField[map[string]any](t, res, "finishPasskeyRegistration")
	return a, p["id"].(string)
}

func (e *env) finishRegistration(t *testing.T, access string, response map[string]any, name string) gqlResponse {
	t.Helper()
	return e.post(t, access, `mutation F($r: JSON!, $n: String) { finishPasskeyRegistration(response: $r, name: $n) { `+
		passkeyFields+` } }`, map[string]any{"r": response, "n": nilIfEmpty(name)})
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (e *env) passkeyMfa(t *testing.T, access string, response map[string]any) gqlResponse {
	t.Helper()
	return e.post(t, access, `mutation V($r: JSON) { verifyMfa(passkeyResponse: $r) { `+payloadFields+` } }`,
		map[string]any{"r": response})
}

func (e *env) passkeyLogin(t *testing.T, response map[string]any) gqlResponse {
	t.Helper()
	return e.post(t, "", `mutation L($r: JSON!) { finishPasskeyLogin(response: $r) { `+payloadFields+` } }`,
		map[string]any{"r": response})
}

func wantRefusal(t *testing.T, step string, res gqlResponse, code, field, reason string) {
	t.Helper()
	if len(res.Errors) == 0 || res.ext("code") != code || res.ext("reason") != reason ||
		(field != "" && res.ext("field") != field) {
		t.Fatalf("%s: %s, want %s %s %s", step, res.Raw, code, field, reason)
	}
}

func levelOf(t *testing.T, access string) (aal any, amr string, mfa bool, sid string) {
	t.Helper()
	c := jwtClaims(t, access)
	mfa, _ = c["mfa"].(bool)
	sid, _ = c["sid"].(string)
	return c["aal"], fmt.Sprint(c["amr"]), mfa, sid
}

// Passkeys over HTTP: registration at level 1 without another factor,
// list and rename, a passwordless sign-in at level 2 reaching a level-2
// field, a password sign-in at level 1 confined and raised by a passkey
// (same session), deletion at level 2.
func TestPasskeyFlow(t *testing.T) {
	e := newEnv(t)
	reg := e.mustRegister(t, "pk_ann", "pk_ann@example.test")
	a, id := e.addPasskey(t, reg.AccessToken, "Laptop")
	// The first factor, registered with user verification, raises the
	// enrolling session: its next refresh is level 2, not confined.
	raised := payload(t, e.refresh(t, "", reg.RefreshToken), "refreshToken")
	if aal, amr, mfa, _ := levelOf(t, raised.AccessToken); aal != float64(2) || amr != "[pwd webauthn]" || !mfa {
		t.Fatalf("the enrolling session after a refresh: aal %v amr %v mfa %v; want 2 [pwd webauthn] true", aal, amr, mfa)
	}
	exp := e.post(t, raised.AccessToken, `{ exportMyData }`, nil)
	if len(exp.Errors) > 0 {
		t.Fatalf("a level-2 field in the enrolling session: %s", exp.Raw)
	}
	// The export lists the passkey by name, never its key material.
	if !strings.Contains(exp.Raw, `"name":"Laptop"`) || strings.Contains(exp.Raw, "publicKey") || strings.Contains(exp.Raw, "signCount") {
		t.Errorf("exportMyData: %s", exp.Raw)
	}

	list := jsonField[[]map[string]any](t, e.post(t, reg.AccessToken, `{ passkeys { `+passkeyFields+` } }`, nil), "passkeys")
	if len(list) != 1 || list[0]["id"] != id || list[0]["name"] != "Laptop" || list[0]["lastUsedAt"] != nil {
		t.Fatalf("passkeys = %v", list)
	}
	renamed := jsonField[map[string]any](t, e.post(t, reg.AccessToken, `mutation R($id: ID!) { renamePasskey(id: $id, name: "Phone") { `+
		passkeyFields+` } }`, map[string]any{"id": id}), "renamePasskey")
	if renamed["name"] != "Phone" {
		t.Fatalf("renamePasskey = %v", renamed)
	}
	if res := e.post(t, reg.AccessToken, `mutation { renamePasskey(id: "x", name: "Phone") { id } }`, nil); res.ext("code") != "NOT_FOUND" {
		t.Errorf("rename of an unknown passkey: %s", res.Raw)
	}

	// Passwordless: level 2 by the passkey alone.
	opts := e.begin(t, "", "beginPasskeyLogin")
	if opts["userVerification"] != "required" || opts["rpId"] != devRPID {
		t.Fatalf("beginPasskeyLogin = %v", opts)
	}
	resp := a.Get(t, opts)
	pl := payload(t, e.passkeyLogin(t, resp), "finishPasskeyLogin")
	if aal, amr, mfa, _ := levelOf(t, pl.AccessToken); aal != float64(2) || amr != "[webauthn]" || !mfa {
		t.Fatalf("passkey sign-in: aal %v amr %v mfa %v; want 2 [webauthn] true", aal, amr, mfa)
	}
	if res := e.post(t, pl.AccessToken, `{ exportMyData }`, nil); len(res.Errors) > 0 {
		t.Fatalf("a level-2 field after a passkey sign-in: %s", res.Raw)
	}
	wantRefusal(t, "the same sign-in again", e.passkeyLogin(t, resp), "BAD_USER_INPUT", "response", "used")

	// A password sign-in is level 1 and confined; the passkey raises it.
	pw := e.loginAs(t, "pk_ann")
	aal, amr, mfa, sid := levelOf(t, pw.AccessToken)
	if aal != float64(1) || amr != "[pwd]" || !mfa {
		t.Fatalf("password sign-in: aal %v amr %v mfa %v; want 1 [pwd] true", aal, amr, mfa)
	}
	wantRefusal(t, "level 1", e.post(t, pw.AccessToken, `{ exportMyData }`, nil), "FORBIDDEN", "", "mfa_required")
	opts = e.begin(t, pw.AccessToken, "beginMfaPasskey")
	allow, _ := opts["allowCredentials"].([]any)
	if len(allow) != 1 || allow[0].(map[string]any)["id"] != id {
		t.Fatalf("beginMfaPasskey allowCredentials = %v", opts["allowCredentials"])
	}
	resp = a.Get(t, opts)
	up := payload(t, e.passkeyMfa(t, pw.AccessToken, resp), "verifyMfa")
	aal, amr, _, upSid := levelOf(t, up.AccessToken)
	if aal != float64(2) || amr != "[pwd webauthn]" || upSid != sid {
		t.Fatalf("after verifyMfa: aal %v amr %v sid %v; want 2 [pwd webauthn] %s", aal, amr, upSid, sid)
	}
	if res := e.post(t, up.AccessToken, `{ exportMyData }`, nil); len(res.Errors) > 0 {
		t.Fatalf("a level-2 field after verifyMfa: %s", res.Raw)
	}
	wantRefusal(t, "verifyMfa replayed", e.passkeyMfa(t, pw.AccessToken, resp), "BAD_USER_INPUT", "response", "used")
	list = jsonField[[]map[string]any](t, e.post(t, up.AccessToken, `{ passkeys { `+passkeyFields+` } }`, nil), "passkeys")
	if list[0]["lastUsedAt"] == nil {
		t.Errorf("lastUsedAt after use: %v", list[0])
	}

	// Deleting needs level 2; the last factor's removal turns MFA off.
	wantRefusal(t, "delete at level 1", e.post(t, pw.AccessToken, `mutation D($id: ID!) { deletePasskey(id: $id) }`,
		map[string]any{"id": id}), "FORBIDDEN", "", "mfa_required")
	other := e.mustRegister(t, "pk_other", "pk_other@example.test")
	if res := e.post(t, other.AccessToken, `mutation D($id: ID!) { deletePasskey(id: $id) }`, map[string]any{"id": id}); res.ext("code") != "FORBIDDEN" {
		// Another account's level-1 session is refused by level first.
		t.Errorf("delete by another account at level 1: %s", res.Raw)
	}
	res := e.post(t, up.AccessToken, `mutation D($id: ID!) { deletePasskey(id: $id) }`, map[string]any{"id": id})
	if !boolIn(t, res, "deletePasskey") {
		t.Fatalf("deletePasskey: %s", res.Raw)
	}
	if res := e.post(t, up.AccessToken, `{ me { mfaEnabled } }`, nil); string(res.Data["me"]) != `{"mfaEnabled":false}` {
		t.Errorf("after the last factor's removal: %s", res.Raw)
	}
}

// The refusals of the security model: a challenge used twice or answered
// by another session or account, a sign-count regression, a wrong origin
// or RP ID, a malformed answer, a sign-in without user verification.
func TestPasskeyRefusals(t *testing.T) {
	e := newEnv(t)
	reg := e.mustRegister(t, "pk_bob", "pk_bob@example.test")
	a, _ := e.addPasskey(t, reg.AccessToken, "")
	s1 := e.loginAs(t, "pk_bob")
	s2 := e.loginAs(t, "pk_bob")

	opts := e.begin(t, s2.AccessToken, "beginMfaPasskey")
	wantRefusal(t, "another session's challenge", e.passkeyMfa(t, s1.AccessToken, a.Get(t, opts)),
		"BAD_USER_INPUT", "response", "unknown")
	mal := e.mustRegister(t, "pk_mal", "pk_mal@example.test")
	malKey, _ := e.addPasskey(t, mal.AccessToken, "")
	malLogin := e.loginAs(t, "pk_mal")
	opts = e.begin(t, malLogin.AccessToken, "beginMfaPasskey")
	wantRefusal(t, "another account's challenge", e.passkeyMfa(t, s1.AccessToken, a.Get(t, opts)),
		"BAD_USER_INPUT", "response", "unknown")
	opts = e.begin(t, s1.AccessToken, "beginMfaPasskey")
	wantRefusal(t, "another account's passkey", e.passkeyMfa(t, s1.AccessToken, malKey.Get(t, opts)),
		"BAD_USER_INPUT", "response", "unknown_credential")

	// A clone behind the real authenticator: the counter goes back.
	opts = e.begin(t, s1.AccessToken, "beginMfaPasskey")
	payload(t, e.passkeyMfa(t, s1.AccessToken, a.Get(t, opts)), "verifyMfa")
	clone := *a
	clone.Count -= 2
	opts = e.begin(t, s2.AccessToken, "beginMfaPasskey")
	wantRefusal(t, "sign-count regression", e.passkeyMfa(t, s2.AccessToken, clone.Get(t, opts)),
		"BAD_USER_INPUT", "response", "sign_count")
	if !strings.Contains(e.logs.String(), `"event":"passkey_sign_count"`) {
		t.Error("the regression is not in the audit log")
	}

	for _, tt := range []struct{ name, rpID, origin, reason string }{
		{"wrong origin", devRPID, "https://evil.example", "origin_not_allowed"},
		{"wrong RP ID", "evil.example", devOrigin, "rejected"},
	} {
		wrong := *a
		wrong.RPID, wrong.Origin = tt.rpID, tt.origin
		opts = e.begin(t, "", "beginPasskeyLogin")
		wantRefusal(t, tt.name, e.passkeyLogin(t, wrong.Get(t, opts)), "BAD_USER_INPUT", "response", tt.reason)
	}
	opts = e.begin(t, "", "beginPasskeyLogin")
	noUV := *a
	noUV.UV = false
	wantRefusal(t, "no user verification", e.passkeyLogin(t, noUV.Get(t, opts)), "BAD_USER_INPUT", "response",
		"user_verification_required")
	wantRefusal(t, "malformed", e.passkeyLogin(t, map[string]any{"id": "x"}), "BAD_USER_INPUT", "response", "invalid_format")
	opts = e.begin(t, "", "beginPasskeyLogin")
	e.clock.Advance(2*time.Minute + time.Millisecond)
	wantRefusal(t, "expired", e.passkeyLogin(t, a.Get(t, opts)), "BAD_USER_INPUT", "response", "expired")
}
