package auth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Service is the authentication domain: registration, login and identity.
type Service struct {
	users  UserStore
	tokens TokenIssuer
	cost   int
	now    func() time.Time
	// dummyHash is compared against when a login names no account, so that an
	// unknown user costs the same time as a wrong password.
	dummyHash []byte
}

// NewService returns a Service hashing passwords at the given bcrypt cost.
func NewService(users UserStore, tokens TokenIssuer, bcryptCost int, now func() time.Time) (*Service, error) {
	if bcryptCost < bcrypt.MinCost || bcryptCost > bcrypt.MaxCost {
		return nil, fmt.Errorf("auth: bcrypt cost %d out of range", bcryptCost)
	}
	dummy, err := bcrypt.GenerateFromPassword([]byte(rand.Text()), bcryptCost)
	if err != nil {
		return nil, fmt.Errorf("auth: dummy hash: %w", err)
	}
	return &Service{users: users, tokens: tokens, cost: bcryptCost, now: now, dummyHash: dummy}, nil
}

// Result is what a successful register or login returns.
type Result struct {
	User        *User
	AccessToken AccessToken
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
	return s.signIn(u)
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

// Login checks a username (or email) and password. Every failure is the same
// INVALID_CREDENTIALS error, after the same amount of hashing work.
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
	return s.signIn(u)
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

func (s *Service) signIn(u *User) (*Result, error) {
	tok, err := s.tokens.Issue(u.ID)
	if err != nil {
		return nil, fmt.Errorf("auth: issue token: %w", err)
	}
	return &Result{User: u, AccessToken: tok}, nil
}

// Me returns the authenticated caller's account. A valid token whose user no
// longer exists is UNAUTHENTICATED: the client must sign in again.
func (s *Service) Me(ctx context.Context) (*User, error) {
	c, err := Authenticate(ctx)
	if err != nil {
		return nil, err
	}
	u, err := s.users.ByID(ctx, c.UserID)
	if errors.Is(err, ErrNotFound) {
		return nil, &Error{Code: CodeUnauthenticated, Reason: ReasonUserNotFound, Message: "the account of this token no longer exists"}
	}
	if err != nil {
		return nil, fmt.Errorf("auth: find user: %w", err)
	}
	return u, nil
}
