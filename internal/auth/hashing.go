package auth

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/crypto/bcrypt"
)

// tracer makes the password spans (a no-op unless tracing is set up).
var tracer = otel.Tracer("github.com/authgql/server/internal/auth")

// hasher runs bcrypt under a concurrency bound, so that a flood of password
// checks queues briefly and then fails fast instead of slowing every request.
// Two bounds: compute slots (bcrypt running at once) and twice as many
// admissions (requests between their first database read and the end of their
// hash), so that the next request's lookups overlap the current hashes and
// the CPUs never idle between them, while a flood is still turned away before
// it costs a query.
type hasher struct {
	cost     int
	admit    chan struct{}
	compute  chan struct{}
	timeout  time.Duration
	checks   atomic.Int64
	observer Observer
}

func newHasher(cost, concurrency int, timeout time.Duration) *hasher {
	if concurrency < 1 {
		concurrency = 1
	}
	return &hasher{cost: cost, admit: make(chan struct{}, 2*concurrency), compute: make(chan struct{}, concurrency),
		timeout: timeout, observer: noObserver{}}
}

func errBusy() *Error { return rateLimited(ReasonBusy, time.Second) }

func (h *hasher) acquire(ctx context.Context) error {
	select {
	case h.admit <- struct{}{}: // a free slot: no timer, no wait
		h.observer.HashAdmission(0, true)
		return nil
	default:
	}
	start := time.Now()
	t := time.NewTimer(h.timeout)
	defer t.Stop()
	select {
	case h.admit <- struct{}{}:
		h.observer.HashAdmission(time.Since(start), true)
		return nil
	case <-t.C:
		h.observer.HashAdmission(time.Since(start), false)
		_, span := tracer.Start(ctx, "password.admission", trace.WithTimestamp(start),
			trace.WithAttributes(attribute.Int64("authgql.hash.queue_wait_ms", time.Since(start).Milliseconds())))
		span.SetStatus(codes.Error, "busy: every hashing slot stayed taken")
		span.End()
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
func (h *hasher) compareReserved(ctx context.Context, hash []byte, password string) bool {
	var ok bool
	h.background(ctx, "password.compare", func() { ok = bcrypt.CompareHashAndPassword(hash, []byte(password)) == nil })
	return ok
}

func (h *hasher) hash(ctx context.Context, password string) ([]byte, error) {
	if err := h.acquire(ctx); err != nil {
		return nil, err
	}
	defer h.release()
	var out []byte
	var err error
	h.background(ctx, "password.hash", func() { out, err = bcrypt.GenerateFromPassword([]byte(password), h.cost) })
	return out, err
}

// background runs fn on an OS thread of its own at a lower priority: a login
// flood then takes only the CPU that requests such as me leave idle. (The
// server also gives Go a processor per hashing slot beyond the CPU count, so
// request goroutines never queue behind bcrypt for one.) The thread is never
// unlocked, so it exits with the goroutine and its priority goes with it.
func (h *hasher) background(ctx context.Context, name string, fn func()) {
	start := time.Now()
	h.compute <- struct{}{} // admitted callers wait at most about one hash time here
	defer func() { <-h.compute }()
	_, span := tracer.Start(ctx, name, trace.WithAttributes(
		attribute.Int64("authgql.hash.queue_wait_ms", time.Since(start).Milliseconds()),
		attribute.Int("authgql.hash.cost", h.cost)))
	defer span.End()
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
