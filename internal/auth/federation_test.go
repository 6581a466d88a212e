package auth

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// memIdentities and memCodes are in-memory fakes of the federation stores.
type memIdentities struct {
	mu sync.Mutex
	m  map[string]Identity // by provider + "\x00" + subject
}

func (s *memIdentities) Create(_ context.Context, i *Identity) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := i.Provider + "\x00" + i.Subject
	if _, ok := s.m[k]; ok {
		return ErrDuplicate
	}
	i.ID = "id-" + i.Provider + "-" + i.Subject
	s.m[k] = *i
	return nil
}

func (s *memIdentities) ByProviderSubject(_ context.Context, provider, subject string) (*Identity, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.m[provider+"\x00"+subject]
	if !ok {
		return nil, ErrNotFound
	}
	return &i, nil
}

func (s *memIdentities) ForUser(_ context.Context, userID string) ([]*Identity, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*Identity
	for _, i := range s.m {
		if i.UserID == userID {
			out = append(out, &i)
		}
	}
	return out, nil
}

func (s *memIdentities) Delete(_ context.Context, userID, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, i := range s.m {
		if i.ID == id && i.UserID == userID {
			delete(s.m, k)
			return nil
		}
	}
	return ErrNotFound
}

func (s *memIdentities) DeleteForUser(_ context.Context, userID string) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for k, i := range s.m {
		if i.UserID == userID {
			delete(s.m, k)
			n++
		}
	}
	return n, nil
}

type memCodes struct {
	mu sync.Mutex
	m  map[string]OneTimeCode
}

func (s *memCodes) Create(_ context.Context, c *OneTimeCode) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[c.Hash]; ok {
		return ErrDuplicate
	}
	s.m[c.Hash] = *c
	return nil
}

func (s *memCodes) ByHash(_ context.Context, hash string) (*OneTimeCode, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.m[hash]
	if !ok {
		return nil, ErrNotFound
	}
	return &c, nil
}

func (s *memCodes) DeleteForUser(context.Context, string) (int64, error) { return 0, nil }

func (s *memCodes) DeleteExpired(context.Context, time.Time) (int64, error) { return 0, nil }

// fedService is f's service with the federation stores.
func (f *fixture) fedService(t *testing.T) (*Service, *memIdentities) {
	t.Helper()
	ids := &memIdentities{m: map[string]Identity{}}
	svc := f.service(t, func(st *Stores, set *Settings) {
		st.Identities, st.OneTimeCodes = ids, &memCodes{m: map[string]OneTimeCode{}}
		set.Providers = func() []ProviderInfo { return []ProviderInfo{{Name: "idp", DisplayName: "The IdP"}} }
	})
	return svc, ids
}

func TestUsernameCandidates(t *testing.T) {
	for _, tc := range []struct {
		fi   FederatedIdentity
		addr string
		want string
	}{
		{FederatedIdentity{PreferredUsername: "jane.doe"}, "x@y.z", "jane.doe"},
		{FederatedIdentity{Name: "José  Müller"}, "x@y.z", "Jose.Muller"},
		{FederatedIdentity{PreferredUsername: "@@", Name: "李"}, "ann.lee+tag@y.z", "ann.leetag"},
		{FederatedIdentity{PreferredUsername: "a"}, "b@y.z", "user"},
		{FederatedIdentity{PreferredUsername: "<script>alert(1)</script>"}, "b@y.z", "scriptalert1script"},
		{FederatedIdentity{PreferredUsername: strings.Repeat("long", 20)}, "b@y.z", strings.Repeat("long", 8)},
		{FederatedIdentity{PreferredUsername: "..dots..__"}, "b@y.z", "dots"},
	} {
		got := usernameCandidates(tc.fi, tc.addr)
		if got[0] != tc.want {
			t.Errorf("%+v: first candidate %q, want %q", tc.fi, got[0], tc.want)
		}
		for _, name := range got {
			if _, _, err := NormalizeUsername(name); err != nil {
				t.Errorf("candidate %q breaks the username rules: %v", name, err)
			}
		}
		if len(slices.Compact(slices.Clone(got))) < 5 {
			t.Errorf("too few distinct candidates: %q", got)
		}
	}
}

