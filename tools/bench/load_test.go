package bench

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// TestRunPhaseIsAClosedLoop checks what the measurements rely on: exactly
// concurrency requests in flight, each worker sending its next request only
// when the previous one answered, until the duration is over.
func TestRunPhaseIsAClosedLoop(t *testing.T) {
	const concurrency = 4
	var inFlight, most, calls atomic.Int64
	workers := make([]atomic.Int64, concurrency)
	spec := phaseSpec{name: "closed", concurrency: concurrency, duration: 100 * time.Millisecond,
		newWorker: func(i int) workFunc {
			return func(ctx context.Context) error {
				if n := workers[i].Add(1); n != 1 {
					t.Errorf("worker %d has %d requests in flight, want 1", i, n)
				}
				n := inFlight.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				time.Sleep(2 * time.Millisecond)
				inFlight.Add(-1)
				workers[i].Add(-1)
				calls.Add(1)
				return nil
			}
		}}
	start := time.Now()
	got := runPhase(context.Background(), spec)
	elapsed := time.Since(start)

	if most.Load() > concurrency {
		t.Errorf("in flight at once: got %d, want at most %d", most.Load(), concurrency)
	}
	if elapsed < spec.duration || elapsed > spec.duration+500*time.Millisecond {
		t.Errorf("phase lasted %s, want about %s", elapsed, spec.duration)
	}
	if got.Requests != int(calls.Load()) || got.Errors != 0 {
		t.Errorf("requests: got %d with %d errors, want %d with none", got.Requests, got.Errors, calls.Load())
	}
	// 4 workers × 100 ms / 2 ms: about 200; a loaded machine sleeps longer.
	if got.Requests < concurrency || got.Requests > 4*concurrency*50 {
		t.Errorf("requests: got %d, want between %d and %d", got.Requests, concurrency, 4*concurrency*50)
	}
	if got.LatencyMS.P50 < 2 {
		t.Errorf("p50: got %gms, want at least the 2ms each request takes", got.LatencyMS.P50)
	}
}

func TestRunPhaseCountsErrorsAndPauses(t *testing.T) {
	var calls atomic.Int64
	spec := phaseSpec{name: "failing", concurrency: 2, duration: 100 * time.Millisecond,
		newWorker: func(i int) workFunc {
			return func(ctx context.Context) error {
				calls.Add(1)
				return &opError{kind: "transport", err: errors.New("connection refused")}
			}
		}}
	got := runPhase(context.Background(), spec)
	if got.Requests != 0 {
		t.Errorf("requests: got %d, want 0 (failures are not served requests)", got.Requests)
	}
	if got.Errors != int(calls.Load()) || got.ErrorKinds["transport"] != got.Errors {
		t.Errorf("errors: got %d (%v), want %d of kind transport", got.Errors, got.ErrorKinds, calls.Load())
	}
	// failurePause (10 ms) after each failure: 2 workers × 100 ms / 10 ms ≈ 20,
	// not the thousands an unpaused loop would send.
	if n := calls.Load(); n > 2*(100/10+2) {
		t.Errorf("failed requests: got %d, want a pause after each", n)
	}
}

func TestRunPhaseStopsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	spec := phaseSpec{name: "cancelled", concurrency: 2, duration: time.Hour, newWorker: func(i int) workFunc {
		return func(ctx context.Context) error {
			time.Sleep(time.Millisecond)
			return nil
		}
	}}
	time.AfterFunc(50*time.Millisecond, cancel)
	done := make(chan PhaseResult)
	go func() { done <- runPhase(ctx, spec) }()
	select {
	case got := <-done:
		if got.Requests == 0 {
			t.Errorf("requests: got none before the cancellation")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the phase did not stop when its context ended")
	}
}
