package auth

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"image/png"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"
)

// TotpEnrollment is a pending authenticator app: its secret, as text, as an
// otpauth:// link and as a QR code.
type TotpEnrollment struct {
	Secret        string
	OtpauthURI    string
	QRCodeDataURL string
}

// TOTP is an authenticator app of a user. A user has at most one pending app
// (enrolled, not yet proven with a code) and one confirmed app; confirming
// the pending one replaces the confirmed one.
type TOTP struct {
	UserID string
	// Sealed is the base32 secret encrypted with AES-256-GCM under a key
	// derived from the server secret: nonce followed by ciphertext, bound to
	// UserID. The database never holds the secret itself.
	Sealed    []byte
	Confirmed bool
	CreatedAt time.Time
}

// MFAStore keeps the authenticator apps and recovery codes of users.
// Single use of codes does not rest on it but on MarkerStore inserts.
type MFAStore interface {
	// TOTP returns userID's confirmed (or pending) app; ErrNotFound when
	// there is none.
	TOTP(ctx context.Context, userID string, confirmed bool) (*TOTP, error)
	// PutTOTP stores t, replacing the app of t.UserID in the same state.
	PutTOTP(ctx context.Context, t *TOTP) error
	// DeleteTOTP removes userID's app in that state; none is not an error.
	DeleteTOTP(ctx context.Context, userID string, confirmed bool) error
	// SetRecoveryCodes replaces userID's recovery codes with hashes (none:
	// the user has no recovery codes).
	SetRecoveryCodes(ctx context.Context, userID string, hashes []string, at time.Time) error
	// RecoveryCodes returns the hashes of userID's recovery codes (nil when
	// there are none).
	RecoveryCodes(ctx context.Context, userID string) ([]string, error)
	// DeleteForUser removes every app and recovery code of userID.
	DeleteForUser(ctx context.Context, userID string) error
}

const (
	// totpIssuer names the server in authenticator apps.
	totpIssuer = "authgql"
	// totpPeriod and totpSkew: 30-second steps, a code of the step before
	// or after is accepted too (clock drift, a code typed as it changes).
	totpPeriod = 30
	totpSkew   = 1
	// recoveryCodes are issued at a time, each of recoveryCodeChars base32
	// characters (50 bits) shown as two groups of five.
	recoveryCodes     = 10
	recoveryCodeChars = 10
	// A spent recovery code's marker must outlive the code, which lives
	// until the codes are regenerated: in practice forever.
	recoverySpentFor = 100 * 365 * 24 * time.Hour
)

var (
	errMFAUnavailable = &Error{Code: CodeInternal, Message: "second factors are not available on this server"}
	errWrongCode      = badInput("code", ReasonIncorrect, "the code is incorrect")
	errCodeUsed       = badInput("code", ReasonUsed, "this code was already used; wait for the next one or use another")
	errNoPendingApp   = badInput("code", ReasonRequired, "no authenticator app is being enrolled: call enrollTotp first")
	errNoApp          = &Error{Code: CodeNotFound, Field: "code", Message: "the account has no authenticator app"}
	errNoFactor       = badInput("code", ReasonRequired, "recovery codes need a second factor: enrol one first")
)

// level is the assurance level of c (tokens from before levels are 1).
func level(c Claims) int {
	if c.AAL == 0 {
		return 1
	}
	return c.AAL
}

