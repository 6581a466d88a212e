package auth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Settings are the tunable values of a Service.
type Settings struct {
	BcryptCost int
	// RefreshTTL is how long a session lives after its last refresh (sliding).
	RefreshTTL time.Duration
	// ReuseInterval is how long after a rotation the replaced refresh token is
	// still honoured, for concurrent refreshes (two tabs) rather than theft.
	ReuseInterval time.Duration
	// Key (at least 32 bytes, derived from the server secret) authenticates
	// and derives refresh tokens and keys the hashes of identifiers.
	Key []byte
	// UserCacheTTL is how long a user read by ID is reused (0: never). Changes
	// made on other instances are seen within it.
	UserCacheTTL time.Duration
	Limits       Limits
	// Audit receives one structured event per security decision (logins,
	// refreshes, logouts, throttling); never a password or token.
	Audit *slog.Logger
	Now   func() time.Time
	Mail  MailSettings
	// WebAuthn configures passkeys (off without an RP ID).
	WebAuthn WebAuthnSettings
	// Providers lists the configured identity providers (nil: none).
	Providers func() []ProviderInfo
}

// MailSettings configure the mails of account recovery.
type MailSettings struct {
	// AppURL is the front end's base URL: links are AppURL + PathVerifyEmail
	// (PathResetPassword, PathConfirmEmail) + "?token=…".
	AppURL string
	// Lifetimes of the links.
	VerificationTTL, ResetTTL, ChangeTTL time.Duration
	// AddressInterval allows one mail of each kind per address per interval
	// (0: no limit); further requests answer as if sent.
	AddressInterval time.Duration
}

// Stores are where a Service keeps its data.
type Stores struct {
	Users       UserStore
	Sessions    SessionStore
	Throttles   ThrottleStore
	Revocations RevocationLog
	EmailTokens EmailTokenStore
	Markers     MarkerStore
	Outbox      Outbox
	// Audit, when not nil, holds the audit events about accounts (see
	// AuditTrail), for exportMyData and deleteAccount.
	Audit AuditStore
	// MFA holds authenticator apps and recovery codes; without it the
	// TOTP operations answer INTERNAL_SERVER_ERROR.
	MFA MFAStore
	// Passkeys and Challenges hold WebAuthn credentials and begun
	// ceremonies; without them the passkey operations answer
	// INTERNAL_SERVER_ERROR.
	Passkeys   PasskeyStore
	Challenges ChallengeStore
	// Identities and OneTimeCodes hold federated identities and the
	// one-time codes of federated sign-ins and link tickets; without them
	// federation answers INTERNAL_SERVER_ERROR.
	Identities   IdentityStore
	OneTimeCodes OneTimeCodeStore
}

// Service is the authentication domain: accounts, sessions and tokens.
type Service struct {
	users UserStore // cached by ID when UserCacheTTL > 0
	// fresh reads users without the cache, for checks of credentials.
	fresh         UserStore
	sessions      SessionStore
	throttles     ThrottleStore
	revocationLog RevocationLog
	emailTokens   EmailTokenStore
	markers       MarkerStore
	outbox        Outbox
	trail         AuditStore       // may be nil
	mfa           MFAStore         // may be nil
	totpKey       []byte           // seals TOTP secrets (AES-256-GCM)
	recoveryKey   []byte           // keys the hashes of recovery codes
	rp            *relyingParty    // nil: passkeys are off
	identities    IdentityStore    // nil: federation is off
	codes         OneTimeCodeStore // nil: federation is off
	providers     func() []ProviderInfo
	mail          MailSettings
	tokens        TokenIssuer
	keys          refreshKeys
	idKey         []byte
	revoked       *revocations
	events        *eventHub
	syncing       sync.Mutex // one Sync at a time
	hasher        *hasher
	observer      Observer
	limits        Limits
	perIP         map[string]*ipLimiter // by action: login, register, refresh
	audit         *slog.Logger
	ttl           time.Duration
	reuse         time.Duration
	now           func() time.Time
	// dummyHash is compared against when a login names no account, so that an
	// unknown user costs the same time as a wrong password.
	dummyHash []byte
}

