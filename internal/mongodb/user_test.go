package mongodb_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/authgql/server/internal/auth"
	"github.com/authgql/server/internal/devdb/devdbtest"
	"github.com/authgql/server/internal/mongodb"
)

var testDB *devdbtest.Server

func TestMain(m *testing.M) { devdbtest.Main(m, &testDB) }

func newStore(t *testing.T) (*mongodb.UserStore, *mongo.Database) {
	t.Helper()
	db := testDB.Fresh(t)
	s, err := mongodb.NewUserStore(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	return s, db
}

func newUser(name, email string) *auth.User {
	return &auth.User{
		Username: name, Email: email, UsernameKey: name, EmailKey: email,
		PasswordHash: []byte("$2a$04$fixture.hash.not.a.real.one"), CreatedAt: time.Now().UTC().Truncate(time.Millisecond),
	}
}

func TestUserStoreRoundTrip(t *testing.T) {
	s, _ := newStore(t)
	u := newUser("alice", "alice@example.com")
	if err := s.Create(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	if u.ID == "" {
		t.Fatal("Create did not set ID")
	}
	for name, find := range map[string]func() (*auth.User, error){
		"ByID":          func() (*auth.User, error) { return s.ByID(t.Context(), u.ID) },
		"ByUsernameKey": func() (*auth.User, error) { return s.ByUsernameKey(t.Context(), "alice") },
		"ByEmailKey":    func() (*auth.User, error) { return s.ByEmailKey(t.Context(), "alice@example.com") },
	} {
		got, err := find()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.ID != u.ID || got.Username != u.Username || got.Email != u.Email ||
			string(got.PasswordHash) != string(u.PasswordHash) || !got.CreatedAt.Equal(u.CreatedAt) {
			t.Errorf("%s = %+v, want %+v", name, got, u)
		}
	}
	if err := s.SetPassword(t.Context(), u.ID, u.PasswordHash, []byte("new"), "stamp-2"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ByID(t.Context(), u.ID); string(got.PasswordHash) != "new" || got.CredentialStamp != "stamp-2" {
		t.Errorf("hash, stamp = %q, %q; want new, stamp-2", got.PasswordHash, got.CredentialStamp)
	}
	// Conditional on the hash: a change from a hash that is no longer stored
	// (a password changed meanwhile) writes nothing.
	if err := s.SetPassword(t.Context(), u.ID, u.PasswordHash, []byte("stale"), "stamp-3"); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("change from a replaced hash: err = %v, want ErrNotFound", err)
	}
	if got, _ := s.ByID(t.Context(), u.ID); string(got.PasswordHash) != "new" || got.CredentialStamp != "stamp-2" {
		t.Errorf("after a stale change: hash, stamp = %q, %q; want new, stamp-2", got.PasswordHash, got.CredentialStamp)
	}
}

func TestUserStoreNotFound(t *testing.T) {
	s, _ := newStore(t)
	for name, err := range map[string]error{
		"unknown id":     func() error { _, err := s.ByID(t.Context(), "6b0738865bf01e9636da7d8c"); return err }(),
		"malformed id":   func() error { _, err := s.ByID(t.Context(), `{"$ne": null}`); return err }(),
		"unknown name":   func() error { _, err := s.ByUsernameKey(t.Context(), "nobody"); return err }(),
		"regex name":     func() error { _, err := s.ByUsernameKey(t.Context(), ".*"); return err }(),
		"unknown email":  func() error { _, err := s.ByEmailKey(t.Context(), "x@example.com"); return err }(),
		"set on unknown": s.SetPassword(t.Context(), "6b0738865bf01e9636da7d8c", []byte("a"), []byte("x"), "s"),
		"bad cursor":     func() error { _, err := s.List(t.Context(), "not-an-id", "", 10); return err }(),
	} {
		if !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("%s: err = %v, want auth.ErrNotFound", name, err)
		}
	}
}

func TestUserStoreUniqueKeys(t *testing.T) {
	s, db := newStore(t)
	if err := s.Create(t.Context(), newUser("bob", "bob@example.com")); err != nil {
		t.Fatal(err)
	}
	for name, u := range map[string]*auth.User{
		"same username": newUser("bob", "other@example.com"),
		"same email":    newUser("robert", "bob@example.com"),
	} {
		if err := s.Create(t.Context(), u); !errors.Is(err, auth.ErrDuplicate) {
			t.Errorf("%s: err = %v, want auth.ErrDuplicate", name, err)
		}
	}
	// Creating the indexes again is harmless.
	if _, err := mongodb.NewUserStore(t.Context(), db); err != nil {
		t.Fatalf("second NewUserStore: %v", err)
	}
	if n, _ := db.Collection("users").CountDocuments(t.Context(), map[string]any{}); n != 1 {
		t.Errorf("%d documents, want 1", n)
	}
}

func TestUserStoreConcurrentCreate(t *testing.T) {
	s, db := newStore(t)
	const n = 20
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = s.Create(t.Context(), newUser("carol", fmt.Sprintf("c%d@example.com", i))) })
	}
	wg.Wait()
	var ok int
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, auth.ErrDuplicate):
			t.Errorf("err = %v, want auth.ErrDuplicate", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d creates succeeded, want 1", ok)
	}
	if got, _ := db.Collection("users").CountDocuments(t.Context(), map[string]any{}); got != 1 {
		t.Errorf("%d documents, want 1", got)
	}
}
