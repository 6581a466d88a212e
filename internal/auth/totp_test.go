package auth

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"image/png"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// memMFA is an in-memory MFAStore.
type memMFA struct {
	mu    sync.Mutex
	apps  map[string]TOTP // by user and state
	codes map[string][]string
}

func newMemMFA() *memMFA { return &memMFA{apps: map[string]TOTP{}, codes: map[string][]string{}} }

func appKey(userID string, confirmed bool) string {
	if confirmed {
		return userID + "/confirmed"
	}
	return userID + "/pending"
}

func (m *memMFA) TOTP(_ context.Context, userID string, confirmed bool) (*TOTP, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.apps[appKey(userID, confirmed)]
	if !ok {
		return nil, ErrNotFound
	}
	return &a, nil
}

func (m *memMFA) PutTOTP(_ context.Context, t *TOTP) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.apps[appKey(t.UserID, t.Confirmed)] = *t
	return nil
}

func (m *memMFA) DeleteTOTP(_ context.Context, userID string, confirmed bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.apps, appKey(userID, confirmed))
	return nil
}

func (m *memMFA) SetRecoveryCodes(_ context.Context, userID string, hashes []string, _ time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(hashes) == 0 {
		delete(m.codes, userID)
	} else {
		m.codes[userID] = slices.Clone(hashes)
	}
	return nil
}

func (m *memMFA) RecoveryCodes(_ context.Context, userID string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.codes[userID]), nil
}

func (m *memMFA) DeleteForUser(ctx context.Context, userID string) error {
	_ = m.DeleteTOTP(ctx, userID, false)
	_ = m.DeleteTOTP(ctx, userID, true)
	return m.SetRecoveryCodes(ctx, userID, nil, time.Time{})
}

// holds reports whether userID has anything stored.
func (m *memMFA) holds(userID string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, p := m.apps[appKey(userID, false)]
	_, c := m.apps[appKey(userID, true)]
	return p || c || len(m.codes[userID]) > 0
}

// mfaFixture is a fixture whose service has an MFA store.
func mfaFixture(t *testing.T) (*fixture, *memMFA) {
	t.Helper()
	f := newFixture(t)
	m := newMemMFA()
	f.svc = f.service(t, func(st *Stores, _ *Settings) { st.MFA = m })
	return f, m
}

// at returns a context of res's session at level aal (the fake tokens carry
// no level of their own).
func (f *fixture) at(t *testing.T, res *Result, aal int) context.Context {
	t.Helper()
	c, err := f.svc.VerifyAccessToken(res.AccessToken.Value)
	if err != nil {
		t.Fatal(err)
	}
	u, err := f.users.ByID(t.Context(), c.UserID)
	if err != nil {
		t.Fatal(err)
	}
	c.AAL, c.MFA = aal, u.MFAEnabled
	return WithClaims(t.Context(), c)
}