// NewService returns a Service.
func NewService(st Stores, tokens TokenIssuer, s Settings) (*Service, error) {
	if s.BcryptCost < bcrypt.MinCost || s.BcryptCost > bcrypt.MaxCost {
		return nil, fmt.Errorf("auth: bcrypt cost %d out of range", s.BcryptCost)
	}
	if len(s.Key) < 32 || s.RefreshTTL <= 0 || s.ReuseInterval < 0 || s.Now == nil || s.Audit == nil {
		return nil, errors.New("auth: a 32-byte key, a positive refresh TTL, an audit logger and a clock are required")
	}
	if st.Users == nil || st.Sessions == nil || st.Throttles == nil || st.Revocations == nil ||
		st.EmailTokens == nil || st.Markers == nil || st.Outbox == nil {
		return nil, errors.New("auth: every store is required")
	}
	if s.Mail.VerificationTTL <= 0 || s.Mail.ResetTTL <= 0 || s.Mail.ChangeTTL <= 0 || s.Mail.AddressInterval < 0 {
		return nil, errors.New("auth: positive mail link lifetimes are required")
	}
	if s.Limits.HashQueueTimeout <= 0 {
		return nil, errors.New("auth: a positive hash queue timeout is required")
	}
	dummy, err := bcrypt.GenerateFromPassword([]byte(rand.Text()), s.BcryptCost)
	if err != nil {
		return nil, fmt.Errorf("auth: dummy hash: %w", err)
	}
	rp, err := newRelyingParty(s.WebAuthn, st.Passkeys, st.Challenges)
	if err != nil {
		return nil, err
	}
	users := st.Users
	if s.UserCacheTTL > 0 {
		users = newUserCache(st.Users, s.UserCacheTTL, s.Now)
	}
	return &Service{
		users: users, fresh: st.Users, sessions: st.Sessions, throttles: st.Throttles, revocationLog: st.Revocations,
		emailTokens: st.EmailTokens, markers: st.Markers, outbox: st.Outbox, trail: st.Audit, mail: s.Mail,
		rp:         rp,
		identities: st.Identities, codes: st.OneTimeCodes, providers: s.Providers,
		mfa: st.MFA, totpKey: mac(s.Key, []byte("totp-secret")), recoveryKey: mac(s.Key, []byte("recovery-code")),
		tokens:   tokens,
		keys:     newRefreshKeys(s.Key),
		idKey:    mac(s.Key, []byte("identifier-hash")),
		revoked:  newRevocations(),
		events:   newEventHub(),
		hasher:   newHasher(s.BcryptCost, s.Limits.HashConcurrency, s.Limits.HashQueueTimeout),
		observer: noObserver{},
		limits:   s.Limits,
		perIP: map[string]*ipLimiter{
			"login":    newIPLimiter(s.Limits.LoginPerIP, maxIPBuckets),
			"register": newIPLimiter(s.Limits.RegisterPerIP, maxIPBuckets),
			"refresh":  newIPLimiter(s.Limits.RefreshPerIP, maxIPBuckets),
			"mail":     newIPLimiter(s.Limits.MailPerIP, maxIPBuckets),
		},
		audit: s.Audit,
		ttl:   s.RefreshTTL, reuse: s.ReuseInterval, now: s.Now,
		dummyHash: dummy,
	}, nil
}

// PasswordChecks is how many bcrypt computations the service has run.
func (s *Service) PasswordChecks() int64 { return s.hasher.checks.Load() }

// allowIP takes a token from the caller's bucket for action.
func (s *Service) allowIP(ctx context.Context, action string) error {
	ip := ClientFromContext(ctx).IP
	ok, wait := s.perIP[action].allow(ip, s.now())
	if ok {
		return nil
	}
	s.audit.LogAttrs(ctx, slog.LevelWarn, "audit", slog.String("event", action), slog.String("outcome", "rate_limited"),
		slog.String("limit", ReasonIP), slog.String("ip", ip))
	return rateLimited(ReasonIP, wait)
}

