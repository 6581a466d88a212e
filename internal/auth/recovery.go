package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"
)

// Links in mails: APP_URL followed by one of these and ?token=…
const (
	PathVerifyEmail   = "/verify-email"
	PathResetPassword = "/reset-password"
	PathConfirmEmail  = "/confirm-email"
)

// emailTokenBytes of crypto/rand make a link token: 256 bits.
const emailTokenBytes = 32

// Reasons of INVALID_EMAIL_TOKEN.
const (
	ReasonUsed = "used"
	// ReasonExpired and ReasonUnknown are shared with INVALID_REFRESH_TOKEN.
)

func invalidEmailToken(reason string) *Error {
	msg := map[string]string{
		ReasonExpired: "this link has expired or was replaced by a newer one; ask for a new one",
		ReasonUsed:    "this link was already used",
		ReasonUnknown: "this link is not valid",
	}[reason]
	return &Error{Code: CodeInvalidEmailToken, Reason: reason, Message: msg}
}

// newEmailToken stores a token of kind for u, bound to the address
// (email, key) and u's credential stamp, and returns it.
func (s *Service) newEmailToken(ctx context.Context, kind EmailTokenKind, u *User, email, key string, ttl time.Duration) (string, error) {
	b := make([]byte, emailTokenBytes)
	_, _ = rand.Read(b)
	raw := base64.RawURLEncoding.EncodeToString(b)
	now := s.now().UTC().Truncate(time.Millisecond)
	t := &EmailToken{Hash: emailTokenHash(raw), Kind: kind, UserID: u.ID, Email: email, EmailKey: key,
		Stamp: u.CredentialStamp, CreatedAt: now, ExpiresAt: now.Add(ttl)}
	if err := s.emailTokens.Create(ctx, t); err != nil {
		return "", fmt.Errorf("auth: store email token: %w", err)
	}
	return raw, nil
}

func emailTokenHash(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:])
}

func (s *Service) link(path, raw string) string {
	return s.mail.AppURL + path + "?token=" + raw
}

// takeMailWindow reports whether a mail of kind may go to the address with
// key now: at most one per MailAddressInterval. The window is a marker keyed
// by (kind, address, window number), taken by an insert, so concurrent
// requests on any instance agree; the previous window's marker holds the
// time its mail went, so a mail near the end of one window still blocks the
// start of the next. Refusals are silent: the caller answers as if sent.
func (s *Service) takeMailWindow(ctx context.Context, kind MailKind, key string) (bool, error) {
	every := s.mail.AddressInterval
	if every <= 0 {
		return true, nil
	}
	now := s.now()
	n := now.UnixNano() / int64(every)
	prefix := "mail/" + string(kind) + "/" + s.identifierHash("address", key) + "/"
	until, err := s.markers.Until(ctx, prefix+strconv.FormatInt(n-1, 10))
	switch {
	case err == nil && now.Before(until):
		return false, nil
	case err != nil && !errors.Is(err, ErrNotFound):
		return false, fmt.Errorf("auth: read mail window: %w", err)
	}
	err = s.markers.Put(ctx, prefix+strconv.FormatInt(n, 10), now.Add(every))
	if errors.Is(err, ErrDuplicate) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("auth: take mail window: %w", err)
	}
	return true, nil
}

// enqueue leaves m in the outbox and audits it.
func (s *Service) enqueue(ctx context.Context, m *Mail) error {
	m.CreatedAt = s.now().UTC().Truncate(time.Millisecond)
	if err := s.outbox.Enqueue(ctx, m); err != nil {
		return fmt.Errorf("auth: queue mail: %w", err)
	}
	who := slog.String("user_id", m.UserID)
	if m.UserID == "" {
		who = slog.String("address_hash", s.identifierHash("address", m.To))
	}
	s.audit.LogAttrs(ctx, slog.LevelInfo, "audit", slog.String("event", "mail_queued"),
		slog.String("kind", string(m.Kind)), slog.String("mail_id", m.ID), who)
	return nil
}

// queueVerification sends u a link that verifies its address, unless one
// went out within the address interval.
func (s *Service) queueVerification(ctx context.Context, u *User) error {
	ok, err := s.takeMailWindow(ctx, MailVerifyEmail, u.EmailKey)
	if err != nil || !ok {
		return err
	}
	raw, err := s.newEmailToken(ctx, TokenVerifyEmail, u, u.Email, u.EmailKey, s.mail.VerificationTTL)
	if err != nil {
		return err
	}
	return s.enqueue(ctx, &Mail{Kind: MailVerifyEmail, To: u.Email, UserID: u.ID, Username: u.Username,
		Link: s.link(PathVerifyEmail, raw), ExpiresIn: s.mail.VerificationTTL})
}

