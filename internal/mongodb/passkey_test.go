package mongodb_test

import (
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgql/server/internal/auth"
	"github.com/authgql/server/internal/mongodb"
)

func TestPasskeyStore(t *testing.T) {
	s, err := mongodb.NewPasskeyStore(t.Context(), testDB.Fresh(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Millisecond)
	c := &auth.PasskeyCredential{ID: "cred-1", UserID: "u1", Name: "Laptop", PublicKey: []byte{1, 2, 3}, SignCount: 7,
		Transports: []string{"internal", "hybrid"}, AAGUID: make([]byte, 16), AttestationType: "none",
		AttestationFormat: "none", Flags: 0x1d, CreatedAt: now}
	if err := s.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	// A credential ID is registered once, to any account.
	dup := *c
	dup.UserID = "u2"
	if err := s.Create(ctx, &dup); !errors.Is(err, auth.ErrDuplicate) {
		t.Fatalf("second Create: err = %v, want ErrDuplicate", err)
	}
	got, err := s.ByID(ctx, "cred-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.UserID != "u1" || got.Name != "Laptop" || !slices.Equal(got.PublicKey, c.PublicKey) || got.SignCount != 7 ||
		!slices.Equal(got.Transports, c.Transports) || got.Flags != 0x1d || !got.CreatedAt.Equal(now) || got.LastUsedAt != nil {
		t.Errorf("ByID = %+v, want %+v", got, c)
	}
	if _, err := s.ByID(ctx, "nope"); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("ByID of an unknown id: err = %v, want ErrNotFound", err)
	}
	c2 := *c
	c2.ID, c2.CreatedAt = "cred-2", now.Add(time.Second)
	if err := s.Create(ctx, &c2); err != nil {
		t.Fatal(err)
	}
	list, err := s.ForUser(ctx, "u1")
	if err != nil || len(list) != 2 || list[0].ID != "cred-1" || list[1].ID != "cred-2" {
		t.Fatalf("ForUser = %+v, %v; want cred-1, cred-2", list, err)
	}

	// Another user's credential is not found for renames and deletes.
	if _, err := s.Rename(ctx, "u2", "cred-1", "Mine"); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("Rename by another user: err = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, "u2", "cred-1"); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("Delete by another user: err = %v, want ErrNotFound", err)
	}
	r, err := s.Rename(ctx, "u1", "cred-1", "Phone")
	if err != nil || r.Name != "Phone" {
		t.Fatalf("Rename = %+v, %v", r, err)
	}
	if err := s.Used(ctx, "cred-1", 8, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	got, _ = s.ByID(ctx, "cred-1")
	if got.Name != "Phone" || got.SignCount != 8 || got.LastUsedAt == nil || !got.LastUsedAt.Equal(now.Add(time.Minute)) {
		t.Errorf("after Rename and Used: %+v", got)
	}
	if err := s.Used(ctx, "nope", 1, now); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("Used of an unknown id: err = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, "u1", "cred-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "u1", "cred-1"); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("second Delete: err = %v, want ErrNotFound", err)
	}
	if n, err := s.DeleteForUser(ctx, "u1"); err != nil || n != 1 {
		t.Errorf("DeleteForUser = %d, %v; want 1", n, err)
	}
}

// Concurrent registrations of one credential: one insert wins (the unique
// _id is the one atomic primitive on the embedded database).
func TestPasskeyStoreCreateOnce(t *testing.T) {
	s, err := mongodb.NewPasskeyStore(t.Context(), testDB.Fresh(t))
	if err != nil {
		t.Fatal(err)
	}
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			c := &auth.PasskeyCredential{ID: "same", UserID: string(rune('a' + i)), CreatedAt: time.Now()}
			if err := s.Create(t.Context(), c); err == nil {
				wins.Add(1)
			} else if !errors.Is(err, auth.ErrDuplicate) {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Errorf("%d creates won, want 1", wins.Load())
	}
}

func TestChallengeStore(t *testing.T) {
	db := testDB.Fresh(t)
	s, err := mongodb.NewChallengeStore(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Millisecond)
	c := &auth.WebAuthnChallenge{ID: "ch1", Ceremony: auth.CeremonyMFA, UserID: "u1", SessionID: "s1", Data: []byte(`{"challenge":"x"}`),
		CreatedAt: now, ExpiresAt: now.Add(2 * time.Minute)}
	if err := s.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, c); !errors.Is(err, auth.ErrDuplicate) {
		t.Errorf("second Create: err = %v, want ErrDuplicate", err)
	}
	got, err := s.ByID(ctx, "ch1")
	if err != nil || got.Ceremony != auth.CeremonyMFA || got.UserID != "u1" || got.SessionID != "s1" ||
		string(got.Data) != string(c.Data) || !got.ExpiresAt.Equal(c.ExpiresAt) || !got.CreatedAt.Equal(now) {
		t.Fatalf("ByID = %+v, %v", got, err)
	}
	if _, err := s.ByID(ctx, "nope"); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("ByID of an unknown id: err = %v, want ErrNotFound", err)
	}
	login := &auth.WebAuthnChallenge{ID: "ch2", Ceremony: auth.CeremonyLogin, Data: []byte(`{}`), CreatedAt: now,
		ExpiresAt: now.Add(-time.Minute)}
	if err := s.Create(ctx, login); err != nil {
		t.Fatal(err)
	}
	if n, err := s.DeleteExpired(ctx, now); err != nil || n != 1 {
		t.Errorf("DeleteExpired = %d, %v; want 1 (the expired sign-in)", n, err)
	}
	if n, err := s.DeleteForUser(ctx, "u1"); err != nil || n != 1 {
		t.Errorf("DeleteForUser = %d, %v; want 1", n, err)
	}
	// The stores start again on an existing database (indexes exist).
	if _, err := mongodb.NewChallengeStore(ctx, db); err != nil {
		t.Fatal(err)
	}
}