// codeAt is the authenticator app's code for secret at the time at.
func codeAt(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	code, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// enrolled registers name and gives it a confirmed app: its registration,
// the confirmation's tokens, the secret and the recovery codes.
func (f *fixture) enrolled(t *testing.T, name string) (reg, confirmed *Result, secret string, codes []string) {
	t.Helper()
	reg = f.register(t, name)
	e, err := f.svc.EnrollTotp(f.at(t, reg, 1))
	if err != nil {
		t.Fatal(err)
	}
	codes, confirmed, err = f.svc.ConfirmTotp(f.at(t, reg, 1), codeAt(t, e.Secret, f.clock.Now()))
	if err != nil {
		t.Fatal(err)
	}
	// Codes of the next steps, not the one just used.
	f.clock.Advance(30 * time.Second)
	return reg, confirmed, e.Secret, codes
}

func wantCodeErr(t *testing.T, err error, reason string) {
	t.Helper()
	e, ok := errors.AsType[*Error](err)
	if !ok || e.Code != CodeBadUserInput || e.Field != "code" || e.Reason != reason {
		t.Fatalf("err = %v, want BAD_USER_INPUT code %s", err, reason)
	}
}

func wantMFALimited(t *testing.T, err error) {
	t.Helper()
	e, ok := errors.AsType[*Error](err)
	if !ok || e.Code != CodeRateLimited || e.Reason != ReasonMFA || e.RetryAfter < 1 {
		t.Fatalf("err = %v, want RATE_LIMITED mfa", err)
	}
}

func (f *fixture) session(t *testing.T, id string) Session {
	t.Helper()
	f.sessions.mu.Lock()
	defer f.sessions.mu.Unlock()
	return f.sessions.byID[id]
}

func (f *fixture) mfaEnabled(t *testing.T, userID string) bool {
	t.Helper()
	u, err := f.users.ByID(t.Context(), userID)
	if err != nil {
		t.Fatal(err)
	}
	return u.MFAEnabled
}

var recoveryCodeFormat = regexp.MustCompile(`^[a-z2-7]{5}-[a-z2-7]{5}$`)

func TestTotpEnrollConfirmVerify(t *testing.T) {
	f, m := mfaFixture(t)
	reg := f.register(t, "alice")
	uid, sid := reg.User.ID, f.at(t, reg, 1).Value(claimsKey{}).(Claims).SessionID
	var cursor int64
	f.newEvents(t, &cursor)

	e, err := f.svc.EnrollTotp(f.at(t, reg, 1))
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(e.OtpauthURI)
	if err != nil || u.Scheme != "otpauth" || u.Host != "totp" || u.Path != "/authgql:alice" ||
		u.Query().Get("secret") != e.Secret || u.Query().Get("issuer") != "authgql" {
		t.Fatalf("otpauth URI %q (%v)", e.OtpauthURI, err)
	}
	b64, ok := strings.CutPrefix(e.QRCodeDataURL, "data:image/png;base64,")
	raw, derr := base64.StdEncoding.DecodeString(b64)
	if !ok || derr != nil {
		t.Fatalf("QR code data URL %.40q…: %v", e.QRCodeDataURL, derr)
	}
	if _, err := png.Decode(bytes.NewReader(raw)); err != nil {
		t.Fatalf("QR code is not a PNG: %v", err)
	}
	pending, err := m.TOTP(t.Context(), uid, false)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(pending.Sealed, []byte(e.Secret)) {
		t.Fatal("the stored secret is not sealed")
	}
	if f.mfaEnabled(t, uid) {
		t.Fatal("a pending app is a second factor")
	}

	// A wrong code confirms nothing.
	_, _, err = f.svc.ConfirmTotp(f.at(t, reg, 1), "000000")
	if codeAt(t, e.Secret, f.clock.Now()) == "000000" {
		t.Skip("the right code is 000000")
	}
	wantCodeErr(t, err, ReasonIncorrect)
	if _, err := m.TOTP(t.Context(), uid, true); !errors.Is(err, ErrNotFound) || f.mfaEnabled(t, uid) {
		t.Fatalf("after a wrong code: confirmed app %v, mfa %v", err, f.mfaEnabled(t, uid))
	}

	codes, res, err := f.svc.ConfirmTotp(f.at(t, reg, 1), codeAt(t, e.Secret, f.clock.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if len(codes) != 10 || len(slices.Compact(slices.Sorted(slices.Values(codes)))) != 10 {
		t.Fatalf("recovery codes %q: want ten different ones", codes)
	}
	for _, c := range codes {
		if !recoveryCodeFormat.MatchString(c) {
			t.Errorf("recovery code %q: want xxxxx-xxxxx", c)
		}
	}
	hashes, _ := m.RecoveryCodes(t.Context(), uid)
	if len(hashes) != 10 {
		t.Fatalf("%d stored recovery codes, want 10", len(hashes))
	}
	for _, h := range hashes {
		for _, c := range codes {
			if strings.Contains(h, strings.ReplaceAll(c, "-", "")) || strings.Contains(h, c) {
				t.Fatalf("a recovery code is stored as it is")
			}
		}
	}
	if _, err := m.TOTP(t.Context(), uid, false); !errors.Is(err, ErrNotFound) {
		t.Fatalf("pending app after confirmation: %v", err)
	}
	if !f.mfaEnabled(t, uid) {
		t.Fatal("confirmed: the account has no second factor")
	}
	if strings.Split(res.AccessToken.Value, "|")[1] != sid {
		t.Fatal("confirmTotp's tokens are for another session")
	}
	if s := f.session(t, sid); s.AAL != 2 || !slices.Equal(s.AMR, []string{"pwd", "otp"}) {
		t.Fatalf("session after confirmation: aal %d amr %v", s.AAL, s.AMR)
	}
	wantEvents(t, "confirm", f.newEvents(t, &cursor), "MFA_ENABLED "+sid)

	// A password login is level 1; a current code raises that session.
	f.clock.Advance(30 * time.Second)
	login, err := f.svc.Login(t.Context(), "alice", fixturePassword)
	if err != nil {
		t.Fatal(err)
	}
	lsid := strings.Split(login.AccessToken.Value, "|")[1]
	if s := f.session(t, lsid); s.AAL != 1 {
		t.Fatalf("password session of an account with a factor: aal %d", s.AAL)
	}
	code := codeAt(t, e.Secret, f.clock.Now())
	up, err := f.svc.VerifyMfa(f.at(t, login, 1), &code, nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Split(up.AccessToken.Value, "|")[1] != lsid || up.RefreshToken == login.RefreshToken {
		t.Fatal("verifyMfa: want new tokens for the same session")
	}
	if s := f.session(t, lsid); s.AAL != 2 || !slices.Equal(s.AMR, []string{"pwd", "otp"}) {
		t.Fatalf("session after verifyMfa: aal %d amr %v", s.AAL, s.AMR)
	}
}

// A code of the step before or after the current one is accepted; two
// steps away is not.
func TestTotpAcceptsOneStepEitherSide(t *testing.T) {
	f, _ := mfaFixture(t)
	reg, _, secret, _ := f.enrolled(t, "bob")
	f.clock.Advance(30 * time.Second) // the step before is not the confirmation's
	now := f.clock.Now()
	for _, tc := range []struct {
		name   string
		offset time.Duration
		ok     bool
	}{
		{"two steps before", -60 * time.Second, false},
		{"two steps after", 60 * time.Second, false},
		{"one step before", -30 * time.Second, true},
		{"current step", 0, true},
		{"one step after", 30 * time.Second, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code := codeAt(t, secret, now.Add(tc.offset))
			_, err := f.svc.VerifyMfa(f.at(t, reg, 1), &code, nil)
			if tc.ok && err != nil {
				t.Fatalf("err = %v, want it accepted", err)
			}
			if !tc.ok {
				wantCodeErr(t, err, ReasonIncorrect)
			}
		})
	}
}

// A TOTP code works once per step, for any session; the next step's code
// works.
func TestTotpReplayRefused(t *testing.T) {
	f, _ := mfaFixture(t)
	reg, _, secret, _ := f.enrolled(t, "carol")
	other, err := f.svc.Login(t.Context(), "carol", fixturePassword)
	if err != nil {
		t.Fatal(err)
	}
	code := codeAt(t, secret, f.clock.Now())
	if _, err := f.svc.VerifyMfa(f.at(t, reg, 1), &code, nil); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(10 * time.Second) // the same step or the next: the code is still in the window
	_, err = f.svc.VerifyMfa(f.at(t, other, 1), &code, nil)
	wantCodeErr(t, err, ReasonUsed)
	if s := f.session(t, strings.Split(other.AccessToken.Value, "|")[1]); s.AAL != 1 {
		t.Fatalf("a replayed code raised a session to %d", s.AAL)
	}
	f.clock.Advance(30 * time.Second)
	next := codeAt(t, secret, f.clock.Now())
	if _, err := f.svc.VerifyMfa(f.at(t, other, 1), &next, nil); err != nil {
		t.Fatalf("the next step's code: %v", err)
	}
}

// A recovery code works once ever, typed with or without its dash and in
// capitals; the session's amr says recovery.
func TestRecoveryCodeOnce(t *testing.T) {
	f, _ := mfaFixture(t)
	reg, _, _, codes := f.enrolled(t, "dave")
	login, err := f.svc.Login(t.Context(), "dave", fixturePassword)
	if err != nil {
		t.Fatal(err)
	}
	typed := strings.ToUpper(strings.ReplaceAll(codes[3], "-", ""))
	res, err := f.svc.VerifyMfa(f.at(t, login, 1), &typed, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := f.session(t, strings.Split(res.AccessToken.Value, "|")[1]); !slices.Equal(s.AMR, []string{"pwd", "recovery"}) {
		t.Fatalf("amr after a recovery code: %v", s.AMR)
	}
	f.clock.Advance(24 * time.Hour)
	_, err = f.svc.VerifyMfa(f.at(t, reg, 1), &codes[3], nil)
	wantCodeErr(t, err, ReasonUsed)
	if _, err := f.svc.VerifyMfa(f.at(t, reg, 1), &codes[4], nil); err != nil {
		t.Fatalf("another recovery code: %v", err)
	}
	for _, bad := range []string{"aaaaa-aaaaa", "", "12345", strings.Repeat("a", 100)} {
		_, err := f.svc.VerifyMfa(f.at(t, reg, 1), &bad, nil)
		wantCodeErr(t, err, ReasonIncorrect)
	}
}

// Of concurrent uses of one recovery code, exactly one raises its session.
func TestRecoveryCodeConcurrentUseOnce(t *testing.T) {
	f, _ := mfaFixture(t)
	reg, _, _, codes := f.enrolled(t, "erin")
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range 4 { // below the throttle, so that every call reaches the code
		wg.Go(func() {
			if _, err := f.svc.VerifyMfa(f.at(t, reg, 1), &codes[0], nil); err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d of 4 concurrent uses of one recovery code won, want 1", wins)
	}
}

// Wrong codes count toward a per-account throttle: once locked, RATE_LIMITED
// mfa, even for a right code, until the window passes; then one guess, and a
// success forgets the failures.
func TestWrongMfaCodesThrottled(t *testing.T) {
	f, _ := mfaFixture(t)
	reg, _, secret, _ := f.enrolled(t, "frank")
	wrong := "aaaaa-bbbbb"
	for range 5 {
		_, err := f.svc.VerifyMfa(f.at(t, reg, 1), &wrong, nil)
		wantCodeErr(t, err, ReasonIncorrect)
	}
	right := codeAt(t, secret, f.clock.Now())
	_, err := f.svc.VerifyMfa(f.at(t, reg, 1), &right, nil)
	wantMFALimited(t, err)
	// Another session of the account shares the throttle.
	other, err := f.svc.Login(t.Context(), "frank", fixturePassword)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.VerifyMfa(f.at(t, other, 1), &right, nil)
	wantMFALimited(t, err)
	// Another account does not.
	_, _, secret2, _ := f.enrolled(t, "grace")
	gl, err := f.svc.Login(t.Context(), "grace", fixturePassword)
	if err != nil {
		t.Fatal(err)
	}
	c2 := codeAt(t, secret2, f.clock.Now())
	if _, err := f.svc.VerifyMfa(f.at(t, gl, 1), &c2, nil); err != nil {
		t.Fatalf("another account: %v", err)
	}
	// After the window, one guess: a wrong one locks again at once.
	f.clock.Advance(time.Second)
	_, err = f.svc.VerifyMfa(f.at(t, reg, 1), &wrong, nil)
	wantCodeErr(t, err, ReasonIncorrect)
	_, err = f.svc.VerifyMfa(f.at(t, reg, 1), &right, nil)
	wantMFALimited(t, err)
	f.clock.Advance(2 * time.Second)
	right = codeAt(t, secret, f.clock.Now())
	if _, err := f.svc.VerifyMfa(f.at(t, reg, 1), &right, nil); err != nil {
		t.Fatalf("a right code after the window: %v", err)
	}
	// The success forgot the failures.
	for range 4 {
		_, err := f.svc.VerifyMfa(f.at(t, reg, 1), &wrong, nil)
		wantCodeErr(t, err, ReasonIncorrect)
	}
}

func TestDisableTotp(t *testing.T) {
	f, m := mfaFixture(t)
	reg, confirmed, secret, codes := f.enrolled(t, "heidi")
	uid := reg.User.ID
	code := codeAt(t, secret, f.clock.Now())
	if _, err := f.svc.DisableTotp(f.at(t, reg, 1), code); !errors.Is(err, ErrMFARequired) {
		t.Fatalf("disable at level 1: %v, want mfa_required", err)
	}
	_, err := f.svc.DisableTotp(f.at(t, confirmed, 2), "aaaaa-aaaaa")
	wantCodeErr(t, err, ReasonIncorrect)
	if !m.holds(uid) || !f.mfaEnabled(t, uid) {
		t.Fatal("a wrong code removed the factor")
	}
	var cursor int64
	f.newEvents(t, &cursor)
	if ok, err := f.svc.DisableTotp(f.at(t, confirmed, 2), code); err != nil || !ok {
		t.Fatalf("disable: %v, %v", ok, err)
	}
	if m.holds(uid) || f.mfaEnabled(t, uid) {
		t.Fatal("disabled: the app or its codes are left, or the account still has a factor")
	}
	wantEvents(t, "disable", f.newEvents(t, &cursor), "MFA_DISABLED "+strings.Split(confirmed.AccessToken.Value, "|")[1])
	_, err = f.svc.VerifyMfa(f.at(t, reg, 1), &codes[0], nil)
	wantCodeErr(t, err, ReasonIncorrect)
	if _, err := f.svc.DisableTotp(f.at(t, confirmed, 2), code); ErrorCode(err) != CodeNotFound {
		t.Fatalf("disable without an app: %v, want NOT_FOUND", err)
	}
	// A recovery code disables too (and is spent). A step's code works once
	// for the account, whatever the app: the new one starts at the next step.
	f.clock.Advance(30 * time.Second)
	_, confirmed, _, codes = f.enrolledAgain(t, reg)
	if ok, err := f.svc.DisableTotp(f.at(t, confirmed, 2), codes[0]); err != nil || !ok {
		t.Fatalf("disable with a recovery code: %v, %v", ok, err)
	}
}

// enrolledAgain gives reg's account a new app (its session at level 2).
func (f *fixture) enrolledAgain(t *testing.T, reg *Result) (*Result, *Result, string, []string) {
	t.Helper()
	e, err := f.svc.EnrollTotp(f.at(t, reg, 2))
	if err != nil {
		t.Fatal(err)
	}
	codes, res, err := f.svc.ConfirmTotp(f.at(t, reg, 2), codeAt(t, e.Secret, f.clock.Now()))
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(30 * time.Second)
	return reg, res, e.Secret, codes
}

// Once the account has a factor, enrolling another app needs level 2; its
// confirmation replaces the old app and its recovery codes.
func TestEnrollAgainNeedsLevel2(t *testing.T) {
	f, _ := mfaFixture(t)
	reg, _, oldSecret, oldCodes := f.enrolled(t, "ivan")
	if _, err := f.svc.EnrollTotp(f.at(t, reg, 1)); !errors.Is(err, ErrMFARequired) {
		t.Fatalf("enrol at level 1 with a factor: %v", err)
	}
	if _, _, err := f.svc.ConfirmTotp(f.at(t, reg, 1), "123456"); !errors.Is(err, ErrMFARequired) {
		t.Fatalf("confirm at level 1 with a factor: %v", err)
	}
	// A pending app is no factor: the old one still works meanwhile.
	e, err := f.svc.EnrollTotp(f.at(t, reg, 2))
	if err != nil {
		t.Fatal(err)
	}
	old := codeAt(t, oldSecret, f.clock.Now())
	if _, err := f.svc.VerifyMfa(f.at(t, reg, 1), &old, nil); err != nil {
		t.Fatalf("the confirmed app while another is pending: %v", err)
	}
	f.clock.Advance(30 * time.Second)
	if _, _, err := f.svc.ConfirmTotp(f.at(t, reg, 2), codeAt(t, e.Secret, f.clock.Now())); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(30 * time.Second)
	old = codeAt(t, oldSecret, f.clock.Now())
	if old == codeAt(t, e.Secret, f.clock.Now()) {
		t.Skip("both apps show the same code")
	}
	_, err = f.svc.VerifyMfa(f.at(t, reg, 1), &old, nil)
	wantCodeErr(t, err, ReasonIncorrect)
	_, err = f.svc.VerifyMfa(f.at(t, reg, 1), &oldCodes[0], nil)
	wantCodeErr(t, err, ReasonIncorrect)
}

func TestConfirmWithoutEnrolment(t *testing.T) {
	f, _ := mfaFixture(t)
	reg := f.register(t, "judy")
	_, _, err := f.svc.ConfirmTotp(f.at(t, reg, 1), "123456")
	wantCodeErr(t, err, ReasonRequired)
	code := "123456"
	_, err = f.svc.VerifyMfa(f.at(t, reg, 1), &code, nil)
	wantCodeErr(t, err, ReasonIncorrect)
}

func TestRegenerateRecoveryCodes(t *testing.T) {
	f, _ := mfaFixture(t)
	reg, confirmed, _, old := f.enrolled(t, "mallory")
	if _, err := f.svc.RegenerateRecoveryCodes(f.at(t, reg, 1)); !errors.Is(err, ErrMFARequired) {
		t.Fatalf("regenerate at level 1: %v", err)
	}
	codes, err := f.svc.RegenerateRecoveryCodes(f.at(t, confirmed, 2))
	if err != nil {
		t.Fatal(err)
	}
	if len(codes) != 10 || slices.ContainsFunc(codes, func(c string) bool { return slices.Contains(old, c) }) {
		t.Fatalf("new codes %q (old %q)", codes, old)
	}
	_, err = f.svc.VerifyMfa(f.at(t, reg, 1), &old[0], nil)
	wantCodeErr(t, err, ReasonIncorrect)
	if _, err := f.svc.VerifyMfa(f.at(t, reg, 1), &codes[0], nil); err != nil {
		t.Fatalf("a new code: %v", err)
	}
	// Without a factor there is nothing to recover.
	plain := f.register(t, "niaj")
	if _, err := f.svc.RegenerateRecoveryCodes(f.at(t, plain, 2)); ErrorCode(err) != CodeBadUserInput {
		t.Fatalf("regenerate without a factor: %v", err)
	}
}

func TestResetMfaByAdmin(t *testing.T) {
	f, m := mfaFixture(t)
	root := f.register(t, "root")
	if _, err := f.svc.GrantRole(t.Context(), "root", RoleAdmin); err != nil {
		t.Fatal(err)
	}
	reg, confirmed, _, _ := f.enrolled(t, "olivia")
	uid := reg.User.ID
	if _, err := f.svc.ResetMfa(f.at(t, confirmed, 2), uid); ErrorCode(err) != CodeForbidden {
		t.Fatalf("resetMfa by a user: %v, want FORBIDDEN", err)
	}
	if !m.holds(uid) {
		t.Fatal("a refused reset removed the factor")
	}
	var cursor int64
	f.newEvents(t, &cursor)
	u, err := f.svc.ResetMfa(f.at(t, root, 2), uid)
	if err != nil {
		t.Fatal(err)
	}
	if u.ID != uid || u.MFAEnabled || f.mfaEnabled(t, uid) || m.holds(uid) {
		t.Fatalf("after the reset: user %+v, stored factors %v", u, m.holds(uid))
	}
	for _, res := range []*Result{reg, confirmed} {
		if _, err := f.svc.VerifyAccessToken(res.AccessToken.Value); !errors.Is(err, ErrSessionRevoked) {
			t.Fatalf("a session after the reset: %v, want revoked", err)
		}
	}
	got := f.newEvents(t, &cursor)
	if len(got) == 0 || got[0] != "MFA_DISABLED" {
		t.Fatalf("events of the reset %q, want MFA_DISABLED first", got)
	}
	if _, err := f.svc.ResetMfa(f.at(t, root, 2), "ffffffffffffffffffffffff"); ErrorCode(err) != CodeNotFound {
		t.Fatalf("reset of no user: %v", err)
	}
}

// A password reset keeps the factor: the new session is level 1 and the
// account still needs its second factor.
func TestPasswordResetKeepsFactor(t *testing.T) {
	f, m := mfaFixture(t)
	reg, _, secret, _ := f.enrolled(t, "peggy")
	res, err := f.svc.ResetPassword(t.Context(), tokenOf(t, f.resetLink(t, "peggy")), "a brand new passphrase")
	if err != nil {
		t.Fatal(err)
	}
	if s := f.session(t, strings.Split(res.AccessToken.Value, "|")[1]); s.AAL != 1 || !f.mfaEnabled(t, reg.User.ID) || !m.holds(reg.User.ID) {
		t.Fatalf("after a reset: aal %d, mfa %v, factors %v", s.AAL, f.mfaEnabled(t, reg.User.ID), m.holds(reg.User.ID))
	}
	code := codeAt(t, secret, f.clock.Now())
	if _, err := f.svc.VerifyMfa(f.at(t, res, 1), &code, nil); err != nil {
		t.Fatalf("the app after a reset: %v", err)
	}
}

func TestDeleteAccountDeletesFactors(t *testing.T) {
	f, m := mfaFixture(t)
	reg, confirmed, _, _ := f.enrolled(t, "rupert")
	data, err := f.svc.ExportMyData(f.at(t, confirmed, 2))
	if err != nil {
		t.Fatal(err)
	}
	if u := data["user"].(map[string]any); u["totpEnabled"] != true || u["mfaEnabled"] != true {
		t.Fatalf("export: %v", u)
	}
	if ok, err := f.svc.DeleteAccount(f.at(t, confirmed, 2), fixturePassword); err != nil || !ok {
		t.Fatalf("delete: %v, %v", ok, err)
	}
	if m.holds(reg.User.ID) {
		t.Fatal("the factors of a deleted account are left")
	}
}

// The sealed secret is bound to its account and to the server's key.
func TestSealedSecretIsBound(t *testing.T) {
	f, m := mfaFixture(t)
	reg, _, secret, _ := f.enrolled(t, "sybil")
	app, err := m.TOTP(t.Context(), reg.User.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := f.svc.openTOTP(app); err != nil || got != secret {
		t.Fatalf("open: %q, %v", got, err)
	}
	moved := *app
	moved.UserID = "another"
	if _, err := f.svc.openTOTP(&moved); err == nil {
		t.Fatal("a secret moved to another account opened")
	}
	other := f.service(t, func(st *Stores, s *Settings) { st.MFA = m; s.Key = []byte("another-key-0123456789abcdef-0123456") })
	if _, err := other.openTOTP(app); err == nil {
		t.Fatal("a secret opened under another key")
	}
}

func TestMFAWithoutStore(t *testing.T) {
	f := newFixture(t)
	reg := f.register(t, "trent")
	if _, err := f.svc.EnrollTotp(f.as(t, reg)); ErrorCode(err) != CodeInternal {
		t.Fatalf("enrol without a store: %v", err)
	}
	code := "123456"
	if _, err := f.svc.VerifyMfa(f.as(t, reg), &code, nil); ErrorCode(err) != CodeInternal {
		t.Fatalf("verify without a store: %v", err)
	}
}

// With a passkey left, removing the app keeps the account's second factor;
// an admin's reset removes the passkeys too.
func TestTotpAndPasskeysTogether(t *testing.T) {
	f := newPasskeyFixture(t)
	reg, confirmed, secret, _ := f.enrolled(t, "victor")
	uid := reg.User.ID
	f.addPasskey(t, f.at(t, confirmed, 2), nil)
	if ok, err := f.svc.DisableTotp(f.at(t, confirmed, 2), codeAt(t, secret, f.clock.Now())); err != nil || !ok {
		t.Fatalf("disable: %v, %v", ok, err)
	}
	if !f.mfaEnabled(t, uid) {
		t.Fatal("the app was removed with a passkey left: the account lost its second factor")
	}
	if n, _ := f.svc.passkeyCount(t.Context(), uid); n != 1 {
		t.Fatalf("%d passkeys after disableTotp, want 1", n)
	}
	// Enrolling again needs level 2 while the passkey is the factor.
	if _, err := f.svc.EnrollTotp(f.at(t, reg, 1)); !errors.Is(err, ErrMFARequired) {
		t.Fatalf("enrol at level 1 with a passkey: %v", err)
	}
	f.clock.Advance(30 * time.Second)
	f.enrolledAgain(t, confirmed)
	root := f.register(t, "root")
	if _, err := f.svc.GrantRole(t.Context(), "root", RoleAdmin); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.ResetMfa(f.at(t, root, 2), uid); err != nil {
		t.Fatal(err)
	}
	if n, _ := f.svc.passkeyCount(t.Context(), uid); n != 0 || f.mfaEnabled(t, uid) || f.mfa.holds(uid) {
		t.Fatalf("after resetMfa: %d passkeys, mfa %v, app or codes %v", n, f.mfaEnabled(t, uid), f.mfa.holds(uid))
	}
}
