package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
)

var errRefreshUnknown = &Error{Code: CodeInvalidRefresh, Reason: ReasonUnknown, Message: "refresh token is not valid; sign in again"}

func refreshError(reason, msg string) *Error {
	return &Error{Code: CodeInvalidRefresh, Reason: reason, Message: msg}
}

// Refresh rotates a refresh token: it returns a new pair and invalidates the
// presented token. The rules, in order:
//   - a token the server did not issue, or of a session that no longer
//     exists: INVALID_REFRESH_TOKEN / unknown (the same for malformed input);
//   - a revoked or expired session: revoked / expired;
//   - the current token: rotated atomically (one winner among concurrent
//     callers);
//   - the token replaced by the last rotation, within the reuse interval: the
//     same new pair the winner got (two tabs refreshing at once both go on);
//   - any other token of the session: reuse of a stolen token — the session
//     and all its access tokens are revoked.
func (s *Service) Refresh(ctx context.Context, raw string) (*Result, error) {
	if err := s.allowIP(ctx, "refresh"); err != nil {
		return nil, err
	}
	res, err := s.refresh(ctx, raw)
	outcome := "success"
	if err != nil {
		outcome = ErrorReason(err)
	}
	attrs := []slog.Attr{slog.String("event", "refresh"), slog.String("outcome", outcome), slog.String("ip", ClientFromContext(ctx).IP)}
	if res != nil {
		attrs = append(attrs, slog.String("user_id", res.User.ID))
	}
	s.audit.LogAttrs(ctx, slog.LevelInfo, "audit", attrs...)
	return res, err
}

func (s *Service) refresh(ctx context.Context, raw string) (*Result, error) {
	sid, ok := s.keys.parse(raw)
	if !ok {
		return nil, errRefreshUnknown
	}
	now := s.now().UTC()
	h := hashToken(raw)
	child := s.keys.child(sid, raw)
	hc := hashToken(child)

	if s.revoked.has(sid) {
		return nil, refreshError(ReasonRevoked, "this session has ended; sign in again")
	}
	sess, err := s.sessions.Rotate(ctx, sid, Rotation{From: h, To: hc, Now: now, ExpiresAt: now.Add(s.ttl)})
	if err == nil {
		return s.refreshed(ctx, sess, child)
	}
	if !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("auth: rotate session: %w", err)
	}
	sess, err = s.sessions.ByID(ctx, sid)
	if errors.Is(err, ErrNotFound) {
		return nil, errRefreshUnknown
	}
	if err != nil {
		return nil, fmt.Errorf("auth: find session: %w", err)
	}
	switch {
	case !sess.RevokedAt.IsZero():
		return nil, refreshError(ReasonRevoked, "this session has ended; sign in again")
	case !now.Before(sess.ExpiresAt):
		return nil, refreshError(ReasonExpired, "this session has expired; sign in again")
	case sess.PrevHash == h && now.Sub(sess.RotatedAt) <= s.reuse:
		if sess.TokenHash == hc {
			return s.refreshed(ctx, sess, child)
		}
		// Rotated again since: too late for this copy, but no theft either.
		return nil, refreshError(ReasonReused, "this refresh token was already used; use the newest one")
	default:
		if _, err := s.revoke(ctx, sess.UserID, []string{sid}, "", "reused"); err != nil {
			return nil, err
		}
		s.audit.WarnContext(ctx, "audit", "event", "refresh_reuse", "user_id", sess.UserID, "session_id", sid,
			"ip", ClientFromContext(ctx).IP)
		return nil, refreshError(ReasonReused, "this refresh token was already used; the session has been ended")
	}
}

func (s *Service) refreshed(ctx context.Context, sess *Session, refresh string) (*Result, error) {
	u, err := s.users.ByID(ctx, sess.UserID)
	if errors.Is(err, ErrNotFound) {
		if _, err := s.revoke(ctx, sess.UserID, []string{sess.ID}, "", "revoked"); err != nil {
			return nil, err
		}
		return nil, errRefreshUnknown
	}
	if err != nil {
		return nil, fmt.Errorf("auth: find user: %w", err)
	}
	if u.Disabled || u.CredentialStamp != sess.CredentialStamp {
		// Disabled, or a session that began before the password changed whose
		// revocation has not landed (yet): it ends now.
		reason := "disabled"
		if !u.Disabled {
			reason = "password_changed"
		}
		if _, err := s.revoke(ctx, sess.UserID, []string{sess.ID}, "", reason); err != nil {
			return nil, err
		}
		return nil, refreshError(ReasonRevoked, "this session has ended; sign in again")
	}
	return s.result(ctx, u, sess, refresh)
}

// LogoutScope says which of the caller's sessions a logout ends.
type LogoutScope int

const (
	LogoutCurrent LogoutScope = iota // the session of the access token
	LogoutOthers                     // every other session of the user
	LogoutAll                        // every session of the user
)

// Logout ends sessions of the caller. Their access tokens stop working at once
// on this instance and within the sync interval on the others.
func (s *Service) Logout(ctx context.Context, scope LogoutScope) error {
	c, err := Authenticate(ctx)
	if err != nil {
		return err
	}
	var ended []string
	switch scope {
	case LogoutCurrent:
		ended, err = s.revoke(ctx, c.UserID, []string{c.SessionID}, "", "logout")
	case LogoutOthers:
		ended, err = s.revoke(ctx, c.UserID, nil, c.SessionID, "logout")
	default:
		ended, err = s.revoke(ctx, c.UserID, nil, "", "logout")
	}
	if err != nil {
		return err
	}
	s.audit.InfoContext(ctx, "audit", "event", "logout", "outcome", "success", "user_id", c.UserID,
		"scope", int(scope), "sessions_ended", len(ended), "ip", ClientFromContext(ctx).IP)
	return nil
}

// Sessions returns the caller's active sessions, most recently used first.
func (s *Service) Sessions(ctx context.Context) ([]*Session, Claims, error) {
	c, err := Authenticate(ctx)
	if err != nil {
		return nil, Claims{}, err
	}
	list, err := s.sessions.Active(ctx, c.UserID, s.now().UTC())
	if err != nil {
		return nil, Claims{}, fmt.Errorf("auth: list sessions: %w", err)
	}
	return list, c, nil
}

// RevokeSession ends one of the caller's own sessions. Another user's
// session is "not found", exactly like one that does not exist.
func (s *Service) RevokeSession(ctx context.Context, id string) error {
	c, err := Authenticate(ctx)
	if err != nil {
		return err
	}
	sess, err := s.sessions.ByID(ctx, id)
	if errors.Is(err, ErrNotFound) || err == nil && sess.UserID != c.UserID {
		return &Error{Code: CodeNotFound, Field: "id", Message: "no such session"}
	}
	if err != nil {
		return fmt.Errorf("auth: find session: %w", err)
	}
	_, err = s.revoke(ctx, c.UserID, []string{id}, "", "revoked")
	return err
}
