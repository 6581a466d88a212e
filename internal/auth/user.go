package auth

import (
	"context"
	"crypto/rand"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// User is an account. PasswordHash never leaves the domain: the GraphQL schema
// has no field for it and it is never logged.
type User struct {
	ID           string
	Username     string
	Email        string
	UsernameKey  string // normalized Username: the unique, case-insensitive key
	EmailKey     string // normalized Email: the unique, case-insensitive key
	PasswordHash []byte
	CreatedAt    time.Time
	Roles        []Role // always holds RoleUser
	Disabled     bool
	// EmailVerified is true once a mailed link proved control of Email.
	EmailVerified bool
	// CredentialStamp changes, at random, with every change of the password,
	// in the same write as the new hash. Sessions record the stamp they began
	// with: one that began from a password read before a change is dead.
	CredentialStamp string
	// MFAEnabled says the account has a second factor (a confirmed TOTP
	// app or a passkey): its password sessions start confined at AAL 1.
	MFAEnabled bool
}

// newStamp returns a fresh credential stamp. Random rather than a counter: a
// counter's increment can be lost on the embedded database, a fresh random
// value cannot be mistaken for the old one.
func newStamp() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return b64.EncodeToString(b)
}

// HasRole reports whether u holds r.
func (u *User) HasRole(r Role) bool {
	for _, have := range u.Roles {
		if have == r {
			return true
		}
	}
	return false
}

// UserStore keeps users. Create returns ErrDuplicate when the username or email
// key is taken; the lookups return ErrNotFound when nothing matches.
type UserStore interface {
	Create(ctx context.Context, u *User) error
	ByID(ctx context.Context, id string) (*User, error)
	ByUsernameKey(ctx context.Context, key string) (*User, error)
	ByEmailKey(ctx context.Context, key string) (*User, error)
	// SetPassword replaces the password hash and the credential stamp in one
	// write, only while the stored hash is still from; ErrNotFound otherwise
	// (no such user, or its password changed meanwhile). The condition is
	// atomic on MongoDB; the embedded database does not isolate updates.
	SetPassword(ctx context.Context, id string, from, hash []byte, stamp string) error
	// SetEmailVerified marks the address verified while the user's email key
	// is still emailKey; ErrNotFound otherwise.
	SetEmailVerified(ctx context.Context, id, emailKey string) error
	// SetEmail replaces the address and its key, verified, while the user's
	// email key is still fromKey: ErrDuplicate when key belongs to another
	// user, ErrNotFound when the user is gone or its address changed meanwhile.
	SetEmail(ctx context.Context, id, fromKey, email, key string) error
	// Delete removes the user; ErrNotFound when there is none.
	Delete(ctx context.Context, id string) error
	// SetRoles and SetDisabled return the updated user.
	SetRoles(ctx context.Context, id string, roles []Role) (*User, error)
	SetDisabled(ctx context.Context, id string, disabled bool) (*User, error)
	// SetMFAEnabled records whether the account has a second factor.
	SetMFAEnabled(ctx context.Context, id string, enabled bool) error
	// CountActiveWithRole counts enabled users holding r.
	CountActiveWithRole(ctx context.Context, r Role) (int64, error)
	// List returns up to limit users after the cursor ID (by creation order),
	// whose username or email key starts with prefix when prefix is not empty.
	// It returns ErrNotFound when afterID cannot be an ID of this store.
	List(ctx context.Context, afterID, prefix string, limit int) ([]*User, error)
}

const (
	usernameMin   = 3
	usernameMax   = 32
	emailMaxBytes = 254
)

// NormalizeUsername trims and validates a username and returns it with its
// lookup key.
func NormalizeUsername(s string) (name, key string, err *Error) {
	name = strings.TrimSpace(s)
	switch {
	case name == "":
		return "", "", badInput("username", ReasonRequired, "username is required")
	case len(name) < usernameMin:
		return "", "", badInput("username", ReasonTooShort, "username must be at least 3 characters")
	case len(name) > usernameMax:
		return "", "", badInput("username", ReasonTooLong, "username must be at most 32 characters")
	}
	for i := 0; i < len(name); i++ {
		if !usernameByte(name[i]) {
			return "", "", badInput("username", ReasonInvalidFormat,
				"username may contain only letters, digits, '_', '.' and '-'")
		}
	}
	return name, strings.ToLower(name), nil
}

func usernameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '.' || c == '-'
}

// NormalizeEmail trims and validates an email address (one plain address, no
// display name) and returns it with its lookup key.
func NormalizeEmail(s string) (email, key string, err *Error) {
	email = strings.TrimSpace(s)
	if email == "" {
		return "", "", badInput("email", ReasonRequired, "email is required")
	}
	if len(email) > emailMaxBytes {
		return "", "", badInput("email", ReasonTooLong, "email must be at most 254 bytes")
	}
	invalid := badInput("email", ReasonInvalidFormat, "email must be a single plain address like name@example.com")
	if !utf8.ValidString(email) {
		return "", "", invalid
	}
	addr, perr := mail.ParseAddress(email)
	// ParseAddress accepts "Name <a@b>", comments and quoted forms; only the bare
	// address, exactly as typed, is an email here.
	if perr != nil || addr.Name != "" || addr.Address != email || strings.ContainsAny(email, " \t\r\n\"()<>[],;:\\") {
		return "", "", invalid
	}
	at := strings.LastIndexByte(email, '@')
	if at < 1 || at == len(email)-1 || !strings.Contains(email[at+1:], ".") {
		return "", "", invalid
	}
	return email, strings.ToLower(norm.NFKC.String(email)), nil
}

// loginKey turns what a user typed into the login field into a lookup: an
// email key when it contains '@' (usernames never do), a username key otherwise.
func loginKey(s string) (key string, byEmail bool) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "@") {
		return strings.ToLower(norm.NFKC.String(s)), true
	}
	return strings.ToLower(s), false
}
