package auth

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"
)

// AuditEvent is an audit record about one account, kept so that the user
// can see it (exportMyData). Only what the audit log line says: never a
// password, token or whole address.
type AuditEvent struct {
	UserID  string
	Event   string
	Outcome string
	IP      string
	At      time.Time
}

func (e AuditEvent) export() map[string]any {
	out := map[string]any{"event": e.Event, "at": rfc3339(e.At)}
	if e.Outcome != "" {
		out["outcome"] = e.Outcome
	}
	if e.IP != "" {
		out["ip"] = e.IP
	}
	return out
}

// AuditStore keeps audit events about accounts.
type AuditStore interface {
	Add(ctx context.Context, e AuditEvent) error
	// Recent returns the newest events of userID, newest first.
	Recent(ctx context.Context, userID string, limit int) ([]AuditEvent, error)
	DeleteForUser(ctx context.Context, userID string) (int64, error)
	DeleteBefore(ctx context.Context, before time.Time) (int64, error)
}

// AuditTrail is a slog.Handler for the audit logger: it passes every record
// on, and also keeps those about an account (a user_id attribute) in an
// AuditStore, written by Run in the background: a slow database never slows
// the request that is audited. When the queue is full, events are dropped
// from the store (never from the log) and counted.
//
// It is itself the service's AuditStore: forgetting a deleted account goes
// through the same queue, so that events queued before the deletion are
// deleted with the rest, and events about the account that come after it (a
// mail to it finishing delivery) are not stored — except the deletion event.
type AuditTrail struct {
	slog.Handler
	store   AuditStore
	queue   chan auditItem
	dropped *atomic.Int64
	attrs   []slog.Attr // from WithAttrs
}

// auditItem is an event to store, or an account to forget.
type auditItem struct {
	event  AuditEvent
	forget string
	done   chan error
}

var _ AuditStore = (*AuditTrail)(nil)

// NewAuditTrail returns a trail that passes records to next and keeps
// account events in store.
func NewAuditTrail(next slog.Handler, store AuditStore) *AuditTrail {
	return &AuditTrail{Handler: next, store: store, queue: make(chan auditItem, 1024), dropped: new(atomic.Int64)}
}

// Add queues e for the store.
func (t *AuditTrail) Add(_ context.Context, e AuditEvent) error {
	select {
	case t.queue <- auditItem{event: e}:
	default:
		t.dropped.Add(1)
	}
	return nil
}

// Recent returns the stored events of userID, newest first.
func (t *AuditTrail) Recent(ctx context.Context, userID string, limit int) ([]AuditEvent, error) {
	return t.store.Recent(ctx, userID, limit)
}

// DeleteBefore removes stored events older than before.
func (t *AuditTrail) DeleteBefore(ctx context.Context, before time.Time) (int64, error) {
	return t.store.DeleteBefore(ctx, before)
}

// routine events stay in the log only: they happen too often to store for
// every account (a refresh every few minutes per client) and say nothing a
// user would look for in an export.
var routine = map[string]bool{"refresh/success": true, "mail_queued": true, "mail_sent": true}

// forgetWait bounds how long DeleteForUser waits for the writer; past it (the
// writer is not running), the store is asked directly.
const forgetWait = 5 * time.Second

// DeleteForUser removes the events of a deleted account, after every event
// queued before it, and keeps later ones about the account out of the store.
func (t *AuditTrail) DeleteForUser(ctx context.Context, userID string) (int64, error) {
	done := make(chan error, 1)
	timer := time.NewTimer(forgetWait)
	defer timer.Stop()
	select {
	case t.queue <- auditItem{forget: userID, done: done}:
	case <-timer.C:
		return t.store.DeleteForUser(ctx, userID)
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	select {
	case err := <-done:
		return 0, err
	case <-timer.C:
		return t.store.DeleteForUser(ctx, userID)
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// Dropped is how many events the store missed because the queue was full.
func (t *AuditTrail) Dropped() int64 { return t.dropped.Load() }

func (t *AuditTrail) Enabled(context.Context, slog.Level) bool { return true }

func (t *AuditTrail) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "audit" {
		e := AuditEvent{At: r.Time.UTC().Truncate(time.Millisecond)}
		visit := func(a slog.Attr) bool {
			switch a.Key {
			case "user_id":
				e.UserID = a.Value.String()
			case "event":
				e.Event = a.Value.String()
			case "outcome":
				e.Outcome = a.Value.String()
			case "ip":
				e.IP = a.Value.String()
			}
			return true
		}
		for _, a := range t.attrs {
			visit(a)
		}
		r.Attrs(visit)
		if e.UserID != "" && e.Event != "" && !routine[e.Event] && !routine[e.Event+"/"+e.Outcome] {
			_ = t.Add(ctx, e)
		}
	}
	if t.Handler.Enabled(ctx, r.Level) {
		return t.Handler.Handle(ctx, r)
	}
	return nil
}

func (t *AuditTrail) WithAttrs(as []slog.Attr) slog.Handler {
	c := *t
	c.Handler = t.Handler.WithAttrs(as)
	c.attrs = append(append([]slog.Attr{}, t.attrs...), as...)
	return &c
}

func (t *AuditTrail) WithGroup(name string) slog.Handler {
	c := *t
	c.Handler = t.Handler.WithGroup(name)
	return &c
}

// forgetFor is how long events about a deleted account are kept out of the
// store: longer than any delivery to it or request of it in flight.
const forgetFor = time.Hour

// Run writes queued events to the store until ctx ends, and removes events
// older than retention once an hour.
func (t *AuditTrail) Run(ctx context.Context, logger *slog.Logger, retention time.Duration) {
	sweep := time.NewTicker(time.Hour)
	defer sweep.Stop()
	forgotten := map[string]time.Time{} // deleted accounts, by when
	for {
		select {
		case <-ctx.Done():
			return
		case it := <-t.queue:
			if it.forget != "" {
				now := time.Now()
				for id, at := range forgotten {
					if now.Sub(at) > forgetFor {
						delete(forgotten, id)
					}
				}
				forgotten[it.forget] = now
				_, err := t.store.DeleteForUser(ctx, it.forget)
				it.done <- err
				continue
			}
			if _, gone := forgotten[it.event.UserID]; gone && it.event.Event != "account_deleted" {
				continue
			}
			if err := t.store.Add(ctx, it.event); err != nil && ctx.Err() == nil {
				logger.WarnContext(ctx, "auth: storing an audit event failed", "err", err)
			}
		case now := <-sweep.C:
			if _, err := t.store.DeleteBefore(ctx, now.Add(-retention)); err != nil && ctx.Err() == nil {
				logger.WarnContext(ctx, "auth: sweeping audit events failed", "err", err)
			}
		}
	}
}
