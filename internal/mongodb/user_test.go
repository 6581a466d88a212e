package mongodb_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
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

func TestUserStoreEmailVerified(t *testing.T) {
	s, db := newStore(t)
	u := newUser("dave", "dave@example.com")
	if err := s.Create(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ByID(t.Context(), u.ID); got.EmailVerified {
		t.Error("new user: EmailVerified = true, want false")
	}
	// Users stored before the field existed have none: they read as unverified.
	if _, err := db.Collection("users").UpdateOne(t.Context(), bson.D{{Key: "username_key", Value: "dave"}},
		bson.D{{Key: "$unset", Value: bson.D{{Key: "email_verified", Value: ""}}}}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ByID(t.Context(), u.ID); err != nil || got.EmailVerified {
		t.Errorf("without the field: EmailVerified, err = %v, %v; want false, nil", got.EmailVerified, err)
	}

	for name, err := range map[string]error{
		"other key":    s.SetEmailVerified(t.Context(), u.ID, "old@example.com"),
		"unknown id":   s.SetEmailVerified(t.Context(), "6b0738865bf01e9636da7d8c", "dave@example.com"),
		"malformed id": s.SetEmailVerified(t.Context(), "not-an-id", "dave@example.com"),
	} {
		if !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("%s: err = %v, want ErrNotFound", name, err)
		}
	}
	if got, _ := s.ByID(t.Context(), u.ID); got.EmailVerified {
		t.Error("after refused verifications: EmailVerified = true")
	}
	if err := s.SetEmailVerified(t.Context(), u.ID, "dave@example.com"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ByID(t.Context(), u.ID); !got.EmailVerified {
		t.Error("after SetEmailVerified: EmailVerified = false")
	}

	// Create writes the field as given.
	v := newUser("erin", "erin@example.com")
	v.EmailVerified = true
	if err := s.Create(t.Context(), v); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ByEmailKey(t.Context(), "erin@example.com"); !got.EmailVerified {
		t.Error("created verified: EmailVerified = false")
	}
}

func TestUserStoreSetEmail(t *testing.T) {
	s, _ := newStore(t)
	u, other := newUser("frank", "frank@example.com"), newUser("grace", "grace@example.com")
	for _, x := range []*auth.User{u, other} {
		if err := s.Create(t.Context(), x); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetEmail(t.Context(), u.ID, "frank@example.com", "Frank@Example.org", "frank@example.org"); err != nil {
		t.Fatal(err)
	}
	got, err := s.ByEmailKey(t.Context(), "frank@example.org")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != u.ID || got.Email != "Frank@Example.org" || !got.EmailVerified {
		t.Errorf("after SetEmail: id, email, verified = %s, %q, %v; want %s, Frank@Example.org, true", got.ID, got.Email, got.EmailVerified, u.ID)
	}
	if _, err := s.ByEmailKey(t.Context(), "frank@example.com"); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("old key: err = %v, want ErrNotFound", err)
	}
	// The old key is free for someone else.
	if err := s.Create(t.Context(), newUser("heidi", "frank@example.com")); err != nil {
		t.Errorf("create with the released address: %v", err)
	}

	for name, tc := range map[string]struct {
		id, from, key string
		want          error
	}{
		"stale from":   {u.ID, "frank@example.com", "f2@example.com", auth.ErrNotFound},
		"unknown id":   {"6b0738865bf01e9636da7d8c", "frank@example.org", "f2@example.com", auth.ErrNotFound},
		"malformed id": {"not-an-id", "frank@example.org", "f2@example.com", auth.ErrNotFound},
		// The unique index on email_key holds for an update too, on the
		// embedded database as on MongoDB.
		"taken key": {u.ID, "frank@example.org", "grace@example.com", auth.ErrDuplicate},
	} {
		if err := s.SetEmail(t.Context(), tc.id, tc.from, "F2@example.com", tc.key); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", name, err, tc.want)
		}
	}
	// Nothing changed.
	if got, _ := s.ByID(t.Context(), u.ID); got.EmailKey != "frank@example.org" || got.Email != "Frank@Example.org" {
		t.Errorf("after refused changes: email, key = %q, %q", got.Email, got.EmailKey)
	}
	if got, _ := s.ByID(t.Context(), other.ID); got.EmailKey != "grace@example.com" {
		t.Errorf("other user's key = %q, want grace@example.com", got.EmailKey)
	}
	if _, err := s.ByEmailKey(t.Context(), "f2@example.com"); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("refused key stored: err = %v, want ErrNotFound", err)
	}
}

// Users racing for one address: the unique index decides, on the embedded
// database too, where updates are not isolated but a unique index is checked
// on every write. Each user changes from its own key, so no two updates touch
// one document.
func TestUserStoreSetEmailRace(t *testing.T) {
	for _, users := range []int{2, 10} {
		t.Run(fmt.Sprintf("%d users", users), func(t *testing.T) {
			s, db := newStore(t)
			for trial := range 5 {
				ids := make([]string, users)
				for i := range ids {
					u := newUser(fmt.Sprintf("u%d-%d", trial, i), fmt.Sprintf("u%d-%d@example.com", trial, i))
					if err := s.Create(t.Context(), u); err != nil {
						t.Fatal(err)
					}
					ids[i] = u.ID
				}
				key := fmt.Sprintf("wanted%d@example.com", trial)
				errs := make([]error, 10)
				var wg sync.WaitGroup
				for i := range errs {
					wg.Go(func() {
						n := i % users
						errs[i] = s.SetEmail(t.Context(), ids[n], fmt.Sprintf("u%d-%d@example.com", trial, n), key, key)
					})
				}
				wg.Wait()
				var won []int
				for i, err := range errs {
					switch {
					case err == nil:
						won = append(won, i%users)
					case errors.Is(err, auth.ErrDuplicate):
					case errors.Is(err, auth.ErrNotFound) && users < len(errs):
						// A second call for a user that already won: its key moved.
					default:
						t.Errorf("trial %d, call %d: err = %v, want nil or ErrDuplicate", trial, i, err)
					}
				}
				if users == len(errs) && len(won) != 1 {
					t.Errorf("trial %d: %d calls won, want 1", trial, len(won))
				}
				if n, _ := db.Collection("users").CountDocuments(t.Context(), bson.D{{Key: "email_key", Value: key}}); n != 1 {
					t.Errorf("trial %d: %d users hold the key, want 1", trial, n)
				}
				holder, err := s.ByEmailKey(t.Context(), key)
				if err != nil {
					t.Fatal(err)
				}
				for _, w := range won {
					if ids[w] != holder.ID {
						t.Errorf("trial %d: user %d won but user %s holds the key", trial, w, holder.ID)
					}
				}
			}
		})
	}
}

func TestUserStoreDelete(t *testing.T) {
	s, _ := newStore(t)
	u := newUser("ivan", "ivan@example.com")
	if err := s.Create(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(t.Context(), u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ByID(t.Context(), u.ID); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("after Delete: ByID err = %v, want ErrNotFound", err)
	}
	for name, id := range map[string]string{"again": u.ID, "unknown": "6b0738865bf01e9636da7d8c", "malformed": "not-an-id"} {
		if err := s.Delete(t.Context(), id); !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("delete %s: err = %v, want ErrNotFound", name, err)
		}
	}
	// The username and the address are free again.
	again := newUser("ivan", "ivan@example.com")
	if err := s.Create(t.Context(), again); err != nil {
		t.Fatalf("create with the deleted user's name and address: %v", err)
	}
	if again.ID == u.ID {
		t.Error("the new user has the deleted user's ID")
	}
}
