package auth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// sid is the session of res.
func sid(res *Result) string {
	_, s, _ := strings.Cut(res.AccessToken.Value, "|")
	return s
}

// client returns ctx from the device ua at ip.
func client(ctx context.Context, ua, ip string) context.Context {
	return WithClient(ctx, Client{UserAgent: ua, IP: ip})
}

// newEvents returns the events logged since the last call, as "TYPE session"
// lines, checking that each is its entry's user's.
func (f *fixture) newEvents(t *testing.T, cursor *int64) []string {
	t.Helper()
	entries, err := f.log.After(t.Context(), *cursor, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		*cursor = e.Seq
		for _, ev := range e.Events {
			if ev.UserID != e.UserID || ev.UserID == "" {
				t.Errorf("entry %d of user %q has an event of %q", e.Seq, e.UserID, ev.UserID)
			}
			out = append(out, strings.TrimSpace(string(ev.Type)+" "+ev.SessionID))
		}
	}
	return out
}

// lastEntry is the newest entry of the log.
func (f *fixture) lastEntry(t *testing.T) RevocationEntry {
	t.Helper()
	f.log.mu.Lock()
	defer f.log.mu.Unlock()
	if len(f.log.entries) == 0 {
		t.Fatal("the log is empty")
	}
	return f.log.entries[len(f.log.entries)-1]
}

func wantEvents(t *testing.T, step string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s: events %q, want %q", step, got, want)
	}
}

