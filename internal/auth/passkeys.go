package auth

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
)

// Passkey is a WebAuthn credential of a user.
type Passkey struct {
	ID         string
	Name       string
	CreatedAt  time.Time
	LastUsedAt *time.Time
}

func (c *PasskeyCredential) passkey() *Passkey {
	return &Passkey{ID: c.ID, Name: c.Name, CreatedAt: c.CreatedAt, LastUsedAt: c.LastUsedAt}
}

// passkeyCaller is the authenticated caller, read fresh, with passkeys on.
func (s *Service) passkeyCaller(ctx context.Context) (Claims, *User, error) {
	c, err := Authenticate(ctx)
	if err != nil {
		return Claims{}, nil, err
	}
	if s.rp == nil {
		return Claims{}, nil, errPasskeysOff
	}
	u, err := s.freshCaller(ctx, c)
	if err != nil {
		return Claims{}, nil, err
	}
	return c, u, nil
}

// mayEnroll refuses to add a factor from a level-1 session once the account
// has one: the new factor would otherwise stand in for the one not proven.
func (s *Service) mayEnroll(ctx context.Context, c Claims, u *User) error {
	if level(c) >= 2 {
		return nil
	}
	if u.MFAEnabled {
		return ErrMFARequired
	}
	// A factor stored by an enrolment that failed before it set the flag is
	// a factor too.
	n, err := s.passkeyCount(ctx, u.ID)
	if err != nil {
		return err
	}
	totp, err := s.totpConfirmed(ctx, u.ID)
	if err != nil {
		return err
	}
	if n > 0 || totp {
		return ErrMFARequired
	}
	return nil
}

// BeginPasskeyRegistration returns the creation options for a new passkey.
func (s *Service) BeginPasskeyRegistration(ctx context.Context) (map[string]any, error) {
	c, u, err := s.passkeyCaller(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.mayEnroll(ctx, c, u); err != nil {
		return nil, err
	}
	existing, err := s.rp.creds.ForUser(ctx, u.ID)
	if err != nil {
		return nil, fmt.Errorf("auth: list passkeys: %w", err)
	}
	creds := libraryCredentials(existing)
	// The caller's authenticators that hold a passkey already are excluded:
	// one passkey per authenticator.
	creation, data, err := s.rp.web.BeginRegistration(passkeyUser{u: u, creds: creds},
		webauthn.WithExclusions(webauthn.Credentials(creds).CredentialDescriptors()),
		webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementRequired))
	if err != nil {
		return nil, fmt.Errorf("auth: begin passkey registration: %w", err)
	}
	return s.beginCeremony(ctx, CeremonyRegistration, &c, data, creation.Response)
}

