package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"golang.org/x/crypto/bcrypt"
)

// Login checks a username (or email) and password and starts a session.
// Every failure is the same INVALID_CREDENTIALS error, after the same amount
// of hashing work. Failures are counted per identifier as typed (a username
// and its email address apart), so the answer for an identifier depends only
// on the attempts made with it: an unknown one is throttled exactly like a
// known one.
func (s *Service) Login(ctx context.Context, login, password string) (*Result, error) {
	if err := s.allowIP(ctx, "login"); err != nil {
		return nil, err
	}
	// Passwords outside the policy's window cannot match a stored hash; bcrypt
	// would silently compare only the first 72 bytes of a longer one.
	if len(password) > passwordMaxBytes || password == "" {
		return nil, errInvalidCredentials
	}
	key, byEmail := loginKey(login)
	find := func(ctx context.Context) (*User, error) {
		switch {
		case key == "":
			return nil, ErrNotFound
		case byEmail:
			return s.users.ByEmailKey(ctx, key)
		default:
			return s.users.ByUsernameKey(ctx, key)
		}
	}
	u, err := s.checkPassword(ctx, "login", s.identifierHash("login", key), find, password)
	if errors.Is(err, errWrongPassword) {
		return nil, errInvalidCredentials
	}
	if err != nil {
		return nil, err
	}
	who := slog.String("user_id", u.ID)
	ip := slog.String("ip", ClientFromContext(ctx).IP)
	if u.Disabled {
		// Only someone who knows the password learns that the account is disabled.
		s.audit.LogAttrs(ctx, slog.LevelInfo, "audit", slog.String("event", "login"), slog.String("outcome", "disabled"), who, ip)
		return nil, errUserDisabled
	}
	s.upgradeHash(ctx, u, password)
	res, err := s.startSession(ctx, u)
	if err != nil {
		return nil, err
	}
	s.audit.LogAttrs(ctx, slog.LevelInfo, "audit", slog.String("event", "login"), slog.String("outcome", "success"), who, ip)
	return res, nil
}

// errWrongPassword is checkPassword's answer to a password that does not
// match (or an account that does not exist); callers choose what to say.
var errWrongPassword = errors.New("wrong password")

// checkPassword is the one password check of the service, for login and
// changePassword alike. In order: a hashing slot (a flood is turned away
// before any database work), the account from find, the attempt reserved for
// key (one per lock window), the comparison — against a dummy hash when
// there is no account, at the same cost — and, on a match, forgetting the
// key's failures. Failures and throttling are audited as event.
func (s *Service) checkPassword(ctx context.Context, event, key string, find func(context.Context) (*User, error), password string) (*User, error) {
	release, err := s.hasher.reserve(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	ip := slog.String("ip", ClientFromContext(ctx).IP)
	// The account first: a database error then never leaves an attempt counted.
	u, err := find(ctx)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("auth: find user: %w", err)
	}
	if _, err := s.reserveAttempt(ctx, key); err != nil {
		if ErrorCode(err) == CodeRateLimited {
			s.audit.LogAttrs(ctx, slog.LevelWarn, "audit", slog.String("event", event), slog.String("outcome", "throttled"),
				slog.String("identifier_hash", key), ip)
		}
		return nil, err
	}
	hash := s.dummyHash
	who := slog.String("identifier_hash", key)
	if u != nil {
		who = slog.String("user_id", u.ID)
	}
	// An account without a password (made by a federated sign-in) is
	// compared against the dummy hash too: the same work, and never a match.
	if u != nil && len(u.PasswordHash) > 0 {
		hash = u.PasswordHash
	}
	ok := s.hasher.compareReserved(ctx, hash, password)
	release()
	if !ok || u == nil || len(u.PasswordHash) == 0 {
		s.audit.LogAttrs(ctx, slog.LevelInfo, "audit", slog.String("event", event), slog.String("outcome", "failure"), who, ip)
		return nil, errWrongPassword
	}
	if err := s.forgetFailures(ctx, key); err != nil {
		return nil, err
	}
	return u, nil
}

