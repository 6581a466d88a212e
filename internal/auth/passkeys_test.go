package auth

import (
	"context"
	"errors"
	"github.com/authgql/server/internal/auth/passkeytest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// memPasskeys is an in-memory PasskeyStore.
type memPasskeys struct {
	mu   sync.Mutex
	byID map[string]PasskeyCredential
}

func (m *memPasskeys) Create(_ context.Context, c *PasskeyCredential) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.byID[c.ID]; ok {
		return ErrDuplicate
	}
	m.byID[c.ID] = *c
	return nil
}

func (m *memPasskeys) ByID(_ context.Context, id string) (*PasskeyCredential, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.byID[id]
	if !ok {
		return nil, ErrNotFound
	}
	return &c, nil
}

func (m *memPasskeys) ForUser(_ context.Context, userID string) ([]*PasskeyCredential, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*PasskeyCredential
	for _, c := range m.byID {
		if c.UserID == userID {
			out = append(out, &c)
		}
	}
	slices.SortFunc(out, func(a, b *PasskeyCredential) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}

func (m *memPasskeys) Rename(_ context.Context, userID, id, name string) (*PasskeyCredential, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.byID[id]
	if !ok || c.UserID != userID {
		return nil, ErrNotFound
	}
	c.Name = name
	m.byID[id] = c
	return &c, nil
}

func (m *memPasskeys) Used(_ context.Context, id string, count uint32, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.byID[id]
	if !ok {
		return ErrNotFound
	}
	c.SignCount, c.LastUsedAt = count, &at
	m.byID[id] = c
	return nil
}

func (m *memPasskeys) Delete(_ context.Context, userID, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.byID[id]
	if !ok || c.UserID != userID {
		return ErrNotFound
	}
	delete(m.byID, id)
	return nil
}

func (m *memPasskeys) DeleteForUser(_ context.Context, userID string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	for id, c := range m.byID {
		if c.UserID == userID {
			delete(m.byID, id)
			n++
		}
	}
	return n, nil
}

// memChallenges is an in-memory ChallengeStore.
type memChallenges struct {
	mu   sync.Mutex
	byID map[string]WebAuthnChallenge
}

func (m *memChallenges) Create(_ context.Context, c *WebAuthnChallenge) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.byID[c.ID]; ok {
		return ErrDuplicate
	}
	m.byID[c.ID] = *c
	return nil
}

func (m *memChallenges) ByID(_ context.Context, id string) (*WebAuthnChallenge, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.byID[id]
	if !ok {
		return nil, ErrNotFound
	}
	return &c, nil
}

func (m *memChallenges) DeleteExpired(_ context.Context, before time.Time) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	for id, c := range m.byID {
		if c.ExpiresAt.Before(before) {
			delete(m.byID, id)
			n++
		}
	}
	return n, nil
}

func (m *memChallenges) DeleteForUser(_ context.Context, userID string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	for id, c := range m.byID {
		if c.UserID == userID {
			delete(m.byID, id)
			n++
		}
	}
	return n, nil
}

const (
	testRPID   = "example.test"
	testOrigin = "https://app.example.test"
)

type passkeyFixture struct {
	*fixture
	creds      *memPasskeys
	challenges *memChallenges
	mfa        *memMFA
}

func newPasskeyFixture(t *testing.T) *passkeyFixture {
	t.Helper()
	f := &passkeyFixture{fixture: newFixture(t), creds: &memPasskeys{byID: map[string]PasskeyCredential{}},
		challenges: &memChallenges{byID: map[string]WebAuthnChallenge{}}, mfa: newMemMFA()}
	f.svc = f.service(t, func(st *Stores, set *Settings) {
		st.Passkeys, st.Challenges, st.MFA = f.creds, f.challenges, f.mfa
		set.WebAuthn = WebAuthnSettings{RPID: testRPID, RPName: "Test", Origins: []string{testOrigin}}
	})
	return f
}

