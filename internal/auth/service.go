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
	Now        func() time.Time
}

// Service is the authentication domain: accounts, sessions and tokens.
type Service struct {
	users    UserStore
	sessions SessionStore
	tokens   TokenIssuer
	keys     refreshKeys
	revoked  *revocations
	cost     int
	ttl      time.Duration
	reuse    time.Duration
	now      func() time.Time
	// dummyHash is compared against when a login names no account, so that an
	// unknown user costs the same time as a wrong password.
	dummyHash []byte
}

// NewService returns a Service.
func NewService(users UserStore, sessions SessionStore, tokens TokenIssuer, s Settings) (*Service, error) {
	if s.BcryptCost < bcrypt.MinCost || s.BcryptCost > bcrypt.MaxCost {
		return nil, fmt.Errorf("auth: bcrypt cost %d out of range", s.BcryptCost)
	}
	if len(s.RefreshKey) < 32 || s.RefreshTTL <= 0 || s.ReuseInterval < 0 || s.Now == nil {
		return nil, errors.New("auth: a 32-byte refresh key, a positive refresh TTL and a clock are required")
	}
	dummy, err := bcrypt.GenerateFromPassword([]byte(rand.Text()), s.BcryptCost)
	if err != nil {
		return nil, fmt.Errorf("auth: dummy hash: %w", err)
	}
	return &Service{
		users: users, sessions: sessions, tokens: tokens,
		keys:    newRefreshKeys(s.RefreshKey),
		revoked: newRevocations(),
		cost:    s.BcryptCost, ttl: s.RefreshTTL, reuse: s.ReuseInterval, now: s.Now,
		dummyHash: dummy,
	}, nil
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
	hash, err := bcrypt.GenerateFromPassword([]byte(password), s.cost)
	if err != nil {
		return nil, fmt.Errorf("auth: hash password: %w", err)
	}
	u := &User{
		Username:     name,
		Email:        addr,
		UsernameKey:  nameKey,
		EmailKey:     addrKey,
		PasswordHash: hash,
		CreatedAt:    s.now().UTC().Truncate(time.Millisecond),
	}
	if err := s.users.Create(ctx, u); err != nil {
		if errors.Is(err, ErrDuplicate) {
			return nil, s.conflict(ctx, nameKey)
		}
		return nil, fmt.Errorf("auth: create user: %w", err)
	}
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
// of hashing work.
func (s *Service) Login(ctx context.Context, login, password string) (*Result, error) {
	// Passwords outside the policy's window cannot match a stored hash; bcrypt
	// would silently compare only the first 72 bytes of a longer one.
	if len(password) > passwordMaxBytes || password == "" {
		return nil, errInvalidCredentials
	}
	key, byEmail := loginKey(login)
	var u *User
	var err error
	switch {
	case key == "":
		err = ErrNotFound
	case byEmail:
		u, err = s.users.ByEmailKey(ctx, key)
	default:
		u, err = s.users.ByUsernameKey(ctx, key)
	}
	if errors.Is(err, ErrNotFound) {
		_ = bcrypt.CompareHashAndPassword(s.dummyHash, []byte(password))
		return nil, errInvalidCredentials
	}
	if err != nil {
		return nil, fmt.Errorf("auth: find user: %w", err)
	}
	if bcrypt.CompareHashAndPassword(u.PasswordHash, []byte(password)) != nil {
		return nil, errInvalidCredentials
	}
	s.upgradeHash(ctx, u, password)
	return s.startSession(ctx, u)
}

// upgradeHash re-hashes a password stored at another cost than the configured
// one, so that raising BCRYPT_COST reaches every account at its next login.
func (s *Service) upgradeHash(ctx context.Context, u *User, password string) {
	if cost, err := bcrypt.Cost(u.PasswordHash); err != nil || cost == s.cost {
		return
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), s.cost)
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
	return s.result(u, sess, refresh)
}

func (s *Service) result(u *User, sess *Session, refresh string) (*Result, error) {
	tok, err := s.tokens.Issue(u.ID, sess.ID)
	if err != nil {
		return nil, fmt.Errorf("auth: issue token: %w", err)
	}
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
	u, err := s.users.ByID(ctx, c.UserID)
	if errors.Is(err, ErrNotFound) {
		return nil, &Error{Code: CodeUnauthenticated, Reason: ReasonUserNotFound, Message: "the account of this token no longer exists"}
	}
	if err != nil {
		return nil, fmt.Errorf("auth: find user: %w", err)
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
	u, err := s.caller(ctx, c)
	if err != nil {
		return nil, err
	}
	if len(current) > passwordMaxBytes || bcrypt.CompareHashAndPassword(u.PasswordHash, []byte(current)) != nil {
		return nil, badInput("currentPassword", ReasonIncorrect, "current password is incorrect")
	}
	if verr := CheckPassword(next, u.Username, u.Email); verr != nil {
		e := *verr
		e.Field = "newPassword"
		return nil, &e
	}
	if next == current {
		return nil, badInput("newPassword", ReasonUnchanged, "new password must differ from the current one")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(next), s.cost)
	if err != nil {
		return nil, fmt.Errorf("auth: hash password: %w", err)
	}
	if err := s.users.SetPasswordHash(ctx, u.ID, hash); err != nil {
		return nil, fmt.Errorf("auth: set password: %w", err)
	}
	u.PasswordHash = hash
	if _, err := s.revoke(ctx, u.ID, nil, c.SessionID, "password_changed"); err != nil {
		return nil, err
	}
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
		return s.result(u, sess, refresh)
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
