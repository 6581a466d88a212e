package auth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
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
	// RefreshKey (at least 32 bytes) authenticates and derives refresh tokens.
	RefreshKey []byte
	// UserCacheTTL is how long a user read by ID is reused (0: never). Changes
	// made on other instances are seen within it.
	UserCacheTTL time.Duration
	Limits       Limits
	// Audit receives one structured event per security decision (logins,
	// refreshes, logouts, throttling); never a password or token.
	Audit *slog.Logger
	Now   func() time.Time
}

// Service is the authentication domain: accounts, sessions and tokens.
type Service struct {
	users     UserStore
	sessions  SessionStore
	throttles ThrottleStore
	tokens    TokenIssuer
	keys      refreshKeys
	revoked   *revocations
	hasher    *hasher
	limits    Limits
	perIP     map[string]*ipLimiter // by action: login, register, refresh
	audit     *slog.Logger
	ttl       time.Duration
	reuse     time.Duration
	now       func() time.Time
	// dummyHash is compared against when a login names no account, so that an
	// unknown user costs the same time as a wrong password.
	dummyHash []byte
}

// NewService returns a Service.
func NewService(users UserStore, sessions SessionStore, throttles ThrottleStore, tokens TokenIssuer, s Settings) (*Service, error) {
	if s.BcryptCost < bcrypt.MinCost || s.BcryptCost > bcrypt.MaxCost {
		return nil, fmt.Errorf("auth: bcrypt cost %d out of range", s.BcryptCost)
	}
	if len(s.RefreshKey) < 32 || s.RefreshTTL <= 0 || s.ReuseInterval < 0 || s.Now == nil || s.Audit == nil {
		return nil, errors.New("auth: a 32-byte refresh key, a positive refresh TTL, an audit logger and a clock are required")
	}
	if s.Limits.HashQueueTimeout <= 0 {
		return nil, errors.New("auth: a positive hash queue timeout is required")
	}
	dummy, err := bcrypt.GenerateFromPassword([]byte(rand.Text()), s.BcryptCost)
	if err != nil {
		return nil, fmt.Errorf("auth: dummy hash: %w", err)
	}
	if s.UserCacheTTL > 0 {
		users = newUserCache(users, s.UserCacheTTL, s.Now)
	}
	return &Service{
		users: users, sessions: sessions, throttles: throttles, tokens: tokens,
		keys:    newRefreshKeys(s.RefreshKey),
		revoked: newRevocations(),
		hasher:  newHasher(s.BcryptCost, s.Limits.HashConcurrency, s.Limits.HashQueueTimeout),
		limits:  s.Limits,
		perIP: map[string]*ipLimiter{
			"login":    newIPLimiter(s.Limits.LoginPerIP),
			"register": newIPLimiter(s.Limits.RegisterPerIP),
			"refresh":  newIPLimiter(s.Limits.RefreshPerIP),
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
		Username:     name,
		Email:        addr,
		UsernameKey:  nameKey,
		EmailKey:     addrKey,
		PasswordHash: hash,
		CreatedAt:    s.now().UTC().Truncate(time.Millisecond),
		Roles:        []Role{RoleUser},
	}
	if err := s.users.Create(ctx, u); err != nil {
		if errors.Is(err, ErrDuplicate) {
			return nil, s.conflict(ctx, nameKey)
		}
		return nil, fmt.Errorf("auth: create user: %w", err)
	}
	s.audit.InfoContext(ctx, "audit", "event", "register", "outcome", "success", "user_id", u.ID, "ip", ClientFromContext(ctx).IP)
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

// Login checks a username (or email) and password and starts a session.
// Every failure is the same INVALID_CREDENTIALS error, after the same amount
// of hashing work; repeated failures for one account or identifier are
// throttled alike, whether the account exists or not.
func (s *Service) Login(ctx context.Context, login, password string) (*Result, error) {
	if err := s.allowIP(ctx, "login"); err != nil {
		return nil, err
	}
	ip := ClientFromContext(ctx).IP
	// Passwords outside the policy's window cannot match a stored hash; bcrypt
	// would silently compare only the first 72 bytes of a longer one.
	if len(password) > passwordMaxBytes || password == "" {
		return nil, errInvalidCredentials
	}
	// The hashing slot comes first: when every slot is taken the request is
	// refused before any database work.
	release, err := s.hasher.reserve(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	key, byEmail := loginKey(login)
	var u *User
	switch {
	case key == "":
		err = ErrNotFound
	case byEmail:
		u, err = s.users.ByEmailKey(ctx, key)
	default:
		u, err = s.users.ByUsernameKey(ctx, key)
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("auth: find user: %w", err)
	}
	tkey := throttleKey(u, key)
	who := slog.String("identifier_hash", tkey)
	if u != nil {
		who = slog.String("user_id", u.ID)
	}
	throttle, err := s.checkThrottle(ctx, tkey)
	if err != nil {
		if ErrorCode(err) == CodeRateLimited { // not a database failure
			s.audit.LogAttrs(ctx, slog.LevelWarn, "audit", slog.String("event", "login"), slog.String("outcome", "throttled"), who, slog.String("ip", ip))
		}
		return nil, err
	}
	hash := s.dummyHash
	if u != nil {
		hash = u.PasswordHash
	}
	ok := s.hasher.compareReserved(hash, password)
	release()
	if !ok || u == nil {
		if err := s.recordFailure(ctx, tkey); err != nil {
			return nil, err
		}
		s.audit.LogAttrs(ctx, slog.LevelInfo, "audit", slog.String("event", "login"), slog.String("outcome", "failure"), who, slog.String("ip", ip))
		return nil, errInvalidCredentials
	}
	if throttle.Failures > 0 {
		if err := s.throttles.Reset(ctx, tkey); err != nil {
			return nil, fmt.Errorf("auth: reset throttle: %w", err)
		}
	}
	if u.Disabled {
		// Only someone who knows the password learns that the account is disabled.
		s.audit.LogAttrs(ctx, slog.LevelInfo, "audit", slog.String("event", "login"), slog.String("outcome", "disabled"), who, slog.String("ip", ip))
		return nil, &Error{Code: CodeForbidden, Reason: ReasonUserDisabled, Message: "this account is disabled"}
	}
	s.upgradeHash(ctx, u, password)
	res, err := s.startSession(ctx, u)
	if err != nil {
		return nil, err
	}
	s.audit.LogAttrs(ctx, slog.LevelInfo, "audit", slog.String("event", "login"), slog.String("outcome", "success"), who, slog.String("ip", ip))
	return res, nil
}

// checkThrottle refuses an attempt while key is locked.
func (s *Service) checkThrottle(ctx context.Context, key string) (Throttle, error) {
	t, err := s.throttles.Get(ctx, key)
	if err != nil {
		return Throttle{}, fmt.Errorf("auth: read throttle: %w", err)
	}
	now := s.now()
	if !t.LastFailure.IsZero() && now.Sub(t.LastFailure) > throttleIdle {
		// Forgotten: the next failure starts over.
		if err := s.throttles.Reset(ctx, key); err != nil {
			return Throttle{}, fmt.Errorf("auth: reset throttle: %w", err)
		}
		return Throttle{}, nil
	}
	if now.Before(t.LockedUntil) {
		return t, rateLimited(ReasonAccount, t.LockedUntil.Sub(now))
	}
	return t, nil
}

// recordFailure counts a wrong password against key and locks it once the
// failures pass the threshold. Only wrong passwords count: a database error
// never reaches here.
func (s *Service) recordFailure(ctx context.Context, key string) error {
	now := s.now()
	n, err := s.throttles.Fail(ctx, key, now)
	if err != nil {
		return fmt.Errorf("auth: count failure: %w", err)
	}
	if d := s.limits.delay(n); d > 0 {
		if err := s.throttles.Lock(ctx, key, now.Add(d)); err != nil {
			return fmt.Errorf("auth: lock: %w", err)
		}
		s.audit.LogAttrs(ctx, slog.LevelWarn, "audit", slog.String("event", "login"), slog.String("outcome", "locked"),
			slog.String("throttle_key", key), slog.Int("failures", n), slog.Duration("delay", d))
	}
	return nil
}

// upgradeHash re-hashes a password stored at another cost than the configured
// one, so that raising BCRYPT_COST reaches every account at its next login.
func (s *Service) upgradeHash(ctx context.Context, u *User, password string) {
	if cost, err := bcrypt.Cost(u.PasswordHash); err != nil || cost == s.hasher.cost {
		return
	}
	hash, err := s.hasher.hash(ctx, password)
	if err != nil {
		return
	}
	// Best effort: the login has succeeded either way.
	if s.users.SetPasswordHash(ctx, u.ID, hash) == nil {
		u.PasswordHash = hash
	}
}

// startSession creates a session for u and issues its first tokens.
func (s *Service) startSession(ctx context.Context, u *User) (*Result, error) {
	now := s.now().UTC()
	client := ClientFromContext(ctx)
	sess := &Session{
		ID:         newSessionID(),
		UserID:     u.ID,
		CreatedAt:  now,
		LastUsedAt: now,
		RotatedAt:  now,
		ExpiresAt:  now.Add(s.ttl),
		UserAgent:  client.UserAgent,
		IP:         client.IP,
	}
	refresh := s.keys.root(sess.ID)
	sess.TokenHash = hashToken(refresh)
	if err := s.sessions.Create(ctx, sess); err != nil {
		return nil, fmt.Errorf("auth: create session: %w", err)
	}
	return s.result(ctx, u, sess, refresh)
}

func (s *Service) result(ctx context.Context, u *User, sess *Session, refresh string) (*Result, error) {
	tok, err := s.tokens.Issue(u.ID, sess.ID, roleNames(u.Roles))
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
		return Claims{}, err
	}
	if s.revoked.has(c.SessionID) {
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
	if cache, ok := s.users.(*userCache); ok {
		return s.account(cache.UserStore.ByID(ctx, c.UserID))
	}
	return s.caller(ctx, c)
}

// account turns a lookup of the caller into the caller's account or the
// reason there is none.
func (s *Service) account(u *User, err error) (*User, error) {
	if errors.Is(err, ErrNotFound) {
		return nil, &Error{Code: CodeUnauthenticated, Reason: ReasonUserNotFound, Message: "the account of this token no longer exists"}
	}
	if err != nil {
		return nil, fmt.Errorf("auth: find user: %w", err)
	}
	if u.Disabled {
		return nil, &Error{Code: CodeUnauthenticated, Reason: ReasonUserDisabled, Message: "this account is disabled"}
	}
	return u, nil
}

// ChangePassword checks the caller's current password, sets a new one, ends
// every other session and gives this session fresh tokens.
func (s *Service) ChangePassword(ctx context.Context, current, next string) (*Result, error) {
	c, err := Authenticate(ctx)
	if err != nil {
		return nil, err
	}
	u, err := s.freshCaller(ctx, c)
	if err != nil {
		return nil, err
	}
	if err := s.allowIP(ctx, "login"); err != nil {
		return nil, err
	}
	tkey := throttleKey(u, "")
	throttle, err := s.checkThrottle(ctx, tkey)
	if err != nil {
		return nil, err
	}
	ok := false
	if len(current) <= passwordMaxBytes {
		if ok, err = s.hasher.compare(ctx, u.PasswordHash, current); err != nil {
			return nil, err
		}
	}
	if !ok {
		// A stolen access token must not become an oracle for the password.
		if err := s.recordFailure(ctx, tkey); err != nil {
			return nil, err
		}
		return nil, badInput("currentPassword", ReasonIncorrect, "current password is incorrect")
	}
	if throttle.Failures > 0 { // the right password resets the count, as at login
		if err := s.throttles.Reset(ctx, tkey); err != nil {
			return nil, fmt.Errorf("auth: reset throttle: %w", err)
		}
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
	if err := s.users.SetPasswordHash(ctx, u.ID, hash); err != nil {
		return nil, fmt.Errorf("auth: set password: %w", err)
	}
	u.PasswordHash = hash
	ended, err := s.revoke(ctx, u.ID, nil, c.SessionID, "password_changed")
	if err != nil {
		return nil, err
	}
	s.audit.InfoContext(ctx, "audit", "event", "change_password", "outcome", "success", "user_id", u.ID,
		"sessions_ended", len(ended), "ip", ClientFromContext(ctx).IP)
	// A new token chain for this session; the old refresh token becomes a
	// replaced one (honoured for nothing, reuse after the interval).
	for range 3 {
		sess, err := s.sessions.ByID(ctx, c.SessionID)
		if errors.Is(err, ErrNotFound) {
			return nil, ErrSessionRevoked
		}
		if err != nil {
			return nil, fmt.Errorf("auth: find session: %w", err)
		}
		now := s.now().UTC()
		if !sess.Active(now) {
			return nil, ErrSessionRevoked
		}
		refresh := s.keys.root(sess.ID)
		sess, err = s.sessions.Rotate(ctx, sess.ID, sess.TokenHash, hashToken(refresh), now, now.Add(s.ttl))
		if errors.Is(err, ErrNotFound) {
			continue // refreshed concurrently: read it again
		}
		if err != nil {
			return nil, fmt.Errorf("auth: rotate session: %w", err)
		}
		return s.result(ctx, u, sess, refresh)
	}
	return nil, fmt.Errorf("auth: session %s kept changing", c.SessionID)
}

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
		if err := s.Sync(ctx); err != nil && ctx.Err() == nil {
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
			for _, l := range s.perIP {
				l.prune(now.Add(-sweepEvery))
			}
		}
	}
}

const (
	// syncOverlap re-reads revocations this far back, for clock skew between
	// instances and writes that land out of order.
	syncOverlap = 10 * time.Second
	sweepEvery  = 10 * time.Minute
	// endedRetention keeps ended sessions long enough that a refresh reports
	// "expired" or "revoked" rather than "unknown", and far longer than any
	// access token they issued.
	endedRetention = 24 * time.Hour
	tokenLeeway    = time.Minute
)

// Sync reads the sessions revoked since the last sync into the revocation
// set, and forgets those whose access tokens have all expired.
func (s *Service) Sync(ctx context.Context) error {
	now := s.now()
	horizon := now.Add(-s.tokens.TTL() - tokenLeeway)
	s.revoked.mu.RLock()
	since := s.revoked.lastSync.Add(-syncOverlap)
	s.revoked.mu.RUnlock()
	if since.Before(horizon) {
		since = horizon
	}
	revs, err := s.sessions.RevokedSince(ctx, since)
	if err != nil {
		return fmt.Errorf("auth: read revocations: %w", err)
	}
	for _, r := range revs {
		s.revoked.add([]string{r.SessionID}, r.At)
	}
	s.revoked.prune(horizon)
	s.revoked.mu.Lock()
	s.revoked.lastSync = now
	s.revoked.mu.Unlock()
	return nil
}
