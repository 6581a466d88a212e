package auth

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// RevocationEntry is one write of the revocation log: sessions that ended,
// and the security events of one account (an entry may carry events only).
type RevocationEntry struct {
	Seq        int64
	SessionIDs []string
	// AccountDeleted says the sessions ended with their account: their access
	// tokens are then refused as user_not_found rather than session_revoked.
	AccountDeleted bool
	At             time.Time // the writer's clock: for housekeeping only
	// UserID is the account of the sessions and the events ("" in entries
	// written before events existed).
	UserID string
	// Events are UserID's, in the order they happened.
	Events []SecurityEvent
}

// RevocationLog is how instances tell each other which sessions ended, so
// that their access tokens stop working everywhere. Sequence numbers are
// allocated by inserts against a unique key (the newest number plus one,
// retried on a duplicate): a number is taken only after the one before it is
// visible, so readers that ask for everything after the last number they saw
// miss nothing, whatever the clocks of the writers say or however late a
// write lands.
type RevocationLog interface {
	// Append records e (its Seq is ignored) and returns the entry's number.
	Append(ctx context.Context, e RevocationEntry) (int64, error)
	// Entry returns entry seq if it exists (a cheap point read).
	Entry(ctx context.Context, seq int64) (RevocationEntry, bool, error)
	// After returns up to limit entries numbered above seq, in order.
	After(ctx context.Context, seq int64, limit int) ([]RevocationEntry, error)
	// Prune removes entries written before before.
	Prune(ctx context.Context, before time.Time) (int64, error)
}

// revocations is the set of sessions revoked recently enough that access
// tokens issued from them may still be unexpired. Every request checks it in
// memory. It is filled at once by revocations on this instance and, for the
// others, by reading the revocation log after the last number seen.
type revocations struct {
	mu sync.RWMutex
	// seen is when this instance learnt of each revoked session, by its own
	// clock: entries are forgotten an access token's lifetime after that.
	seen    map[string]revokedSession
	lastSeq int64
	// lastScan is when the log was last read as a range; in between, a sync
	// asks only whether the next number exists.
	lastScan time.Time
}

type revokedSession struct {
	at             time.Time
	accountDeleted bool
}

func newRevocations() *revocations {
	return &revocations{seen: make(map[string]revokedSession)}
}

func (r *revocations) add(ids []string, accountDeleted bool, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range ids {
		r.addLocked(id, accountDeleted, now)
	}
}

func (r *revocations) addLocked(id string, accountDeleted bool, now time.Time) {
	if old, ok := r.seen[id]; ok {
		old.accountDeleted = old.accountDeleted || accountDeleted
		r.seen[id] = old
		return
	}
	r.seen[id] = revokedSession{at: now, accountDeleted: accountDeleted}
}

func (r *revocations) has(id string) bool {
	_, ok := r.lookup(id)
	return ok
}

// lookup reports whether session id was revoked, and how.
func (r *revocations) lookup(id string) (revokedSession, bool) {
	r.mu.RLock()
	e, ok := r.seen[id]
	r.mu.RUnlock()
	return e, ok
}

// cursor is the number of the last log entry read.
func (r *revocations) cursor() int64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.lastSeq
}

// scanDue reports whether the next sync should read the log as a range.
func (r *revocations) scanDue(now time.Time) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.lastSeq == 0 || now.Sub(r.lastScan) >= scanEvery
}

// scanned records a range read of the log.
func (r *revocations) scanned(now time.Time) {
	r.mu.Lock()
	r.lastScan = now
	r.mu.Unlock()
}

// read records entries read from the log.
func (r *revocations) read(entries []RevocationEntry, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range entries {
		for _, id := range e.SessionIDs {
			r.addLocked(id, e.AccountDeleted, now)
		}
		r.lastSeq = max(r.lastSeq, e.Seq)
	}
}

// prune forgets sessions learnt of before before: every access token they
// issued has expired by then.
func (r *revocations) prune(before time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, e := range r.seen {
		if e.at.Before(before) {
			delete(r.seen, id)
		}
	}
}

const (
	syncBatch = 1000
	// scanEvery reads the log as a range now and then even when the next
	// number is missing: an instance that slept past the log's retention
	// catches up with what is left.
	scanEvery = 30 * time.Second
	// logMargin keeps log entries this much longer than an access token can
	// outlive its revocation, for instances that start late or clocks that
	// disagree by minutes.
	logMargin = 10 * time.Minute
)

