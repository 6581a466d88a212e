package mongodb_test

import (
	"errors"
	"testing"
	"time"

	"github.com/authgql/server/internal/auth"
	"github.com/authgql/server/internal/mongodb"
)

func newEmailTokenStore(t *testing.T) *mongodb.EmailTokenStore {
	t.Helper()
	s, err := mongodb.NewEmailTokenStore(t.Context(), testDB.Fresh(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func emailToken(hash, user string, kind auth.EmailTokenKind, created time.Time) *auth.EmailToken {
	return &auth.EmailToken{Hash: hash, Kind: kind, UserID: user, EmailKey: user + "@example.com",
		Email: user + "@Example.com", Stamp: "stamp-" + user, CreatedAt: created, ExpiresAt: created.Add(time.Hour)}
}

func TestEmailTokenStoreRoundTrip(t *testing.T) {
	s := newEmailTokenStore(t)
	// Sub-millisecond precision and a zone: what is read back is the
	// millisecond, in UTC.
	created := time.Date(2026, 12, 1, 10, 0, 0, 123456789, time.FixedZone("X", 3600))
	tok := emailToken("h1", "u1", auth.TokenChangeEmail, created)
	if err := s.Create(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	got, err := s.ByHash(t.Context(), "h1")
	if err != nil {
		t.Fatal(err)
	}
	want := *tok
	want.CreatedAt, want.ExpiresAt = created.Truncate(time.Millisecond).UTC(), created.Add(time.Hour).Truncate(time.Millisecond).UTC()
	if *got != want {
		t.Errorf("ByHash = %+v, want %+v", *got, want)
	}
	if got.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt in %v, want UTC", got.CreatedAt.Location())
	}
	if err := s.Create(t.Context(), emailToken("h1", "u2", auth.TokenVerifyEmail, created)); !errors.Is(err, auth.ErrDuplicate) {
		t.Errorf("second token with the hash: err = %v, want ErrDuplicate", err)
	}
	if got, _ := s.ByHash(t.Context(), "h1"); got.UserID != "u1" {
		t.Errorf("after a duplicate: user = %q, want u1", got.UserID)
	}
	for name, hash := range map[string]string{"unknown": "h2", "empty": "", "operator-looking": `{"$ne": null}`} {
		if _, err := s.ByHash(t.Context(), hash); !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("%s hash: err = %v, want ErrNotFound", name, err)
		}
	}
}

func TestEmailTokenStoreLatest(t *testing.T) {
	s := newEmailTokenStore(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	for _, tok := range []*auth.EmailToken{
		emailToken("a", "u1", auth.TokenVerifyEmail, now.Add(-2*time.Minute)),
		emailToken("b", "u1", auth.TokenVerifyEmail, now), // newest verify of u1
		emailToken("c", "u1", auth.TokenVerifyEmail, now.Add(-time.Minute)),
		emailToken("d", "u1", auth.TokenResetPassword, now.Add(time.Minute)), // another kind
		emailToken("e", "u2", auth.TokenVerifyEmail, now.Add(time.Hour)),     // another user
		emailToken("f", "u3", auth.TokenVerifyEmail, now),                    // a tie: the greater hash
		emailToken("g", "u3", auth.TokenVerifyEmail, now),
	} {
		if err := s.Create(t.Context(), tok); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		user string
		kind auth.EmailTokenKind
		want string
	}{
		{"u1", auth.TokenVerifyEmail, "b"},
		{"u1", auth.TokenResetPassword, "d"},
		{"u2", auth.TokenVerifyEmail, "e"},
		{"u3", auth.TokenVerifyEmail, "g"},
	} {
		got, err := s.Latest(t.Context(), tc.user, tc.kind)
		if err != nil {
			t.Errorf("Latest(%s, %s): %v", tc.user, tc.kind, err)
			continue
		}
		if got.Hash != tc.want {
			t.Errorf("Latest(%s, %s) = %s, want %s", tc.user, tc.kind, got.Hash, tc.want)
		}
	}
	for _, tc := range []struct {
		user string
		kind auth.EmailTokenKind
	}{{"u1", auth.TokenChangeEmail}, {"u4", auth.TokenVerifyEmail}} {
		if _, err := s.Latest(t.Context(), tc.user, tc.kind); !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("Latest(%s, %s): err = %v, want ErrNotFound", tc.user, tc.kind, err)
		}
	}
}

func TestEmailTokenStoreDelete(t *testing.T) {
	s := newEmailTokenStore(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	// ExpiresAt is CreatedAt + 1h.
	for _, tok := range []*auth.EmailToken{
		emailToken("a", "u1", auth.TokenVerifyEmail, now.Add(-3*time.Hour)),
		emailToken("b", "u1", auth.TokenResetPassword, now),
		emailToken("c", "u2", auth.TokenVerifyEmail, now.Add(-3*time.Hour)),
		emailToken("d", "u2", auth.TokenChangeEmail, now.Add(-time.Hour)), // expires exactly at now
		emailToken("e", "u3", auth.TokenVerifyEmail, now),
	} {
		if err := s.Create(t.Context(), tok); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.DeleteForUser(t.Context(), "u1"); err != nil || n != 2 {
		t.Errorf("DeleteForUser(u1) = %d, %v; want 2, nil", n, err)
	}
	if n, err := s.DeleteForUser(t.Context(), ""); err != nil || n != 0 {
		t.Errorf(`DeleteForUser("") = %d, %v; want 0, nil`, n, err)
	}
	if n, err := s.DeleteExpired(t.Context(), now); err != nil || n != 1 {
		t.Errorf("DeleteExpired = %d, %v; want 1 (c), nil", n, err)
	}
	for hash, kept := range map[string]bool{"a": false, "b": false, "c": false, "d": true, "e": true} {
		_, err := s.ByHash(t.Context(), hash)
		if kept && err != nil || !kept && !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("token %s: err = %v, want kept = %v", hash, err, kept)
		}
	}
}
