package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// throttleIdle forgets a key's failures this long after its last attempt.
const throttleIdle = 24 * time.Hour

// Attempt is one password check reserved for a throttle key. Every attempt
// counts as a failure until a success forgets the key, so a check that never
// reports back (a crash, a timeout) is counted too.
type Attempt struct {
	// Seq numbers the attempts of one key from 1; (key, Seq) is unique.
	Seq int64
	// Failures is the count of consecutive failures including this attempt.
	Failures int
	At       time.Time
}

// ThrottleStore keeps the password attempts of every key where every
// instance sees them. Reserve is an insert against a unique key, the one
// write that is atomic on MongoDB and on the embedded database alike (which
// does not isolate updates): of concurrent reservations of one Seq, exactly
// one succeeds, on any number of instances.
type ThrottleStore interface {
	// Last returns the newest attempt of key, or ErrNotFound.
	Last(ctx context.Context, key string) (Attempt, error)
	// Reserve stores a; ErrDuplicate when a.Seq of key is taken.
	Reserve(ctx context.Context, key string, a Attempt) error
	// Reset forgets every attempt of key.
	Reset(ctx context.Context, key string) error
	// DeleteIdle removes attempts made before before.
	DeleteIdle(ctx context.Context, before time.Time) (int64, error)
}

// reserveAttempt takes the next password check for key, or refuses while
// the key is locked. Once a key has ThrottleAfter failures, each lock window
// allows exactly one check across all instances: concurrent callers race for
// the same Seq and the losers are refused. The lock is computed from the
// newest attempt alone, so delays only grow until a success resets the key.
func (s *Service) reserveAttempt(ctx context.Context, key string) (Attempt, error) {
	// Each lost race means another caller took a Seq; past ThrottleAfter of
	// them the key is locked, so the loop ends.
	for range s.limits.ThrottleAfter + 3 {
		now := s.now()
		next := Attempt{Seq: 1, Failures: 1, At: now}
		last, err := s.throttles.Last(ctx, key)
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return Attempt{}, fmt.Errorf("auth: read login attempts: %w", err)
		case now.Sub(last.At) > throttleIdle:
			next.Seq = last.Seq + 1 // forgotten: the count starts over
		default:
			if d := s.limits.delay(last.Failures); d > 0 {
				if wait := last.At.Add(d).Sub(now); wait > 0 {
					return Attempt{}, rateLimited(ReasonAccount, wait)
				}
			}
			next.Seq, next.Failures = last.Seq+1, last.Failures+1
		}
		err = s.throttles.Reserve(ctx, key, next)
		if err == nil {
			if d := s.limits.delay(next.Failures); d > 0 {
				s.audit.WarnContext(ctx, "audit", "event", "login", "outcome", "locked",
					"throttle_key", key, "failures", next.Failures, "delay", d)
			}
			return next, nil
		}
		if !errors.Is(err, ErrDuplicate) {
			return Attempt{}, fmt.Errorf("auth: reserve login attempt: %w", err)
		}
		// Another check took this Seq first: read the newest one again.
	}
	return Attempt{}, rateLimited(ReasonAccount, s.limits.ThrottleBase)
}

// forgetFailures resets key after the right password.
func (s *Service) forgetFailures(ctx context.Context, key string) error {
	if err := s.throttles.Reset(ctx, key); err != nil {
		return fmt.Errorf("auth: reset login attempts: %w", err)
	}
	return nil
}

// identifierHash names an identifier (what someone typed into the username
// field, or an account) in throttle keys and audit logs. It is keyed with a
// secret of the server: a plain hash would be reversed by a dictionary,
// including a password typed into the username field by mistake.
func (s *Service) identifierHash(kind, identifier string) string {
	m := hmac.New(sha256.New, s.idKey)
	m.Write([]byte(kind + ":" + identifier))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// delay is how long a key waits after failures consecutive failures.
func (l Limits) delay(failures int) time.Duration {
	if l.ThrottleAfter <= 0 || failures < l.ThrottleAfter {
		return 0
	}
	d := l.ThrottleBase
	for i := l.ThrottleAfter; i < failures && d < l.ThrottleMax; i++ {
		d *= 2
	}
	return min(d, l.ThrottleMax)
}