// Result is what a successful sign-in or refresh returns.
type Result struct {
	User             *User
	AccessToken      AccessToken
	RefreshToken     string
	RefreshExpiresAt time.Time
}

// startSession creates a session for u and issues its first tokens. u must
// have been read fresh, just before: the session records u's credential stamp.
func (s *Service) startSession(ctx context.Context, u *User) (*Result, error) {
	return s.startSessionAAL(ctx, u, 1, []string{AMRPassword})
}

// startSessionAAL starts a session at an assurance level reached by amr.
func (s *Service) startSessionAAL(ctx context.Context, u *User, aal int, amr []string) (*Result, error) {
	now := s.now().UTC()
	client := ClientFromContext(ctx)
	sess := &Session{
		ID:              newSessionID(),
		UserID:          u.ID,
		CreatedAt:       now,
		LastUsedAt:      now,
		RotatedAt:       now,
		ExpiresAt:       now.Add(s.ttl),
		UserAgent:       client.UserAgent,
		IP:              client.IP,
		CredentialStamp: u.CredentialStamp,
		AAL:             aal,
		AMR:             amr,
	}
	refresh := s.keys.root(sess.ID)
	sess.TokenHash = hashToken(refresh)
	if err := s.sessions.Create(ctx, sess); err != nil {
		return nil, fmt.Errorf("auth: create session: %w", err)
	}
	// A password change or a disable between reading u and creating the
	// session revoked every session it could see, but not this one. Such a
	// change is visible by now: read again, and give up the session (whose
	// tokens have not left the server) if it began from old credentials.
	cur, err := s.fresh.ByID(ctx, u.ID)
	if err == nil && !cur.Disabled && cur.CredentialStamp == u.CredentialStamp {
		s.announce(ctx, u.ID, SecurityEvent{Type: EventSessionCreated, At: now.Truncate(time.Millisecond), UserID: u.ID,
			SessionID: sess.ID, UserAgent: client.UserAgent, IP: client.IP})
		return s.result(ctx, cur, sess, refresh)
	}
	// Never announced as created, the session ends without an event either.
	if _, _, rerr := s.revokeOnce(ctx, u.ID, []string{sess.ID}, "", "password_changed", false, nil); rerr != nil {
		s.audit.WarnContext(ctx, "auth: revoking a session of changed credentials failed", "err", rerr)
	}
	switch {
	case err != nil && !errors.Is(err, ErrNotFound):
		return nil, fmt.Errorf("auth: find user: %w", err)
	case err == nil && cur.Disabled:
		return nil, errUserDisabled
	default:
		return nil, errInvalidCredentials
	}
}

func (s *Service) result(ctx context.Context, u *User, sess *Session, refresh string) (*Result, error) {
	aal, amr := sess.AAL, sess.AMR
	if aal == 0 { // a session from before levels existed: a password one
		aal, amr = 1, []string{AMRPassword}
	}
	tok, err := s.tokens.Issue(Subject{UserID: u.ID, SessionID: sess.ID, Roles: roleNames(u.Roles),
		EmailVerified: u.EmailVerified, AAL: aal, AMR: amr, MFA: u.MFAEnabled})
	if err != nil {
		return nil, fmt.Errorf("auth: issue token: %w", err)
	}
	markSignedIn(ctx, u.ID)
	return &Result{User: u, AccessToken: tok, RefreshToken: refresh, RefreshExpiresAt: sess.ExpiresAt}, nil
}

// VerifyAccessToken checks a presented access token and that its session has
// not been revoked, without a database read.
func (s *Service) VerifyAccessToken(raw string) (Claims, error) {
	c, err := s.tokens.Verify(raw)
	if err != nil {
		s.observer.TokenRefused(tokenReason(err))
		return Claims{}, err
	}
	if r, ok := s.revoked.lookup(c.SessionID); ok {
		if r.accountDeleted {
			s.observer.TokenRefused(ReasonUserNotFound)
			return Claims{}, errUserNotFound
		}
		s.observer.TokenRefused(ReasonSessionRevoked)
		return Claims{}, ErrSessionRevoked
	}
	return c, nil
}

