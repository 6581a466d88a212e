package auth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
)

// WebAuthnSettings configure passkeys: the relying party that credentials
// are bound to, and the origins whose pages may use them.
type WebAuthnSettings struct {
	// RPID is the relying party ID (a host name such as example.com); empty:
	// passkeys are off and their operations answer INTERNAL_SERVER_ERROR.
	RPID   string
	RPName string
	// Origins are the exact origins (scheme://host[:port]) a ceremony may
	// come from.
	Origins []string
	// AnyLoopbackPort also accepts http://localhost:<port> and
	// http://127.0.0.1:<port> for any port (development: front-end dev
	// servers move between ports).
	AnyLoopbackPort bool
}

// PasskeyCredential is a stored WebAuthn credential.
type PasskeyCredential struct {
	// ID is the credential ID, base64url without padding (the form browsers
	// show as PublicKeyCredential.id).
	ID        string
	UserID    string
	Name      string
	PublicKey []byte // COSE_Key
	// SignCount is the authenticator's signature counter at its last use.
	SignCount         uint32
	Transports        []string
	AAGUID            []byte
	AttestationType   string
	AttestationFormat string
	// Flags are the authenticator data flags (UP, UV, BE, BS) recorded at
	// registration; BE never changes for a credential.
	Flags      byte
	CreatedAt  time.Time
	LastUsedAt *time.Time
}

// PasskeyStore keeps WebAuthn credentials, one per credential ID.
type PasskeyStore interface {
	// Create inserts c; ErrDuplicate when its ID is registered (to any
	// account): an insert against the unique ID.
	Create(ctx context.Context, c *PasskeyCredential) error
	// ByID returns the credential, or ErrNotFound.
	ByID(ctx context.Context, id string) (*PasskeyCredential, error)
	// ForUser lists userID's credentials, oldest first.
	ForUser(ctx context.Context, userID string) ([]*PasskeyCredential, error)
	// Rename sets the name of userID's credential id; ErrNotFound when
	// userID has no such credential.
	Rename(ctx context.Context, userID, id, name string) (*PasskeyCredential, error)
	// Used records a verified assertion: the new counter, flags and time.
	Used(ctx context.Context, id string, signCount uint32, at time.Time) error
	// Delete removes userID's credential id; ErrNotFound when userID has no
	// such credential.
	Delete(ctx context.Context, userID, id string) error
	// DeleteForUser removes every credential of userID.
	DeleteForUser(ctx context.Context, userID string) (int64, error)
}

// Ceremonies a WebAuthn challenge is begun for; a challenge answers only its own.
const (
	CeremonyRegistration = "registration"
	CeremonyMFA          = "mfa"
	CeremonyLogin        = "login"
)

// WebAuthnChallenge is a begun ceremony, kept in the database so that any
// instance can finish it.
type WebAuthnChallenge struct {
	// ID is a hash of the challenge (the client sends the challenge back in
	// its clientDataJSON; the stored ID alone cannot answer it).
	ID       string
	Ceremony string
	// UserID and SessionID bind the challenge to the caller that began it
	// (both empty for a passwordless sign-in).
	UserID, SessionID string
	// Data is the ceremony's state as the WebAuthn library keeps it (JSON).
	Data      []byte
	CreatedAt time.Time
	ExpiresAt time.Time
}

// ChallengeStore keeps begun WebAuthn ceremonies. A challenge is used up by
// a marker (MarkerStore), not by an update: single use rests on an insert.
type ChallengeStore interface {
	// Create inserts c (IDs are random: a duplicate is an error).
	Create(ctx context.Context, c *WebAuthnChallenge) error
	// ByID returns the challenge, or ErrNotFound.
	ByID(ctx context.Context, id string) (*WebAuthnChallenge, error)
	// DeleteExpired removes challenges that expired before before.
	DeleteExpired(ctx context.Context, before time.Time) (int64, error)
	// DeleteForUser removes the challenges begun by userID.
	DeleteForUser(ctx context.Context, userID string) (int64, error)
}

