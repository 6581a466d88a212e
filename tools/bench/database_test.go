package bench

import (
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// keys returns the field names v is stored with.
func keys(t *testing.T, v any) []string {
	t.Helper()
	b, err := bson.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	elems, err := bson.Raw(b).Elements()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range elems {
		out = append(out, e.Key())
	}
	return out
}

// TestStoredShapes pins the field names to those of internal/mongodb's
// userDoc and sessionDoc (user.go, session.go), which this module cannot
// import: a change there must be copied here.
func TestStoredShapes(t *testing.T) {
	now := time.Now()
	u := userDoc{ID: bson.NewObjectID(), CredStamp: "stamp"}
	if got, want := keys(t, u), []string{"_id", "username", "email", "username_key", "email_key", "password_hash",
		"created_at", "roles", "disabled", "cred_stamp"}; !slices.Equal(got, want) {
		t.Errorf("user fields: got %v, want %v", got, want)
	}
	ended := seededSession(&u, 1, now)
	if got, want := keys(t, ended), []string{"_id", "user_id", "token_hash", "prev_hash", "rotated_at", "created_at",
		"last_used_at", "expires_at", "user_agent", "ip", "revoked_at", "revoked_reason", "cred_stamp"}; !slices.Equal(got, want) {
		t.Errorf("session fields: got %v, want %v", got, want)
	}
}

func TestSeededSessions(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	u := userDoc{ID: bson.NewObjectID(), CredStamp: "stamp"}
	ids := map[string]bool{}
	active := 0
	for i := range 400 {
		s := seededSession(&u, i, now)
		if ids[s.ID] {
			t.Fatalf("session %d: id %q repeated", i, s.ID)
		}
		ids[s.ID] = true
		if got, want := len(s.ID), 22; got != want {
			t.Errorf("session id %q: got %d characters, want %d (16 bytes, base64url)", s.ID, got, want)
		}
		if s.UserID != u.ID.Hex() || s.CredStamp != u.CredStamp || len(s.TokenHash) != 64 {
			t.Errorf("session %d: got user %q, stamp %q, hash %q; want the user's, and a SHA-256 in hex", i, s.UserID, s.CredStamp, s.TokenHash)
		}
		if !s.ExpiresAt.After(now) || s.CreatedAt.After(now) || now.Sub(s.CreatedAt) > 24*time.Hour {
			t.Errorf("session %d: created %s, expires %s; want created within the day before %s and not expired", i, s.CreatedAt, s.ExpiresAt, now)
		}
		if s.RevokedAt == nil {
			active++
			continue
		}
		// Ended within the last day: the server keeps them for a day.
		if s.RevokedReason != "logout" || s.RevokedAt.After(now) || now.Sub(*s.RevokedAt) > 24*time.Hour {
			t.Errorf("session %d: revoked %s (%q); want a logout within the last day", i, s.RevokedAt, s.RevokedReason)
		}
	}
	if got, want := active, 100; got != want {
		t.Errorf("active sessions: got %d of 400, want %d", got, want)
	}
}
