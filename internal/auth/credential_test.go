package auth

import (
	"fmt"
	"testing"
	"time"
)

// A read that began before an invalidation is not cached after it: a copy
// read before a local setUserRoles must not outlive it.
func TestUserCacheDropsReadsOlderThanAnInvalidation(t *testing.T) {
	store := newMemUsers()
	clock := newTestClock()
	c := newUserCache(store, time.Minute, clock.Now)
	u := &User{Username: "bob", UsernameKey: "bob", EmailKey: "bob@example.com", Roles: []Role{RoleUser, RoleAdmin}}
	if err := store.Create(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	// The read returns the old user, then — before it is cached — a local
	// write changes the roles and invalidates.
	store.onGet = func() {
		store.onGet = nil
		if _, err := c.SetRoles(t.Context(), u.ID, []Role{RoleUser}); err != nil {
			t.Fatal(err)
		}
	}
	old, err := c.ByID(t.Context(), u.ID)
	if err != nil || !old.HasRole(RoleAdmin) {
		t.Fatalf("the racing read = %+v, %v; want the old roles", old, err)
	}
	got, err := c.ByID(t.Context(), u.ID)
	if err != nil || got.HasRole(RoleAdmin) {
		t.Fatalf("after the demotion the cache serves %v: a copy read before the change was stored", got.Roles)
	}
}

func TestRefreshRefusesSessionsOfAnOldPassword(t *testing.T) {
	f := newFixture(t)
	first := f.register(t, "alice")
	// A session whose stamp is no longer the user's (its revocation never
	// landed) cannot refresh.
	u, _ := f.users.ByID(t.Context(), first.User.ID)
	if err := f.users.SetPassword(t.Context(), u.ID, u.PasswordHash, u.PasswordHash, "changed-elsewhere"); err != nil {
		t.Fatal(err)
	}
	f.svc.users.(*userCache).forget(u.ID)
	_, err := f.svc.Refresh(t.Context(), first.RefreshToken)
	if e, ok := err.(*Error); !ok || e.Code != CodeInvalidRefresh || e.Reason != ReasonRevoked {
		t.Fatalf("refresh of a session from old credentials: %v, want INVALID_REFRESH_TOKEN revoked", err)
	}
	if _, err := f.svc.VerifyAccessToken(first.AccessToken.Value); err != ErrSessionRevoked {
		t.Fatalf("its access token: %v, want revoked", err)
	}
}

func TestChangePasswordKeepsOnlyTheCurrentSession(t *testing.T) {
	f := newFixture(t)
	first := f.register(t, "alice")
	other, err := f.svc.Login(t.Context(), "alice", fixturePassword)
	if err != nil {
		t.Fatal(err)
	}
	ctx := f.as(t, first)
	if _, err := f.svc.ChangePassword(ctx, "not it at all", "another good passphrase"); ErrorCode(err) != CodeBadUserInput {
		t.Fatalf("wrong current password: %v", err)
	}
	res, err := f.svc.ChangePassword(ctx, fixturePassword, "another good passphrase")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.VerifyAccessToken(other.AccessToken.Value); err != ErrSessionRevoked {
		t.Fatalf("other session: %v, want revoked", err)
	}
	if _, err := f.svc.Refresh(t.Context(), res.RefreshToken); err != nil {
		t.Fatalf("the session that changed the password cannot refresh: %v", err)
	}
}

// Revocations are read by number: one stamped a minute in the past by a
// skewed writer is read all the same.
func TestSyncReadsByNumberNotTime(t *testing.T) {
	f := newFixture(t)
	if err := f.svc.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := f.log.Append(t.Context(), RevocationEntry{SessionIDs: []string{fmt.Sprint("s", i)}, At: f.clock.Now().Add(-time.Duration(i+1) * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	f.clock.Advance(time.Second)
	if err := f.svc.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if !f.svc.revoked.has(fmt.Sprint("s", i)) {
			t.Fatalf("s%d, written with a skewed clock, was not read", i)
		}
	}
	// Forgotten an access token's lifetime after this instance learnt of it.
	f.clock.Advance(f.svc.horizon() + time.Second)
	if err := f.svc.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if f.svc.revoked.has("s0") {
		t.Fatal("revocations are never forgotten")
	}
}

func TestBootstrapAdminsOnlyWithoutAnAdmin(t *testing.T) {
	f := newFixture(t)
	f.register(t, "first")
	out, err := f.svc.BootstrapAdmins(t.Context(), []string{"first", "later"})
	if err != nil || len(out) != 2 || !out[0].Granted || out[1].Reason != "no_such_user" {
		t.Fatalf("bootstrap = %+v, %v", out, err)
	}
	f.register(t, "later") // a listed name registered after the bootstrap
	out, err = f.svc.BootstrapAdmins(t.Context(), []string{"first", "later"})
	if err != nil || out[1].Granted || out[1].Reason != "admin_exists" {
		t.Fatalf("second start = %+v, %v", out, err)
	}
	if u, _ := f.users.ByUsernameKey(t.Context(), "later"); u.HasRole(RoleAdmin) {
		t.Fatal("a name registered after the bootstrap became ADMIN")
	}
}

func TestIPv6ClientsShareTheir64(t *testing.T) {
	l := newIPLimiter(Rate{N: 3, Per: time.Minute}, 1000)
	now := time.Now()
	allowed := 0
	for i := range 100 {
		if ok, _ := l.allow(fmt.Sprintf("2001:db8:1:2:%x::1", i), now); ok {
			allowed++
		}
	}
	if allowed != 3 || l.size() != 1 {
		t.Fatalf("100 addresses of one /64: %d allowed in %d buckets, want 3 in 1", allowed, l.size())
	}
	if ok, _ := l.allow("2001:db8:1:3::1", now); !ok {
		t.Fatal("another /64 shares the bucket")
	}
	if ok, _ := l.allow("::ffff:192.0.2.1", now); !ok || ipBucketKey("::ffff:192.0.2.1") != "192.0.2.1" {
		t.Fatal("a v4-mapped address is not its IPv4 address")
	}
}

func TestIPLimiterIsBounded(t *testing.T) {
	l := newIPLimiter(Rate{N: 3, Per: time.Minute}, 1000)
	now := time.Now()
	for i := range 50_000 {
		l.allow(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), now)
	}
	if n := l.size(); n > 1000 {
		t.Fatalf("%d buckets, want at most 1000", n)
	}
}
