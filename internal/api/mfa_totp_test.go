package api_test

import (
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"go.mongodb.org/mongo-driver/v2/bson"
)

const (
	enrollTotpMutation  = `mutation { enrollTotp { secret otpauthUri qrCodeDataUrl } }`
	confirmTotpMutation = `mutation($c: String!) { confirmTotp(code: $c) { recoveryCodes auth { ` + payloadFields + ` } } }`
	verifyMfaMutation   = `mutation($c: String) { verifyMfa(code: $c) { ` + payloadFields + ` } }`
)

type totpEnrollment struct {
	Secret        string `json:"secret"`
	OtpauthURI    string `json:"otpauthUri"`
	QRCodeDataURL string `json:"qrCodeDataUrl"`
}

// totpCode is the authenticator app's code for secret at the server's time.
func (e *env) totpCode(t *testing.T, secret string) string {
	t.Helper()
	code, err := totp.GenerateCodeCustom(secret, e.clock.Now(), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// nextStep moves the server's clock past the steps of codes already used.
func (e *env) nextStep() { e.clock.Advance(90 * time.Second) }

func (e *env) enrollTotp(t *testing.T, access string) totpEnrollment {
	t.Helper()
	res := e.post(t, access, enrollTotpMutation, nil)
	if len(res.Errors) > 0 {
		t.Fatalf("enrollTotp: %s", res.Raw)
	}
	var en totpEnrollment
	if err := json.Unmarshal(res.Data["enrollTotp"], &en); err != nil {
		t.Fatal(err)
	}
	return en
}

// confirmTotp confirms the pending app with a current code.
func (e *env) confirmTotp(t *testing.T, access, secret string) ([]string, authPayload) {
	t.Helper()
	res := e.post(t, access, confirmTotpMutation, map[string]any{"c": e.totpCode(t, secret)})
	if len(res.Errors) > 0 {
		t.Fatalf("confirmTotp: %s", res.Raw)
	}
	var out struct {
		RecoveryCodes []string    `json:"recoveryCodes"`
		Auth          authPayload `json:"auth"`
	}
	if err := json.Unmarshal(res.Data["confirmTotp"], &out); err != nil {
		t.Fatal(err)
	}
	return out.RecoveryCodes, out.Auth
}

// withTotp registers name and enrols an app: the confirmation's tokens, the
// secret and the recovery codes.
func (e *env) withTotp(t *testing.T, name string) (authPayload, string, []string) {
	t.Helper()
	p := e.mustRegister(t, name, name+"@example.test")
	en := e.enrollTotp(t, p.AccessToken)
	codes, confirmed := e.confirmTotp(t, p.AccessToken, en.Secret)
	e.nextStep()
	return confirmed, en.Secret, codes
}

func (e *env) verifyMfa(t *testing.T, access, code string) gqlResponse {
	t.Helper()
	return e.post(t, access, verifyMfaMutation, map[string]any{"c": code})
}

func wantLevel(t *testing.T, step, access string, aal int, amr string, mfa bool) map[string]any {
	t.Helper()
	c := jwtClaims(t, access)
	gotMFA, _ := c["mfa"].(bool)
	if c["aal"] != float64(aal) || fmt.Sprint(c["amr"]) != amr || gotMFA != mfa {
		t.Fatalf("%s: aal %v amr %v mfa %v; want %d %s %v", step, c["aal"], c["amr"], c["mfa"], aal, amr, mfa)
	}
	return c
}

// The whole TOTP flow over HTTP: enrol, confirm (level 2, recovery codes),
// a password login at level 1 confined, verifyMfa raising that session,
// replay refused, a recovery code once, the secret sealed and the codes
// hashed in the database.
func TestTotpFlow(t *testing.T) {
	e := newEnv(t)
	p := e.mustRegister(t, "totp_amy", "totp_amy@example.test")
	en := e.enrollTotp(t, p.AccessToken)
	if !strings.HasPrefix(en.OtpauthURI, "otpauth://totp/authgql:totp_amy?") || !strings.Contains(en.OtpauthURI, "secret="+en.Secret) ||
		!strings.HasPrefix(en.QRCodeDataURL, "data:image/png;base64,iVBORw0KGgo") {
		t.Fatalf("enrolment: %+v", en)
	}
	codes, confirmed := e.confirmTotp(t, p.AccessToken, en.Secret)
	if len(codes) != 10 {
		t.Fatalf("recovery codes: %q", codes)
	}
	c := wantLevel(t, "confirmTotp", confirmed.AccessToken, 2, "[pwd otp]", true)
	if c["sid"] != jwtClaims(t, p.AccessToken)["sid"] {
		t.Fatal("confirmTotp's tokens are for another session")
	}

	// The database holds the secret sealed and the recovery codes hashed.
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(en.Secret)
	if err != nil {
		t.Fatal(err)
	}
	dump := e.dump(t)
	for _, secret := range []string{en.Secret, strings.ToLower(en.Secret), base64.StdEncoding.EncodeToString(raw), fmt.Sprintf("%x", raw)} {
		if strings.Contains(dump, secret) {
			t.Fatalf("the database holds the TOTP secret (%s…)", secret[:6])
		}
	}
	for _, code := range codes {
		if strings.Contains(dump, code) || strings.Contains(dump, strings.ReplaceAll(code, "-", "")) {
			t.Fatalf("the database holds a recovery code")
		}
	}
	apps := e.docs(t, "totp", bson.D{})
	if len(apps) != 1 || apps[0]["confirmed"] != true {
		t.Fatalf("totp documents: %v", apps)
	}
	if hashes := e.docs(t, "recovery_codes", bson.D{}); len(hashes) != 1 || len(hashes[0]["hashes"].(bson.A)) != 10 {
		t.Fatalf("recovery_codes documents: %v", hashes)
	}

	if !boolIn(t, e.post(t, confirmed.AccessToken, `mutation { logout }`, nil), "logout") {
		t.Fatal("logout")
	}
	e.nextStep()

	// A password login is level 1, confined.
	login := e.loginAs(t, "totp_amy")
	wantLevel(t, "login", login.AccessToken, 1, "[pwd]", true)
	if res := e.post(t, login.AccessToken, `{ exportMyData }`, nil); res.ext("code") != "FORBIDDEN" || res.ext("reason") != "mfa_required" {
		t.Fatalf("exportMyData at level 1: %s", res.Raw)
	}
	// A wrong code: BAD_USER_INPUT, and the session stays where it was.
	wrong := e.verifyMfa(t, login.AccessToken, "aaaaa-aaaaa")
	if wrong.ext("code") != "BAD_USER_INPUT" || wrong.ext("field") != "code" || wrong.ext("reason") != "incorrect" {
		t.Fatalf("a wrong code: %s", wrong.Raw)
	}
	code := e.totpCode(t, en.Secret)
	up := payload(t, e.verifyMfa(t, login.AccessToken, code), "verifyMfa")
	c = wantLevel(t, "verifyMfa", up.AccessToken, 2, "[pwd otp]", true)
	if c["sid"] != jwtClaims(t, login.AccessToken)["sid"] {
		t.Fatal("verifyMfa's tokens are for another session")
	}
	res := e.post(t, up.AccessToken, `{ exportMyData }`, nil)
	if len(res.Errors) > 0 || !strings.Contains(string(res.Data["exportMyData"]), `"totpEnabled":true`) ||
		strings.Contains(res.Raw, en.Secret) {
		t.Fatalf("exportMyData at level 2: %s", res.Raw)
	}
	// A refresh keeps the level.
	next := payload(t, e.refresh(t, "", up.RefreshToken), "refreshToken")
	wantLevel(t, "refresh", next.AccessToken, 2, "[pwd otp]", true)

	// The same code again, from another session: refused.
	other := e.loginAs(t, "totp_amy")
	replay := e.verifyMfa(t, other.AccessToken, code)
	if replay.ext("code") != "BAD_USER_INPUT" || replay.ext("reason") != "used" {
		t.Fatalf("a replayed code: %s", replay.Raw)
	}

	// A recovery code, once.
	rec := payload(t, e.verifyMfa(t, other.AccessToken, codes[0]), "verifyMfa")
	wantLevel(t, "recovery code", rec.AccessToken, 2, "[pwd recovery]", true)
	third := e.loginAs(t, "totp_amy")
	if again := e.verifyMfa(t, third.AccessToken, codes[0]); again.ext("reason") != "used" {
		t.Fatalf("a recovery code twice: %s", again.Raw)
	}
	wantLevel(t, "after a refused code", third.AccessToken, 1, "[pwd]", true)
}

// Ten concurrent verifyMfa with one recovery code: exactly one wins.
func TestMfaRecoveryCodeConcurrentOnce(t *testing.T) {
	e := newEnv(t)
	_, _, codes := e.withTotp(t, "totp_ben")
	login := e.loginAs(t, "totp_ben")
	var wg sync.WaitGroup
	results := make([]gqlResponse, 10)
	for i := range results {
		wg.Go(func() { results[i] = e.verifyMfa(t, login.AccessToken, codes[5]) })
	}
	wg.Wait()
	wins := 0
	for _, r := range results {
		switch {
		case len(r.Errors) == 0:
			wins++
		case r.ext("reason") == "used" || (r.ext("code") == "RATE_LIMITED" && r.ext("reason") == "mfa"):
		default:
			t.Errorf("a losing use: %s", r.Raw)
		}
	}
	if wins != 1 {
		t.Fatalf("%d of 10 concurrent uses of one recovery code won, want 1", wins)
	}
	if n := len(e.docs(t, "markers", bson.D{{Key: "_id", Value: bson.D{{Key: "$regex", Value: "^used/recovery/"}}}})); n != 1 {
		t.Fatalf("%d spent recovery codes, want 1", n)
	}
}

// Wrong codes are throttled per account: RATE_LIMITED mfa, even for the
// right code, until the window passes.
func TestMfaWrongCodesThrottled(t *testing.T) {
	e := newEnv(t)
	_, secret, _ := e.withTotp(t, "totp_cat")
	login := e.loginAs(t, "totp_cat")
	for range 5 {
		if r := e.verifyMfa(t, login.AccessToken, "zzzzz-zzzzz"); r.ext("reason") != "incorrect" {
			t.Fatalf("a wrong code: %s", r.Raw)
		}
	}
	r := e.verifyMfa(t, login.AccessToken, e.totpCode(t, secret))
	if r.ext("code") != "RATE_LIMITED" || r.ext("reason") != "mfa" || r.Errors[0].Extensions["retryAfter"] == nil {
		t.Fatalf("the right code while locked: %s", r.Raw)
	}
	e.clock.Advance(2 * time.Second)
	payload(t, e.verifyMfa(t, login.AccessToken, e.totpCode(t, secret)), "verifyMfa")
}

// A password reset keeps the factor: the new session is level 1, confined,
// and the app still raises it.
func TestMfaPasswordResetKeepsFactor(t *testing.T) {
	e := newEnv(t)
	_, secret, _ := e.withTotp(t, "totp_dan")
	tok := e.resetToken(t, "totp_dan@example.test", 1)
	p := payload(t, e.resetPassword(t, tok, "a brand new passphrase"), "resetPassword")
	wantLevel(t, "resetPassword", p.AccessToken, 1, "[pwd]", true)
	if res := e.post(t, p.AccessToken, `{ exportMyData }`, nil); res.ext("reason") != "mfa_required" {
		t.Fatalf("exportMyData after a reset: %s", res.Raw)
	}
	up := payload(t, e.verifyMfa(t, p.AccessToken, e.totpCode(t, secret)), "verifyMfa")
	wantLevel(t, "verifyMfa after a reset", up.AccessToken, 2, "[pwd otp]", true)
}

// disableTotp needs level 2 and a code; regenerateRecoveryCodes replaces the
// codes.
func TestMfaDisableAndRegenerate(t *testing.T) {
	e := newEnv(t)
	confirmed, secret, codes := e.withTotp(t, "totp_eve")
	login := e.loginAs(t, "totp_eve")
	if r := e.post(t, login.AccessToken, `mutation { regenerateRecoveryCodes }`, nil); r.ext("reason") != "mfa_required" {
		t.Fatalf("regenerate at level 1: %s", r.Raw)
	}
	r := e.post(t, confirmed.AccessToken, `mutation { regenerateRecoveryCodes }`, nil)
	var fresh []string
	if len(r.Errors) > 0 || json.Unmarshal(r.Data["regenerateRecoveryCodes"], &fresh) != nil || len(fresh) != 10 {
		t.Fatalf("regenerate: %s", r.Raw)
	}
	if old := e.verifyMfa(t, login.AccessToken, codes[0]); old.ext("reason") != "incorrect" {
		t.Fatalf("an old recovery code after regenerating: %s", old.Raw)
	}
	disable := `mutation($c: String!) { disableTotp(code: $c) }`
	if r := e.post(t, confirmed.AccessToken, disable, map[string]any{"c": "000000"}); r.ext("code") != "BAD_USER_INPUT" &&
		e.totpCode(t, secret) != "000000" {
		t.Fatalf("disable with a wrong code: %s", r.Raw)
	}
	if !boolIn(t, e.post(t, confirmed.AccessToken, disable, map[string]any{"c": e.totpCode(t, secret)}), "disableTotp") {
		t.Fatal("disableTotp answered false")
	}
	if n := len(e.docs(t, "totp", bson.D{})) + len(e.docs(t, "recovery_codes", bson.D{})); n != 0 {
		t.Fatalf("%d factor documents left after disableTotp", n)
	}
	after := e.loginAs(t, "totp_eve")
	wantLevel(t, "login without a factor", after.AccessToken, 1, "[pwd]", false)
	if res := e.post(t, after.AccessToken, `{ exportMyData }`, nil); len(res.Errors) > 0 {
		t.Fatalf("exportMyData without a factor: %s", res.Raw)
	}
}

// An admin's resetMfa removes the factors and ends every session of the
// user; the next login has full access at level 1.
func TestResetMfaByAdmin(t *testing.T) {
	e := newEnv(t)
	root := e.mustRegister(t, "root", "root@example.test")
	e.grantAdmin(t, "root")
	confirmed, _, _ := e.withTotp(t, "totp_fay")
	uid := confirmed.User.ID
	reset := `mutation($id: ID!) { resetMfa(userId: $id) { id mfaEnabled } }`
	if r := e.post(t, confirmed.AccessToken, reset, map[string]any{"id": uid}); r.ext("code") != "FORBIDDEN" {
		t.Fatalf("resetMfa by a user: %s", r.Raw)
	}
	r := e.post(t, root.AccessToken, reset, map[string]any{"id": uid})
	if len(r.Errors) > 0 || !strings.Contains(string(r.Data["resetMfa"]), `"mfaEnabled":false`) {
		t.Fatalf("resetMfa: %s", r.Raw)
	}
	wantUnauthenticated(t, e.post(t, confirmed.AccessToken, meQuery, nil), "session_revoked")
	if n := len(e.docs(t, "totp", bson.D{})) + len(e.docs(t, "recovery_codes", bson.D{})); n != 0 {
		t.Fatalf("%d factor documents left after resetMfa", n)
	}
	if lines := e.auditLines(t, "mfa_reset"); len(lines) != 1 || lines[0]["user_id"] != uid || lines[0]["by"] != root.User.ID {
		t.Fatalf("audit of the reset: %v", lines)
	}
	login := e.loginAs(t, "totp_fay")
	wantLevel(t, "login after resetMfa", login.AccessToken, 1, "[pwd]", false)
	if res := e.post(t, login.AccessToken, `{ exportMyData }`, nil); len(res.Errors) > 0 {
		t.Fatalf("exportMyData after resetMfa: %s", res.Raw)
	}
}