// Sync reads the log entries written since the last sync into the
// revocation set, hands their security events to subscribers, and forgets
// sessions whose access tokens have all expired. Syncs run one at a time:
// each entry is taken once, in order.
func (s *Service) Sync(ctx context.Context) error {
	s.syncing.Lock()
	defer s.syncing.Unlock()
	if !s.revoked.scanDue(s.now()) {
		// Numbers have no gaps: read the next ones one by one.
		for range syncBatch {
			e, ok, err := s.revocationLog.Entry(ctx, s.revoked.cursor()+1)
			if err != nil {
				return fmt.Errorf("auth: read revocation log: %w", err)
			}
			if !ok {
				s.events.caughtUp()
				break
			}
			s.take([]RevocationEntry{e})
		}
		s.revoked.prune(s.now().Add(-s.horizon()))
		return nil
	}
	for {
		entries, err := s.revocationLog.After(ctx, s.revoked.cursor(), syncBatch)
		if err != nil {
			return fmt.Errorf("auth: read revocation log: %w", err)
		}
		s.take(entries)
		if len(entries) < syncBatch {
			break
		}
	}
	s.revoked.scanned(s.now())
	s.revoked.prune(s.now().Add(-s.horizon()))
	// What the first complete sync read is history; from now on, news.
	s.events.caughtUp()
	return nil
}

// take records entries read from the log, then delivers their events.
func (s *Service) take(entries []RevocationEntry) {
	s.revoked.read(entries, s.now())
	for _, e := range entries {
		s.events.dispatch(e)
	}
}

// revoke ends sessions of userID (ids, or all of them when ids is nil, but
// except): first in the log that every instance reads, then in the sessions
// themselves. Once the log entry is written the sessions are dead everywhere:
// their access tokens are refused and a refresh checks the revocation set too.
// The entry carries lead (the change that ended the sessions, such as
// PASSWORD_CHANGED) and a SESSION_REVOKED per session; with no session to
// end, lead is announced alone.
func (s *Service) revoke(ctx context.Context, userID string, ids []string, except, reason string, lead ...SecurityEvent) ([]string, error) {
	ended, _, err := s.revokeOnce(ctx, userID, ids, except, reason, true, lead)
	return ended, err
}

// revokeOnce is revoke, with its events left out unless announce; logged
// says whether the log entry was written, events and all.
func (s *Service) revokeOnce(ctx context.Context, userID string, ids []string, except, reason string, announce bool, lead []SecurityEvent) (ended []string, logged bool, err error) {
	deleted := reason == RevokedAccountDeleted
	now := s.now().UTC()
	ended, err = s.sessions.ActiveIDs(ctx, userID, ids, except)
	if err != nil {
		return nil, false, fmt.Errorf("auth: find sessions to revoke: %w", err)
	}
	if len(ended) == 0 {
		if announce {
			s.announce(ctx, userID, lead...)
		}
		return nil, false, nil
	}
	e := RevocationEntry{UserID: userID, SessionIDs: ended, AccountDeleted: deleted, At: now}
	if announce {
		e.Events = s.revokedEvents(ctx, userID, ended, lead)
	}
	if _, err := s.revocationLog.Append(ctx, e); err != nil {
		return nil, false, fmt.Errorf("auth: append to revocation log: %w", err)
	}
	s.revoked.add(ended, deleted, s.now())
	s.observer.SessionsEnded(reason, len(ended))
	if err := s.sessions.Revoke(ctx, ended, reason, now); err != nil {
		return nil, true, fmt.Errorf("auth: revoke sessions: %w", err)
	}
	return ended, true, nil
}

// revokeUntilDone is revoke retried with backoff, for revocations that must
// hold once a credential has changed (the change itself cannot be undone).
// Events are at most once: once an entry has carried them, retries do not.
func (s *Service) revokeUntilDone(ctx context.Context, userID string, ids []string, except, reason string, lead ...SecurityEvent) ([]string, error) {
	wait := 50 * time.Millisecond
	announce := true
	for i := 0; ; i++ {
		ended, logged, err := s.revokeOnce(ctx, userID, ids, except, reason, announce, lead)
		if err == nil || i == 5 {
			return ended, err
		}
		announce = announce && !logged
		select {
		case <-ctx.Done():
			return nil, errors.Join(err, ctx.Err())
		case <-time.After(wait):
		}
		wait *= 2
	}
}

// horizon is how long after its revocation a session's access tokens may
// still be accepted: their lifetime, the verifier's leeway, and a second.
func (s *Service) horizon() time.Duration {
	return s.tokens.TTL() + s.tokens.Leeway() + time.Second
}
