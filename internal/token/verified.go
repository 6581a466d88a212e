package token

import (
	"crypto/sha256"
	"slices"
	"sync"
	"time"

	"github.com/authgql/server/internal/auth"
)

// maxVerified bounds the verified-token cache: at most this many tokens
// (about 200 bytes each: the claims, keyed by a 32-byte hash).
const maxVerified = 1024

// verified remembers tokens whose signature and claims were checked, so that
// a client presenting the same access token on every request is parsed and
// verified once per instance, not once per request. Only tokens that passed
// the full check are stored, keyed by a hash of their exact bytes: a token
// that differs in any byte (another signature, a changed claim) is a miss and
// is checked in full. A hit is still subject to time: outside the window in which the
// full check would accept it, the entry is ignored and the full check answers
// (expired, or not yet valid). Revocation is not cached here: the caller
// checks the session on every request.
type verified struct {
	mu      sync.Mutex
	entries map[[sha256.Size]byte]verifiedEntry // by the SHA-256 of the token: 32 bytes, not the token's 300
}

type verifiedEntry struct {
	claims      auth.Claims
	kid         string    // the key that signed it ("" for the HMAC secret)
	validFrom   time.Time // the latest of nbf and iat, minus the leeway
	validBefore time.Time // exp plus the leeway
}

func (v *verified) get(raw string, now time.Time) (auth.Claims, string, bool) {
	key := sha256.Sum256([]byte(raw))
	v.mu.Lock()
	e, ok := v.entries[key]
	v.mu.Unlock()
	if !ok || now.Before(e.validFrom) || !now.Before(e.validBefore) {
		return auth.Claims{}, "", false
	}
	c := e.claims
	c.Roles = slices.Clone(c.Roles) // a caller may not change what the next one reads
	c.AMR = slices.Clone(c.AMR)
	return c, e.kid, true
}

// put stores a verified token. When the cache is full it first drops the
// entries that can no longer be used, then, if none could, an arbitrary
// eighth of the entries (Go's map order): a flood of distinct valid tokens
// costs the full check again, never memory.
func (v *verified) put(raw string, e verifiedEntry, now time.Time) {
	key := sha256.Sum256([]byte(raw))
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.entries == nil {
		v.entries = make(map[[sha256.Size]byte]verifiedEntry)
	}
	if len(v.entries) >= maxVerified {
		for k, old := range v.entries {
			if !now.Before(old.validBefore) {
				delete(v.entries, k)
			}
		}
		for k := range v.entries {
			if len(v.entries) < maxVerified-maxVerified/8 {
				break
			}
			delete(v.entries, k)
		}
	}
	v.entries[key] = e
}

func (v *verified) len() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.entries)
}
