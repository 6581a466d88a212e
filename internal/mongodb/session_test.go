package mongodb_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/authgql/server/internal/auth"
	"github.com/authgql/server/internal/mongodb"
)

func newSessionStore(t *testing.T, backend mongodb.Backend) *mongodb.SessionStore {
	t.Helper()
	s, err := mongodb.NewSessionStore(t.Context(), testDB.Fresh(t), backend)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func session(id, user string, now time.Time) *auth.Session {
	return &auth.Session{ID: id, UserID: user, TokenHash: "h-" + id, CreatedAt: now, LastUsedAt: now,
		RotatedAt: now, ExpiresAt: now.Add(time.Hour), UserAgent: "test", IP: "127.0.0.1"}
}

// Both ways of writing (a conditional update for MongoDB, a point read and a
// write by _id for the embedded database) run here, on the embedded database:
// their rules are the same.
func TestSessionRotateIsConditional(t *testing.T) {
	forBackends(t, testSessionRotateIsConditional)
}

func testSessionRotateIsConditional(t *testing.T, backend mongodb.Backend) {
	s := newSessionStore(t, backend)
	now := time.Now().UTC().Truncate(time.Millisecond)
	if err := s.Create(t.Context(), session("s1", "u1", now)); err != nil {
		t.Fatal(err)
	}
	got, err := s.Rotate(t.Context(), "s1", auth.Rotation{From: "h-s1", To: "h2", Stamp: "st2", Now: now.Add(time.Second), ExpiresAt: now.Add(2 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if got.TokenHash != "h2" || got.PrevHash != "h-s1" || !got.RotatedAt.Equal(now.Add(time.Second)) || !got.ExpiresAt.Equal(now.Add(2*time.Hour)) || got.CredentialStamp != "st2" {
		t.Errorf("rotated session = %+v", got)
	}
	if _, err := s.Rotate(t.Context(), "s1", auth.Rotation{From: "h-s1", To: "h3", Now: now, ExpiresAt: now.Add(time.Hour)}); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("second rotation from the same hash: err = %v, want ErrNotFound", err)
	}
	if _, err := s.Rotate(t.Context(), "s1", auth.Rotation{From: "h2", To: "h3", Now: now.Add(3 * time.Hour), ExpiresAt: now.Add(4 * time.Hour)}); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("rotation of an expired session: err = %v, want ErrNotFound", err)
	}
}

func TestSessionRevokeAndSweep(t *testing.T) {
	forBackends(t, testSessionRevokeAndSweep)
}

func testSessionRevokeAndSweep(t *testing.T, backend mongodb.Backend) {
	s := newSessionStore(t, backend)
	now := time.Now().UTC().Truncate(time.Millisecond)
	for _, sess := range []*auth.Session{session("a", "u1", now), session("b", "u1", now), session("c", "u1", now), session("x", "u2", now)} {
		if err := s.Create(t.Context(), sess); err != nil {
			t.Fatal(err)
		}
	}
	ended, err := s.ActiveIDs(t.Context(), "u1", nil, "a")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ended)
	if !slices.Equal(ended, []string{"b", "c"}) {
		t.Errorf("selected %v, want [b c]", ended)
	}
	if err := s.Revoke(t.Context(), ended, "logout", now); err != nil {
		t.Fatal(err)
	}
	if ids, _ := s.ActiveIDs(t.Context(), "u1", []string{"x"}, ""); len(ids) != 0 {
		t.Errorf("selected another user's session: %v", ids)
	}
	if ids, _ := s.ActiveIDs(t.Context(), "u1", nil, ""); !slices.Equal(ids, []string{"a"}) {
		t.Errorf("active after revoking = %v, want [a]", ids)
	}
	// A second revocation keeps the first reason.
	if err := s.Revoke(t.Context(), []string{"b"}, "password_changed", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	active, err := s.Active(t.Context(), "u1", now)
	if err != nil || len(active) != 1 || active[0].ID != "a" {
		t.Errorf("active = %v, %v; want [a]", active, err)
	}
	b, _ := s.ByID(t.Context(), "b")
	if b.RevokedAt.IsZero() || b.RevokedReason != "logout" || b.Active(now) {
		t.Errorf("b = %+v, want revoked by logout", b)
	}

	// Sweeping at now+2h removes the revoked sessions and the expired ones.
	n, err := s.DeleteEnded(t.Context(), now.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Errorf("deleted %d, want 4", n)
	}
	if _, err := s.ByID(t.Context(), "a"); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("expired session still there: %v", err)
	}
}

func forBackends(t *testing.T, test func(*testing.T, mongodb.Backend)) {
	for name, b := range map[string]mongodb.Backend{"MongoDB": mongodb.MongoDB, "Embedded": mongodb.Embedded} {
		t.Run(name, func(t *testing.T) { test(t, b) })
	}
}
