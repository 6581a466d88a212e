package api_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// The answer for an identifier depends only on attempts made with that same
// identifier: throttling "bob" says nothing about whether bob@example.com is
// bob's (@owner-hidden) address.
func TestThrottleIsPerIdentifier(t *testing.T) {
	e := newEnv(t)
	e.mustRegister(t, "bob", "bob@example.com")
	for range 5 {
		e.login(t, "", "bob", "wrong password!")
	}
	wantRateLimited(t, e.login(t, "", "bob", "wrong password!"), "account")
	owned := e.login(t, "", "bob@example.com", "wrong password!")
	unknown := e.login(t, "", "nobody@example.com", "wrong password!")
	if owned.code(t) != "INVALID_CREDENTIALS" || owned.Raw != unknown.Raw {
		t.Fatalf("after throttling bob, bob's email and an unknown one answer differently:\n%s\n%s", owned.Raw, unknown.Raw)
	}
	for range 4 {
		e.login(t, "", "bob@example.com", "wrong password!")
		e.login(t, "", "nobody@example.com", "wrong password!")
	}
	owned = e.login(t, "", "bob@example.com", "wrong password!")
	unknown = e.login(t, "", "nobody@example.com", "wrong password!")
	wantRateLimited(t, owned, "account")
	if owned.Raw != unknown.Raw {
		t.Fatalf("throttled answers differ:\n%s\n%s", owned.Raw, unknown.Raw)
	}
}

// Identifier hashes in logs and throttle keys are keyed with the server's
// secret: a dictionary of plain SHA-256 sums does not reverse them, and
// another key gives other hashes.
func TestIdentifierHashesAreKeyed(t *testing.T) {
	const typed = "Tr0ub4dor&3-typed-into-the-username-field"
	hashOf := func(e *env) string {
		t.Helper()
		e.login(t, "", typed, "wrong password!")
		var hash string
		for _, line := range strings.Split(e.logs.String(), "\n") {
			var ev struct {
				Event, Outcome string
				Hash           string `json:"identifier_hash"`
			}
			if json.Unmarshal([]byte(line), &ev) == nil && ev.Event == "login" && ev.Outcome == "failure" {
				hash = ev.Hash
			}
		}
		if hash == "" {
			t.Fatalf("no failed login with an identifier hash in the log:\n%s", e.logs.String())
		}
		if strings.Contains(e.logs.String(), strings.ToLower(typed)) || strings.Contains(e.logs.String(), typed) {
			t.Fatal("the identifier itself is in the log")
		}
		// The throttle stores the same hash, never the identifier.
		n, err := e.db.Collection("login_attempts").CountDocuments(t.Context(),
			bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: hash + "/"}, {Key: "$lt", Value: hash + "0"}}}})
		if err != nil || n != 1 {
			t.Fatalf("login attempts under the logged hash = %d, %v; want 1", n, err)
		}
		return hash
	}
	h1 := hashOf(newEnv(t))
	for _, plain := range []string{typed, strings.ToLower(typed), "identifier:" + strings.ToLower(typed), "login:" + strings.ToLower(typed)} {
		sum := sha256.Sum256([]byte(plain))
		if h1 == hex.EncodeToString(sum[:16]) || h1 == hex.EncodeToString(sum[:]) {
			t.Fatalf("identifier hash is a plain SHA-256 of %q", plain)
		}
	}
	o := defaultOptions()
	o.cfg.JWTSecret = []byte("another-test-key-0123456789abcdef-0123")
	if h2 := hashOf(newEnvWith(t, o)); h2 == h1 {
		t.Fatal("two server keys give the same identifier hash")
	}
}

func TestThrottleSharedByInstances(t *testing.T) {
	o := defaultOptions()
	o.db = testDB.Fresh(t)
	a, b := newEnvWith(t, o), newEnvWith(t, o)
	a.mustRegister(t, "carol", "carol@example.com")
	for i := range 5 {
		inst := a
		if i%2 == 1 {
			inst = b
		}
		if got := inst.login(t, "", "carol", "wrong password!").code(t); got != "INVALID_CREDENTIALS" {
			t.Fatalf("attempt %d: %s", i, got)
		}
	}
	wantRateLimited(t, a.login(t, "", "carol", testPassword), "account")
	wantRateLimited(t, b.login(t, "", "carol", testPassword), "account")
}
