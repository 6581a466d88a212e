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
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// FederatedIdentity is what an identity provider asserted about a user at
// the end of a flow (package federation validates it; auth decides what it
// means for accounts).
type FederatedIdentity struct {
	Provider          string
	Subject           string
	Email             string
	EmailVerified     bool
	Name              string
	PreferredUsername string
}

// Identity links an account to a provider's subject: one account may have
// several, a (provider, subject) belongs to one account.
type Identity struct {
	ID       string
	UserID   string
	Provider string
	Subject  string
	Email    string // as the provider asserted it when linked
	LinkedAt time.Time
}

// IdentityStore keeps identities.
type IdentityStore interface {
	// Create inserts i and sets its ID; ErrDuplicate when (provider,
	// subject) is taken. The unique index is what settles concurrent first
	// sign-ins of one identity, on either database.
	Create(ctx context.Context, i *Identity) error
	// ByProviderSubject returns ErrNotFound when there is none.
	ByProviderSubject(ctx context.Context, provider, subject string) (*Identity, error)
	// ForUser lists userID's identities, oldest first.
	ForUser(ctx context.Context, userID string) ([]*Identity, error)
	// Delete removes identity id of userID; ErrNotFound when userID has none
	// with that id.
	Delete(ctx context.Context, userID, id string) error
	DeleteForUser(ctx context.Context, userID string) (int64, error)
}

// OneTimeKind says what a one-time code is for.
type OneTimeKind string

const (
	// OneTimeSignIn is the code of APP_URL/auth/callback?code=…, for
	// exchangeAuthCode.
	OneTimeSignIn OneTimeKind = "sign_in"
	// OneTimeLinkTicket is a link ticket of beginLinkIdentity, for
	// GET /auth/NAME?link=….
	OneTimeLinkTicket OneTimeKind = "link"
	// OneTimeLinkCode is the code of APP_URL/auth/callback?code=…&link=NAME:
	// an identity that waits for exchangeAuthCode from the session that
	// asked for the link.
	OneTimeLinkCode OneTimeKind = "link_code"
)

