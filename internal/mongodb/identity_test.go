package mongodb_test

import (
	"errors"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgql/server/internal/auth"
	"github.com/authgql/server/internal/mongodb"
)

func TestIdentityStore(t *testing.T) {
	db := testDB.Fresh(t)
	s, err := mongodb.NewIdentityStore(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mongodb.NewIdentityStore(t.Context(), db); err != nil {
		t.Fatalf("indexes again: %v", err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	a := &auth.Identity{UserID: "u1", Provider: "google", Subject: "123", Email: "a@example.com", LinkedAt: now}
	if err := s.Create(t.Context(), a); err != nil || a.ID == "" {
		t.Fatalf("Create: %v, id %q", err, a.ID)
	}
	// The same (provider, subject) for another user; another provider's subject 123.
	if err := s.Create(t.Context(), &auth.Identity{UserID: "u2", Provider: "google", Subject: "123"}); !errors.Is(err, auth.ErrDuplicate) {
		t.Errorf("duplicate: %v", err)
	}
	if err := s.Create(t.Context(), &auth.Identity{UserID: "u1", Provider: "github", Subject: "123", LinkedAt: now.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	got, err := s.ByProviderSubject(t.Context(), "google", "123")
	if err != nil || *got != *a {
		t.Errorf("ByProviderSubject = %+v, %v; want %+v", got, err, a)
	}
	if _, err := s.ByProviderSubject(t.Context(), "google", "1234"); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("unknown: %v", err)
	}
	list, err := s.ForUser(t.Context(), "u1")
	if err != nil || len(list) != 2 || list[0].Provider != "google" {
		t.Fatalf("ForUser = %+v, %v", list, err)
	}
	if err := s.Delete(t.Context(), "u2", a.ID); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("Delete of another user's identity: %v", err)
	}
	if err := s.Delete(t.Context(), "u1", a.ID); err != nil {
		t.Fatal(err)
	}
	if n, err := s.DeleteForUser(t.Context(), "u1"); err != nil || n != 1 {
		t.Errorf("DeleteForUser = %d, %v", n, err)
	}

	// Concurrent creations of one identity: exactly one wins.
	var won atomic.Int32
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			err := s.Create(t.Context(), &auth.Identity{UserID: string(rune('a' + i)), Provider: "race", Subject: "s"})
			if err == nil {
				won.Add(1)
			} else if !errors.Is(err, auth.ErrDuplicate) {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Errorf("%d concurrent creations won, want 1", won.Load())
	}
}

func TestOneTimeCodeStore(t *testing.T) {
	s, err := mongodb.NewOneTimeCodeStore(t.Context(), testDB.Fresh(t))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	c := &auth.OneTimeCode{Hash: "h1", Kind: auth.OneTimeSignIn, UserID: "u1", Provider: "google",
		AMR: []string{auth.AMRFederated}, CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
	if err := s.Create(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(t.Context(), c); !errors.Is(err, auth.ErrDuplicate) {
		t.Errorf("duplicate: %v", err)
	}
	got, err := s.ByHash(t.Context(), "h1")
	if err != nil || got.UserID != "u1" || got.Kind != auth.OneTimeSignIn || len(got.AMR) != 1 || !got.ExpiresAt.Equal(c.ExpiresAt) {
		t.Fatalf("ByHash = %+v, %v", got, err)
	}
	link := &auth.OneTimeCode{Hash: "h2", Kind: auth.OneTimeLinkCode, UserID: "u1", SessionID: "s1", Provider: "google",
		Subject: "sub", Email: "a@example.com", CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
	if err := s.Create(t.Context(), link); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ByHash(t.Context(), "h2"); err != nil || !reflect.DeepEqual(got, link) {
		t.Fatalf("ByHash of a link code = %+v, %v; want %+v", got, err, link)
	}
	if n, err := s.DeleteExpired(t.Context(), now.Add(2*time.Minute)); err != nil || n != 2 {
		t.Errorf("DeleteExpired = %d, %v", n, err)
	}
	if _, err := s.ByHash(t.Context(), "h1"); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("after DeleteExpired: %v", err)
	}
}
