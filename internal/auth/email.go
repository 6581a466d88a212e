package auth

import (
	"context"
	"time"
)

// EmailTokenKind says what an email link may do; a token of one kind is
// unknown to every other flow.
type EmailTokenKind string

const (
	TokenVerifyEmail   EmailTokenKind = "verify_email"
	TokenResetPassword EmailTokenKind = "reset_password"
	TokenChangeEmail   EmailTokenKind = "change_email"
)

// EmailToken is the server's record of a link sent by mail. The link carries
// 256 random bits; only their SHA-256 is stored.
type EmailToken struct {
	Hash   string // hex SHA-256 of the token: the key
	Kind   EmailTokenKind
	UserID string
	// EmailKey is the normalized address the link was sent to (verify,
	// reset) or the address it will set (change).
	EmailKey string
	Email    string // the address as the user wrote it (change: the new one)
	// Stamp is the user's credential stamp when the link was made: a password
	// change or reset since then makes it stale.
	Stamp     string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// EmailTokenStore keeps email tokens.
type EmailTokenStore interface {
	Create(ctx context.Context, t *EmailToken) error
	// ByHash returns ErrNotFound when there is no such token.
	ByHash(ctx context.Context, hash string) (*EmailToken, error)
	// Latest returns the newest token of kind for userID (ErrNotFound: none).
	Latest(ctx context.Context, userID string, kind EmailTokenKind) (*EmailToken, error)
	// DeleteForUser removes every token of userID.
	DeleteForUser(ctx context.Context, userID string) (int64, error)
	// DeleteExpired removes tokens that expired before before.
	DeleteExpired(ctx context.Context, before time.Time) (int64, error)
}

// MarkerStore keeps single-use keys: the one primitive that is atomic on
// both databases is an insert against a unique key, so consuming a token,
// taking a per-address mail window and claiming an outbox delivery are all
// an insert of a marker. Until is when the marker stops mattering; it is
// swept some time after.
type MarkerStore interface {
	// Put inserts key; ErrDuplicate when it exists.
	Put(ctx context.Context, key string, until time.Time) error
	// Until returns the until of key, or ErrNotFound.
	Until(ctx context.Context, key string) (time.Time, error)
	// DeleteBefore removes markers whose until is before before.
	DeleteBefore(ctx context.Context, before time.Time) (int64, error)
}

// MailKind names a mail the server sends (one template each), or a request
// that becomes one when the outbox worker prepares it.
type MailKind string

const (
	MailVerifyEmail        MailKind = "verify_email"
	MailResetPassword      MailKind = "reset_password"
	MailConfirmEmailChange MailKind = "confirm_email_change"
	MailEmailChangeNotice  MailKind = "email_change_notice"
	MailAccountDeleted     MailKind = "account_deleted"
	MailIdentityLinked     MailKind = "identity_linked"
	// MailResetRequest is a password reset asked for an address: the worker
	// looks the address up and turns it into MailResetPassword, or drops it
	// when no account has that address. The request itself does the same
	// work whether or not the address belongs to an account.
	MailResetRequest MailKind = "reset_request"
)

// Mail is an outbox entry: one mail to deliver. Link holds a live token
// until the mail is delivered or given up, then it is removed.
type Mail struct {
	ID        string
	Kind      MailKind
	To        string
	UserID    string // empty for a reset request
	Username  string
	Link      string
	NewEmail  string        // confirm_email_change, email_change_notice
	Provider  string        // identity_linked: the provider's display name
	ExpiresIn time.Duration // the link's lifetime, for the text
	CreatedAt time.Time
	// Delivery state, kept by the outbox worker.
	Attempts  int
	NextAt    time.Time
	LastError string
	Failed    bool // given up: no longer delivered
}

// Outbox is where requests leave mails; a worker on any instance delivers
// them (see package outbox).
type Outbox interface {
	Enqueue(ctx context.Context, m *Mail) error
	// DeleteForUser removes the undelivered mails of userID.
	DeleteForUser(ctx context.Context, userID string) (int64, error)
}