// upgradeHash re-hashes a password stored at another cost than the configured
// one, so that raising BCRYPT_COST reaches every account at its next login.
// The credential stamp stays: the password is the same.
func (s *Service) upgradeHash(ctx context.Context, u *User, password string) {
	if cost, err := bcrypt.Cost(u.PasswordHash); err != nil || cost == s.hasher.cost {
		return
	}
	hash, err := s.hasher.hash(ctx, password)
	if err != nil {
		return
	}
	// Best effort: the login has succeeded either way. Conditional on the
	// hash that was checked, so a password changed meanwhile is never undone.
	if s.users.SetPassword(ctx, u.ID, u.PasswordHash, hash, u.CredentialStamp) == nil {
		u.PasswordHash = hash
	}
}

// ChangePassword checks the caller's current password, sets a new one, ends
// every other session and gives this session fresh tokens. The new hash and
// a new credential stamp are one write: any session that began from the old
// password, even a login in flight, is dead once it lands.
func (s *Service) ChangePassword(ctx context.Context, current, next string) (*Result, error) {
	c, err := Authenticate(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := s.freshCaller(ctx, c); err != nil {
		return nil, err
	}
	u, err := s.checkCurrentPassword(ctx, "change_password", c, current)
	if err != nil {
		return nil, err
	}
	if verr := CheckPassword(next, u.Username, u.Email); verr != nil {
		e := *verr
		e.Field = "newPassword"
		return nil, &e
	}
	if next == current {
		return nil, badInput("newPassword", ReasonUnchanged, "new password must differ from the current one")
	}
	hash, err := s.hasher.hash(ctx, next)
	if err != nil {
		return nil, err
	}
	stamp := newStamp()
	if err := s.users.SetPassword(ctx, u.ID, u.PasswordHash, hash, stamp); err != nil {
		if errors.Is(err, ErrNotFound) { // changed by another request meanwhile
			return nil, errIncorrectPassword
		}
		return nil, fmt.Errorf("auth: set password: %w", err)
	}
	u.PasswordHash, u.CredentialStamp = hash, stamp
	// The password has changed and cannot be changed back: the revocation is
	// retried until it holds. Should it still fail, the other sessions'
	// refreshes are refused anyway, for their stamp is no longer the user's.
	ended, err := s.revokeUntilDone(ctx, u.ID, nil, c.SessionID, "password_changed",
		s.securityEvent(ctx, EventPasswordChanged, u.ID))
	if err != nil {
		return nil, err
	}
	s.audit.InfoContext(ctx, "audit", "event", "change_password", "outcome", "success", "user_id", u.ID,
		"sessions_ended", len(ended), "ip", ClientFromContext(ctx).IP)
	return s.restartSession(ctx, u, c.SessionID)
}

var errIncorrectPassword = badInput("currentPassword", ReasonIncorrect, "current password is incorrect")

// restartSession gives session id a new token chain carrying u's credential
// stamp; its old refresh token becomes a replaced one (honoured for nothing,
// reuse after the interval).
func (s *Service) restartSession(ctx context.Context, u *User, id string) (*Result, error) {
	for range 3 {
		sess, err := s.sessions.ByID(ctx, id)
		if errors.Is(err, ErrNotFound) {
			return nil, ErrSessionRevoked
		}
		if err != nil {
			return nil, fmt.Errorf("auth: find session: %w", err)
		}
		now := s.now().UTC()
		if !sess.Active(now) || s.revoked.has(id) {
			return nil, ErrSessionRevoked
		}
		refresh := s.keys.root(sess.ID)
		sess, err = s.sessions.Rotate(ctx, sess.ID, Rotation{From: sess.TokenHash, To: hashToken(refresh),
			Stamp: u.CredentialStamp, Now: now, ExpiresAt: now.Add(s.ttl)})
		if errors.Is(err, ErrNotFound) {
			continue // refreshed concurrently: read it again
		}
		if err != nil {
			return nil, fmt.Errorf("auth: rotate session: %w", err)
		}
		return s.result(ctx, u, sess, refresh)
	}
	return nil, fmt.Errorf("auth: session %s kept changing", id)
}