const (
	// challengeTTL is how long a begun ceremony can be finished.
	challengeTTL = 2 * time.Minute
	// defaultPasskeyName names a passkey registered without a name.
	defaultPasskeyName = "Passkey"
	maxPasskeyName     = 64
)

// Reasons of passkey refusals (BAD_USER_INPUT, field "response", unless said).
const (
	// ReasonRejected: the authenticator's answer does not verify (signature,
	// relying party ID, challenge, flags, attestation).
	ReasonRejected = "rejected"
	// ReasonUserVerification: a passwordless sign-in whose authenticator did
	// not verify the user (PIN, biometrics).
	ReasonUserVerification = "user_verification_required"
	// ReasonSignCount: the authenticator's signature counter went back (a
	// cloned authenticator, or a replayed assertion).
	ReasonSignCount = "sign_count"
	// ReasonUnknownCredential: the credential is not registered (to this
	// caller).
	ReasonUnknownCredential = "unknown_credential"
	// ReasonNoPasskey: beginMfaPasskey for an account without a passkey.
	ReasonNoPasskey = "no_passkey"
)

var errPasskeysOff = &Error{Code: CodeInternal, Message: "passkeys are not configured on this server"}

// relyingParty is the passkey side of a Service: the WebAuthn library set
// up for this server, the origins it accepts and the stores.
type relyingParty struct {
	web         *webauthn.WebAuthn
	origins     []string
	anyLoopback bool
	creds       PasskeyStore
	challenges  ChallengeStore
	lastSweep   atomic.Int64 // unix nanoseconds of the last sweep of expired challenges
}

// newRelyingParty returns nil when passkeys are not configured (no RP ID or
// no stores).
func newRelyingParty(s WebAuthnSettings, creds PasskeyStore, challenges ChallengeStore) (*relyingParty, error) {
	if s.RPID == "" || creds == nil || challenges == nil {
		return nil, nil
	}
	if len(s.Origins) == 0 && !s.AnyLoopbackPort {
		return nil, errors.New("auth: passkeys need at least one origin")
	}
	origins := s.Origins
	if len(origins) == 0 {
		origins = []string{"http://localhost"} // the library wants one; loopback origins are checked here
	}
	name := s.RPName
	if name == "" {
		name = "authgql"
	}
	timeouts := webauthn.TimeoutConfig{Timeout: challengeTTL, TimeoutUVD: challengeTTL}
	web, err := webauthn.New(&webauthn.Config{
		RPID:                  s.RPID,
		RPDisplayName:         name,
		RPOrigins:             slices.Clone(origins),
		AttestationPreference: protocol.PreferNoAttestation,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey:      protocol.ResidentKeyRequirementRequired,
			UserVerification: protocol.VerificationPreferred,
		},
		// Expiry is checked against the service's clock, on the stored challenge.
		Timeouts: webauthn.TimeoutsConfig{Login: timeouts, Registration: timeouts},
	})
	if err != nil {
		return nil, fmt.Errorf("auth: webauthn: %w", err)
	}
	return &relyingParty{web: web, origins: origins, anyLoopback: s.AnyLoopbackPort, creds: creds, challenges: challenges}, nil
}

// allowsOrigin reports whether a ceremony may come from origin: one of the
// configured origins exactly, or (development) a loopback origin.
func (rp *relyingParty) allowsOrigin(origin string) bool {
	if slices.Contains(rp.origins, origin) {
		return true
	}
	return rp.anyLoopback && LoopbackOrigin(origin)
}

// LoopbackOrigin reports whether origin is http://localhost:<port> or
// http://127.0.0.1:<port> (or without a port).
func LoopbackOrigin(origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Scheme != "http" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil ||
		u.Opaque != "" || origin != u.Scheme+"://"+u.Host {
		return false
	}
	if h := u.Hostname(); h != "localhost" && h != "127.0.0.1" {
		return false
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		return err == nil && n > 0 && n <= 65535 && strconv.Itoa(n) == p
	}
	return !strings.HasSuffix(u.Host, ":")
}

// passkeyUser is an account as the WebAuthn library sees it. The user
// handle is the account ID's bytes.
type passkeyUser struct {
	u     *User
	creds []webauthn.Credential
}

