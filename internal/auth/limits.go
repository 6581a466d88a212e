package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
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
	// ThrottleAfter consecutive failed logins of one account (or one unknown
	// identifier) start delays of ThrottleBase, doubling up to ThrottleMax.
	ThrottleAfter             int
	ThrottleBase, ThrottleMax time.Duration
	// HashConcurrency bcrypt computations run at once; a request waits at most
	// HashQueueTimeout for its turn, then fails fast as busy.
	HashConcurrency  int
	HashQueueTimeout time.Duration
}

// throttleIdle forgets an account's failures this long after the last one.
const throttleIdle = 24 * time.Hour

// Throttle is the failed-login record of one account or identifier.
type Throttle struct {
	Failures    int
	LastFailure time.Time
	LockedUntil time.Time
}

// ThrottleStore keeps failed-login counts where every instance sees them.
type ThrottleStore interface {
	Get(ctx context.Context, key string) (Throttle, error) // the zero Throttle when there is none
	// Fail counts a failure at now and returns the new count.
	Fail(ctx context.Context, key string, now time.Time) (int, error)
	Lock(ctx context.Context, key string, until time.Time) error
	Reset(ctx context.Context, key string) error
	DeleteIdle(ctx context.Context, before time.Time) (int64, error)
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

// ipLimiter keeps one token bucket per client IP for one kind of request.
type ipLimiter struct {
	rate Rate
	mu   sync.Mutex
	ips  map[string]*ipBucket
}

type ipBucket struct {
	lim  *rate.Limiter
	seen time.Time
}

func newIPLimiter(r Rate) *ipLimiter {
	return &ipLimiter{rate: r, ips: make(map[string]*ipBucket)}
}

// allow takes one token for ip, or says how long until one is available.
func (l *ipLimiter) allow(ip string, now time.Time) (bool, time.Duration) {
	if l.rate.N <= 0 || l.rate.Per <= 0 {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.ips[ip]
	if !ok {
		b = &ipBucket{lim: rate.NewLimiter(rate.Every(l.rate.Per/time.Duration(l.rate.N)), l.rate.N)}
		l.ips[ip] = b
	}
	b.seen = now
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// prune forgets IPs not seen since before.
func (l *ipLimiter) prune(before time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for ip, b := range l.ips {
		if b.seen.Before(before) {
			delete(l.ips, ip)
		}
	}
}

// hasher runs bcrypt under a concurrency bound, so that a flood of password
// checks queues briefly and then fails fast instead of slowing every request.
// Two bounds: compute slots (bcrypt running at once) and twice as many
// admissions (requests between their first database read and the end of their
// hash), so that the next request's lookups overlap the current hashes and
// the CPUs never idle between them, while a flood is still turned away before
// it costs a query.
type hasher struct {
	cost    int
	admit   chan struct{}
	compute chan struct{}
	timeout time.Duration
	checks  atomic.Int64
}

func newHasher(cost, concurrency int, timeout time.Duration) *hasher {
	if concurrency < 1 {
		concurrency = 1
	}
	return &hasher{cost: cost, admit: make(chan struct{}, 2*concurrency), compute: make(chan struct{}, concurrency), timeout: timeout}
}

func errBusy() *Error { return rateLimited(ReasonBusy, time.Second) }

func (h *hasher) acquire(ctx context.Context) error {
	t := time.NewTimer(h.timeout)
	defer t.Stop()
	select {
	case h.admit <- struct{}{}:
		return nil
	case <-t.C:
		return errBusy()
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *hasher) release() { <-h.admit }

// reserve takes a hashing slot for a caller that must do work (such as a
// user lookup) before it knows what to compare: under a flood, requests are
// then turned away before that work, not after.
func (h *hasher) reserve(ctx context.Context) (release func(), err error) {
	if err := h.acquire(ctx); err != nil {
		return nil, err
	}
	var once sync.Once
	return func() { once.Do(h.release) }, nil
}

// compareReserved is compare for a caller holding a slot from reserve.
func (h *hasher) compareReserved(hash []byte, password string) bool {
	var ok bool
	h.background(func() { ok = bcrypt.CompareHashAndPassword(hash, []byte(password)) == nil })
	return ok
}

// compare reports whether password matches hash; err is only for a full queue.
func (h *hasher) compare(ctx context.Context, hash []byte, password string) (bool, error) {
	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	defer h.release()
	return h.compareReserved(hash, password), nil
}

func (h *hasher) hash(ctx context.Context, password string) ([]byte, error) {
	if err := h.acquire(ctx); err != nil {
		return nil, err
	}
	defer h.release()
	var out []byte
	var err error
	h.background(func() { out, err = bcrypt.GenerateFromPassword([]byte(password), h.cost) })
	return out, err
}

// background runs fn on an OS thread of its own at a lower priority: a login
// flood then takes only the CPU that requests such as me leave idle. (The
// server also gives Go a processor per hashing slot beyond the CPU count, so
// request goroutines never queue behind bcrypt for one.) The thread is never
// unlocked, so it exits with the goroutine and its priority goes with it.
func (h *hasher) background(fn func()) {
	h.compute <- struct{}{} // admitted callers wait at most about one hash time here
	defer func() { <-h.compute }()
	h.checks.Add(1)
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		lowerThreadPriority()
		fn()
		close(done)
	}()
	<-done
}

// throttleKey names what failed logins are counted against: the account when
// the identifier names one, else the identifier itself — so unknown and known
// accounts are throttled alike. Only a hash is stored.
func throttleKey(u *User, identifier string) string {
	k := "identifier:" + identifier
	if u != nil {
		k = "user:" + u.ID
	}
	sum := sha256.Sum256([]byte(k))
	return hex.EncodeToString(sum[:16])
}

// delay is how long an account waits after failures consecutive failures.
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
