package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// Authentication methods (the amr claim, RFC 8176 names).
const (
	AMRPassword  = "pwd"
	AMROTP       = "otp"
	AMRRecovery  = "recovery"
	AMRWebAuthn  = "webauthn"
	AMRFederated = "fed"
)

// ReasonMFARequired is the FORBIDDEN reason of a field that needs a second
// factor the session has not proven.
const ReasonMFARequired = "mfa_required"

// ErrMFARequired answers a field that a level-1 session of an account with a
// second factor may not reach, or one that needs level 2.
var ErrMFARequired = &Error{Code: CodeForbidden, Reason: ReasonMFARequired,
	Message: "this needs a second factor: call verifyMfa first"}

// level1Fields are the only @auth fields a session at level 1 of an account
// with a second factor reaches: enough to see who it is, prove the factor,
// or leave.
var level1Fields = map[string]bool{"me": true, "verifyMfa": true, "beginMfaPasskey": true, "logout": true, "sessions": true}

// AuthorizeLevel is the assurance part of @auth: field is the root field
// being resolved ("" for a nested one), aal the level the field requires.
// A level-1 session of an account with a second factor reaches only
// level1Fields, so that no app can forget to check.
func AuthorizeLevel(c Claims, field string, aal int) error {
	level := c.AAL
	if level == 0 {
		level = 1
	}
	if aal > level {
		return ErrMFARequired
	}
	if c.MFA && level < 2 && !level1Fields[field] {
		return ErrMFARequired
	}
	return nil
}

// raiseSession raises the caller's session to level 2 by method, keeping its
// refresh token: the tokens of its next refresh carry the level.
func (s *Service) raiseSession(ctx context.Context, c Claims, method string) error {
	sess, err := s.sessions.ByID(ctx, c.SessionID)
	if errors.Is(err, ErrNotFound) {
		return ErrSessionRevoked
	}
	if err != nil {
		return fmt.Errorf("auth: find session: %w", err)
	}
	amr := slices.Clone(sess.AMR)
	if len(amr) == 0 {
		amr = []string{AMRPassword}
	}
	if !slices.Contains(amr, method) {
		amr = append(amr, method)
	}
	if _, err := s.sessions.Elevate(ctx, sess.ID, 2, amr, sess.TokenHash, s.now().UTC()); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("auth: raise session: %w", err)
	}
	return nil
}

// elevate raises the caller's session to level 2 by method and returns new
// tokens for the same session: the new refresh token replaces the old one as
// a rotation would.
func (s *Service) elevate(ctx context.Context, c Claims, method string) (*Result, error) {
	return s.reissue(ctx, c, method)
}

// reissue returns new tokens for the caller's session, the new refresh token
// replacing the old one as a rotation would. With a method, the session is
// raised to level 2 by it; without, its level and methods are kept.
func (s *Service) reissue(ctx context.Context, c Claims, method string) (*Result, error) {
	sess, err := s.sessions.ByID(ctx, c.SessionID)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrSessionRevoked
	}
	if err != nil {
		return nil, fmt.Errorf("auth: find session: %w", err)
	}
	aal, amr := sess.AAL, slices.Clone(sess.AMR)
	if len(amr) == 0 { // a session from before levels existed: a password one
		amr = []string{AMRPassword}
	}
	if aal == 0 {
		aal = 1
	}
	if method != "" {
		aal = 2
		if !slices.Contains(amr, method) {
			amr = append(amr, method)
		}
	}
	refresh := s.keys.root(sess.ID)
	up, err := s.sessions.Elevate(ctx, sess.ID, aal, amr, hashToken(refresh), s.now().UTC())
	if errors.Is(err, ErrNotFound) {
		return nil, ErrSessionRevoked
	}
	if err != nil {
		return nil, fmt.Errorf("auth: reissue session tokens: %w", err)
	}
	u, err := s.freshCaller(ctx, c)
	if err != nil {
		return nil, err
	}
	return s.result(ctx, u, up, refresh)
}