func (p passkeyUser) WebAuthnID() []byte                         { return []byte(p.u.ID) }
func (p passkeyUser) WebAuthnName() string                       { return p.u.Username }
func (p passkeyUser) WebAuthnDisplayName() string                { return p.u.Username }
func (p passkeyUser) WebAuthnCredentials() []webauthn.Credential { return p.creds }

// libraryCredential is c as the WebAuthn library verifies it.
func (c *PasskeyCredential) libraryCredential() webauthn.Credential {
	raw, _ := base64.RawURLEncoding.DecodeString(c.ID)
	transports := make([]protocol.AuthenticatorTransport, len(c.Transports))
	for i, t := range c.Transports {
		transports[i] = protocol.AuthenticatorTransport(t)
	}
	return webauthn.Credential{
		ID: raw, PublicKey: c.PublicKey, AttestationType: c.AttestationType, AttestationFormat: c.AttestationFormat,
		Transport: transports, Flags: webauthn.NewCredentialFlags(protocol.AuthenticatorFlags(c.Flags)),
		Authenticator: webauthn.Authenticator{AAGUID: c.AAGUID, SignCount: c.SignCount},
	}
}

func libraryCredentials(cs []*PasskeyCredential) []webauthn.Credential {
	out := make([]webauthn.Credential, len(cs))
	for i, c := range cs {
		out[i] = c.libraryCredential()
	}
	return out
}

// challengeID is the key a challenge is stored under.
func challengeID(challenge string) string {
	sum := sha256.Sum256([]byte("webauthn-challenge/" + challenge))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// beginCeremony stores the state of a begun ceremony and returns the
// options for the browser as JSON.
func (s *Service) beginCeremony(ctx context.Context, ceremony string, c *Claims, data *webauthn.SessionData, options any) (map[string]any, error) {
	state, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("auth: encode webauthn session: %w", err)
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	ch := &WebAuthnChallenge{ID: challengeID(data.Challenge), Ceremony: ceremony, Data: state,
		CreatedAt: now, ExpiresAt: now.Add(challengeTTL)}
	if c != nil {
		ch.UserID, ch.SessionID = c.UserID, c.SessionID
	}
	if err := s.rp.challenges.Create(ctx, ch); err != nil {
		return nil, fmt.Errorf("auth: store webauthn challenge: %w", err)
	}
	s.sweepChallenges(ctx, now)
	raw, err := json.Marshal(options)
	if err != nil {
		return nil, fmt.Errorf("auth: encode webauthn options: %w", err)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("auth: encode webauthn options: %w", err)
	}
	return out, nil
}

// sweepChallenges removes, at most once per sweepEvery and instance,
// challenges expired for a day (kept that long so that a late answer says
// "expired" rather than "unknown"), where the database has no TTL index.
func (s *Service) sweepChallenges(ctx context.Context, now time.Time) {
	last := s.rp.lastSweep.Load()
	if now.UnixNano()-last < int64(sweepEvery) || !s.rp.lastSweep.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	if _, err := s.rp.challenges.DeleteExpired(ctx, now.Add(-endedRetention)); err != nil && ctx.Err() == nil {
		s.audit.WarnContext(ctx, "auth: sweeping webauthn challenges failed", "err", err)
	}
}

func invalidResponse(reason, msg string) *Error { return badInput("response", reason, msg) }

var errMalformedResponse = invalidResponse(ReasonInvalidFormat,
	"response must be the PublicKeyCredential as JSON (PublicKeyCredential.toJSON())")

// takeChallenge finds the challenge that clientData answers, checks that it
// was begun for this ceremony by this caller (c; nil for a sign-in) and has
// not expired, and uses it up: one answer per challenge, whatever its
// outcome. The use is an insert of a marker against its unique key, so two
// answers racing on any database get one winner.
func (s *Service) takeChallenge(ctx context.Context, ceremony string, c *Claims, clientData protocol.CollectedClientData) (*webauthn.SessionData, error) {
	if clientData.Challenge == "" {
		return nil, errMalformedResponse
	}
	id := challengeID(clientData.Challenge)
	ch, err := s.rp.challenges.ByID(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, invalidResponse(ReasonUnknown, "this passkey challenge is unknown: begin again")
	}
	if err != nil {
		return nil, fmt.Errorf("auth: find webauthn challenge: %w", err)
	}
	// Another ceremony's challenge, or another caller's, is unknown here:
	// the answer tells nothing about it.
	mine := ch.Ceremony == ceremony
	if c != nil {
		mine = mine && ch.UserID == c.UserID && ch.SessionID == c.SessionID
	} else {
		mine = mine && ch.UserID == ""
	}
	if !mine {
		return nil, invalidResponse(ReasonUnknown, "this passkey challenge is unknown: begin again")
	}
	key := "used/webauthn/" + id
	if _, err := s.markers.Until(ctx, key); err == nil {
		return nil, invalidResponse(ReasonUsed, "this passkey challenge was already used: begin again")
	} else if !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("auth: read webauthn challenge use: %w", err)
	}
	if !s.now().Before(ch.ExpiresAt) {
		return nil, invalidResponse(ReasonExpired, "this passkey challenge expired: begin again")
	}
	if err := s.markers.Put(ctx, key, ch.ExpiresAt); errors.Is(err, ErrDuplicate) {
		return nil, invalidResponse(ReasonUsed, "this passkey challenge was already used: begin again")
	} else if err != nil {
		return nil, fmt.Errorf("auth: use webauthn challenge: %w", err)
	}
	var data webauthn.SessionData
	if err := json.Unmarshal(ch.Data, &data); err != nil {
		return nil, fmt.Errorf("auth: decode webauthn session: %w", err)
	}
	return &data, nil
}