// register gives res's account a passkey from ctx; it returns the key.
func (f *passkeyFixture) addPasskey(t *testing.T, ctx context.Context, name *string) (*passkeytest.Authenticator, *Passkey) {
	t.Helper()
	opts, err := f.svc.BeginPasskeyRegistration(ctx)
	if err != nil {
		t.Fatalf("BeginPasskeyRegistration: %v", err)
	}
	k := passkeytest.New(t, testRPID, testOrigin)
	p, err := f.svc.FinishPasskeyRegistration(ctx, k.Create(t, opts), name)
	if err != nil {
		t.Fatalf("FinishPasskeyRegistration: %v", err)
	}
	return k, p
}

func wantResponseErr(t *testing.T, err error, reason string) {
	t.Helper()
	e, ok := errors.AsType[*Error](err)
	if !ok || e.Code != CodeBadUserInput || e.Field != "response" || e.Reason != reason {
		t.Fatalf("err = %v (%+v), want BAD_USER_INPUT response %s", err, e, reason)
	}
}

func wantCode(t *testing.T, err error, code Code, reason string) {
	t.Helper()
	e, ok := errors.AsType[*Error](err)
	if !ok || e.Code != code || e.Reason != reason {
		t.Fatalf("err = %v, want %s %q", err, code, reason)
	}
}

