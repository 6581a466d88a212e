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
