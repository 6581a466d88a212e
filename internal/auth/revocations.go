package auth

import (
	"sync"
	"time"
)

// revocations is the set of sessions revoked recently enough that access
// tokens issued from them may still be unexpired. Every request checks it in
// memory; it is filled at once by revocations on this instance and, for other
// instances, by a periodic read of the sessions collection.
type revocations struct {
	mu       sync.RWMutex
	at       map[string]time.Time
	lastSync time.Time
}

func newRevocations() *revocations {
	return &revocations{at: make(map[string]time.Time)}
}

func (r *revocations) add(ids []string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range ids {
		if _, ok := r.at[id]; !ok {
			r.at[id] = at
		}
	}
}

func (r *revocations) has(id string) bool {
	r.mu.RLock()
	_, ok := r.at[id]
	r.mu.RUnlock()
	return ok
}

// prune forgets sessions revoked before before: every access token they
// issued has expired by then.
func (r *revocations) prune(before time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, at := range r.at {
		if at.Before(before) {
			delete(r.at, id)
		}
	}
}