// FinishPasskeyRegistration stores the passkey that answered the options.
func (s *Service) FinishPasskeyRegistration(ctx context.Context, response map[string]any, name *string) (*Passkey, error) {
	c, u, err := s.passkeyCaller(ctx)
	if err != nil {
		return nil, err
	}
	label := defaultPasskeyName
	if name != nil {
		if label, err = passkeyName(*name); err != nil {
			return nil, err
		}
	}
	if err := s.mayEnroll(ctx, c, u); err != nil {
		return nil, err
	}
	parsed, err := parseAttestation(response)
	if err != nil {
		return nil, err
	}
	data, err := s.takeChallenge(ctx, CeremonyRegistration, &c, parsed.Response.CollectedClientData)
	if err != nil {
		return nil, err
	}
	if err := s.checkOrigin(parsed.Response.CollectedClientData, data); err != nil {
		return nil, err
	}
	existing, err := s.rp.creds.ForUser(ctx, u.ID)
	if err != nil {
		return nil, fmt.Errorf("auth: list passkeys: %w", err)
	}
	cred, err := s.rp.web.CreateCredential(passkeyUser{u: u, creds: libraryCredentials(existing)}, *data, parsed)
	if err != nil {
		return nil, s.rejected(ctx, "passkey_added", u.ID, err)
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	pc := &PasskeyCredential{
		ID: base64.RawURLEncoding.EncodeToString(cred.ID), UserID: u.ID, Name: label, PublicKey: cred.PublicKey,
		SignCount: cred.Authenticator.SignCount, AAGUID: cred.Authenticator.AAGUID,
		AttestationType: cred.AttestationType, AttestationFormat: cred.AttestationFormat,
		Flags: byte(cred.Flags.ProtocolValue()), CreatedAt: now,
	}
	for _, t := range cred.Transport {
		pc.Transports = append(pc.Transports, string(t))
	}
	if err := s.rp.creds.Create(ctx, pc); errors.Is(err, ErrDuplicate) {
		return nil, invalidResponse(ReasonTaken, "this passkey is already registered")
	} else if err != nil {
		return nil, fmt.Errorf("auth: store passkey: %w", err)
	}
	events := []SecurityEvent{s.securityEvent(ctx, EventPasskeyAdded, u.ID)}
	if !u.MFAEnabled {
		if err := s.users.SetMFAEnabled(ctx, u.ID, true); err != nil {
			return nil, fmt.Errorf("auth: enable mfa: %w", err)
		}
		events = append(events, s.securityEvent(ctx, EventMFAEnabled, u.ID))
		s.audit.LogAttrs(ctx, slog.LevelInfo, "audit", slog.String("event", "mfa_enabled"), slog.String("user_id", u.ID),
			slog.String("method", AMRWebAuthn))
		if cred.Flags.UserVerified {
			// The first factor, just proven with user verification: the
			// enrolling session is at level 2 from its next refresh on, as
			// confirmTotp's is at once, instead of confined at level 1.
			if err := s.raiseSession(ctx, c, AMRWebAuthn); err != nil {
				return nil, err
			}
		}
	}
	s.audit.LogAttrs(ctx, slog.LevelInfo, "audit", slog.String("event", "passkey_added"), slog.String("outcome", "success"),
		slog.String("user_id", u.ID), slog.String("passkey_id", pc.ID), slog.String("ip", ClientFromContext(ctx).IP))
	s.announce(ctx, u.ID, events...)
	return pc.passkey(), nil
}

// passkeyName trims and checks a passkey's name: 1 to 64 characters.
func passkeyName(name string) (string, error) {
	name = strings.TrimSpace(name)
	switch n := utf8.RuneCountInString(name); {
	case n == 0:
		return "", badInput("name", ReasonRequired, "a passkey's name must not be empty")
	case n > maxPasskeyName:
		return "", badInput("name", ReasonTooLong, fmt.Sprintf("a passkey's name has at most %d characters", maxPasskeyName))
	case !utf8.ValidString(name) || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return "", badInput("name", ReasonInvalidFormat, "a passkey's name must be printable text")
	}
	return name, nil
}

// Passkeys lists the caller's passkeys.
func (s *Service) Passkeys(ctx context.Context) ([]*Passkey, error) {
	_, u, err := s.passkeyCaller(ctx)
	if err != nil {
		return nil, err
	}
	creds, err := s.rp.creds.ForUser(ctx, u.ID)
	if err != nil {
		return nil, fmt.Errorf("auth: list passkeys: %w", err)
	}
	out := make([]*Passkey, len(creds))
	for i, c := range creds {
		out[i] = c.passkey()
	}
	return out, nil
}

var errSignCount = invalidResponse(ReasonSignCount, "this passkey's signature counter went back: the authenticator "+
	"may be cloned; use another passkey or factor")

var errPasskeyNotFound = &Error{Code: CodeNotFound, Field: "id", Message: "no such passkey"}

// RenamePasskey renames one of the caller's passkeys.
func (s *Service) RenamePasskey(ctx context.Context, id, name string) (*Passkey, error) {
	_, u, err := s.passkeyCaller(ctx)
	if err != nil {
		return nil, err
	}
	label, err := passkeyName(name)
	if err != nil {
		return nil, err
	}
	pc, err := s.rp.creds.Rename(ctx, u.ID, id, label)
	if errors.Is(err, ErrNotFound) {
		return nil, errPasskeyNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("auth: rename passkey: %w", err)
	}
	s.audit.LogAttrs(ctx, slog.LevelInfo, "audit", slog.String("event", "passkey_renamed"),
		slog.String("user_id", u.ID), slog.String("passkey_id", id))
	return pc.passkey(), nil
}

// DeletePasskey removes one of the caller's passkeys (level 2: the schema's
// @auth(aal: 2)). Removing the account's last factor turns MFA off.
func (s *Service) DeletePasskey(ctx context.Context, id string) (bool, error) {
	c, u, err := s.passkeyCaller(ctx)
	if err != nil {
		return false, err
	}
	if err := AuthorizeLevel(c, "", 2); err != nil {
		return false, err
	}
	if len(u.PasswordHash) == 0 {
		// An account without a password (made by an identity provider):
		// its last passkey is not removed while no identity is left either.
		if err := s.keepsASignIn(ctx, u.ID); err != nil {
			return false, err
		}
	}
	if err := s.rp.creds.Delete(ctx, u.ID, id); errors.Is(err, ErrNotFound) {
		return false, errPasskeyNotFound
	} else if err != nil {
		return false, fmt.Errorf("auth: delete passkey: %w", err)
	}
	events := []SecurityEvent{s.securityEvent(ctx, EventPasskeyRemoved, u.ID)}
	s.audit.LogAttrs(ctx, slog.LevelInfo, "audit", slog.String("event", "passkey_removed"),
		slog.String("user_id", u.ID), slog.String("passkey_id", id), slog.String("ip", ClientFromContext(ctx).IP))
	last, err := s.noFactorLeft(ctx, u.ID)
	if err != nil {
		return false, err
	}
	if last && u.MFAEnabled {
		if err := s.users.SetMFAEnabled(ctx, u.ID, false); err != nil {
			return false, fmt.Errorf("auth: disable mfa: %w", err)
		}
		events = append(events, s.securityEvent(ctx, EventMFADisabled, u.ID))
		s.audit.LogAttrs(ctx, slog.LevelInfo, "audit", slog.String("event", "mfa_disabled"), slog.String("user_id", u.ID),
			slog.String("cause", "last_passkey_removed"))
	}
	s.announce(ctx, u.ID, events...)
	return true, nil
}

// noFactorLeft reports whether userID has neither a passkey nor another
// second factor.
func (s *Service) noFactorLeft(ctx context.Context, userID string) (bool, error) {
	n, err := s.passkeyCount(ctx, userID)
	if err != nil || n > 0 {
		return false, err
	}
	totp, err := s.totpConfirmed(ctx, userID)
	return !totp, err
}

// BeginMfaPasskey returns assertion options for the caller's passkeys.
func (s *Service) BeginMfaPasskey(ctx context.Context) (map[string]any, error) {
	c, u, err := s.passkeyCaller(ctx)
	if err != nil {
		return nil, err
	}
	creds, err := s.rp.creds.ForUser(ctx, u.ID)
	if err != nil {
		return nil, fmt.Errorf("auth: list passkeys: %w", err)
	}
	if len(creds) == 0 {
		return nil, &Error{Code: CodeBadUserInput, Reason: ReasonNoPasskey, Message: "this account has no passkey: use another factor"}
	}
	assertion, data, err := s.rp.web.BeginLogin(passkeyUser{u: u, creds: libraryCredentials(creds)},
		webauthn.WithUserVerification(protocol.VerificationPreferred))
	if err != nil {
		return nil, fmt.Errorf("auth: begin passkey assertion: %w", err)
	}
	return s.beginCeremony(ctx, CeremonyMFA, &c, data, assertion.Response)
}

// verifyPasskeyMfa checks an assertion of one of c's passkeys, answering a
// challenge that c's session began.
func (s *Service) verifyPasskeyMfa(ctx context.Context, c Claims, response map[string]any) error {
	if s.rp == nil {
		return errPasskeysOff
	}
	u, err := s.freshCaller(ctx, c)
	if err != nil {
		return err
	}
	parsed, err := parseAssertion(response)
	if err != nil {
		return err
	}
	data, err := s.takeChallenge(ctx, CeremonyMFA, &c, parsed.Response.CollectedClientData)
	if err != nil {
		return err
	}
	if err := s.checkOrigin(parsed.Response.CollectedClientData, data); err != nil {
		return err
	}
	creds, err := s.rp.creds.ForUser(ctx, u.ID)
	if err != nil {
		return fmt.Errorf("auth: list passkeys: %w", err)
	}
	id := base64.RawURLEncoding.EncodeToString(parsed.RawID)
	var stored *PasskeyCredential
	for _, pc := range creds {
		if pc.ID == id {
			stored = pc
		}
	}
	if stored == nil {
		s.audit.LogAttrs(ctx, slog.LevelWarn, "audit", slog.String("event", "mfa_verify"), slog.String("method", AMRWebAuthn),
			slog.String("outcome", "unknown_credential"), slog.String("user_id", u.ID))
		return invalidResponse(ReasonUnknownCredential, "this passkey is not registered to this account")
	}
	cred, err := s.rp.web.ValidateLogin(passkeyUser{u: u, creds: libraryCredentials(creds)}, *data, parsed)
	if err != nil {
		return s.rejected(ctx, "mfa_verify", u.ID, err)
	}
	if err := s.passkeyUsed(ctx, stored, cred); err != nil {
		return err
	}
	s.audit.LogAttrs(ctx, slog.LevelInfo, "audit", slog.String("event", "mfa_verify"), slog.String("method", AMRWebAuthn),
		slog.String("outcome", "success"), slog.String("user_id", u.ID), slog.String("passkey_id", stored.ID))
	return nil
}

// passkeyUsed checks the signature counter of a verified assertion and
// records it. A counter that did not go up (when either is not zero: an
// authenticator without a counter always sends 0) means a cloned
// authenticator or a replay: logged and refused. Each counter value is also
// taken once by a marker, so that two answers with one value racing past
// the stored counter (updates are not isolated on every database) get one
// winner.
func (s *Service) passkeyUsed(ctx context.Context, stored *PasskeyCredential, cred *webauthn.Credential) error {
	if cred.Authenticator.CloneWarning {
		s.audit.LogAttrs(ctx, slog.LevelWarn, "audit", slog.String("event", "passkey_sign_count"),
			slog.String("outcome", "regression"), slog.String("user_id", stored.UserID), slog.String("passkey_id", stored.ID),
			slog.Uint64("stored", uint64(stored.SignCount)), slog.String("ip", ClientFromContext(ctx).IP))
		return errSignCount
	}
	count := cred.Authenticator.SignCount
	now := s.now().UTC().Truncate(time.Millisecond)
	if count > 0 {
		key := fmt.Sprintf("webauthn/sign/%s/%d", stored.ID, count)
		if err := s.markers.Put(ctx, key, now.Add(challengeTTL)); errors.Is(err, ErrDuplicate) {
			s.audit.LogAttrs(ctx, slog.LevelWarn, "audit", slog.String("event", "passkey_sign_count"),
				slog.String("outcome", "regression"), slog.String("user_id", stored.UserID),
				slog.String("passkey_id", stored.ID), slog.Uint64("count", uint64(count)))
			return errSignCount
		} else if err != nil {
			return fmt.Errorf("auth: take passkey counter: %w", err)
		}
	}
	if err := s.rp.creds.Used(ctx, stored.ID, count, now); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("auth: record passkey use: %w", err)
	}
	return nil
}

