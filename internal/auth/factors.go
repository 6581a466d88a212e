package auth

import "context"

// The second factors of an account are an authenticator app (totp.go) and
// passkeys (passkeys.go). Each side removes its own; these two functions are
// how the TOTP side asks the passkey side, so that User.MFAEnabled stays
// true while any factor is left and an admin's resetMfa removes them all.
//
// Until the passkey store is wired in, an account has no passkeys: the
// passkey side replaces these bodies with calls to its store.

// passkeyCount is how many passkeys userID has.
func (s *Service) passkeyCount(ctx context.Context, userID string) (int, error) {
	return 0, nil
}

// deletePasskeysOf removes every passkey of userID.
func (s *Service) deletePasskeysOf(ctx context.Context, userID string) error {
	return nil
}
