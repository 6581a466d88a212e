// Package outbox delivers the mails that requests leave in the outbox: a
// worker on every instance claims due mails one attempt at a time, sends
// them, retries with backoff and gives up after a bound.
package outbox

import (
	"context"
	"time"

	"github.com/authgql/server/internal/auth"
)

// Store is the outbox as the worker sees it.
type Store interface {
	auth.Outbox
	// Due returns up to limit mails not given up whose NextAt is at or before
	// now, oldest NextAt first.
	Due(ctx context.Context, now time.Time, limit int) ([]*auth.Mail, error)
	// ByID returns one mail, or auth.ErrNotFound.
	ByID(ctx context.Context, id string) (*auth.Mail, error)
	// Prepare writes what preparing a reset request filled in: Kind, To,
	// UserID, Username, Link, NewEmail and ExpiresIn.
	Prepare(ctx context.Context, m *auth.Mail) error
	// Retry records a failed attempt.
	Retry(ctx context.Context, id string, attempts int, next time.Time, lastErr string) error
	// GiveUp marks the mail failed and removes its link.
	GiveUp(ctx context.Context, id string, attempts int, lastErr string) error
	// Delete removes a delivered or dropped mail (no error when it is gone).
	Delete(ctx context.Context, id string) error
	// DeleteFailed removes given-up mails created before before.
	DeleteFailed(ctx context.Context, before time.Time) (int64, error)
}