// Each operation writes its events to the log, in the order they happened,
// in the entry that revokes the sessions it ends.
func TestOperationsLogSecurityEvents(t *testing.T) {
	f := newFixture(t)
	var cur int64
	phone := client(t.Context(), "Phone/1.0", "192.0.2.1")
	laptop := client(t.Context(), "Laptop/2.0", "192.0.2.2")

	first, err := f.svc.Register(phone, "alice", "alice@example.com", fixturePassword)
	if err != nil {
		t.Fatal(err)
	}
	s1 := sid(first)
	wantEvents(t, "register", f.newEvents(t, &cur), "SESSION_CREATED "+s1)
	if ev := f.lastEntry(t).Events[0]; ev.UserAgent != "Phone/1.0" || ev.IP != "192.0.2.1" || ev.UserID != first.User.ID ||
		!ev.At.Equal(f.clock.Now().Truncate(time.Millisecond)) {
		t.Fatalf("SESSION_CREATED = %+v", ev)
	}
	second, err := f.svc.Login(laptop, "alice", fixturePassword)
	if err != nil {
		t.Fatal(err)
	}
	s2 := sid(second)
	wantEvents(t, "login", f.newEvents(t, &cur), "SESSION_CREATED "+s2)
	if e := f.lastEntry(t); len(e.SessionIDs) != 0 || e.Events[0].UserAgent != "Laptop/2.0" || e.Events[0].IP != "192.0.2.2" {
		t.Fatalf("login entry = %+v", e)
	}

	// changePassword from the phone ends the laptop's session: one entry.
	cp, err := f.svc.ChangePassword(client(f.as(t, first), "Phone/1.0", "192.0.2.1"), fixturePassword, "another good passphrase")
	if err != nil {
		t.Fatal(err)
	}
	wantEvents(t, "changePassword", f.newEvents(t, &cur), "PASSWORD_CHANGED "+s1, "SESSION_REVOKED "+s2)
	if e := f.lastEntry(t); !slices.Equal(e.SessionIDs, []string{s2}) || e.UserID != first.User.ID || e.Events[0].IP != "192.0.2.1" {
		t.Fatalf("changePassword entry = %+v", e)
	}
	// With no other session, the event goes alone.
	cp, err = f.svc.ChangePassword(f.as(t, cp), "another good passphrase", fixturePassword)
	if err != nil {
		t.Fatal(err)
	}
	wantEvents(t, "changePassword alone", f.newEvents(t, &cur), "PASSWORD_CHANGED "+s1)
	if e := f.lastEntry(t); len(e.SessionIDs) != 0 {
		t.Fatalf("an event-only entry revokes %v", e.SessionIDs)
	}

	if err := f.svc.Logout(f.as(t, cp), LogoutCurrent); err != nil {
		t.Fatal(err)
	}
	wantEvents(t, "logout", f.newEvents(t, &cur), "SESSION_REVOKED "+s1)

	// resetPassword: the change (made by a link, no session), the sessions it
	// ends, and the session it starts.
	third, err := f.svc.Login(t.Context(), "alice", fixturePassword)
	if err != nil {
		t.Fatal(err)
	}
	f.newEvents(t, &cur)
	reset, err := f.svc.ResetPassword(client(t.Context(), "Browser/3", "192.0.2.3"), tokenOf(t, f.resetLink(t, "alice")), "a brand new passphrase")
	if err != nil {
		t.Fatal(err)
	}
	wantEvents(t, "resetPassword", f.newEvents(t, &cur), "PASSWORD_CHANGED", "SESSION_REVOKED "+sid(third), "SESSION_CREATED "+sid(reset))

	// confirmEmailChange, by a link.
	if _, err := f.svc.ChangeEmail(f.as(t, reset), "new@example.com", "a brand new passphrase"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.ConfirmEmailChange(f.as(t, reset), tokenOf(t, f.outbox.queued(MailConfirmEmailChange)[0].Link)); err != nil {
		t.Fatal(err)
	}
	wantEvents(t, "confirmEmailChange", f.newEvents(t, &cur), "EMAIL_CHANGED")

	// Roles: the bootstrap and an admin; setting the same roles changes nothing.
	root := f.register(t, "root")
	f.newEvents(t, &cur)
	if _, err := f.svc.GrantRole(t.Context(), "root", RoleAdmin); err != nil {
		t.Fatal(err)
	}
	wantEvents(t, "grantRole", f.newEvents(t, &cur), "ROLES_CHANGED")
	if e := f.lastEntry(t); e.UserID != root.User.ID {
		t.Fatalf("grantRole entry of %q, want root's", e.UserID)
	}
	if _, err := f.svc.GrantRole(t.Context(), "root", RoleAdmin); err != nil {
		t.Fatal(err)
	}
	wantEvents(t, "grantRole again", f.newEvents(t, &cur))
	admin := client(f.as(t, root), "Admin/1", "198.51.100.1")
	if _, err := f.svc.SetUserRoles(admin, reset.User.ID, []Role{RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	wantEvents(t, "setUserRoles", f.newEvents(t, &cur), "ROLES_CHANGED")
	if ev := f.lastEntry(t).Events[0]; ev.UserID != reset.User.ID || ev.IP != "" || ev.SessionID != "" {
		t.Fatalf("an admin's change = %+v, want neither the admin's session nor IP", ev)
	}
	if _, err := f.svc.SetUserRoles(admin, reset.User.ID, []Role{RoleUser, RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	wantEvents(t, "setUserRoles unchanged", f.newEvents(t, &cur))

	// disable: the change first, then the sessions, in one entry.
	if _, err := f.svc.SetUserDisabled(admin, reset.User.ID, true); err != nil {
		t.Fatal(err)
	}
	wantEvents(t, "disable", f.newEvents(t, &cur), "ACCOUNT_DISABLED", "SESSION_REVOKED "+sid(reset))
	if e := f.lastEntry(t); !slices.Equal(e.SessionIDs, []string{sid(reset)}) {
		t.Fatalf("disable entry revokes %v", e.SessionIDs)
	}
	if _, err := f.svc.SetUserDisabled(admin, reset.User.ID, false); err != nil {
		t.Fatal(err)
	}
	wantEvents(t, "enable", f.newEvents(t, &cur))

	// A stolen refresh token replayed: the session ends, reported with the
	// replaying client's address.
	bob := f.register(t, "bob")
	f.newEvents(t, &cur)
	if _, err := f.svc.Refresh(t.Context(), bob.RefreshToken); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute)
	if _, err := f.svc.Refresh(client(t.Context(), "Thief/1", "203.0.113.9"), bob.RefreshToken); ErrorReason(err) != ReasonReused {
		t.Fatalf("replay: %v", err)
	}
	wantEvents(t, "refresh reuse", f.newEvents(t, &cur), "SESSION_REVOKED "+sid(bob))
	if ev := f.lastEntry(t).Events[0]; ev.IP != "203.0.113.9" {
		t.Fatalf("reuse event = %+v, want the replaying client's IP", ev)
	}

	// Account deletion ends the sessions.
	carl := f.register(t, "carl")
	f.newEvents(t, &cur)
	if _, err := f.svc.DeleteAccount(f.as(t, carl), fixturePassword); err != nil {
		t.Fatal(err)
	}
	wantEvents(t, "deleteAccount", f.newEvents(t, &cur), "SESSION_REVOKED "+sid(carl))
	if e := f.lastEntry(t); !e.AccountDeleted {
		t.Fatal("deletion entry without AccountDeleted")
	}
}

// flakyLog fails appends on demand.
type flakyLog struct {
	*memLog
	fail atomic.Int32 // appends left to fail
}

func (l *flakyLog) Append(ctx context.Context, e RevocationEntry) (int64, error) {
	if l.fail.Add(-1) >= 0 {
		return 0, errors.New("injected failure")
	}
	return l.memLog.Append(ctx, e)
}

// flakySessions fails Revoke on demand.
type flakySessions struct {
	*memSessions
	fail atomic.Int32
}

func (s *flakySessions) Revoke(ctx context.Context, ids []string, reason string, now time.Time) error {
	if s.fail.Add(-1) >= 0 {
		return errors.New("injected failure")
	}
	return s.memSessions.Revoke(ctx, ids, reason, now)
}

// syncBuffer is a bytes.Buffer for a logger written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// An event that cannot be written is lost, and the operation succeeds; a
// revocation that cannot be written fails, as before events.
func TestEventsAreAtMostOnce(t *testing.T) {
	f := newFixture(t)
	log := &flakyLog{memLog: f.log}
	sessions := &flakySessions{memSessions: f.sessions}
	audit := &syncBuffer{}
	f.svc = f.service(t, func(st *Stores, set *Settings) {
		st.Revocations, st.Sessions = log, sessions
		set.Audit = slog.New(slog.NewTextHandler(audit, nil))
	})
	log.fail.Store(1)
	first, err := f.svc.Register(t.Context(), "alice", "alice@example.com", fixturePassword)
	if err != nil {
		t.Fatalf("register when its event cannot be written: %v", err)
	}
	if out := audit.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "writing a security event failed") ||
		!strings.Contains(out, "SESSION_CREATED") || strings.Contains(out, first.RefreshToken) {
		t.Fatalf("audit log: %s", out)
	}
	var cur int64
	wantEvents(t, "register, event lost", f.newEvents(t, &cur))

	log.fail.Store(1)
	if err := f.svc.Logout(f.as(t, first), LogoutCurrent); err == nil {
		t.Fatal("a logout whose revocation was not written succeeded")
	}
	wantEvents(t, "failed logout", f.newEvents(t, &cur))

	// changePassword retries its revocation: a retry after the entry was
	// written (the sessions' update failed) does not repeat the events.
	other, err := f.svc.Login(t.Context(), "alice", fixturePassword)
	if err != nil {
		t.Fatal(err)
	}
	f.newEvents(t, &cur)
	sessions.fail.Store(1)
	if _, err := f.svc.ChangePassword(f.as(t, first), fixturePassword, "another good passphrase"); err != nil {
		t.Fatal(err)
	}
	wantEvents(t, "changePassword retried", f.newEvents(t, &cur), "PASSWORD_CHANGED "+sid(first), "SESSION_REVOKED "+sid(other))
	if e := f.lastEntry(t); !slices.Equal(e.SessionIDs, []string{sid(other)}) || len(e.Events) != 0 {
		t.Fatalf("the retry's entry = %+v, want the revocation without events", e)
	}
	if s, _ := f.sessions.ByID(t.Context(), sid(other)); s.RevokedAt.IsZero() {
		t.Fatal("the retry did not revoke the session")
	}
}

// recv returns what ch holds now, without waiting.
func recv(ch <-chan SecurityEvent) []SecurityEvent {
	var out []SecurityEvent
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				return out
			}
			out = append(out, ev)
		default:
			return out
		}
	}
}

