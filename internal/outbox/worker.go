package outbox

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/authgql/server/internal/auth"
	"github.com/authgql/server/internal/mail"
)

// Config is what a Worker needs.
type Config struct {
	Store   Store
	Markers auth.MarkerStore
	// Prepare turns a queued mail into the one to send, or nil to drop it
	// (auth.Service.PrepareMail: a reset request for an unknown address).
	Prepare   func(context.Context, *auth.Mail) (*auth.Mail, error)
	Templates *mail.Templates
	Sender    mail.Sender
	// Logger receives delivery errors; Audit the mail_sent and mail_failed
	// events.
	Logger, Audit *slog.Logger
	// LogLinks logs each delivered mail's link at info level (development,
	// where mails are files).
	LogLinks bool
	// MaxAttempts bounds the deliveries of one mail (MAIL_MAX_ATTEMPTS).
	MaxAttempts int
	// RetryBase is the wait after the first failure; it doubles with each
	// further failure, up to an hour.
	RetryBase time.Duration
	// Lease is how long an attempt is reserved for the instance that
	// claimed it: longer than any send (SendTimeout) takes, so that no two
	// instances send one mail; if the instance dies, another takes over
	// once the lease has passed.
	Lease       time.Duration
	SendTimeout time.Duration
	// Poll is how often the outbox is read when nothing wakes the worker.
	Poll time.Duration
	Now  func() time.Time
	// Observe, when set, hears each attempt's outcome: "sent", "retry" or
	// "failed" (given up).
	Observe func(outcome string)
}

// Worker delivers the outbox. Every instance runs one; each attempt at a
// mail is claimed with a marker keyed by (mail, attempt), an insert that
// exactly one instance wins on either database.
type Worker struct {
	c    Config
	wake chan struct{}
}

// NewWorker returns a Worker; zero durations get defaults.
func NewWorker(c Config) *Worker {
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 10
	}
	if c.Observe == nil {
		c.Observe = func(string) {}
	}
	if c.RetryBase <= 0 {
		c.RetryBase = 5 * time.Second
	}
	if c.SendTimeout <= 0 {
		c.SendTimeout = 30 * time.Second
	}
	if c.Lease <= 0 {
		c.Lease = 2*c.SendTimeout + 30*time.Second
	}
	if c.Poll <= 0 {
		c.Poll = time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return &Worker{c: c, wake: make(chan struct{}, 1)}
}

// Wake makes the worker read the outbox now rather than at its next poll.
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Outbox returns store as an auth.Outbox that wakes the worker after each
// mail it queues, so that this instance sends it at once.
func (w *Worker) Outbox(store auth.Outbox) auth.Outbox { return waking{store, w} }

type waking struct {
	auth.Outbox
	w *Worker
}

func (o waking) Enqueue(ctx context.Context, m *auth.Mail) error {
	err := o.Outbox.Enqueue(ctx, m)
	if err == nil {
		o.w.Wake()
	}
	return err
}