func TestPasskeyRegistration(t *testing.T) {
	f := newPasskeyFixture(t)
	reg := f.register(t, "pk_ann")
	ctx := f.at(t, reg, 1)
	opts, err := f.svc.BeginPasskeyRegistration(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sel, _ := opts["authenticatorSelection"].(map[string]any)
	if sel["residentKey"] != "required" || sel["userVerification"] != "preferred" || opts["rp"].(map[string]any)["id"] != testRPID {
		t.Fatalf("creation options: %v", opts)
	}
	if got := opts["user"].(map[string]any)["id"]; got != b64.EncodeToString([]byte(reg.User.ID)) {
		t.Errorf("user.id = %v, want the account ID's bytes", got)
	}
	k := passkeytest.New(t, testRPID, testOrigin)
	resp := k.Create(t, opts)
	p, err := f.svc.FinishPasskeyRegistration(ctx, resp, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "Passkey" || p.ID != b64.EncodeToString(k.ID) || !p.CreatedAt.Equal(f.clock.Now().Truncate(time.Millisecond)) {
		t.Errorf("passkey = %+v", p)
	}
	if !f.mfaEnabled(t, reg.User.ID) {
		t.Error("the first passkey did not set mfaEnabled")
	}
	var types []SecurityEventType
	for _, e := range f.log.entries {
		for _, ev := range e.Events {
			types = append(types, ev.Type)
		}
	}
	if !slices.Contains(types, EventPasskeyAdded) || !slices.Contains(types, EventMFAEnabled) {
		t.Errorf("security events %v, want PASSKEY_ADDED and MFA_ENABLED", types)
	}
	// The same answer again (level 2 now that the account has a factor):
	// its challenge is used.
	_, err = f.svc.FinishPasskeyRegistration(f.at(t, reg, 2), resp, nil)
	wantResponseErr(t, err, ReasonUsed)

	// Now the account has a factor: a level-1 session may not add another.
	if _, err := f.svc.BeginPasskeyRegistration(f.at(t, reg, 1)); !errors.Is(err, ErrMFARequired) {
		t.Fatalf("begin at level 1 with a factor: err = %v, want mfa_required", err)
	}
	// Level 2 may; the first passkey is excluded.
	opts, err = f.svc.BeginPasskeyRegistration(f.at(t, reg, 2))
	if err != nil {
		t.Fatal(err)
	}
	ex, _ := opts["excludeCredentials"].([]any)
	if len(ex) != 1 || ex[0].(map[string]any)["id"] != p.ID {
		t.Errorf("excludeCredentials = %v, want the first passkey", opts["excludeCredentials"])
	}
	// The same authenticator's credential registered again is taken.
	_, err = f.svc.FinishPasskeyRegistration(f.at(t, reg, 2), k.Create(t, opts), nil)
	wantResponseErr(t, err, ReasonTaken)
	if n, _ := f.svc.passkeyCount(t.Context(), reg.User.ID); n != 1 {
		t.Errorf("passkeys: %d, want 1", n)
	}
}

func TestPasskeyNames(t *testing.T) {
	f := newPasskeyFixture(t)
	reg := f.register(t, "pk_names")
	ctx := f.at(t, reg, 2)
	name := "  YubiKey 5  "
	_, p := f.addPasskey(t, ctx, &name)
	if p.Name != "YubiKey 5" {
		t.Errorf("name = %q, want trimmed", p.Name)
	}
	for _, tt := range []struct{ name, reason string }{
		{"", ReasonRequired}, {"   ", ReasonRequired}, {strings.Repeat("é", 65), ReasonTooLong}, {"a\nb", ReasonInvalidFormat},
	} {
		_, err := f.svc.RenamePasskey(ctx, p.ID, tt.name)
		if e, ok := errors.AsType[*Error](err); !ok || e.Code != CodeBadUserInput || e.Field != "name" || e.Reason != tt.reason {
			t.Errorf("rename to %q: err = %v, want BAD_USER_INPUT name %s", tt.name, err, tt.reason)
		}
	}
	got, err := f.svc.RenamePasskey(ctx, p.ID, strings.Repeat("é", 64))
	if err != nil || got.Name != strings.Repeat("é", 64) {
		t.Fatalf("rename to 64 characters: %+v, %v", got, err)
	}
	// Another user's passkey is not found.
	other := f.register(t, "pk_other")
	if _, err := f.svc.RenamePasskey(f.at(t, other, 2), p.ID, "mine"); ErrorCode(err) != CodeNotFound {
		t.Errorf("rename of another's passkey: err = %v, want NOT_FOUND", err)
	}
	if _, err := f.svc.DeletePasskey(f.at(t, other, 2), p.ID); ErrorCode(err) != CodeNotFound {
		t.Errorf("delete of another's passkey: err = %v, want NOT_FOUND", err)
	}
	list, err := f.svc.Passkeys(ctx)
	if err != nil || len(list) != 1 || list[0].Name != strings.Repeat("é", 64) {
		t.Fatalf("passkeys = %+v, %v", list, err)
	}
}

func TestPasskeyMfa(t *testing.T) {
	f := newPasskeyFixture(t)
	reg := f.register(t, "pk_mfa")
	k, p := f.addPasskey(t, f.at(t, reg, 1), nil)
	login, err := f.svc.Login(t.Context(), "pk_mfa", fixturePassword)
	if err != nil {
		t.Fatal(err)
	}
	ctx := f.at(t, login, 1)
	opts, err := f.svc.BeginMfaPasskey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	allow, _ := opts["allowCredentials"].([]any)
	if len(allow) != 1 || allow[0].(map[string]any)["id"] != p.ID {
		t.Fatalf("allowCredentials = %v", opts["allowCredentials"])
	}
	resp := k.Get(t, opts)
	res, err := f.svc.VerifyMfa(ctx, nil, resp)
	if err != nil {
		t.Fatal(err)
	}
	sid := f.session(t, login.AccessToken.Value[strings.IndexByte(login.AccessToken.Value, '|')+1:])
	if sid.AAL != 2 || !slices.Equal(sid.AMR, []string{AMRPassword, AMRWebAuthn}) {
		t.Errorf("session after verifyMfa: aal %d amr %v", sid.AAL, sid.AMR)
	}
	if res.User.ID != reg.User.ID {
		t.Errorf("result user %s", res.User.ID)
	}
	stored, _ := f.creds.ByID(t.Context(), p.ID)
	if stored.SignCount != 1 || stored.LastUsedAt == nil {
		t.Errorf("stored after use: count %d, last used %v", stored.SignCount, stored.LastUsedAt)
	}
	// Replay: the challenge is used.
	_, err = f.svc.VerifyMfa(ctx, nil, resp)
	wantResponseErr(t, err, ReasonUsed)

	t.Run("another session's challenge", func(t *testing.T) {
		other, err := f.svc.Login(t.Context(), "pk_mfa", fixturePassword)
		if err != nil {
			t.Fatal(err)
		}
		opts, err := f.svc.BeginMfaPasskey(f.at(t, other, 1))
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.VerifyMfa(ctx, nil, k.Get(t, opts))
		wantResponseErr(t, err, ReasonUnknown)
	})
	t.Run("another user's challenge", func(t *testing.T) {
		mal := f.register(t, "pk_mal")
		opts, err := f.svc.BeginPasskeyRegistration(f.at(t, mal, 1))
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.VerifyMfa(ctx, nil, k.Get(t, opts))
		wantResponseErr(t, err, ReasonUnknown)
	})
	t.Run("a login challenge", func(t *testing.T) {
		opts, err := f.svc.BeginPasskeyLogin(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.VerifyMfa(ctx, nil, k.Get(t, opts))
		wantResponseErr(t, err, ReasonUnknown)
	})
	t.Run("expired", func(t *testing.T) {
		opts, err := f.svc.BeginMfaPasskey(ctx)
		if err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(2 * time.Minute)
		_, err = f.svc.VerifyMfa(ctx, nil, k.Get(t, opts))
		wantResponseErr(t, err, ReasonExpired)
	})
	t.Run("sign count regression", func(t *testing.T) {
		opts, err := f.svc.BeginMfaPasskey(ctx)
		if err != nil {
			t.Fatal(err)
		}
		before, _ := f.creds.ByID(t.Context(), p.ID)
		clone := *k
		clone.Count = before.SignCount // a clone that lags behind: the same counter again
		_, err = f.svc.VerifyMfa(ctx, nil, clone.Assert(t, opts))
		wantResponseErr(t, err, ReasonSignCount)
		if after, _ := f.creds.ByID(t.Context(), p.ID); after.SignCount != before.SignCount {
			t.Errorf("counter after a regression: %d, want %d", after.SignCount, before.SignCount)
		}
	})
	t.Run("malformed", func(t *testing.T) {
		for _, resp := range []map[string]any{{}, {"id": "x"}, {"id": p.ID, "rawId": p.ID, "type": "public-key", "response": "no"}} {
			_, err := f.svc.VerifyMfa(ctx, nil, resp)
			wantResponseErr(t, err, ReasonInvalidFormat)
		}
	})
	t.Run("a key of another account", func(t *testing.T) {
		mal := f.register(t, "pk_mal2")
		malKey, _ := f.addPasskey(t, f.at(t, mal, 1), nil)
		opts, err := f.svc.BeginMfaPasskey(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.VerifyMfa(ctx, nil, malKey.Get(t, opts))
		wantResponseErr(t, err, ReasonUnknownCredential)
	})
}

func TestPasskeyOrigins(t *testing.T) {
	f := newPasskeyFixture(t)
	reg := f.register(t, "pk_origin")
	ctx := f.at(t, reg, 1)
	for _, tt := range []struct {
		name         string
		rpID, origin string
		reason       string
	}{
		{"wrong origin", testRPID, "https://evil.example", ReasonOriginNotAllowed},
		{"loopback not configured", testRPID, "http://localhost:3000", ReasonOriginNotAllowed},
		{"wrong RP ID", "evil.example", testOrigin, ReasonRejected},
	} {
		t.Run(tt.name, func(t *testing.T) {
			opts, err := f.svc.BeginPasskeyRegistration(ctx)
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.svc.FinishPasskeyRegistration(ctx, passkeytest.New(t, tt.rpID, tt.origin).Create(t, opts), nil)
			wantResponseErr(t, err, tt.reason)
		})
	}
	if n, _ := f.svc.passkeyCount(t.Context(), reg.User.ID); n != 0 || f.mfaEnabled(t, reg.User.ID) {
		t.Errorf("after refusals: %d passkeys, mfaEnabled %v; want none stored", n, f.mfaEnabled(t, reg.User.ID))
	}

	// Development: any loopback port.
	dev := newPasskeyFixture(t)
	dev.svc = dev.service(t, func(st *Stores, set *Settings) {
		st.Passkeys, st.Challenges = dev.creds, dev.challenges
		set.WebAuthn = WebAuthnSettings{RPID: "localhost", AnyLoopbackPort: true}
	})
	reg = dev.register(t, "pk_dev")
	opts, err := dev.svc.BeginPasskeyRegistration(dev.at(t, reg, 1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dev.svc.FinishPasskeyRegistration(dev.at(t, reg, 2), passkeytest.New(t, "localhost", "http://localhost:5173").Create(t, opts), nil); err != nil {
		t.Fatalf("a loopback origin in development: %v", err)
	}
}

func TestLoopbackOrigin(t *testing.T) {
	for o, want := range map[string]bool{
		"http://localhost:3000": true, "http://127.0.0.1:8080": true, "http://localhost": true,
		"https://localhost:3000": false, "http://localhost:3000/": false, "http://localhost.evil.com:3000": false,
		"http://evil.com#localhost:3000": false, "http://user@localhost:3000": false, "http://localhost:0": false,
		"http://localhost:65536": false, "http://localhost:": false, "http://LOCALHOST:3000": false, "http://localhost:03000": false,
	} {
		if got := LoopbackOrigin(o); got != want {
			t.Errorf("LoopbackOrigin(%q) = %v, want %v", o, got, want)
		}
	}
}

func TestPasskeyLogin(t *testing.T) {
	f := newPasskeyFixture(t)
	reg := f.register(t, "pk_login")
	k, p := f.addPasskey(t, f.at(t, reg, 1), nil)

	opts, err := f.svc.BeginPasskeyLogin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if opts["userVerification"] != "required" || opts["allowCredentials"] != nil {
		t.Fatalf("login options: %v", opts)
	}
	resp := k.Get(t, opts)
	res, err := f.svc.FinishPasskeyLogin(t.Context(), resp)
	if err != nil {
		t.Fatal(err)
	}
	sess := f.session(t, res.AccessToken.Value[strings.IndexByte(res.AccessToken.Value, '|')+1:])
	if res.User.ID != reg.User.ID || sess.AAL != 2 || !slices.Equal(sess.AMR, []string{AMRWebAuthn}) {
		t.Fatalf("login: user %s, session aal %d amr %v", res.User.ID, sess.AAL, sess.AMR)
	}
	_, err = f.svc.FinishPasskeyLogin(t.Context(), resp)
	wantResponseErr(t, err, ReasonUsed)

	t.Run("without user verification", func(t *testing.T) {
		opts, _ := f.svc.BeginPasskeyLogin(t.Context())
		k.UV = false
		t.Cleanup(func() { k.UV = true })
		_, err := f.svc.FinishPasskeyLogin(t.Context(), k.Get(t, opts))
		wantResponseErr(t, err, ReasonUserVerification)
	})
	t.Run("unknown credential", func(t *testing.T) {
		opts, _ := f.svc.BeginPasskeyLogin(t.Context())
		stranger := passkeytest.New(t, testRPID, testOrigin)
		stranger.UserHandle = []byte(reg.User.ID)
		_, err := f.svc.FinishPasskeyLogin(t.Context(), stranger.Get(t, opts))
		wantResponseErr(t, err, ReasonUnknownCredential)
	})
	t.Run("another account's user handle", func(t *testing.T) {
		opts, _ := f.svc.BeginPasskeyLogin(t.Context())
		lie := *k
		lie.UserHandle = []byte("000000000000000000000000")
		_, err := f.svc.FinishPasskeyLogin(t.Context(), lie.Get(t, opts))
		wantResponseErr(t, err, ReasonRejected)
		k.Count = lie.Count
	})
	t.Run("an mfa challenge", func(t *testing.T) {
		opts, err := f.svc.BeginMfaPasskey(f.at(t, reg, 1))
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.FinishPasskeyLogin(t.Context(), k.Get(t, opts))
		wantResponseErr(t, err, ReasonUnknown)
	})
	t.Run("disabled account", func(t *testing.T) {
		if _, err := f.users.SetDisabled(t.Context(), reg.User.ID, true); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.users.SetDisabled(context.Background(), reg.User.ID, false) })
		opts, _ := f.svc.BeginPasskeyLogin(t.Context())
		_, err := f.svc.FinishPasskeyLogin(t.Context(), k.Get(t, opts))
		wantCode(t, err, CodeForbidden, ReasonUserDisabled)
	})
	t.Run("one of many racing answers", func(t *testing.T) {
		opts, _ := f.svc.BeginPasskeyLogin(t.Context())
		resp := k.Get(t, opts)
		var wins atomic.Int32
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				if _, err := f.svc.FinishPasskeyLogin(context.Background(), resp); err == nil {
					wins.Add(1)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Errorf("%d racing answers of one challenge won, want 1", wins.Load())
		}
	})
	t.Run("racing challenges with one counter", func(t *testing.T) {
		// A cloned authenticator answers two challenges with the same
		// counter: the stored counter is read before either writes, the
		// counter's marker lets one through.
		o1, _ := f.svc.BeginPasskeyLogin(t.Context())
		o2, _ := f.svc.BeginPasskeyLogin(t.Context())
		k.Count++
		r1, r2 := k.Assert(t, o1), k.Assert(t, o2)
		_, err1 := f.svc.FinishPasskeyLogin(t.Context(), r1)
		_, err2 := f.svc.FinishPasskeyLogin(t.Context(), r2)
		if err1 != nil {
			t.Fatal(err1)
		}
		wantResponseErr(t, err2, ReasonSignCount)
	})
	_ = p
}

func TestDeletePasskey(t *testing.T) {
	f := newPasskeyFixture(t)
	reg := f.register(t, "pk_del")
	_, p1 := f.addPasskey(t, f.at(t, reg, 1), nil)
	_, p2 := f.addPasskey(t, f.at(t, reg, 2), nil)
	if _, err := f.svc.DeletePasskey(f.at(t, reg, 1), p1.ID); !errors.Is(err, ErrMFARequired) {
		t.Fatalf("delete at level 1: err = %v, want mfa_required", err)
	}
	if ok, err := f.svc.DeletePasskey(f.at(t, reg, 2), p1.ID); !ok || err != nil {
		t.Fatalf("delete: %v, %v", ok, err)
	}
	if !f.mfaEnabled(t, reg.User.ID) {
		t.Fatal("one passkey left: mfaEnabled must stay")
	}
	// A confirmed app keeps the account's factor when the last passkey goes.
	f.mfa.PutTOTP(t.Context(), &TOTP{UserID: reg.User.ID, Confirmed: true})
	if _, err := f.svc.DeletePasskey(f.at(t, reg, 2), p2.ID); err != nil {
		t.Fatal(err)
	}
	if !f.mfaEnabled(t, reg.User.ID) {
		t.Fatal("an app left: mfaEnabled must stay")
	}
	f.mfa.DeleteForUser(t.Context(), reg.User.ID)
	_, p3 := f.addPasskey(t, f.at(t, reg, 2), nil)
	if _, err := f.svc.DeletePasskey(f.at(t, reg, 2), p3.ID); err != nil {
		t.Fatal(err)
	}
	if f.mfaEnabled(t, reg.User.ID) {
		t.Fatal("no factor left: mfaEnabled must be off")
	}
	if _, err := f.svc.DeletePasskey(f.at(t, reg, 2), p3.ID); ErrorCode(err) != CodeNotFound {
		t.Errorf("delete again: err = %v, want NOT_FOUND", err)
	}
}

func TestPasskeysDeletedWithAccount(t *testing.T) {
	f := newPasskeyFixture(t)
	reg := f.register(t, "pk_gone")
	f.addPasskey(t, f.at(t, reg, 1), nil)
	if _, err := f.svc.BeginMfaPasskey(f.at(t, reg, 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.DeleteAccount(f.at(t, reg, 2), fixturePassword); err != nil {
		t.Fatal(err)
	}
	if n, _ := f.creds.ForUser(t.Context(), reg.User.ID); len(n) != 0 {
		t.Errorf("passkeys left: %d", len(n))
	}
	if n, _ := f.challenges.DeleteForUser(t.Context(), reg.User.ID); n != 0 {
		t.Errorf("challenges left: %d", n)
	}
}

func TestPasskeysOff(t *testing.T) {
	f := newFixture(t)
	reg := f.register(t, "pk_off")
	ctx := f.at(t, reg, 2)
	for name, call := range map[string]func() error{
		"begin registration": func() error { _, err := f.svc.BeginPasskeyRegistration(ctx); return err },
		"list":               func() error { _, err := f.svc.Passkeys(ctx); return err },
		"begin login":        func() error { _, err := f.svc.BeginPasskeyLogin(t.Context()); return err },
		"verify":             func() error { _, err := f.svc.VerifyMfa(ctx, nil, map[string]any{}); return err },
	} {
		if err := call(); err != errPasskeysOff {
			t.Errorf("%s: err = %v, want passkeys not configured", name, err)
		}
	}
}