func lines(evs []SecurityEvent) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = strings.TrimSpace(string(ev.Type) + " " + ev.SessionID)
	}
	return out
}

func mustSync(t *testing.T, svc *Service) {
	t.Helper()
	if err := svc.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// Subscribers get their own account's events, made on any instance, once
// their instance reads them from the log, in log order; nothing from before
// they subscribed.
func TestSubscribersGetTheirEventsFromEveryInstance(t *testing.T) {
	f := newFixture(t)
	a, b := f.svc, f.service(t, nil)
	alice := f.register(t, "alice")
	bob := f.register(t, "bob")
	if err := a.Logout(f.as(t, bob), LogoutCurrent); err != nil {
		t.Fatal(err)
	}
	// Subscribed before the first sync: what it reads is history.
	early, cancelEarly := b.SubscribeSecurityEvents(alice.User.ID)
	t.Cleanup(cancelEarly)
	mustSync(t, a)
	mustSync(t, b)
	if got := recv(early); len(got) != 0 {
		t.Fatalf("the first sync delivered history: %q", lines(got))
	}
	onA, cancelA := a.SubscribeSecurityEvents(alice.User.ID)
	t.Cleanup(cancelA)
	onB, cancelB := b.SubscribeSecurityEvents(alice.User.ID)
	t.Cleanup(cancelB)
	bobs, cancelBob := b.SubscribeSecurityEvents(bob.User.ID)
	t.Cleanup(cancelBob)

	// Made on A: nowhere until read, even on A.
	laptop, err := a.Login(client(t.Context(), "Laptop/2.0", "192.0.2.2"), "alice", fixturePassword)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Logout(f.as(t, alice), LogoutOthers); err != nil {
		t.Fatal(err)
	}
	if got := append(recv(onA), recv(onB)...); len(got) != 0 {
		t.Fatalf("delivered before a sync read them: %q", lines(got))
	}
	want := []string{"SESSION_CREATED " + sid(laptop), "SESSION_REVOKED " + sid(laptop)}
	mustSync(t, b)
	gotB := recv(onB)
	if !slices.Equal(lines(gotB), want) {
		t.Fatalf("on B: %q, want %q", lines(gotB), want)
	}
	if gotB[0].UserAgent != "Laptop/2.0" || gotB[0].IP != "192.0.2.2" || gotB[0].UserID != alice.User.ID {
		t.Fatalf("SESSION_CREATED on B = %+v", gotB[0])
	}
	if got := recv(onA); len(got) != 0 {
		t.Fatalf("A delivered before its sync: %q", lines(got))
	}
	mustSync(t, a)
	if got := lines(recv(onA)); !slices.Equal(got, want) {
		t.Fatalf("on A: %q, want %q", got, want)
	}
	if got := recv(bobs); len(got) != 0 {
		t.Fatalf("bob got alice's events: %q", lines(got))
	}
	if got := lines(recv(early)); !slices.Equal(got, want) {
		t.Fatalf("the early subscriber, after the first sync: %q, want %q", got, want)
	}
	// Read by the point read as well as by the range read of a later scan.
	f.clock.Advance(scanEvery)
	if _, err := b.Login(t.Context(), "alice", fixturePassword); err != nil {
		t.Fatal(err)
	}
	mustSync(t, a)
	if got := recv(onA); len(got) != 1 || got[0].Type != EventSessionCreated {
		t.Fatalf("after a scan: %q", lines(got))
	}
	mustSync(t, a)
	if got := recv(onA); len(got) != 0 {
		t.Fatalf("delivered twice: %q", lines(got))
	}
}

// A subscriber that does not read loses what its buffer cannot hold; the
// sync and the other subscribers go on.
func TestSlowSubscriberLosesEvents(t *testing.T) {
	f := newFixture(t)
	alice := f.register(t, "alice")
	bob := f.register(t, "bob")
	mustSync(t, f.svc)
	slow, cancelSlow := f.svc.SubscribeSecurityEvents(alice.User.ID)
	t.Cleanup(cancelSlow)
	other, cancelOther := f.svc.SubscribeSecurityEvents(bob.User.ID)
	t.Cleanup(cancelOther)
	n := 3 * eventBuffer
	for i := range n {
		for _, u := range []string{alice.User.ID, bob.User.ID} {
			ev := SecurityEvent{Type: EventRolesChanged, At: f.clock.Now(), UserID: u, SessionID: fmt.Sprint(i)}
			if _, err := f.log.Append(t.Context(), RevocationEntry{UserID: u, Events: []SecurityEvent{ev}, At: f.clock.Now()}); err != nil {
				t.Fatal(err)
			}
		}
	}
	var got []SecurityEvent
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range other {
			got = append(got, ev)
			if len(got) == n {
				return
			}
		}
	}()
	synced := make(chan error, 1)
	go func() { synced <- f.svc.Sync(t.Context()) }()
	select {
	case err := <-synced:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Sync blocked on a subscriber that does not read")
	}
	kept := recv(slow)
	if len(kept) != eventBuffer {
		t.Fatalf("the slow subscriber kept %d events, want its buffer's %d", len(kept), eventBuffer)
	}
	for i, ev := range kept {
		if ev.SessionID != fmt.Sprint(i) {
			t.Fatalf("kept event %d is %q: not the oldest, in order", i, ev.SessionID)
		}
	}
	// The other subscriber reads as they come; what it missed (it may fall
	// behind too) came in order.
	cancelOther()
	<-done
	for i := 1; i < len(got); i++ {
		var prev, cur int
		fmt.Sscan(got[i-1].SessionID, &prev)
		fmt.Sscan(got[i].SessionID, &cur)
		if cur <= prev {
			t.Fatalf("out of order: %q after %q", got[i].SessionID, got[i-1].SessionID)
		}
	}
	if len(got) == 0 {
		t.Fatal("the reading subscriber got nothing")
	}
	// Once read, the slow one gets new events again.
	if _, err := f.svc.Login(t.Context(), "alice", fixturePassword); err != nil {
		t.Fatal(err)
	}
	mustSync(t, f.svc)
	if got := recv(slow); len(got) != 1 || got[0].Type != EventSessionCreated {
		t.Fatalf("after catching up: %q", lines(got))
	}
}

