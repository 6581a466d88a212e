package mongodb_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/authgql/server/internal/auth"
	"github.com/authgql/server/internal/keys"
	"github.com/authgql/server/internal/mongodb"
)

func TestSigningKeyStore(t *testing.T) {
	ctx := t.Context()
	db := testDB.Fresh(t)
	s, err := mongodb.NewSigningKeyStore(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mongodb.NewSigningKeyStore(ctx, db); err != nil {
		t.Fatalf("a second instance on the same collection: %v", err)
	}
	at := time.Date(2026, 12, 1, 12, 0, 0, 123456789, time.UTC)
	key := func(gen int64, kid string) keys.Stored {
		return keys.Stored{
			Gen: gen, KID: kid, Alg: keys.ES256, PublicJWK: []byte(`{"kty":"EC","kid":"` + kid + `"}`),
			Private: []byte{0, 1, 2, byte(gen)}, CreatedAt: at, SignFrom: at.Add(time.Duration(gen) * time.Hour),
		}
	}
	all := func() []keys.Stored {
		t.Helper()
		got, err := s.All(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := all(); len(got) != 0 {
		t.Fatalf("All on an empty store = %v", got)
	}
	// Out of order: All returns them by Gen.
	for _, k := range []keys.Stored{key(2, "b"), key(1, "a"), key(10, "c")} {
		if err := s.Insert(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	for name, k := range map[string]keys.Stored{"gen taken": key(2, "z"), "kid taken": key(3, "a")} {
		if err := s.Insert(ctx, k); !errors.Is(err, auth.ErrDuplicate) {
			t.Errorf("%s: Insert = %v, want ErrDuplicate", name, err)
		}
	}
	got := all()
	if len(got) != 3 || got[0].Gen != 1 || got[1].Gen != 2 || got[2].Gen != 10 {
		t.Fatalf("All = %+v; want gens 1, 2, 10 and nothing of the refused inserts", got)
	}
	want := key(2, "b")
	if g := got[1]; g.KID != want.KID || g.Alg != want.Alg || !bytes.Equal(g.PublicJWK, want.PublicJWK) ||
		!bytes.Equal(g.Private, want.Private) || !g.CreatedAt.Equal(at.Truncate(time.Millisecond)) ||
		!g.SignFrom.Equal(want.SignFrom.Truncate(time.Millisecond)) || !g.RevokedAt.IsZero() ||
		g.CreatedAt.Location() != time.UTC {
		t.Fatalf("round trip: %+v, want %+v", g, want)
	}

	var raw bson.Raw
	if err := db.Collection("signing_keys").FindOne(ctx, bson.D{{Key: "_id", Value: int64(2)}}).Decode(&raw); err != nil {
		t.Fatalf("find by _id = Gen: %v", err)
	}
	if _, err := raw.LookupErr("revoked_at"); err == nil {
		t.Fatalf("revoked_at present before revocation: %s", raw)
	}

	if err := s.Revoke(ctx, "b", at); err != nil {
		t.Fatal(err)
	}
	if err := s.Revoke(ctx, "b", at.Add(time.Hour)); err != nil {
		t.Fatalf("revoking again: %v", err)
	}
	if err := s.Revoke(ctx, "nope", at); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("Revoke(unknown) = %v, want ErrNotFound", err)
	}
	got = all()
	if !got[1].RevokedAt.Equal(at.Truncate(time.Millisecond)) {
		t.Fatalf("RevokedAt = %v, want the first revocation's %v", got[1].RevokedAt, at)
	}
	if !got[0].RevokedAt.IsZero() || !got[2].RevokedAt.IsZero() {
		t.Fatal("Revoke marked other keys")
	}
}
