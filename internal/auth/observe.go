package auth

import "time"

// Observer receives measurements of the service (for metrics). Its methods
// must be cheap and must not block; label values are bounded (causes and
// reasons are the constants of this package).
type Observer interface {
	// SessionsEnded: n sessions were revoked for cause ("logout",
	// "revoked", "reused", "password_changed", "disabled", ...).
	SessionsEnded(cause string, n int)
	// HashAdmission: a password check or hash waited wait for a slot, and
	// was admitted or refused (busy).
	HashAdmission(wait time.Duration, admitted bool)
	// TokenRefused: an access token was refused, for reason.
	TokenRefused(reason string)
	// Synced: a revocation sync took took and failed with err (nil: success).
	Synced(took time.Duration, err error)
}

type noObserver struct{}

func (noObserver) SessionsEnded(string, int)         {}
func (noObserver) HashAdmission(time.Duration, bool) {}
func (noObserver) TokenRefused(string)               {}
func (noObserver) Synced(time.Duration, error)       {}

// Observe makes o receive the service's measurements. Call it before serving.
func (s *Service) Observe(o Observer) {
	s.observer = o
	s.hasher.observer = o
}

// HashSlots reports the password-hashing admissions in use and their bound
// (HASH_CONCURRENCY admissions are twice the compute slots; see hasher).
func (s *Service) HashSlots() (inUse, capacity int) {
	return len(s.hasher.admit), cap(s.hasher.admit)
}

// RevokedSessions is the size of the in-memory set of revoked sessions.
func (s *Service) RevokedSessions() int {
	s.revoked.mu.RLock()
	defer s.revoked.mu.RUnlock()
	return len(s.revoked.seen)
}

// tokenReason is the reason of a token refusal, from the bounded set.
func tokenReason(err error) string {
	switch r := ErrorReason(err); r {
	case ReasonTokenExpired, ReasonTokenInvalid, ReasonSessionRevoked, ReasonUserNotFound, ReasonUserDisabled:
		return r
	}
	return ReasonTokenInvalid
}