// checkOrigin refuses a response collected on a page of an origin this
// server does not accept, and binds the ceremony to the accepted one so that
// the library checks the response against it.
func (s *Service) checkOrigin(clientData protocol.CollectedClientData, data *webauthn.SessionData) error {
	if !s.rp.allowsOrigin(clientData.Origin) {
		return invalidResponse(ReasonOriginNotAllowed, "this passkey answer comes from a page whose origin this server "+
			"does not accept (WEBAUTHN_ORIGINS)")
	}
	data.Origin = clientData.Origin
	return nil
}

// rejected logs why the library refused an answer (its details are for
// operators) and answers the client in general terms.
func (s *Service) rejected(ctx context.Context, event, userID string, err error) error {
	attrs := []slog.Attr{slog.String("event", event), slog.String("outcome", "rejected"),
		slog.String("ip", ClientFromContext(ctx).IP), slog.String("err", err.Error())}
	if pe, ok := errors.AsType[*protocol.Error](err); ok && pe.DevInfo != "" {
		attrs = append(attrs, slog.String("detail", pe.DevInfo))
	}
	if userID != "" {
		attrs = append(attrs, slog.String("user_id", userID))
	}
	s.audit.LogAttrs(ctx, slog.LevelWarn, "audit", attrs...)
	return invalidResponse(ReasonRejected, "the passkey's answer could not be verified")
}

// jsonBytes turns a JSON scalar argument back into its text.
func jsonBytes(v map[string]any) ([]byte, error) {
	if v == nil {
		return nil, errMalformedResponse
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, errMalformedResponse
	}
	return raw, nil
}

func parseAttestation(response map[string]any) (*protocol.ParsedCredentialCreationData, error) {
	raw, err := jsonBytes(response)
	if err != nil {
		return nil, err
	}
	p, err := protocol.ParseCredentialCreationResponseBytes(raw)
	if err != nil || p == nil {
		return nil, errMalformedResponse
	}
	return p, nil
}

func parseAssertion(response map[string]any) (*protocol.ParsedCredentialAssertionData, error) {
	raw, err := jsonBytes(response)
	if err != nil {
		return nil, err
	}
	p, err := protocol.ParseCredentialRequestResponseBytes(raw)
	if err != nil || p == nil {
		return nil, errMalformedResponse
	}
	return p, nil
}
