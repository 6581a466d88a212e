package auth

import (
	"context"
	"errors"
)

// TotpEnrollment is a pending authenticator app: its secret, as text, as an
// otpauth:// link and as a QR code.
type TotpEnrollment struct {
	Secret        string
	OtpauthURI    string
	QRCodeDataURL string
}

// errNotBuilt answers the second-factor operations while they are being
// built (issue 17); nothing reaches a store.
var errNotBuilt = &Error{Code: CodeInternal, Message: "not available yet"}

// EnrollTotp starts enrolling an authenticator app for the caller.
func (s *Service) EnrollTotp(ctx context.Context) (*TotpEnrollment, error) { return nil, errNotBuilt }

// ConfirmTotp proves the pending app with a code: it becomes the account's
// second factor; ten recovery codes and level-2 tokens come back.
func (s *Service) ConfirmTotp(ctx context.Context, code string) ([]string, *Result, error) {
	return nil, nil, errNotBuilt
}

// VerifyMfa raises the caller's session to level 2 with a TOTP or recovery
// code, or a passkey assertion (exactly one).
func (s *Service) VerifyMfa(ctx context.Context, code *string, passkeyResponse map[string]any) (*Result, error) {
	c, err := Authenticate(ctx)
	if err != nil {
		return nil, err
	}
	if (code == nil) == (passkeyResponse == nil) {
		return nil, badInput("code", ReasonRequired, "give exactly one of code and passkeyResponse")
	}
	if passkeyResponse != nil {
		if err := s.verifyPasskeyMfa(ctx, c, passkeyResponse); err != nil {
			return nil, err
		}
		return s.elevate(ctx, c, AMRWebAuthn)
	}
	return nil, errors.Join(errNotBuilt)
}

// DisableTotp removes the caller's authenticator app.
func (s *Service) DisableTotp(ctx context.Context, code string) (bool, error) {
	return false, errNotBuilt
}

// RegenerateRecoveryCodes replaces the caller's recovery codes.
func (s *Service) RegenerateRecoveryCodes(ctx context.Context) ([]string, error) {
	return nil, errNotBuilt
}

// ResetMfa removes every second factor of a user (admins).
func (s *Service) ResetMfa(ctx context.Context, userID string) (*User, error) {
	return nil, errNotBuilt
}
