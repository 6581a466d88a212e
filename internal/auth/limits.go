package auth

import (
	"fmt"
	"math"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Rate is a token bucket: N events per Per, in bursts of up to N. The zero
// Rate is unlimited.
type Rate struct {
	N   int
	Per time.Duration
}

// Limits bound what an attacker can make the server do.
type Limits struct {
	// Per client IP (see TRUSTED_PROXIES for how the IP is found).
	LoginPerIP, RegisterPerIP, RefreshPerIP Rate
	// MailPerIP bounds the requests that send mail (requestPasswordReset,
	// requestEmailVerification, changeEmail).
	MailPerIP Rate
	// ThrottleAfter consecutive failed password checks of one identifier (as
	// typed: a username and its email are counted apart) start delays of ThrottleBase, doubling up to ThrottleMax.
	ThrottleAfter             int
	ThrottleBase, ThrottleMax time.Duration
	// HashConcurrency bcrypt computations run at once; a request waits at most
	// HashQueueTimeout for its turn, then fails fast as busy.
	HashConcurrency  int
	HashQueueTimeout time.Duration
}

// ErrRateLimited is the RATE_LIMITED error; RetryAfter is whole seconds.
func rateLimited(reason string, retryAfter time.Duration) *Error {
	secs := int(math.Ceil(retryAfter.Seconds()))
	if secs < 1 {
		secs = 1
	}
	return &Error{Code: CodeRateLimited, Reason: reason, RetryAfter: secs,
		Message: fmt.Sprintf("too many attempts; retry in %d seconds", secs)}
}

// ipLimiter keeps one token bucket per client network for one kind of
// request: an IPv4 address, or an IPv6 /64 (what one subscriber is usually
// given, so rotating addresses inside it buys no new buckets). The number of
// buckets is bounded: past maxIPBuckets, idle buckets go first, then arbitrary
// ones (an evicted client merely starts with a full bucket again).
type ipLimiter struct {
	rate Rate
	max  int
	mu   sync.Mutex
	ips  map[string]*ipBucket
}

type ipBucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// maxIPBuckets bounds each limiter's memory (about 200 bytes a bucket).
const maxIPBuckets = 100_000

func newIPLimiter(r Rate, max int) *ipLimiter {
	return &ipLimiter{rate: r, max: max, ips: make(map[string]*ipBucket)}
}

// ipBucketKey is the network a client address is limited as.
func ipBucketKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, _ := a.WithZone("").Prefix(64)
	return p.String()
}

// allow takes one token for ip, or says how long until one is available.
func (l *ipLimiter) allow(ip string, now time.Time) (bool, time.Duration) {
	if l.rate.N <= 0 || l.rate.Per <= 0 {
		return true, 0
	}
	key := ipBucketKey(ip)
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.ips[key]
	if !ok {
		if len(l.ips) >= l.max {
			l.evict(now)
		}
		b = &ipBucket{lim: rate.NewLimiter(rate.Every(l.rate.Per/time.Duration(l.rate.N)), l.rate.N)}
		l.ips[key] = b
	}
	b.seen = now
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// evict makes room: buckets idle for a whole period are full again and
// forgetting them changes nothing; if none is, a tenth go at random.
func (l *ipLimiter) evict(now time.Time) {
	l.pruneLocked(now.Add(-l.rate.Per))
	for key := range l.ips {
		if len(l.ips) < l.max*9/10 {
			return
		}
		delete(l.ips, key)
	}
}

// size is the number of buckets kept.
func (l *ipLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.ips)
}

// prune forgets clients not seen since before.
func (l *ipLimiter) prune(before time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pruneLocked(before)
}

func (l *ipLimiter) pruneLocked(before time.Time) {
	for key, b := range l.ips {
		if b.seen.Before(before) {
			delete(l.ips, key)
		}
	}
}