// RequestEmailVerification (re)sends the caller the link that verifies its
// address. It answers true when the address is already verified (nothing is
// sent) and when a mail went out within the address interval.
func (s *Service) RequestEmailVerification(ctx context.Context) (bool, error) {
	c, err := Authenticate(ctx)
	if err != nil {
		return false, err
	}
	if err := s.allowIP(ctx, "mail"); err != nil {
		return false, err
	}
	u, err := s.freshCaller(ctx, c)
	if err != nil {
		return false, err
	}
	if u.EmailVerified {
		return true, nil
	}
	if err := s.queueVerification(ctx, u); err != nil {
		return false, err
	}
	return true, nil
}

// checkedToken is an email token that passed every check but its single use.
type checkedToken struct {
	t *EmailToken
	u *User
}

// checkEmailToken looks raw up as a token of kind and checks everything but
// its single use: that it exists and is of this kind, is not used, not
// expired, that its account exists and that nothing it was bound to changed
// (the address, the password).
func (s *Service) checkEmailToken(ctx context.Context, raw string, kind EmailTokenKind) (checkedToken, error) {
	if b, err := base64.RawURLEncoding.Strict().DecodeString(raw); err != nil || len(b) != emailTokenBytes {
		return checkedToken{}, invalidEmailToken(ReasonUnknown)
	}
	hash := emailTokenHash(raw)
	t, err := s.emailTokens.ByHash(ctx, hash)
	if errors.Is(err, ErrNotFound) {
		return checkedToken{}, invalidEmailToken(ReasonUnknown)
	}
	if err != nil {
		return checkedToken{}, fmt.Errorf("auth: find email token: %w", err)
	}
	if t.Kind != kind {
		return checkedToken{}, invalidEmailToken(ReasonUnknown)
	}
	if _, err := s.markers.Until(ctx, usedKey(hash)); err == nil {
		return checkedToken{}, invalidEmailToken(ReasonUsed)
	} else if !errors.Is(err, ErrNotFound) {
		return checkedToken{}, fmt.Errorf("auth: read email token use: %w", err)
	}
	if !s.now().Before(t.ExpiresAt) {
		return checkedToken{}, invalidEmailToken(ReasonExpired)
	}
	u, err := s.fresh.ByID(ctx, t.UserID)
	if errors.Is(err, ErrNotFound) {
		return checkedToken{}, invalidEmailToken(ReasonUnknown) // the account was deleted
	}
	if err != nil {
		return checkedToken{}, fmt.Errorf("auth: find user: %w", err)
	}
	if u.Disabled {
		return checkedToken{}, errUserDisabled // as login says to someone who knows the password
	}
	stale := false
	switch kind {
	case TokenVerifyEmail:
		stale = u.EmailKey != t.EmailKey
	case TokenResetPassword:
		// A reset link dies with a newer reset link, a password change or
		// reset, and a change of the address it was sent to.
		stale = u.EmailKey != t.EmailKey || u.CredentialStamp != t.Stamp
		if !stale {
			latest, err := s.emailTokens.Latest(ctx, u.ID, TokenResetPassword)
			if err != nil {
				return checkedToken{}, fmt.Errorf("auth: find newest reset token: %w", err)
			}
			stale = latest.Hash != t.Hash
		}
	case TokenChangeEmail:
		stale = u.CredentialStamp != t.Stamp
	}
	if stale {
		// A use that won a race with this one may be what changed the
		// account (a reset sets a new stamp): that is "used", not "expired".
		if _, err := s.markers.Until(ctx, usedKey(hash)); err == nil {
			return checkedToken{}, invalidEmailToken(ReasonUsed)
		}
		return checkedToken{}, invalidEmailToken(ReasonExpired)
	}
	return checkedToken{t: t, u: u}, nil
}

// use consumes a checked token: an insert of its marker, so that of
// concurrent uses exactly one goes on, on either database.
func (s *Service) use(ctx context.Context, ct checkedToken) error {
	err := s.markers.Put(ctx, usedKey(ct.t.Hash), ct.t.ExpiresAt)
	if errors.Is(err, ErrDuplicate) {
		return invalidEmailToken(ReasonUsed)
	}
	if err != nil {
		return fmt.Errorf("auth: use email token: %w", err)
	}
	return nil
}

func usedKey(hash string) string { return "used/" + hash }