// OneTimeCode is the server's record of a one-time code: 256 random bits
// handed out once, only their SHA-256 stored. Used once (a marker insert).
type OneTimeCode struct {
	Hash      string // hex SHA-256 of the code: the key
	Kind      OneTimeKind
	UserID    string
	SessionID string // link ticket and link code: the session that asked for the link
	Provider  string // sign-in: the provider that signed the user in; link code: the identity's
	Subject   string // link code: the identity's subject
	Email     string // link code: the address the provider asserted
	AMR       []string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// OneTimeCodeStore keeps one-time codes.
type OneTimeCodeStore interface {
	Create(ctx context.Context, c *OneTimeCode) error
	// ByHash returns ErrNotFound when there is none.
	ByHash(ctx context.Context, hash string) (*OneTimeCode, error)
	DeleteForUser(ctx context.Context, userID string) (int64, error)
	// DeleteExpired removes codes that expired before before.
	DeleteExpired(ctx context.Context, before time.Time) (int64, error)
}

// ProviderInfo is a configured identity provider, for login pages.
type ProviderInfo struct {
	Name        string // in the paths: /auth/NAME
	DisplayName string
}

// Lifetimes of the one-time codes (a link code lives as a sign-in code).
const (
	SignInCodeTTL = 60 * time.Second
	LinkTicketTTL = 2 * time.Minute
)

// oneTimeBytes of crypto/rand make a code: 256 bits.
const oneTimeBytes = 32

// CodeInvalidAuthCode answers exchangeAuthCode with a code that cannot be
// used (reason unknown, used or expired).
const CodeInvalidAuthCode Code = "INVALID_AUTH_CODE"

// Reasons of a refused federated sign-in: the error=… of the callback.
const (
	ReasonEmailNotVerified = "email_not_verified"
	ReasonAccountExists    = "account_exists"
	ReasonInvalidState     = "invalid_state"
	// ReasonLastSignInMethod refuses unlinkIdentity on an account that would
	// have no way left to sign in.
	ReasonLastSignInMethod = "last_sign_in_method"
)

func invalidAuthCode(reason string) *Error {
	msg := map[string]string{
		ReasonExpired: "this sign-in code has expired: sign in again",
		ReasonUsed:    "this sign-in code was already used: sign in again",
		ReasonUnknown: "this sign-in code is not valid: sign in again",
	}[reason]
	return &Error{Code: CodeInvalidAuthCode, Reason: reason, Message: msg}
}

var (
	errEmailNotVerified = &Error{Code: CodeForbidden, Reason: ReasonEmailNotVerified,
		Message: "the identity provider did not assert a verified email address"}
	errAccountExists = &Error{Code: CodeForbidden, Reason: ReasonAccountExists,
		Message: "this identity or address belongs to another account: sign in to it and link the identity there"}
	errLinkAccountGone = &Error{Code: CodeForbidden, Reason: ReasonInvalidState,
		Message: "the account of this link is no longer signed in"}
	errFederationOff   = &Error{Code: CodeInternal, Message: "sign-in with identity providers is not configured"}
	errIdentityMissing = &Error{Code: CodeNotFound, Field: "id", Message: "no such identity"}
	errLastSignIn      = badInput("id", ReasonLastSignInMethod, "this is the account's only way to sign in: "+
		"set a password (requestPasswordReset), add a passkey or link another identity first")
	// errRetry restarts a federated sign-in after a concurrent one changed
	// what it read.
	errRetry = errors.New("auth: concurrent change, retry")
)

// Providers lists the configured identity providers.
func (s *Service) Providers() []ProviderInfo {
	if s.providers == nil {
		return []ProviderInfo{}
	}
	return s.providers()
}

func (s *Service) providerName(name string) string {
	for _, p := range s.Providers() {
		if p.Name == name && p.DisplayName != "" {
			return p.DisplayName
		}
	}
	return name
}

func (s *Service) federationOn() error {
	if s.identities == nil || s.codes == nil {
		return errFederationOff
	}
	return nil
}

// AllowFederation takes a token from the caller's per-IP login bucket: each
// step of a federated sign-in stores something or calls the provider.
func (s *Service) AllowFederation(ctx context.Context) error {
	return s.allowIP(ctx, "login")
}

// LinkTarget is the account and session a link flow began from (its
// ticket's); the zero LinkTarget is a sign-in flow.
type LinkTarget struct {
	UserID    string
	SessionID string
}

// FederatedSignIn is the outcome of a finished provider flow.
type FederatedSignIn struct {
	// Code is the one-time code for exchangeAuthCode.
	Code string
	// Link says Code is a link code: nothing is linked until the session
	// of the link exchanges it.
	Link   bool
	UserID string
}

// SignInFederated applies the linking rules to a provider's identity and
// returns a one-time code for exchangeAuthCode. For a link flow (link set)
// it links nothing: it returns a link code that only link's session can
// exchange (see confirmLink), after refusing an identity of another account
// (account_exists) and a session or account gone (invalid_state).
// For a sign-in:
//   - a known identity signs its account in;
//   - otherwise, without a verified email from the provider: email_not_verified;
//   - a verified email of no account creates one (no password, the email
//     verified, a username from the profile);
//   - a verified email of an account whose email is verified too links the
//     identity to it and tells the account by mail (IDENTITY_LINKED); an
//     account with an unverified email is account_exists (pre-registration
//     takeover: anyone can register someone else's address).
//
// A disabled account gets a code all the same: exchangeAuthCode refuses it
// as login does (FORBIDDEN user_disabled) to someone who proved the credential.
// Refusals are *Error with the callback's reason; anything else is internal.
func (s *Service) SignInFederated(ctx context.Context, fi FederatedIdentity, link LinkTarget) (*FederatedSignIn, error) {
	if err := s.federationOn(); err != nil {
		return nil, err
	}
	if fi.Provider == "" || fi.Subject == "" {
		return nil, errors.New("auth: a federated identity needs a provider and a subject")
	}
	refused := func(out *FederatedSignIn, err error) (*FederatedSignIn, error) {
		if e, ok := errors.AsType[*Error](err); ok {
			s.audit.LogAttrs(ctx, slog.LevelInfo, "audit", slog.String("event", "federated_login"),
				slog.String("outcome", e.Reason), slog.String("provider", fi.Provider),
				slog.String("ip", ClientFromContext(ctx).IP))
		}
		return out, err
	}
	if link != (LinkTarget{}) {
		return refused(s.linkCode(ctx, fi, link))
	}
	for range 4 {
		out, err := s.resolveIdentity(ctx, fi)
		if !errors.Is(err, errRetry) {
			return refused(out, err)
		}
	}
	return nil, fmt.Errorf("auth: federated sign-in with %s kept meeting concurrent changes", fi.Provider)
}

// linkCode ends the provider part of a link flow: a one-time link code for
// the app's page, holding the identity and the session that asked. The
// browser back from the provider is not necessarily that session's (anyone
// can open a ticket's URL), so the link waits for that session to confirm it
// (confirmLink).
func (s *Service) linkCode(ctx context.Context, fi FederatedIdentity, link LinkTarget) (*FederatedSignIn, error) {
	ident, err := s.identities.ByProviderSubject(ctx, fi.Provider, fi.Subject)
	switch {
	case err == nil && ident.UserID != link.UserID:
		return nil, errAccountExists
	case err != nil && !errors.Is(err, ErrNotFound):
		return nil, fmt.Errorf("auth: find identity: %w", err)
	}
	if _, ok, err := s.linkSession(ctx, link); err != nil {
		return nil, err
	} else if !ok {
		return nil, errLinkAccountGone
	}
	raw, err := s.newOneTime(ctx, &OneTimeCode{Kind: OneTimeLinkCode, UserID: link.UserID, SessionID: link.SessionID,
		Provider: fi.Provider, Subject: fi.Subject, Email: fi.Email}, SignInCodeTTL)
	if err != nil {
		return nil, err
	}
	s.audit.LogAttrs(ctx, slog.LevelInfo, "audit", slog.String("event", "identity_link_code"),
		slog.String("user_id", link.UserID), slog.String("provider", fi.Provider),
		slog.String("ip", ClientFromContext(ctx).IP))
	return &FederatedSignIn{Code: raw, Link: true, UserID: link.UserID}, nil
}

// linkSession returns the account of link while its session is active, the
// account enabled and its credentials those the session began with; false
// otherwise.
func (s *Service) linkSession(ctx context.Context, link LinkTarget) (*User, bool, error) {
	if link.UserID == "" || link.SessionID == "" {
		return nil, false, nil
	}
	sess, err := s.sessions.ByID(ctx, link.SessionID)
	if errors.Is(err, ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("auth: find session: %w", err)
	}
	if !sess.Active(s.now()) || s.revoked.has(sess.ID) || sess.UserID != link.UserID {
		return nil, false, nil
	}
	u, err := s.fresh.ByID(ctx, link.UserID)
	if errors.Is(err, ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("auth: find user: %w", err)
	}
	if u.Disabled || u.CredentialStamp != sess.CredentialStamp {
		return nil, false, nil
	}
	return u, true, nil
}

func (s *Service) resolveIdentity(ctx context.Context, fi FederatedIdentity) (*FederatedSignIn, error) {
	ident, err := s.identities.ByProviderSubject(ctx, fi.Provider, fi.Subject)
	switch {
	case err == nil:
		return s.signInCode(ctx, ident.UserID, fi.Provider)
	case !errors.Is(err, ErrNotFound):
		return nil, fmt.Errorf("auth: find identity: %w", err)
	}
	if !fi.EmailVerified || fi.Email == "" {
		return nil, errEmailNotVerified
	}
	addr, key, verr := NormalizeEmail(fi.Email)
	if verr != nil {
		return nil, fmt.Errorf("auth: the provider's email address is unusable: %s", verr.Reason)
	}
	u, err := s.fresh.ByEmailKey(ctx, key)
	switch {
	case errors.Is(err, ErrNotFound):
		return s.createFederated(ctx, fi, addr, key)
	case err != nil:
		return nil, fmt.Errorf("auth: find user: %w", err)
	case !u.EmailVerified:
		return nil, errAccountExists
	case u.Disabled:
		// Not linked; the code's exchange says user_disabled.
		return s.signInCode(ctx, u.ID, fi.Provider)
	}
	// The account may be the one a concurrent first sign-in of this very
	// identity is creating: wait for its identity rather than link (and
	// mail) the account as if someone had added a sign-in method.
	if held, err := s.signupClaimHeld(ctx, fi, s.now().UTC()); err != nil {
		return nil, err
	} else if held {
		return s.awaitIdentity(ctx, fi)
	}
	if err := s.linkIdentity(ctx, u, fi, "email"); err != nil {
		return nil, err
	}
	return s.signInCode(ctx, u.ID, fi.Provider)
}

// linkIdentity stores fi as an identity of u, and tells u: a security
// event, an audit entry and an IDENTITY_LINKED mail. errRetry when the
// identity was linked concurrently.
func (s *Service) linkIdentity(ctx context.Context, u *User, fi FederatedIdentity, via string) error {
	ident := &Identity{UserID: u.ID, Provider: fi.Provider, Subject: fi.Subject, Email: fi.Email,
		LinkedAt: s.now().UTC().Truncate(time.Millisecond)}
	if err := s.identities.Create(ctx, ident); errors.Is(err, ErrDuplicate) {
		return errRetry
	} else if err != nil {
		return fmt.Errorf("auth: store identity: %w", err)
	}
	s.audit.LogAttrs(ctx, slog.LevelInfo, "audit", slog.String("event", "identity_linked"), slog.String("outcome", "success"),
		slog.String("user_id", u.ID), slog.String("provider", fi.Provider), slog.String("via", via),
		slog.String("ip", ClientFromContext(ctx).IP))
	s.announce(ctx, u.ID, byLink(s.securityEvent(ctx, EventIdentityLinked, u.ID)))
	if err := s.enqueue(ctx, &Mail{Kind: MailIdentityLinked, To: u.Email, UserID: u.ID, Username: u.Username,
		Provider: s.providerName(fi.Provider)}); err != nil {
		// The link stands; the event and the audit entry say it too.
		s.audit.WarnContext(ctx, "auth: queueing the identity-linked notice failed", "user_id", u.ID, "err", err)
	}
	return nil
}

// signupClaim is how long the first sign-in of an identity holds the right
// to create its account; another one meanwhile waits for the identity.
const signupClaim = time.Minute

// createFederated creates the account of a first sign-in: no password, the
// provider's verified address, a username from the profile. Concurrent first
// sign-ins of one identity: one claims the creation (a marker insert, atomic
// on either database), the others wait for its identity.
func (s *Service) createFederated(ctx context.Context, fi FederatedIdentity, addr, key string) (*FederatedSignIn, error) {
	now := s.now().UTC()
	if held, err := s.signupClaimHeld(ctx, fi, now); err != nil {
		return nil, err
	} else if held {
		return s.awaitIdentity(ctx, fi)
	}
	if err := s.markers.Put(ctx, signupClaimKey(fi, now, 0), now.Add(signupClaim)); errors.Is(err, ErrDuplicate) {
		return s.awaitIdentity(ctx, fi)
	} else if err != nil {
		return nil, fmt.Errorf("auth: claim sign-up: %w", err)
	}
	var u *User
	for _, name := range usernameCandidates(fi, addr) {
		cand := &User{Username: name, Email: addr, UsernameKey: strings.ToLower(name), EmailKey: key,
			CreatedAt: now.Truncate(time.Millisecond), Roles: []Role{RoleUser}, EmailVerified: true,
			CredentialStamp: newStamp()}
		err := s.users.Create(ctx, cand)
		if err == nil {
			u = cand
			break
		}
		if !errors.Is(err, ErrDuplicate) {
			return nil, fmt.Errorf("auth: create user: %w", err)
		}
		// The address was registered meanwhile: start over, it is an
		// existing account now. Otherwise the username was taken.
		if _, err := s.fresh.ByEmailKey(ctx, key); err == nil {
			return nil, errRetry
		}
	}
	if u == nil {
		return nil, errors.New("auth: no free username for a federated account")
	}
	ident := &Identity{UserID: u.ID, Provider: fi.Provider, Subject: fi.Subject, Email: fi.Email,
		LinkedAt: now.Truncate(time.Millisecond)}
	if err := s.identities.Create(ctx, ident); err != nil {
		if errors.Is(err, ErrDuplicate) {
			// Linked meanwhile by a sign-in that found the new account by
			// its address: the account is in use, keep it.
			if other, oerr := s.identities.ByProviderSubject(ctx, fi.Provider, fi.Subject); oerr == nil && other.UserID == u.ID {
				return s.signInCode(ctx, u.ID, fi.Provider)
			}
		}
		// The account is useless without its identity: remove it.
		if derr := s.users.Delete(ctx, u.ID); derr != nil && !errors.Is(derr, ErrNotFound) {
			s.audit.WarnContext(ctx, "auth: removing an account left without its identity failed", "user_id", u.ID, "err", derr)
		}
		if errors.Is(err, ErrDuplicate) {
			return nil, errRetry
		}
		return nil, fmt.Errorf("auth: store identity: %w", err)
	}
	s.audit.LogAttrs(ctx, slog.LevelInfo, "audit", slog.String("event", "register"), slog.String("outcome", "success"),
		slog.String("user_id", u.ID), slog.String("provider", fi.Provider), slog.String("ip", ClientFromContext(ctx).IP))
	return s.signInCode(ctx, u.ID, fi.Provider)
}

// signupClaimKey is the marker that claims the creation of fi's account in
// the window of now (back windows earlier). The claim is per window, so that
// a later sign-up of the identity (its account deleted) is not blocked by an
// old marker.
func signupClaimKey(fi FederatedIdentity, now time.Time, back int64) string {
	window := now.Unix()/int64(signupClaim/time.Second) - back
	return "federation/signup/" + fi.Provider + "/" + sha256Hex(fi.Subject) + "/" + strconv.FormatInt(window, 10)
}

// signupClaimHeld reports whether a first sign-in of fi is creating its
// account: a claim of this window or of the previous one that still holds.
func (s *Service) signupClaimHeld(ctx context.Context, fi FederatedIdentity, now time.Time) (bool, error) {
	for back := range int64(2) {
		until, err := s.markers.Until(ctx, signupClaimKey(fi, now, back))
		if err == nil && now.Before(until) {
			return true, nil
		}
		if err != nil && !errors.Is(err, ErrNotFound) {
			return false, fmt.Errorf("auth: read sign-up claim: %w", err)
		}
	}
	return false, nil
}

// awaitIdentity waits for the identity that a concurrent first sign-in is
// creating.
func (s *Service) awaitIdentity(ctx context.Context, fi FederatedIdentity) (*FederatedSignIn, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		ident, err := s.identities.ByProviderSubject(ctx, fi.Provider, fi.Subject)
		if err == nil {
			return s.signInCode(ctx, ident.UserID, fi.Provider)
		}
		if !errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("auth: find identity: %w", err)
		}
		if time.Now().After(deadline) {
			return nil, errors.New("auth: a concurrent first sign-in of this identity did not finish")
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// signInCode stores a one-time sign-in code for userID.
func (s *Service) signInCode(ctx context.Context, userID, provider string) (*FederatedSignIn, error) {
	raw, err := s.newOneTime(ctx, &OneTimeCode{Kind: OneTimeSignIn, UserID: userID, Provider: provider,
		AMR: []string{AMRFederated}}, SignInCodeTTL)
	if err != nil {
		return nil, err
	}
	return &FederatedSignIn{Code: raw, UserID: userID}, nil
}

// newOneTime stores c with a fresh code and returns the code.
func (s *Service) newOneTime(ctx context.Context, c *OneTimeCode, ttl time.Duration) (string, error) {
	b := make([]byte, oneTimeBytes)
	_, _ = rand.Read(b)
	raw := base64.RawURLEncoding.EncodeToString(b)
	now := s.now().UTC().Truncate(time.Millisecond)
	c.Hash, c.CreatedAt, c.ExpiresAt = sha256Hex(raw), now, now.Add(ttl)
	if err := s.codes.Create(ctx, c); err != nil {
		return "", fmt.Errorf("auth: store one-time code: %w", err)
	}
	return raw, nil
}

// takeOneTime looks raw up as a code of kind and uses it (findOneTime,
// then useOneTime).
func (s *Service) takeOneTime(ctx context.Context, raw string, kind OneTimeKind) (*OneTimeCode, error) {
	c, err := s.findOneTime(ctx, raw, kind)
	if err != nil {
		return nil, err
	}
	return c, s.useOneTime(ctx, c)
}

// findOneTime looks raw up as a code of one of kinds, without using it:
// unknown (or of another kind), used (checked before expiry, as for mail
// links) or expired are INVALID_AUTH_CODE.
func (s *Service) findOneTime(ctx context.Context, raw string, kinds ...OneTimeKind) (*OneTimeCode, error) {
	if b, err := base64.RawURLEncoding.Strict().DecodeString(raw); err != nil || len(b) != oneTimeBytes {
		return nil, invalidAuthCode(ReasonUnknown)
	}
	c, err := s.codes.ByHash(ctx, sha256Hex(raw))
	if errors.Is(err, ErrNotFound) {
		return nil, invalidAuthCode(ReasonUnknown)
	}
	if err != nil {
		return nil, fmt.Errorf("auth: find one-time code: %w", err)
	}
	if !slices.Contains(kinds, c.Kind) {
		return nil, invalidAuthCode(ReasonUnknown)
	}
	if _, err := s.markers.Until(ctx, "onetime/"+c.Hash); err == nil {
		return nil, invalidAuthCode(ReasonUsed)
	} else if !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("auth: read one-time code use: %w", err)
	}
	if !s.now().Before(c.ExpiresAt) {
		return nil, invalidAuthCode(ReasonExpired)
	}
	return c, nil
}

// useOneTime spends c: a marker insert, so that of concurrent uses one wins
// (the others are INVALID_AUTH_CODE used).
func (s *Service) useOneTime(ctx context.Context, c *OneTimeCode) error {
	if err := s.markers.Put(ctx, "onetime/"+c.Hash, c.ExpiresAt); errors.Is(err, ErrDuplicate) {
		return invalidAuthCode(ReasonUsed)
	} else if err != nil {
		return fmt.Errorf("auth: use one-time code: %w", err)
	}
	return nil
}

// ExchangeAuthCode turns the one-time code of a finished provider flow into
// tokens. A sign-in code starts a session, as login does: amr ["fed"] at
// level 1, so that an account with a second factor is confined until
// verifyMfa. A link code links its identity for the session that asked for
// the link, and for no one else (confirmLink).
func (s *Service) ExchangeAuthCode(ctx context.Context, raw string) (*Result, error) {
	if err := s.federationOn(); err != nil {
		return nil, err
	}
	if err := s.allowIP(ctx, "login"); err != nil {
		return nil, err
	}
	ip := slog.String("ip", ClientFromContext(ctx).IP)
	c, err := s.findOneTime(ctx, raw, OneTimeSignIn, OneTimeLinkCode)
	if err == nil && c.Kind == OneTimeLinkCode {
		return s.confirmLink(ctx, c)
	}
	if err == nil {
		err = s.useOneTime(ctx, c)
	}
	if err != nil {
		s.audit.LogAttrs(ctx, slog.LevelInfo, "audit", slog.String("event", "federated_login"),
			slog.String("outcome", "code_"+ErrorReason(err)), ip)
		return nil, err
	}
	who := slog.String("user_id", c.UserID)
	u, err := s.fresh.ByID(ctx, c.UserID)
	if errors.Is(err, ErrNotFound) {
		return nil, invalidAuthCode(ReasonUnknown) // the account was deleted meanwhile
	}
	if err != nil {
		return nil, fmt.Errorf("auth: find user: %w", err)
	}
	if u.Disabled {
		s.audit.LogAttrs(ctx, slog.LevelInfo, "audit", slog.String("event", "federated_login"),
			slog.String("outcome", "disabled"), who, slog.String("provider", c.Provider), ip)
		return nil, errUserDisabled
	}
	amr := c.AMR
	if len(amr) == 0 {
		amr = []string{AMRFederated}
	}
	res, err := s.startSessionAAL(ctx, u, 1, amr)
	if err != nil {
		return nil, err
	}
	s.audit.LogAttrs(ctx, slog.LevelInfo, "audit", slog.String("event", "federated_login"),
		slog.String("outcome", "success"), who, slog.String("provider", c.Provider), ip)
	return res, nil
}

// confirmLink links the identity of link code c for the caller, who must be
// the session that asked for the link (level 2, as for beginLinkIdentity),
// and returns new tokens for that session, its level and methods kept. The
// browser that went through the provider gets the code, whoever it belongs
// to: a ticket opened in someone else's browser (sent to a victim) brings
// back the victim's identity, which must not join the ticket's account
// unless the ticket's session, in its own tab, confirms.
//
// Without a token, or with another session's, the answer is INVALID_AUTH_CODE
// unknown and the code is not spent: the rightful tab can still finish
// within the 60 s (the code is 256 bits: no guessing). A presented token
// that is refused (expired, revoked) gets its UNAUTHENTICATED reason, the
// code still unspent, so that the app refreshes and retries.
func (s *Service) confirmLink(ctx context.Context, c *OneTimeCode) (*Result, error) {
	ip := slog.String("ip", ClientFromContext(ctx).IP)
	outcome := func(o string, attrs ...slog.Attr) {
		s.audit.LogAttrs(ctx, slog.LevelInfo, "audit", append([]slog.Attr{slog.String("event", "identity_link_confirm"),
			slog.String("outcome", o), slog.String("user_id", c.UserID), slog.String("provider", c.Provider), ip}, attrs...)...)
	}
	claims, ok := ClaimsFromContext(ctx)
	if !ok {
		if e, bad := TokenErrorFromContext(ctx); bad {
			outcome("token_" + e.Reason)
			return nil, e
		}
		outcome("no_token")
		return nil, invalidAuthCode(ReasonUnknown)
	}
	if claims.UserID != c.UserID || claims.SessionID != c.SessionID {
		outcome("other_session", slog.String("caller_id", claims.UserID))
		return nil, invalidAuthCode(ReasonUnknown)
	}
	if err := AuthorizeLevel(claims, "", 2); err != nil {
		outcome(ReasonMFARequired)
		return nil, err
	}
	u, ok, err := s.linkSession(ctx, LinkTarget{UserID: c.UserID, SessionID: c.SessionID})
	if err != nil {
		return nil, err
	}
	if !ok {
		outcome("session_ended")
		return nil, ErrSessionRevoked
	}
	if err := s.useOneTime(ctx, c); err != nil {
		outcome("code_" + ErrorReason(err))
		return nil, err
	}
	fi := FederatedIdentity{Provider: c.Provider, Subject: c.Subject, Email: c.Email}
	for range 4 {
		if err = s.attachIdentity(ctx, u, fi); !errors.Is(err, errRetry) {
			break
		}
	}
	if errors.Is(err, errRetry) {
		return nil, fmt.Errorf("auth: linking an identity of %s kept meeting concurrent changes", c.Provider)
	}
	if err != nil {
		if e, isAuth := errors.AsType[*Error](err); isAuth {
			outcome(e.Reason)
		}
		return nil, err
	}
	outcome("success")
	return s.reissue(ctx, claims, "")
}

// attachIdentity links fi to u unless it is linked already: to u, nothing to
// do; to another account, account_exists (linked meanwhile, since the
// callback checked).
func (s *Service) attachIdentity(ctx context.Context, u *User, fi FederatedIdentity) error {
	ident, err := s.identities.ByProviderSubject(ctx, fi.Provider, fi.Subject)
	switch {
	case err == nil && ident.UserID == u.ID:
		return nil
	case err == nil:
		return errAccountExists
	case !errors.Is(err, ErrNotFound):
		return fmt.Errorf("auth: find identity: %w", err)
	}
	return s.linkIdentity(ctx, u, fi, "link")
}

// BeginLinkIdentity returns a link ticket for GET /auth/NAME?link=TICKET:
// single use, LinkTicketTTL, bound to the caller's account and session
// (level 2: the schema's @auth(aal: 2)).
func (s *Service) BeginLinkIdentity(ctx context.Context) (string, error) {
	c, err := Authenticate(ctx)
	if err != nil {
		return "", err
	}
	if err := AuthorizeLevel(c, "", 2); err != nil {
		return "", err
	}
	if err := s.federationOn(); err != nil {
		return "", err
	}
	u, err := s.freshCaller(ctx, c)
	if err != nil {
		return "", err
	}
	raw, err := s.newOneTime(ctx, &OneTimeCode{Kind: OneTimeLinkTicket, UserID: u.ID, SessionID: c.SessionID}, LinkTicketTTL)
	if err != nil {
		return "", err
	}
	s.audit.LogAttrs(ctx, slog.LevelInfo, "audit", slog.String("event", "identity_link_begun"),
		slog.String("user_id", u.ID), slog.String("ip", ClientFromContext(ctx).IP))
	return raw, nil
}

// TakeLinkTicket uses a link ticket and returns the account and session it
// was issued to, while that session is still active and the account enabled.
func (s *Service) TakeLinkTicket(ctx context.Context, raw string) (LinkTarget, error) {
	if err := s.federationOn(); err != nil {
		return LinkTarget{}, err
	}
	c, err := s.takeOneTime(ctx, raw, OneTimeLinkTicket)
	if err != nil {
		return LinkTarget{}, err
	}
	link := LinkTarget{UserID: c.UserID, SessionID: c.SessionID}
	if _, ok, err := s.linkSession(ctx, link); err != nil {
		return LinkTarget{}, err
	} else if !ok {
		return LinkTarget{}, invalidAuthCode(ReasonUnknown)
	}
	return link, nil
}

// Identities lists the caller's identities.
func (s *Service) Identities(ctx context.Context) ([]*Identity, error) {
	c, err := Authenticate(ctx)
	if err != nil {
		return nil, err
	}
	if s.identities == nil {
		return []*Identity{}, nil
	}
	list, err := s.identities.ForUser(ctx, c.UserID)
	if err != nil {
		return nil, fmt.Errorf("auth: list identities: %w", err)
	}
	return list, nil
}

// UnlinkIdentity removes one of the caller's identities (level 2), unless it
// is the account's last way to sign in: no password, no passkey, no other
// identity.
func (s *Service) UnlinkIdentity(ctx context.Context, id string) (bool, error) {
	c, err := Authenticate(ctx)
	if err != nil {
		return false, err
	}
	if err := AuthorizeLevel(c, "", 2); err != nil {
		return false, err
	}
	if s.identities == nil {
		return false, errIdentityMissing
	}
	u, err := s.freshCaller(ctx, c)
	if err != nil {
		return false, err
	}
	list, err := s.identities.ForUser(ctx, u.ID)
	if err != nil {
		return false, fmt.Errorf("auth: list identities: %w", err)
	}
	var target *Identity
	for _, i := range list {
		if i.ID == id {
			target = i
		}
	}
	if target == nil {
		return false, errIdentityMissing
	}
	if len(u.PasswordHash) == 0 && len(list) == 1 {
		n, err := s.passkeyCount(ctx, u.ID)
		if err != nil {
			return false, err
		}
		if n == 0 {
			return false, errLastSignIn
		}
	}
	if err := s.identities.Delete(ctx, u.ID, id); errors.Is(err, ErrNotFound) {
		return false, errIdentityMissing
	} else if err != nil {
		return false, fmt.Errorf("auth: delete identity: %w", err)
	}
	s.audit.LogAttrs(ctx, slog.LevelInfo, "audit", slog.String("event", "identity_unlinked"),
		slog.String("user_id", u.ID), slog.String("provider", target.Provider), slog.String("ip", ClientFromContext(ctx).IP))
	s.announce(ctx, u.ID, s.securityEvent(ctx, EventIdentityUnlinked, u.ID))
	return true, nil
}

// keepsASignIn refuses (errLastSignIn) to remove a passkey of a
// password-less account that has no identity and no other passkey: the same
// rule as unlinkIdentity's, from the passkey's side.
func (s *Service) keepsASignIn(ctx context.Context, userID string) error {
	if s.identities != nil {
		list, err := s.identities.ForUser(ctx, userID)
		if err != nil {
			return fmt.Errorf("auth: list identities: %w", err)
		}
		if len(list) > 0 {
			return nil
		}
	}
	n, err := s.passkeyCount(ctx, userID)
	if err != nil {
		return err
	}
	if n <= 1 {
		return errLastSignIn
	}
	return nil
}

// usernameCandidates are the usernames to try for a new federated account,
// in order: the profile's preferred username, its name, the address's local
// part (each cut to the username rules), then with random suffixes.
func usernameCandidates(fi FederatedIdentity, addr string) []string {
	local, _, _ := strings.Cut(addr, "@")
	base := ""
	for _, src := range []string{fi.PreferredUsername, fi.Name, local} {
		if b := sanitizeUsername(src); len(b) >= usernameMin {
			base = b
			break
		}
	}
	if base == "" {
		base = "user"
	}
	out := []string{base}
	stem := base
	if len(stem) > usernameMax-7 {
		stem = strings.TrimRight(stem[:usernameMax-7], "._-")
	}
	for range 8 {
		out = append(out, stem+"-"+randomDigits(6))
	}
	return out
}

// sanitizeUsername keeps what the username rules allow of s: letters and
// digits (accents dropped), '_', '.' and '-'; spaces become '.'; at most
// usernameMax bytes.
func sanitizeUsername(s string) string {
	var b strings.Builder
	for _, r := range norm.NFKD.String(s) {
		switch {
		case r < 0x80 && usernameByte(byte(r)):
			b.WriteRune(r)
		case unicode.IsSpace(r):
			b.WriteByte('.')
		}
	}
	out := strings.Trim(b.String(), "._-")
	for strings.Contains(out, "..") {
		out = strings.ReplaceAll(out, "..", ".")
	}
	if len(out) > usernameMax {
		out = strings.TrimRight(out[:usernameMax], "._-")
	}
	return out
}

func randomDigits(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	var sb strings.Builder
	for _, c := range b {
		sb.WriteString(strconv.Itoa(int(c) % 10))
	}
	return sb.String()
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