// OnSessionsEnded hears of every entry that ends sessions, from this
// instance or another, once the entry's events are with the subscribers.
func TestOnSessionsEndedAfterTheEvents(t *testing.T) {
	f := newFixture(t)
	a, b := f.svc, f.service(t, nil)
	alice := f.register(t, "alice")
	second, err := f.svc.Login(t.Context(), "alice", fixturePassword)
	if err != nil {
		t.Fatal(err)
	}
	mustSync(t, b)
	events, cancel := b.SubscribeSecurityEvents(alice.User.ID)
	t.Cleanup(cancel)
	var calls [][]string
	var heard [][]string // what the subscriber held at each call
	b.OnSessionsEnded(func(ids []string) {
		calls = append(calls, slices.Clone(ids))
		heard = append(heard, lines(recv(events)))
	})
	if err := b.Logout(f.as(t, second), LogoutCurrent); err != nil { // on this instance
		t.Fatal(err)
	}
	if _, err := a.ChangePassword(f.as(t, alice), fixturePassword, "another good passphrase"); err != nil { // no session ends
		t.Fatal(err)
	}
	third, err := a.Login(t.Context(), "alice", "another good passphrase")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Logout(f.as(t, alice), LogoutAll); err != nil { // on another
		t.Fatal(err)
	}
	if len(calls) != 0 {
		t.Fatalf("called before a sync read the entries: %q", calls)
	}
	mustSync(t, b)
	ended := []string{sid(alice), sid(third)}
	slices.Sort(ended)
	if len(calls) != 2 || !slices.Equal(calls[0], []string{sid(second)}) || !slices.Equal(slices.Sorted(slices.Values(calls[1])), ended) {
		t.Fatalf("calls = %q, want [%s] then %q", calls, sid(second), ended)
	}
	if !slices.Equal(heard[0], []string{"SESSION_REVOKED " + sid(second)}) {
		t.Fatalf("at the first call the subscriber held %q", heard[0])
	}
	if len(heard[1]) != 4 || heard[1][0] != "PASSWORD_CHANGED "+sid(alice) || heard[1][1] != "SESSION_CREATED "+sid(third) {
		t.Fatalf("at the second call the subscriber held %q", heard[1])
	}
}