// A password-less account costs a login the same bcrypt comparison as any
// other, and never matches.
func TestLoginWithoutPassword(t *testing.T) {
	f := newFixture(t)
	svc, _ := f.fedService(t)
	out, err := svc.SignInFederated(t.Context(), FederatedIdentity{Provider: "idp", Subject: "s1",
		Email: "nopw@example.com", EmailVerified: true, PreferredUsername: "nopw"}, LinkTarget{})
	if err != nil || out.Code == "" {
		t.Fatalf("SignInFederated = %+v, %v", out, err)
	}
	for _, login := range []string{"nopw", "nopw@example.com", "nobody"} {
		before := svc.PasswordChecks()
		if _, err := svc.Login(t.Context(), login, fixturePassword); ErrorCode(err) != CodeInvalidCredentials {
			t.Errorf("Login(%s) = %v, want INVALID_CREDENTIALS", login, err)
		}
		if n := svc.PasswordChecks() - before; n != 1 {
			t.Errorf("Login(%s) ran %d bcrypt comparisons, want 1", login, n)
		}
	}
}

func TestSignInFederatedRules(t *testing.T) {
	f := newFixture(t)
	svc, ids := f.fedService(t)
	ctx := t.Context()
	fi := func(sub, email string, verified bool) FederatedIdentity {
		return FederatedIdentity{Provider: "idp", Subject: sub, Email: email, EmailVerified: verified}
	}

	if _, err := svc.SignInFederated(ctx, fi("u1", "u1@example.com", false), LinkTarget{}); ErrorReason(err) != ReasonEmailNotVerified {
		t.Errorf("unverified: %v", err)
	}
	if _, err := svc.SignInFederated(ctx, fi("u1", "", true), LinkTarget{}); ErrorReason(err) != ReasonEmailNotVerified {
		t.Errorf("no address: %v", err)
	}
	f.register(t, "squatter") // squatter@example.com, unverified
	if _, err := svc.SignInFederated(ctx, fi("u2", "SQUATTER@example.com", true), LinkTarget{}); ErrorReason(err) != ReasonAccountExists {
		t.Errorf("unverified account: %v", err)
	}
	owner := f.register(t, "owner")
	if err := f.users.SetEmailVerified(ctx, owner.User.ID, "owner@example.com"); err != nil {
		t.Fatal(err)
	}
	out, err := svc.SignInFederated(ctx, fi("u3", "owner@example.com", true), LinkTarget{})
	if err != nil || out.UserID != owner.User.ID {
		t.Fatalf("verified on both sides = %+v, %v", out, err)
	}
	mails := f.outbox.mails
	if last := mails[len(mails)-1]; last.Kind != MailIdentityLinked || last.UserID != owner.User.ID || last.Provider != "The IdP" {
		t.Errorf("last mail = %+v, want IDENTITY_LINKED to owner", last)
	}
	res, err := svc.ExchangeAuthCode(ctx, out.Code)
	if err != nil || res.User.ID != owner.User.ID {
		t.Fatalf("ExchangeAuthCode = %v", err)
	}
	if _, err := svc.ExchangeAuthCode(ctx, out.Code); ErrorReason(err) != ReasonUsed {
		t.Errorf("second exchange: %v", err)
	}
	// Linking a known identity to another account from a session.
	if _, err := svc.SignInFederated(ctx, fi("u3", "owner@example.com", true), LinkTarget{UserID: "another", SessionID: "s"}); ErrorReason(err) != ReasonAccountExists {
		t.Errorf("link of another account's identity: %v", err)
	}
	if len(ids.m) != 1 {
		t.Errorf("%d identities, want 1", len(ids.m))
	}
	// Expiry of a code.
	out, err = svc.SignInFederated(ctx, fi("u3", "owner@example.com", true), LinkTarget{})
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(SignInCodeTTL)
	if _, err := svc.ExchangeAuthCode(ctx, out.Code); ErrorReason(err) != ReasonExpired {
		t.Errorf("expired exchange: %v", err)
	}
}

// raceIdentities links the identity itself just before the first Create,
// as a concurrent sign-in that found the new account by its address would.
type raceIdentities struct {
	*memIdentities
	once sync.Once
}

func (r *raceIdentities) Create(ctx context.Context, i *Identity) error {
	raced := false
	r.once.Do(func() {
		other := *i
		_ = r.memIdentities.Create(ctx, &other)
		raced = true
	})
	if raced {
		return ErrDuplicate
	}
	return r.memIdentities.Create(ctx, i)
}

