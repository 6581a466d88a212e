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
type AuditTrail struct {
	slog.Handler
	store   AuditStore
	queue   chan AuditEvent
	dropped *atomic.Int64
	attrs   []slog.Attr // from WithAttrs
}

// NewAuditTrail returns a trail that passes records to next and keeps
// account events in store.
func NewAuditTrail(next slog.Handler, store AuditStore) *AuditTrail {
	return &AuditTrail{Handler: next, store: store, queue: make(chan AuditEvent, 1024), dropped: new(atomic.Int64)}
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
		if e.UserID != "" && e.Event != "" {
			select {
			case t.queue <- e:
			default:
				t.dropped.Add(1)
			}
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

// Run writes queued events to the store until ctx ends, and removes events
// older than retention once an hour.
func (t *AuditTrail) Run(ctx context.Context, logger *slog.Logger, retention time.Duration) {
	sweep := time.NewTicker(time.Hour)
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-t.queue:
			if err := t.store.Add(ctx, e); err != nil && ctx.Err() == nil {
				logger.WarnContext(ctx, "auth: storing an audit event failed", "err", err)
			}
		case now := <-sweep.C:
			if _, err := t.store.DeleteBefore(ctx, now.Add(-retention)); err != nil && ctx.Err() == nil {
				logger.WarnContext(ctx, "auth: sweeping audit events failed", "err", err)
			}
		}
	}
}