// EnrollTotp starts enrolling an authenticator app for the caller: a new
// secret, pending until ConfirmTotp, replacing any pending one. Once the
// account has a second factor, only a level-2 session may enrol another.
func (s *Service) EnrollTotp(ctx context.Context) (*TotpEnrollment, error) {
	c, u, err := s.mfaCaller(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.needLevel2IfFactor(ctx, c, u); err != nil {
		return nil, err
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: totpIssuer, AccountName: u.Username, Period: totpPeriod,
		SecretSize: 20, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return nil, fmt.Errorf("auth: generate totp secret: %w", err)
	}
	sealed, err := s.sealTOTP(u.ID, key.Secret())
	if err != nil {
		return nil, err
	}
	if err := s.mfa.PutTOTP(ctx, &TOTP{UserID: u.ID, Sealed: sealed, CreatedAt: s.now().UTC().Truncate(time.Millisecond)}); err != nil {
		return nil, fmt.Errorf("auth: store pending totp: %w", err)
	}
	img, err := key.Image(256, 256)
	if err != nil {
		return nil, fmt.Errorf("auth: totp qr code: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("auth: totp qr code: %w", err)
	}
	s.auditMFA(ctx, "totp_enroll", "pending", u.ID)
	return &TotpEnrollment{Secret: key.Secret(), OtpauthURI: key.URL(),
		QRCodeDataURL: "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes())}, nil
}

// ConfirmTotp proves the pending app with a code: it becomes the account's
// second factor; ten recovery codes and level-2 tokens come back.
func (s *Service) ConfirmTotp(ctx context.Context, code string) ([]string, *Result, error) {
	c, u, err := s.mfaCaller(ctx)
	if err != nil {
		return nil, nil, err
	}
	if err := s.needLevel2IfFactor(ctx, c, u); err != nil {
		return nil, nil, err
	}
	pending, err := s.mfa.TOTP(ctx, u.ID, false)
	if errors.Is(err, ErrNotFound) {
		return nil, nil, errNoPendingApp
	}
	if err != nil {
		return nil, nil, fmt.Errorf("auth: find pending totp: %w", err)
	}
	if err := s.checkTOTP(ctx, pending, normalizeCode(code)); err != nil {
		if ErrorCode(err) == CodeBadUserInput {
			s.auditMFA(ctx, "totp_confirm", "failure", u.ID)
		}
		return nil, nil, err
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	if err := s.mfa.PutTOTP(ctx, &TOTP{UserID: u.ID, Sealed: pending.Sealed, Confirmed: true, CreatedAt: now}); err != nil {
		return nil, nil, fmt.Errorf("auth: confirm totp: %w", err)
	}
	if err := s.mfa.DeleteTOTP(ctx, u.ID, false); err != nil {
		return nil, nil, fmt.Errorf("auth: remove pending totp: %w", err)
	}
	codes, err := s.replaceRecoveryCodes(ctx, u.ID)
	if err != nil {
		return nil, nil, err
	}
	if err := s.users.SetMFAEnabled(ctx, u.ID, true); err != nil {
		return nil, nil, fmt.Errorf("auth: enable mfa: %w", err)
	}
	s.auditMFA(ctx, "totp_confirm", "success", u.ID)
	s.announce(ctx, u.ID, s.securityEvent(ctx, EventMFAEnabled, u.ID))
	res, err := s.elevate(ctx, c, AMROTP)
	if err != nil {
		return nil, nil, err
	}
	return codes, res, nil
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
	_, u, err := s.mfaCaller(ctx)
	if err != nil {
		return nil, err
	}
	method, err := s.checkCodeThrottled(ctx, "verify_mfa", u.ID, *code)
	if err != nil {
		return nil, err
	}
	return s.elevate(ctx, c, method)
}

// DisableTotp removes the caller's authenticator app (at level 2, with a
// current code or a recovery code) and its recovery codes. The account keeps
// a second factor while it has passkeys.
func (s *Service) DisableTotp(ctx context.Context, code string) (bool, error) {
	c, u, err := s.mfaCaller(ctx)
	if err != nil {
		return false, err
	}
	if err := AuthorizeLevel(c, "", 2); err != nil {
		return false, err
	}
	if _, err := s.mfa.TOTP(ctx, u.ID, true); errors.Is(err, ErrNotFound) {
		return false, errNoApp
	} else if err != nil {
		return false, fmt.Errorf("auth: find totp: %w", err)
	}
	if _, err := s.checkCodeThrottled(ctx, "totp_disable", u.ID, code); err != nil {
		return false, err
	}
	if err := s.mfa.DeleteForUser(ctx, u.ID); err != nil {
		return false, fmt.Errorf("auth: remove totp: %w", err)
	}
	if err := s.syncMFAEnabled(ctx, u.ID); err != nil {
		return false, err
	}
	s.announce(ctx, u.ID, s.securityEvent(ctx, EventMFADisabled, u.ID))
	return true, nil
}

// RegenerateRecoveryCodes replaces the caller's recovery codes (at level 2):
// the old ones stop working.
func (s *Service) RegenerateRecoveryCodes(ctx context.Context) ([]string, error) {
	c, u, err := s.mfaCaller(ctx)
	if err != nil {
		return nil, err
	}
	if err := AuthorizeLevel(c, "", 2); err != nil {
		return nil, err
	}
	if !u.MFAEnabled {
		return nil, errNoFactor
	}
	codes, err := s.replaceRecoveryCodes(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	s.auditMFA(ctx, "recovery_codes_regenerate", "success", u.ID)
	return codes, nil
}

// ResetMfa removes every second factor of a locked-out user (admins): the
// app, the recovery codes and the passkeys; every session of the user ends.
func (s *Service) ResetMfa(ctx context.Context, userID string) (*User, error) {
	if _, err := s.Authorize(ctx, RoleAdmin); err != nil {
		return nil, err
	}
	if s.mfa == nil {
		return nil, errMFAUnavailable
	}
	u, err := s.userByID(ctx, userID)
	if err != nil {
		return nil, err
	}
	if err := s.mfa.DeleteForUser(ctx, u.ID); err != nil {
		return nil, fmt.Errorf("auth: remove totp: %w", err)
	}
	if err := s.deletePasskeysOf(ctx, u.ID); err != nil {
		return nil, err
	}
	if err := s.users.SetMFAEnabled(ctx, u.ID, false); err != nil {
		return nil, fmt.Errorf("auth: disable mfa: %w", err)
	}
	if err := s.forgetFailures(ctx, s.identifierHash("mfa", u.ID)); err != nil {
		return nil, err
	}
	// The factors are gone and cannot come back: the revocation must hold.
	ended, err := s.revokeUntilDone(ctx, u.ID, nil, "", "mfa_reset", s.securityEvent(ctx, EventMFADisabled, u.ID))
	if err != nil {
		return nil, err
	}
	s.audit.LogAttrs(ctx, slog.LevelInfo, "audit", slog.String("event", "mfa_reset"), slog.String("outcome", "success"),
		slog.String("user_id", u.ID), slog.String("by", callerID(ctx)), slog.Int("sessions_ended", len(ended)))
	return s.account(s.fresh.ByID(ctx, u.ID))
}

// mfaCaller is the authenticated caller, read fresh, for an operation on
// its factors.
func (s *Service) mfaCaller(ctx context.Context) (Claims, *User, error) {
	c, err := Authenticate(ctx)
	if err != nil {
		return Claims{}, nil, err
	}
	if s.mfa == nil {
		return Claims{}, nil, errMFAUnavailable
	}
	u, err := s.freshCaller(ctx, c)
	if err != nil {
		return Claims{}, nil, err
	}
	return c, u, nil
}

// needLevel2IfFactor refuses a level-1 session of an account that has a
// second factor: the flag, or a confirmed app (the flag is written last).
// The token's own mfa claim may predate the factor.
func (s *Service) needLevel2IfFactor(ctx context.Context, c Claims, u *User) error {
	if level(c) >= 2 {
		return nil
	}
	if u.MFAEnabled {
		return ErrMFARequired
	}
	switch _, err := s.mfa.TOTP(ctx, u.ID, true); {
	case err == nil:
		return ErrMFARequired
	case !errors.Is(err, ErrNotFound):
		return fmt.Errorf("auth: find totp: %w", err)
	}
	return nil
}

// syncMFAEnabled sets the account's flag from the factors it has left.
func (s *Service) syncMFAEnabled(ctx context.Context, userID string) error {
	n, err := s.passkeyCount(ctx, userID)
	if err != nil {
		return err
	}
	if err := s.users.SetMFAEnabled(ctx, userID, n > 0); err != nil {
		return fmt.Errorf("auth: set mfa: %w", err)
	}
	return nil
}

// checkCodeThrottled checks a TOTP or recovery code of userID (see
// checkCode) under a per-account throttle like login's: every check counts
// as a failure until one succeeds, and once locked each window allows one
// check across all instances. It returns the method that was proven.
func (s *Service) checkCodeThrottled(ctx context.Context, event, userID, code string) (string, error) {
	key := s.identifierHash("mfa", userID)
	if _, err := s.reserveAttempt(ctx, key); err != nil {
		if e, ok := errors.AsType[*Error](err); ok && e.Code == CodeRateLimited {
			s.auditMFA(ctx, event, "throttled", userID)
			return "", rateLimited(ReasonMFA, time.Duration(e.RetryAfter)*time.Second)
		}
		return "", err
	}
	method, err := s.checkCode(ctx, userID, code)
	if err != nil {
		if ErrorCode(err) == CodeBadUserInput {
			s.auditMFA(ctx, event, "failure", userID)
		}
		return "", err
	}
	if err := s.forgetFailures(ctx, key); err != nil {
		return "", err
	}
	s.audit.LogAttrs(ctx, slog.LevelInfo, "audit", slog.String("event", event), slog.String("outcome", "success"),
		slog.String("method", method), slog.String("user_id", userID), slog.String("ip", ClientFromContext(ctx).IP))
	return method, nil
}

// checkCode accepts a current code of userID's confirmed app (six digits) or
// one of its recovery codes, and spends it: a TOTP step is accepted once, a
// recovery code once ever. Both rest on a marker insert, atomic on every
// database, so of concurrent uses exactly one goes on.
func (s *Service) checkCode(ctx context.Context, userID, code string) (string, error) {
	norm := normalizeCode(code)
	if isTOTPCode(norm) {
		app, err := s.mfa.TOTP(ctx, userID, true)
		if errors.Is(err, ErrNotFound) {
			return "", errWrongCode
		}
		if err != nil {
			return "", fmt.Errorf("auth: find totp: %w", err)
		}
		return AMROTP, s.checkTOTP(ctx, app, norm)
	}
	if len(norm) != recoveryCodeChars {
		return "", errWrongCode
	}
	hashes, err := s.mfa.RecoveryCodes(ctx, userID)
	if err != nil {
		return "", fmt.Errorf("auth: read recovery codes: %w", err)
	}
	h := s.recoveryHash(userID, norm)
	found := false
	for _, have := range hashes {
		found = found || hmac.Equal([]byte(have), []byte(h))
	}
	if !found {
		return "", errWrongCode
	}
	err = s.markers.Put(ctx, "used/recovery/"+h, s.now().Add(recoverySpentFor))
	if errors.Is(err, ErrDuplicate) {
		return "", errCodeUsed
	}
	if err != nil {
		return "", fmt.Errorf("auth: spend recovery code: %w", err)
	}
	return AMRRecovery, nil
}

// checkTOTP accepts code if it is app's code for the current step or the
// one before or after, and claims that step for app's user: a step's code
// works once.
func (s *Service) checkTOTP(ctx context.Context, app *TOTP, code string) error {
	if !isTOTPCode(code) {
		return errWrongCode
	}
	secret, err := s.openTOTP(app)
	if err != nil {
		return err
	}
	now := s.now().Unix() / totpPeriod
	for _, step := range []int64{now, now - 1, now + 1} {
		if step < 0 {
			continue
		}
		want, err := hotp.GenerateCodeCustom(secret, uint64(step),
			hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		if err != nil {
			return fmt.Errorf("auth: totp code: %w", err)
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) != 1 {
			continue
		}
		// The step's code is accepted until the step after next begins.
		until := time.Unix((step+totpSkew+1)*totpPeriod, 0)
		err = s.markers.Put(ctx, "totp/"+app.UserID+"/"+strconv.FormatInt(step, 10), until)
		if errors.Is(err, ErrDuplicate) {
			return errCodeUsed
		}
		if err != nil {
			return fmt.Errorf("auth: claim totp step: %w", err)
		}
		return nil
	}
	return errWrongCode
}

// replaceRecoveryCodes gives userID new recovery codes and returns them;
// only their hashes are kept.
func (s *Service) replaceRecoveryCodes(ctx context.Context, userID string) ([]string, error) {
	codes := make([]string, recoveryCodes)
	hashes := make([]string, recoveryCodes)
	for i := range codes {
		raw := strings.ToLower(rand.Text()[:recoveryCodeChars])
		codes[i] = raw[:5] + "-" + raw[5:]
		hashes[i] = s.recoveryHash(userID, raw)
	}
	if err := s.mfa.SetRecoveryCodes(ctx, userID, hashes, s.now().UTC().Truncate(time.Millisecond)); err != nil {
		return nil, fmt.Errorf("auth: store recovery codes: %w", err)
	}
	return codes, nil
}

// recoveryHash is what is stored of a (normalized) recovery code: keyed with
// a secret of the server and bound to its account.
func (s *Service) recoveryHash(userID, code string) string {
	return hex.EncodeToString(mac(s.recoveryKey, []byte(userID+":"+code)))
}

// normalizeCode forgives what people add when typing a code: spaces,
// dashes and capitals.
func normalizeCode(code string) string {
	if len(code) > 64 {
		return ""
	}
	return strings.ToLower(strings.NewReplacer(" ", "", "-", "", "\t", "").Replace(code))
}

func isTOTPCode(code string) bool {
	if len(code) != 6 {
		return false
	}
	for i := range len(code) {
		if code[i] < '0' || code[i] > '9' {
			return false
		}
	}
	return true
}

// sealTOTP encrypts a secret for userID's record.
func (s *Service) sealTOTP(userID, secret string) ([]byte, error) {
	aead, err := s.totpAEAD()
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	_, _ = rand.Read(nonce)
	return aead.Seal(nonce, nonce, []byte(secret), []byte("totp:"+userID)), nil
}

// openTOTP decrypts app's secret.
func (s *Service) openTOTP(app *TOTP) (string, error) {
	aead, err := s.totpAEAD()
	if err != nil {
		return "", err
	}
	if len(app.Sealed) < aead.NonceSize() {
		return "", errors.New("auth: sealed totp secret too short")
	}
	n := aead.NonceSize()
	secret, err := aead.Open(nil, app.Sealed[:n], app.Sealed[n:], []byte("totp:"+app.UserID))
	if err != nil {
		// Another server secret, or a record moved to another account.
		return "", fmt.Errorf("auth: open totp secret: %w", err)
	}
	return string(secret), nil
}

func (s *Service) totpAEAD() (cipher.AEAD, error) {
	block, err := aes.NewCipher(s.totpKey)
	if err != nil {
		return nil, fmt.Errorf("auth: totp cipher: %w", err)
	}
	return cipher.NewGCM(block)
}

// auditMFA logs a second-factor event about userID.
func (s *Service) auditMFA(ctx context.Context, event, outcome, userID string) {
	s.audit.LogAttrs(ctx, slog.LevelInfo, "audit", slog.String("event", event), slog.String("outcome", outcome),
		slog.String("user_id", userID), slog.String("ip", ClientFromContext(ctx).IP))
}