// A first sign-in whose identity another sign-in linked to the account it
// just created keeps that account (deleting it would orphan the identity).
func TestSignInFederatedKeepsAccountLinkedMeanwhile(t *testing.T) {
	f := newFixture(t)
	ids := &raceIdentities{memIdentities: &memIdentities{m: map[string]Identity{}}}
	svc := f.service(t, func(st *Stores, _ *Settings) {
		st.Identities, st.OneTimeCodes = ids, &memCodes{m: map[string]OneTimeCode{}}
	})
	out, err := svc.SignInFederated(t.Context(), FederatedIdentity{Provider: "idp", Subject: "s",
		Email: "raced@example.com", EmailVerified: true}, LinkTarget{})
	if err != nil {
		t.Fatal(err)
	}
	u, err := f.users.ByID(t.Context(), out.UserID)
	if err != nil || u.EmailKey != "raced@example.com" {
		t.Fatalf("the signed-in account: %+v, %v", u, err)
	}
	if got, _ := ids.ByProviderSubject(t.Context(), "idp", "s"); got == nil || got.UserID != u.ID {
		t.Errorf("identity = %+v, want it on %s", got, u.ID)
	}
}

// A link flow links nothing at its end: its link code links the identity
// only when the session that asked for the link exchanges it, and keeps
// that session. Other callers are refused without spending the code.
func TestLinkCodeConfirm(t *testing.T) {
	f := newFixture(t)
	svc, ids := f.fedService(t)
	owner := f.register(t, "owner")
	intruder := f.register(t, "intruder")
	elsewhere, err := svc.Login(t.Context(), "owner", fixturePassword)
	if err != nil {
		t.Fatal(err)
	}
	asOwner := f.at(t, owner, 2)
	tk, err := svc.BeginLinkIdentity(asOwner)
	if err != nil {
		t.Fatal(err)
	}
	target, err := svc.TakeLinkTicket(t.Context(), tk)
	if err != nil {
		t.Fatal(err)
	}
	claims, _ := ClaimsFromContext(asOwner)
	if target != (LinkTarget{UserID: owner.User.ID, SessionID: claims.SessionID}) {
		t.Fatalf("TakeLinkTicket = %+v", target)
	}
	out, err := svc.SignInFederated(t.Context(), FederatedIdentity{Provider: "idp", Subject: "victim",
		Email: "victim@example.com", EmailVerified: true}, target)
	if err != nil || !out.Link || out.Code == "" {
		t.Fatalf("SignInFederated of a link flow = %+v, %v; want a link code", out, err)
	}
	if len(ids.m) != 0 {
		t.Fatalf("linked at the callback: %v", ids.m)
	}
	for name, tc := range map[string]struct {
		ctx          context.Context
		code, reason string
	}{
		"no token":             {t.Context(), string(CodeInvalidAuthCode), ReasonUnknown},
		"another user":         {f.at(t, intruder, 2), string(CodeInvalidAuthCode), ReasonUnknown},
		"another session":      {f.at(t, elsewhere, 2), string(CodeInvalidAuthCode), ReasonUnknown},
		"the session, level 1": {f.at(t, owner, 1), string(CodeForbidden), ReasonMFARequired},
		"a refused token":      {WithTokenError(t.Context(), ErrTokenInvalid), string(CodeUnauthenticated), ErrTokenInvalid.Reason},
	} {
		_, err := svc.ExchangeAuthCode(tc.ctx, out.Code)
		if string(ErrorCode(err)) != tc.code || ErrorReason(err) != tc.reason {
			t.Errorf("%s: %v; want %s %s", name, err, tc.code, tc.reason)
		}
	}
	if len(ids.m) != 0 {
		t.Fatalf("linked by a refused exchange: %v", ids.m)
	}
	res, err := svc.ExchangeAuthCode(asOwner, out.Code)
	if err != nil {
		t.Fatalf("the session's exchange: %v", err)
	}
	got, err := svc.VerifyAccessToken(res.AccessToken.Value)
	if err != nil || got.SessionID != claims.SessionID || res.User.ID != owner.User.ID {
		t.Errorf("the exchange's tokens: %+v, %v; want session %s", got, err, claims.SessionID)
	}
	if i, err := ids.ByProviderSubject(t.Context(), "idp", "victim"); err != nil || i.UserID != owner.User.ID {
		t.Errorf("identity = %+v, %v", i, err)
	}
	if last := f.outbox.mails[len(f.outbox.mails)-1]; last.Kind != MailIdentityLinked || last.UserID != owner.User.ID {
		t.Errorf("last mail = %+v, want IDENTITY_LINKED to owner", last)
	}
	if _, err := svc.ExchangeAuthCode(asOwner, out.Code); ErrorReason(err) != ReasonUsed {
		t.Errorf("second exchange: %v", err)
	}
}
