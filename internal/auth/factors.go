package auth

import (
	"context"
	"errors"
	"fmt"
)

// The second factors of an account are an authenticator app (totp.go) and
// passkeys (passkeys.go). Each side removes its own; these two functions are
// how the TOTP side asks the passkey side, so that User.MFAEnabled stays
// true while any factor is left and an admin's resetMfa removes them all.

// passkeyCount is how many passkeys userID has (none when passkeys are off).
func (s *Service) passkeyCount(ctx context.Context, userID string) (int, error) {
	if s.rp == nil {
		return 0, nil
	}
	creds, err := s.rp.creds.ForUser(ctx, userID)
	if err != nil {
		return 0, fmt.Errorf("auth: list passkeys: %w", err)
	}
	return len(creds), nil
}

// deletePasskeysOf removes every passkey of userID and the ceremonies it
// began.
func (s *Service) deletePasskeysOf(ctx context.Context, userID string) error {
	if s.rp == nil {
		return nil
	}
	if _, err := s.rp.creds.DeleteForUser(ctx, userID); err != nil {
		return fmt.Errorf("auth: delete passkeys: %w", err)
	}
	if _, err := s.rp.challenges.DeleteForUser(ctx, userID); err != nil {
		return fmt.Errorf("auth: delete webauthn challenges: %w", err)
	}
	return nil
}

// totpConfirmed reports whether userID has a confirmed authenticator app.
func (s *Service) totpConfirmed(ctx context.Context, userID string) (bool, error) {
	if s.mfa == nil {
		return false, nil
	}
	switch _, err := s.mfa.TOTP(ctx, userID, true); {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrNotFound):
		return false, nil
	default:
		return false, fmt.Errorf("auth: find totp: %w", err)
	}
}
