package mongodb_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/authgql/server/internal/auth"
	"github.com/authgql/server/internal/mongodb"
)

func newSessionStore(t *testing.T) *mongodb.SessionStore {
	t.Helper()
	s, err := mongodb.NewSessionStore(t.Context(), testDB.Fresh(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func session(id, user string, now time.Time) *auth.Session {
	return &auth.Session{ID: id, UserID: user, TokenHash: "h-" + id, CreatedAt: now, LastUsedAt: now,
		RotatedAt: now, ExpiresAt: now.Add(time.Hour), UserAgent: "test", IP: "127.0.0.1"}
}

func TestSessionRotateIsConditional(t *testing.T) {
	s := newSessionStore(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	if err := s.Create(t.Context(), session("s1", "u1", now)); err != nil {
		t.Fatal(err)
	}
	got, err := s.Rotate(t.Context(), "s1", "h-s1", "h2", now.Add(time.Second), now.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if got.TokenHash != "h2" || got.PrevHash != "h-s1" || !got.RotatedAt.Equal(now.Add(time.Second)) || !got.ExpiresAt.Equal(now.Add(2*time.Hour)) {
		t.Errorf("rotated session = %+v", got)
	}
	if _, err := s.Rotate(t.Context(), "s1", "h-s1", "h3", now, now.Add(time.Hour)); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("second rotation from the same hash: err = %v, want ErrNotFound", err)
	}
	if _, err := s.Rotate(t.Context(), "s1", "h2", "h3", now.Add(3*time.Hour), now.Add(4*time.Hour)); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("rotation of an expired session: err = %v, want ErrNotFound", err)
	}
}

func TestSessionRevokeAndSweep(t *testing.T) {
	s := newSessionStore(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	for _, sess := range []*auth.Session{session("a", "u1", now), session("b", "u1", now), session("c", "u1", now), session("x", "u2", now)} {
		if err := s.Create(t.Context(), sess); err != nil {
			t.Fatal(err)
		}
	}
	ended, err := s.Revoke(t.Context(), "u1", nil, "a", "logout", now)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ended)
	if !slices.Equal(ended, []string{"b", "c"}) {
		t.Errorf("revoked %v, want [b c]", ended)
	}
	if ended, _ := s.Revoke(t.Context(), "u1", []string{"x"}, "", "revoked", now); len(ended) != 0 {
		t.Errorf("revoked another user's session: %v", ended)
	}
	active, err := s.Active(t.Context(), "u1", now)
	if err != nil || len(active) != 1 || active[0].ID != "a" {
		t.Errorf("active = %v, %v; want [a]", active, err)
	}
	revs, err := s.RevokedSince(t.Context(), now.Add(-time.Second))
	if err != nil || len(revs) != 2 {
		t.Errorf("RevokedSince = %v, %v; want 2", revs, err)
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