// Me returns the authenticated caller's account. A valid token whose user no
// longer exists is UNAUTHENTICATED: the client must sign in again.
func (s *Service) Me(ctx context.Context) (*User, error) {
	c, err := Authenticate(ctx)
	if err != nil {
		return nil, err
	}
	return s.caller(ctx, c)
}

func (s *Service) caller(ctx context.Context, c Claims) (*User, error) {
	return s.account(s.users.ByID(ctx, c.UserID))
}

// freshCaller is caller without the user cache, for checks of the password.
func (s *Service) freshCaller(ctx context.Context, c Claims) (*User, error) {
	return s.account(s.fresh.ByID(ctx, c.UserID))
}

// account turns a lookup of the caller into the caller's account or the
// reason there is none.
func (s *Service) account(u *User, err error) (*User, error) {
	if errors.Is(err, ErrNotFound) {
		return nil, errUserNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("auth: find user: %w", err)
	}
	if u.Disabled {
		return nil, &Error{Code: CodeUnauthenticated, Reason: ReasonUserDisabled, Message: "this account is disabled"}
	}
	return u, nil
}

var errUserNotFound = &Error{Code: CodeUnauthenticated, Reason: ReasonUserNotFound, Message: "the account of this token no longer exists"}

// Run keeps the revocation set current and removes ended sessions until ctx
// ends. Call Sync once before serving.
func (s *Service) Run(ctx context.Context, logger *slog.Logger, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	lastSweep := s.now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		err := s.Sync(ctx)
		if ctx.Err() == nil {
			s.observer.Synced(time.Since(start), err)
		}
		if err != nil && ctx.Err() == nil {
			logger.WarnContext(ctx, "auth: revocation sync failed", "err", err)
		}
		if now := s.now(); now.Sub(lastSweep) >= sweepEvery {
			lastSweep = now
			if _, err := s.sessions.DeleteEnded(ctx, now.Add(-endedRetention)); err != nil && ctx.Err() == nil {
				logger.WarnContext(ctx, "auth: sweeping ended sessions failed", "err", err)
			}
			if _, err := s.throttles.DeleteIdle(ctx, now.Add(-throttleIdle)); err != nil && ctx.Err() == nil {
				logger.WarnContext(ctx, "auth: sweeping login throttles failed", "err", err)
			}
			if _, err := s.revocationLog.Prune(ctx, now.Add(-s.horizon()-logMargin)); err != nil && ctx.Err() == nil {
				logger.WarnContext(ctx, "auth: pruning the revocation log failed", "err", err)
			}
			// Used and expired links are kept a day, so that a late click says
			// "used" or "expired" rather than "unknown".
			if _, err := s.emailTokens.DeleteExpired(ctx, now.Add(-endedRetention)); err != nil && ctx.Err() == nil {
				logger.WarnContext(ctx, "auth: sweeping email tokens failed", "err", err)
			}
			if _, err := s.markers.DeleteBefore(ctx, now.Add(-endedRetention)); err != nil && ctx.Err() == nil {
				logger.WarnContext(ctx, "auth: sweeping markers failed", "err", err)
			}
			if s.codes != nil {
				if _, err := s.codes.DeleteExpired(ctx, now.Add(-endedRetention)); err != nil && ctx.Err() == nil {
					logger.WarnContext(ctx, "auth: sweeping one-time codes failed", "err", err)
				}
			}
			for _, l := range s.perIP {
				l.prune(now.Add(-sweepEvery))
			}
		}
	}
}

const (
	sweepEvery = 10 * time.Minute
	// endedRetention keeps ended sessions long enough that a refresh reports
	// "expired" or "revoked" rather than "unknown", and far longer than any
	// access token they issued.
	endedRetention = 24 * time.Hour
)