// VerifyEmail marks the address a verification link was sent to verified.
// It needs no access token: the link is often opened on another device.
func (s *Service) VerifyEmail(ctx context.Context, raw string) (*User, error) {
	ct, err := s.checkEmailToken(ctx, raw, TokenVerifyEmail)
	if err != nil {
		return nil, err
	}
	if err := s.use(ctx, ct); err != nil {
		return nil, err
	}
	if err := s.users.SetEmailVerified(ctx, ct.u.ID, ct.t.EmailKey); err != nil {
		if errors.Is(err, ErrNotFound) { // the address changed meanwhile
			return nil, invalidEmailToken(ReasonExpired)
		}
		return nil, fmt.Errorf("auth: verify email: %w", err)
	}
	s.audit.InfoContext(ctx, "audit", "event", "email_verified", "user_id", ct.u.ID, "ip", ClientFromContext(ctx).IP)
	ct.u.EmailVerified = true
	markSignedIn(ctx, ct.u.ID) // the link's holder may read the account's private fields
	return ct.u, nil
}

// RequestPasswordReset leaves a reset request for the address in the
// outbox and answers true, whether or not an account has the address: the
// outbox worker looks it up later. Known and unknown addresses cost the
// request the same work — a rate-limit check, a window marker and an insert.
func (s *Service) RequestPasswordReset(ctx context.Context, email string) (bool, error) {
	if err := s.allowIP(ctx, "mail"); err != nil {
		return false, err
	}
	addr, key, verr := NormalizeEmail(email)
	if verr != nil {
		return false, verr
	}
	s.audit.InfoContext(ctx, "audit", "event", "password_reset_requested",
		"address_hash", s.identifierHash("address", key), "ip", ClientFromContext(ctx).IP)
	ok, err := s.takeMailWindow(ctx, MailResetPassword, key)
	if err != nil {
		return false, err
	}
	if !ok {
		return true, nil
	}
	if err := s.enqueue(ctx, &Mail{Kind: MailResetRequest, To: addr}); err != nil {
		return false, err
	}
	return true, nil
}

// PrepareMail turns a reset request into the reset mail of the account with
// the address (a new link, which makes older ones stale), or returns nil
// when there is no such account (or it is disabled): the request is dropped.
// Other mails are returned as they are.
func (s *Service) PrepareMail(ctx context.Context, m *Mail) (*Mail, error) {
	if m.Kind != MailResetRequest {
		return m, nil
	}
	_, key, verr := NormalizeEmail(m.To)
	if verr != nil {
		return nil, nil
	}
	u, err := s.users.ByEmailKey(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("auth: find user: %w", err)
	}
	if u.Disabled {
		return nil, nil
	}
	raw, err := s.newEmailToken(ctx, TokenResetPassword, u, u.Email, u.EmailKey, s.mail.ResetTTL)
	if err != nil {
		return nil, err
	}
	out := *m
	out.Kind, out.To, out.UserID, out.Username = MailResetPassword, u.Email, u.ID, u.Username
	out.Link, out.ExpiresIn = s.link(PathResetPassword, raw), s.mail.ResetTTL
	return &out, nil
}

// ResetPassword sets a new password with a reset link. The address counts
// as verified (the mail proved control of it), every session of the account
// is revoked (with the bound of logout), its failed logins are forgotten,
// and a new session is returned. Nothing is consumed until the new password
// has passed the policy.
func (s *Service) ResetPassword(ctx context.Context, raw, password string) (*Result, error) {
	ct, err := s.checkEmailToken(ctx, raw, TokenResetPassword)
	if err != nil {
		return nil, err
	}
	u := ct.u
	if verr := CheckPassword(password, u.Username, u.Email); verr != nil {
		e := *verr
		e.Field = "newPassword"
		return nil, &e
	}
	hash, err := s.hasher.hash(ctx, password)
	if err != nil {
		return nil, err
	}
	if err := s.use(ctx, ct); err != nil {
		return nil, err
	}
	stamp := newStamp()
	if err := s.users.SetPassword(ctx, u.ID, u.PasswordHash, hash, stamp); err != nil {
		if errors.Is(err, ErrNotFound) { // changed or deleted meanwhile
			return nil, invalidEmailToken(ReasonExpired)
		}
		return nil, fmt.Errorf("auth: set password: %w", err)
	}
	if err := s.users.SetEmailVerified(ctx, u.ID, ct.t.EmailKey); err != nil && !errors.Is(err, ErrNotFound) {
		s.audit.WarnContext(ctx, "auth: marking a reset address verified failed", "user_id", u.ID, "err", err)
	}
	ended, err := s.revokeUntilDone(ctx, u.ID, nil, "", "password_reset",
		byLink(s.securityEvent(ctx, EventPasswordChanged, u.ID)))
	if err != nil {
		return nil, err
	}
	for _, key := range []string{s.identifierHash("login", u.UsernameKey), s.identifierHash("login", u.EmailKey),
		s.identifierHash("account", u.ID)} {
		if err := s.forgetFailures(ctx, key); err != nil {
			return nil, err
		}
	}
	s.audit.InfoContext(ctx, "audit", "event", "password_reset", "outcome", "success", "user_id", u.ID,
		"sessions_ended", len(ended), "ip", ClientFromContext(ctx).IP)
	cur, err := s.account(s.fresh.ByID(ctx, u.ID))
	if err != nil {
		return nil, err
	}
	return s.startSession(ctx, cur)
}