// cancel closes the channel once, and the sync goes on without it.
func TestCancelIsSafeTwice(t *testing.T) {
	f := newFixture(t)
	alice := f.register(t, "alice")
	mustSync(t, f.svc)
	events, cancel := f.svc.SubscribeSecurityEvents(alice.User.ID)
	kept, cancelKept := f.svc.SubscribeSecurityEvents(alice.User.ID)
	t.Cleanup(cancelKept)
	cancel()
	cancel()
	if _, ok := <-events; ok {
		t.Fatal("the channel is open after cancel")
	}
	if _, err := f.svc.Login(t.Context(), "alice", fixturePassword); err != nil {
		t.Fatal(err)
	}
	mustSync(t, f.svc)
	if got := recv(kept); len(got) != 1 {
		t.Fatalf("the other subscriber got %q", lines(got))
	}
	if n := len(f.svc.events.subs[alice.User.ID]); n != 1 {
		t.Fatalf("%d subscriptions left, want 1", n)
	}
	cancelKept()
	if _, ok := f.svc.events.subs[alice.User.ID]; ok {
		t.Fatal("an account without subscribers is still kept")
	}
}

// Subscribing, reading and cancelling while the sync delivers: run with -race.
func TestSubscriptionsRaceWithSync(t *testing.T) {
	f := newFixture(t)
	alice := f.register(t, "alice")
	mustSync(t, f.svc)
	var ended atomic.Int64
	f.svc.OnSessionsEnded(func(ids []string) { ended.Add(int64(len(ids))) })
	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			if err := f.svc.Sync(ctx); err != nil && ctx.Err() == nil {
				t.Error(err)
			}
		}
	})
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				events, cancel := f.svc.SubscribeSecurityEvents(alice.User.ID)
				recv(events)
				cancel()
				cancel()
			}
		})
	}
	for range 20 {
		res, err := f.svc.Login(t.Context(), "alice", fixturePassword)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.svc.Logout(f.as(t, res), LogoutCurrent); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for ended.Load() < 20 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	stop()
	wg.Wait()
	if n := ended.Load(); n != 20 {
		t.Fatalf("OnSessionsEnded heard of %d sessions, want 20", n)
	}
}
