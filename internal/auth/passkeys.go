package auth

import (
	"context"
	"time"
)

// Passkey is a WebAuthn credential of a user.
type Passkey struct {
	ID         string
	Name       string
	CreatedAt  time.Time
	LastUsedAt *time.Time
}

// BeginPasskeyRegistration returns the creation options for a new passkey.
func (s *Service) BeginPasskeyRegistration(ctx context.Context) (map[string]any, error) {
	return nil, errNotBuilt
}

// FinishPasskeyRegistration stores the passkey that answered the options.
func (s *Service) FinishPasskeyRegistration(ctx context.Context, response map[string]any, name *string) (*Passkey, error) {
	return nil, errNotBuilt
}

// Passkeys lists the caller's passkeys.
func (s *Service) Passkeys(ctx context.Context) ([]*Passkey, error) { return nil, errNotBuilt }

// RenamePasskey renames one of the caller's passkeys.
func (s *Service) RenamePasskey(ctx context.Context, id, name string) (*Passkey, error) {
	return nil, errNotBuilt
}

// DeletePasskey removes one of the caller's passkeys.
func (s *Service) DeletePasskey(ctx context.Context, id string) (bool, error) {
	return false, errNotBuilt
}

// BeginMfaPasskey returns assertion options for the caller's passkeys.
func (s *Service) BeginMfaPasskey(ctx context.Context) (map[string]any, error) {
	return nil, errNotBuilt
}

// verifyPasskeyMfa checks an assertion of one of c's passkeys.
func (s *Service) verifyPasskeyMfa(ctx context.Context, c Claims, response map[string]any) error {
	return errNotBuilt
}

// BeginPasskeyLogin returns assertion options for a passwordless sign-in.
func (s *Service) BeginPasskeyLogin(ctx context.Context) (map[string]any, error) {
	return nil, errNotBuilt
}

// FinishPasskeyLogin signs in with a discoverable passkey.
func (s *Service) FinishPasskeyLogin(ctx context.Context, response map[string]any) (*Result, error) {
	return nil, errNotBuilt
}