// ChangeEmail checks the caller's password and sends a confirmation link to
// the new address and a notice to the old one. Nothing changes until the
// link is used (ConfirmEmailChange).
func (s *Service) ChangeEmail(ctx context.Context, newEmail, current string) (bool, error) {
	c, err := Authenticate(ctx)
	if err != nil {
		return false, err
	}
	if _, err := s.freshCaller(ctx, c); err != nil {
		return false, err
	}
	if err := s.allowIP(ctx, "mail"); err != nil {
		return false, err
	}
	addr, key, verr := NormalizeEmail(newEmail)
	if verr != nil {
		e := *verr
		e.Field = "newEmail"
		return false, &e
	}
	u, err := s.checkCurrentPassword(ctx, "change_email", c, current)
	if err != nil {
		return false, err
	}
	if key == u.EmailKey {
		return false, badInput("newEmail", ReasonUnchanged, "this is already the account's address")
	}
	switch _, err := s.users.ByEmailKey(ctx, key); {
	case err == nil:
		return false, badInput("newEmail", ReasonTaken, "email is already registered")
	case !errors.Is(err, ErrNotFound):
		return false, fmt.Errorf("auth: find user: %w", err)
	}
	s.audit.InfoContext(ctx, "audit", "event", "email_change_requested", "user_id", u.ID,
		"address_hash", s.identifierHash("address", key), "ip", ClientFromContext(ctx).IP)
	ok, err := s.takeMailWindow(ctx, MailConfirmEmailChange, key)
	if err != nil || !ok {
		return err == nil, err
	}
	raw, err := s.newEmailToken(ctx, TokenChangeEmail, u, addr, key, s.mail.ChangeTTL)
	if err != nil {
		return false, err
	}
	if err := s.enqueue(ctx, &Mail{Kind: MailConfirmEmailChange, To: addr, UserID: u.ID, Username: u.Username,
		Link: s.link(PathConfirmEmail, raw), NewEmail: addr, ExpiresIn: s.mail.ChangeTTL}); err != nil {
		return false, err
	}
	if err := s.enqueue(ctx, &Mail{Kind: MailEmailChangeNotice, To: u.Email, UserID: u.ID, Username: u.Username,
		NewEmail: addr}); err != nil {
		return false, err
	}
	return true, nil
}

// ConfirmEmailChange applies a change of address with the link sent to the
// new address; the new address is verified. The address must still be free.
func (s *Service) ConfirmEmailChange(ctx context.Context, raw string) (*User, error) {
	ct, err := s.checkEmailToken(ctx, raw, TokenChangeEmail)
	if err != nil {
		return nil, err
	}
	if err := s.use(ctx, ct); err != nil {
		return nil, err
	}
	u := ct.u
	switch err := s.users.SetEmail(ctx, u.ID, u.EmailKey, ct.t.Email, ct.t.EmailKey); {
	case errors.Is(err, ErrDuplicate):
		return nil, badInput("email", ReasonTaken, "this address now belongs to another account")
	case errors.Is(err, ErrNotFound):
		return nil, invalidEmailToken(ReasonExpired)
	case err != nil:
		return nil, fmt.Errorf("auth: change email: %w", err)
	}
	s.audit.InfoContext(ctx, "audit", "event", "email_changed", "user_id", u.ID,
		"address_hash", s.identifierHash("address", ct.t.EmailKey), "ip", ClientFromContext(ctx).IP)
	s.announce(ctx, u.ID, byLink(s.securityEvent(ctx, EventEmailChanged, u.ID)))
	u.Email, u.EmailKey, u.EmailVerified = ct.t.Email, ct.t.EmailKey, true
	markSignedIn(ctx, u.ID)
	return u, nil
}

// checkCurrentPassword is the password check of changePassword, changeEmail
// and deleteAccount: throttled per account, audited as event, and never an
// oracle for a stolen access token.
func (s *Service) checkCurrentPassword(ctx context.Context, event string, c Claims, current string) (*User, error) {
	if err := s.allowIP(ctx, "login"); err != nil {
		return nil, err
	}
	var u *User
	var err error
	if len(current) <= passwordMaxBytes && current != "" {
		u, err = s.checkPassword(ctx, event, s.identifierHash("account", c.UserID),
			func(ctx context.Context) (*User, error) { return s.freshCaller(ctx, c) }, current)
	} else {
		err = errWrongPassword
	}
	if errors.Is(err, errWrongPassword) {
		return nil, errIncorrectPassword
	}
	return u, err
}