// BeginPasskeyLogin returns assertion options for a passwordless sign-in.
func (s *Service) BeginPasskeyLogin(ctx context.Context) (map[string]any, error) {
	if s.rp == nil {
		return nil, errPasskeysOff
	}
	// Anyone may begin: each begin stores a challenge, so it is limited per
	// client IP like a login.
	if err := s.allowIP(ctx, "login"); err != nil {
		return nil, err
	}
	assertion, data, err := s.rp.web.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return nil, fmt.Errorf("auth: begin passkey login: %w", err)
	}
	return s.beginCeremony(ctx, CeremonyLogin, nil, data, assertion.Response)
}

// FinishPasskeyLogin signs in with a discoverable passkey: a session at
// level 2 (amr webauthn) when the authenticator verified the user.
func (s *Service) FinishPasskeyLogin(ctx context.Context, response map[string]any) (*Result, error) {
	if s.rp == nil {
		return nil, errPasskeysOff
	}
	if err := s.allowIP(ctx, "login"); err != nil {
		return nil, err
	}
	ip := slog.String("ip", ClientFromContext(ctx).IP)
	parsed, err := parseAssertion(response)
	if err != nil {
		return nil, err
	}
	data, err := s.takeChallenge(ctx, CeremonyLogin, nil, parsed.Response.CollectedClientData)
	if err != nil {
		return nil, err
	}
	if err := s.checkOrigin(parsed.Response.CollectedClientData, data); err != nil {
		return nil, err
	}
	// Without user verification a passkey is something one has, not a
	// sign-in: refused with a reason the page can show.
	if !parsed.Response.AuthenticatorData.Flags.HasUserVerified() {
		s.audit.LogAttrs(ctx, slog.LevelInfo, "audit", slog.String("event", "passkey_login"),
			slog.String("outcome", "no_user_verification"), ip)
		return nil, invalidResponse(ReasonUserVerification, "the authenticator did not verify the user (PIN or "+
			"biometrics): sign in with a password, or use an authenticator that can")
	}
	stored, err := s.rp.creds.ByID(ctx, base64.RawURLEncoding.EncodeToString(parsed.RawID))
	if errors.Is(err, ErrNotFound) {
		s.audit.LogAttrs(ctx, slog.LevelInfo, "audit", slog.String("event", "passkey_login"),
			slog.String("outcome", "unknown_credential"), ip)
		return nil, invalidResponse(ReasonUnknownCredential, "this passkey is not registered here")
	}
	if err != nil {
		return nil, fmt.Errorf("auth: find passkey: %w", err)
	}
	u, err := s.fresh.ByID(ctx, stored.UserID)
	if errors.Is(err, ErrNotFound) {
		return nil, invalidResponse(ReasonUnknownCredential, "this passkey is not registered here")
	}
	if err != nil {
		return nil, fmt.Errorf("auth: find user: %w", err)
	}
	// The user handle is the account's ID: the one the credential was
	// registered with, checked by the library against this user.
	lookup := func(rawID, userHandle []byte) (webauthn.User, error) {
		return passkeyUser{u: u, creds: []webauthn.Credential{stored.libraryCredential()}}, nil
	}
	if string(parsed.Response.UserHandle) != u.ID {
		return nil, s.rejected(ctx, "passkey_login", u.ID, errors.New("the user handle is not the credential's account"))
	}
	_, cred, err := s.rp.web.ValidatePasskeyLogin(lookup, *data, parsed)
	if err != nil {
		return nil, s.rejected(ctx, "passkey_login", u.ID, err)
	}
	if u.Disabled {
		s.audit.LogAttrs(ctx, slog.LevelInfo, "audit", slog.String("event", "passkey_login"), slog.String("outcome", "disabled"),
			slog.String("user_id", u.ID), ip)
		return nil, errUserDisabled
	}
	if err := s.passkeyUsed(ctx, stored, cred); err != nil {
		return nil, err
	}
	res, err := s.startSessionAAL(ctx, u, 2, []string{AMRWebAuthn})
	if err != nil {
		return nil, err
	}
	s.audit.LogAttrs(ctx, slog.LevelInfo, "audit", slog.String("event", "passkey_login"), slog.String("outcome", "success"),
		slog.String("user_id", u.ID), slog.String("passkey_id", stored.ID), ip)
	return res, nil
}
