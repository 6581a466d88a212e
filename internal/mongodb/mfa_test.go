package mongodb_test

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/authgql/server/internal/auth"
	"github.com/authgql/server/internal/mongodb"
)

func TestMFAStore(t *testing.T) {
	s := mongodb.NewMFAStore(testDB.Fresh(t))
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Millisecond)
	if _, err := s.TOTP(ctx, "u1", true); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("TOTP of a user without one: %v, want ErrNotFound", err)
	}
	pending := &auth.TOTP{UserID: "u1", Sealed: []byte{1, 2, 3}, CreatedAt: now}
	if err := s.PutTOTP(ctx, pending); err != nil {
		t.Fatal(err)
	}
	// A new pending app replaces the pending one; the confirmed slot is apart.
	pending.Sealed = []byte{4, 5, 6}
	if err := s.PutTOTP(ctx, pending); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TOTP(ctx, "u1", true); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("confirmed after a pending put: %v, want ErrNotFound", err)
	}
	got, err := s.TOTP(ctx, "u1", false)
	if err != nil {
		t.Fatal(err)
	}
	if got.UserID != "u1" || !bytes.Equal(got.Sealed, []byte{4, 5, 6}) || got.Confirmed || !got.CreatedAt.Equal(now) {
		t.Fatalf("pending = %+v", got)
	}
	if err := s.PutTOTP(ctx, &auth.TOTP{UserID: "u1", Sealed: []byte{7}, Confirmed: true, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteTOTP(ctx, "u1", false); err != nil {
		t.Fatal(err)
	}
	if got, err := s.TOTP(ctx, "u1", true); err != nil || !got.Confirmed || !bytes.Equal(got.Sealed, []byte{7}) {
		t.Fatalf("confirmed = %+v, %v", got, err)
	}
	if err := s.DeleteTOTP(ctx, "u1", false); err != nil {
		t.Fatalf("deleting what is not there: %v", err)
	}

	if hs, err := s.RecoveryCodes(ctx, "u1"); err != nil || hs != nil {
		t.Fatalf("codes of a user without them: %v, %v", hs, err)
	}
	if err := s.SetRecoveryCodes(ctx, "u1", []string{"a", "b"}, now); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRecoveryCodes(ctx, "u1", []string{"c", "d", "e"}, now); err != nil {
		t.Fatal(err)
	}
	if hs, err := s.RecoveryCodes(ctx, "u1"); err != nil || !slices.Equal(hs, []string{"c", "d", "e"}) {
		t.Fatalf("codes after a replacement: %v, %v", hs, err)
	}
	if err := s.SetRecoveryCodes(ctx, "u2", []string{"x"}, now); err != nil {
		t.Fatal(err)
	}

	if err := s.DeleteForUser(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	for _, confirmed := range []bool{false, true} {
		if _, err := s.TOTP(ctx, "u1", confirmed); !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("app (confirmed %v) after DeleteForUser: %v", confirmed, err)
		}
	}
	if hs, err := s.RecoveryCodes(ctx, "u1"); err != nil || hs != nil {
		t.Errorf("codes after DeleteForUser: %v, %v", hs, err)
	}
	if hs, err := s.RecoveryCodes(ctx, "u2"); err != nil || !slices.Equal(hs, []string{"x"}) {
		t.Errorf("another user's codes after DeleteForUser: %v, %v", hs, err)
	}
}
