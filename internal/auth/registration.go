package auth

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Register validates the input, stores a new user and signs them in.
// Nothing is stored unless every check passes.
func (s *Service) Register(ctx context.Context, username, email, password string) (*Result, error) {
	if err := s.allowIP(ctx, "register"); err != nil {
		return nil, err
	}
	name, nameKey, verr := NormalizeUsername(username)
	if verr != nil {
		return nil, verr
	}
	addr, addrKey, verr := NormalizeEmail(email)
	if verr != nil {
		return nil, verr
	}
	if verr := CheckPassword(password, name, addr); verr != nil {
		return nil, verr
	}
	hash, err := s.hasher.hash(ctx, password)
	if err != nil {
		return nil, err
	}
	u := &User{
		Username:        name,
		Email:           addr,
		UsernameKey:     nameKey,
		EmailKey:        addrKey,
		PasswordHash:    hash,
		CreatedAt:       s.now().UTC().Truncate(time.Millisecond),
		Roles:           []Role{RoleUser},
		CredentialStamp: newStamp(),
	}
	if err := s.users.Create(ctx, u); err != nil {
		if errors.Is(err, ErrDuplicate) {
			return nil, s.conflict(ctx, nameKey)
		}
		return nil, fmt.Errorf("auth: create user: %w", err)
	}
	s.audit.InfoContext(ctx, "audit", "event", "register", "outcome", "success", "user_id", u.ID, "ip", ClientFromContext(ctx).IP)
	// The account exists either way; without the mail, the user asks for
	// another with requestEmailVerification.
	if err := s.queueVerification(ctx, u); err != nil {
		s.audit.WarnContext(ctx, "auth: queueing the verification mail failed", "user_id", u.ID, "err", err)
	}
	return s.startSession(ctx, u)
}

// conflict tells which of the two unique keys a failed insert collided with.
// Asking the store is exact and avoids parsing driver messages.
func (s *Service) conflict(ctx context.Context, nameKey string) error {
	_, err := s.users.ByUsernameKey(ctx, nameKey)
	switch {
	case err == nil:
		return badInput("username", ReasonTaken, "username is already taken")
	case errors.Is(err, ErrNotFound):
		return badInput("email", ReasonTaken, "email is already registered")
	default:
		return fmt.Errorf("auth: find conflicting user: %w", err)
	}
}
