package auth

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"
)

type memAudit struct {
	mu     sync.Mutex
	events []AuditEvent
}

func (m *memAudit) Add(_ context.Context, e AuditEvent) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events = append(m.events, e)
	return nil
}

func (m *memAudit) Recent(_ context.Context, userID string, limit int) ([]AuditEvent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []AuditEvent
	for _, e := range slices.Backward(m.events) {
		if e.UserID == userID && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}

func (m *memAudit) DeleteForUser(_ context.Context, userID string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := len(m.events)
	m.events = slices.DeleteFunc(m.events, func(e AuditEvent) bool { return e.UserID == userID })
	return int64(n - len(m.events)), nil
}

func (m *memAudit) DeleteBefore(context.Context, time.Time) (int64, error) { return 0, nil }

func (m *memAudit) names(userID string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, e := range m.events {
		if e.UserID == userID {
			out = append(out, e.Event+"/"+e.Outcome)
		}
	}
	return out
}

// TestAuditTrail checks what the trail stores: account events but not the
// routine ones, and nothing about a deleted account after its deletion but
// the deletion itself.
func TestAuditTrail(t *testing.T) {
	store := &memAudit{}
	trail := NewAuditTrail(slog.NewTextHandler(io.Discard, nil), store)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); trail.Run(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Hour) }()
	defer func() { cancel(); <-done }()
	log := slog.New(trail).With("log", "audit")

	log.Info("audit", "event", "login", "outcome", "success", "user_id", "u1", "ip", "192.0.2.1")
	log.Info("audit", "event", "refresh", "outcome", "success", "user_id", "u1")
	log.Info("audit", "event", "refresh_reuse", "user_id", "u1")
	log.Info("audit", "event", "mail_sent", "kind", "verify_email", "user_id", "u1")
	log.Info("audit", "event", "login", "outcome", "failure", "identifier_hash", "ab12") // no account
	log.Info("not an audit line", "event", "login", "user_id", "u1")
	log.Info("audit", "event", "login", "outcome", "success", "user_id", "u2")
	if _, err := trail.DeleteForUser(t.Context(), "u2"); err != nil {
		t.Fatal(err)
	}
	log.Info("audit", "event", "mail_failed", "user_id", "u2") // a delivery in flight at the deletion
	log.Info("audit", "event", "account_deleted", "user_id", "u2")
	// DeleteForUser waits for the writer: a second one flushes what came after.
	if _, err := trail.DeleteForUser(t.Context(), "u3"); err != nil {
		t.Fatal(err)
	}
	if got, want := store.names("u1"), []string{"login/success", "refresh_reuse/"}; !slices.Equal(got, want) {
		t.Errorf("stored for u1: %v, want %v (routine events stay in the log)", got, want)
	}
	if got, want := store.names("u2"), []string{"account_deleted/"}; !slices.Equal(got, want) {
		t.Errorf("stored for the deleted u2: %v, want %v", got, want)
	}
	if e := store.events[0]; e.IP != "192.0.2.1" || e.At.IsZero() {
		t.Errorf("stored event %+v, want its ip and time", e)
	}
}

// TestAuditTrailQueueIsBounded fills the queue with no writer: events beyond
// it are dropped from the store and counted, and logging never blocks.
func TestAuditTrailQueueIsBounded(t *testing.T) {
	store := &memAudit{}
	trail := NewAuditTrail(slog.NewTextHandler(io.Discard, nil), store)
	log := slog.New(trail)
	start := time.Now()
	for range 1500 {
		log.Info("audit", "event", "login", "outcome", "failure", "user_id", "u1")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("logging with a full queue took %s", d)
	}
	if got := trail.Dropped(); got != 1500-1024 {
		t.Errorf("dropped %d, want %d", got, 1500-1024)
	}
}