// Run delivers due mails until ctx ends; given-up mails are removed a week
// after they were queued.
func (w *Worker) Run(ctx context.Context) {
	t := time.NewTicker(w.c.Poll)
	defer t.Stop()
	lastSweep := time.Time{}
	for {
		w.RunOnce(ctx)
		if now := w.c.Now(); now.Sub(lastSweep) >= time.Hour {
			lastSweep = now
			if _, err := w.c.Store.DeleteFailed(ctx, now.Add(-7*24*time.Hour)); err != nil && ctx.Err() == nil {
				w.c.Logger.WarnContext(ctx, "outbox: sweeping failed mails failed", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.wake:
		}
	}
}

// batch is how many due mails one pass reads.
const batch = 50

// RunOnce delivers the mails that are due now and returns how many it
// attempted.
func (w *Worker) RunOnce(ctx context.Context) int {
	n := 0
	for ctx.Err() == nil {
		due, err := w.c.Store.Due(ctx, w.c.Now(), batch)
		if err != nil {
			if ctx.Err() == nil {
				w.c.Logger.WarnContext(ctx, "outbox: reading due mails failed", "err", err)
			}
			return n
		}
		tried := 0
		for _, m := range due {
			if w.deliver(ctx, m) {
				tried++
			}
		}
		n += tried
		if len(due) < batch || tried == 0 {
			return n
		}
	}
	return n
}

// deliver makes one attempt at m if it can claim one; it reports whether it
// did. m may be a copy read long ago (a pass over many mails, a stalled
// process): once a claim is won, the mail is read again, and a mail that
// another instance delivered, gave up or retried meanwhile is left alone
// (its claim then merely lapses).
func (w *Worker) deliver(ctx context.Context, seen *auth.Mail) bool {
	attempt, ok := w.claim(ctx, seen)
	if !ok {
		return false
	}
	m, ok := w.current(ctx, seen.ID)
	if !ok || m.Attempts != seen.Attempts {
		return false // it moved on since it was read
	}
	if attempt >= w.c.MaxAttempts {
		w.giveUp(ctx, m, attempt, m.LastError)
		return true
	}
	prepared, err := w.c.Prepare(ctx, m)
	if err != nil {
		w.failed(ctx, m, attempt+1, err)
		return true
	}
	if prepared == nil { // a reset request for no account: nothing to send
		if err := w.c.Store.Delete(ctx, m.ID); err != nil {
			w.c.Logger.WarnContext(ctx, "outbox: removing a dropped mail failed", "mail_id", m.ID, "err", err)
		}
		return true
	}
	if prepared.Kind != m.Kind {
		// Keep what was prepared (a reset link): a retry sends the same mail.
		if err := w.c.Store.Prepare(ctx, prepared); err != nil {
			w.failed(ctx, m, attempt+1, err)
			return true
		}
	}
	msg, err := w.c.Templates.Render(mail.Kind(prepared.Kind), prepared.To, mail.Data{
		Username:       prepared.Username,
		Link:           prepared.Link,
		NewEmail:       prepared.NewEmail,
		NewEmailMasked: maskIfSet(prepared.NewEmail),
		ExpiresIn:      expiresIn(prepared.ExpiresIn),
		Provider:       prepared.Provider,
	})
	if err != nil {
		w.giveUp(ctx, prepared, attempt+1, "render: "+err.Error())
		return true
	}
	sendCtx, cancel := context.WithTimeout(ctx, w.c.SendTimeout)
	err = w.c.Sender.Send(sendCtx, msg)
	cancel()
	if err != nil {
		w.failed(ctx, prepared, attempt+1, err)
		return true
	}
	if err := w.c.Store.Delete(ctx, prepared.ID); err != nil {
		// Sent, but still in the outbox: it may be sent again after the
		// lease. Rare, and a duplicate mail is better than a lost one.
		w.c.Logger.WarnContext(ctx, "outbox: removing a sent mail failed", "mail_id", m.ID, "err", err)
	}
	w.c.Observe("sent")
	w.c.Audit.LogAttrs(ctx, slog.LevelInfo, "audit", slog.String("event", "mail_sent"), slog.String("kind", string(prepared.Kind)),
		slog.String("mail_id", prepared.ID), slog.String("user_id", prepared.UserID), slog.Int("attempt", attempt+1))
	if w.c.LogLinks && prepared.Link != "" {
		w.c.Logger.InfoContext(ctx, "mail: written (no SMTP_URL); open the link to continue",
			"kind", string(prepared.Kind), "link", prepared.Link)
	}
	return true
}

// current reads mail id again and reports whether it is still due.
func (w *Worker) current(ctx context.Context, id string) (*auth.Mail, bool) {
	m, err := w.c.Store.ByID(ctx, id)
	if err != nil {
		if !errors.Is(err, auth.ErrNotFound) && ctx.Err() == nil {
			w.c.Logger.WarnContext(ctx, "outbox: reading a mail failed", "mail_id", id, "err", err)
		}
		return nil, false
	}
	return m, !m.Failed && !m.NextAt.After(w.c.Now())
}

// claim reserves the next attempt at m. Attempt k belongs to whoever
// inserts the marker mail/<id>/<k>; a marker whose lease has passed
// without the mail moving on belongs to an instance that died, and the next
// attempt number is tried.
func (w *Worker) claim(ctx context.Context, m *auth.Mail) (int, bool) {
	now := w.c.Now()
	for k := m.Attempts; k <= w.c.MaxAttempts; k++ {
		key := "outbox/" + m.ID + "/" + strconv.Itoa(k)
		err := w.c.Markers.Put(ctx, key, now.Add(w.c.Lease))
		if err == nil {
			return k, true
		}
		if !errors.Is(err, auth.ErrDuplicate) {
			w.c.Logger.WarnContext(ctx, "outbox: claiming a mail failed", "mail_id", m.ID, "err", err)
			return 0, false
		}
		until, err := w.c.Markers.Until(ctx, key)
		if err != nil || now.Before(until) {
			return 0, false // another instance holds it (or the claim cannot be read)
		}
	}
	return 0, false
}

// failed records a failed attempt: a retry later, or the end.
func (w *Worker) failed(ctx context.Context, m *auth.Mail, attempts int, cause error) {
	msg := cause.Error()
	if mail.Permanent(cause) || attempts >= w.c.MaxAttempts {
		w.giveUp(ctx, m, attempts, msg)
		return
	}
	next := w.c.Now().Add(w.backoff(attempts))
	w.c.Observe("retry")
	w.c.Logger.WarnContext(ctx, "outbox: delivery failed; will retry", "mail_id", m.ID, "kind", string(m.Kind),
		"attempt", attempts, "retry_at", next.UTC().Format(time.RFC3339), "err", msg)
	if err := w.c.Store.Retry(ctx, m.ID, attempts, next, msg); err != nil {
		w.c.Logger.WarnContext(ctx, "outbox: recording a failed delivery failed", "mail_id", m.ID, "err", err)
	}
}

func (w *Worker) giveUp(ctx context.Context, m *auth.Mail, attempts int, lastErr string) {
	w.c.Observe("failed")
	w.c.Logger.ErrorContext(ctx, "outbox: giving up on a mail", "mail_id", m.ID, "kind", string(m.Kind),
		"attempts", attempts, "err", lastErr)
	w.c.Audit.LogAttrs(ctx, slog.LevelWarn, "audit", slog.String("event", "mail_failed"), slog.String("kind", string(m.Kind)),
		slog.String("mail_id", m.ID), slog.String("user_id", m.UserID), slog.Int("attempts", attempts))
	if err := w.c.Store.GiveUp(ctx, m.ID, attempts, lastErr); err != nil {
		w.c.Logger.WarnContext(ctx, "outbox: recording a given-up mail failed", "mail_id", m.ID, "err", err)
	}
}

// backoff is the wait after the n-th failed attempt: RetryBase doubled per
// further failure, at most an hour, with a fifth of jitter so instances that
// failed together do not retry together.
func (w *Worker) backoff(n int) time.Duration {
	d := w.c.RetryBase
	for i := 1; i < n && d < time.Hour; i++ {
		d *= 2
	}
	d = min(d, time.Hour)
	return d - time.Duration(rand.Int64N(int64(d)/5+1))
}

func expiresIn(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return mail.FormatDuration(d)
}

func maskIfSet(addr string) string {
	if addr == "" {
		return ""
	}
	return mail.MaskAddress(addr)
}
