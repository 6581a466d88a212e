package auth

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestDelaysDoubleUpToTheCap(t *testing.T) {
	l := Limits{ThrottleAfter: 5, ThrottleBase: time.Second, ThrottleMax: 15 * time.Second}
	for failures, want := range map[int]time.Duration{0: 0, 4: 0, 5: time.Second, 6: 2 * time.Second, 8: 8 * time.Second, 9: 15 * time.Second, 500: 15 * time.Second} {
		if got := l.delay(failures); got != want {
			t.Errorf("delay(%d) = %v, want %v", failures, got, want)
		}
	}
}

func TestLoginThrottle(t *testing.T) {
	f := newFixture(t)
	f.register(t, "bob")
	ctx := t.Context()
	wrong := func(login string) error {
		_, err := f.svc.Login(ctx, login, "wrong password!")
		return err
	}
	for i := range 5 {
		if got := ErrorCode(wrong("bob")); got != CodeInvalidCredentials {
			t.Fatalf("failure %d: %s", i+1, got)
		}
	}
	locked := wrong("bob")
	if e, ok := locked.(*Error); !ok || e.Code != CodeRateLimited || e.Reason != ReasonAccount || e.RetryAfter != 1 {
		t.Fatalf("sixth attempt: %v, want RATE_LIMITED account retry 1s", locked)
	}
	// Per identifier: the email spelling has attempts of its own.
	if got := ErrorCode(wrong("bob@example.com")); got != CodeInvalidCredentials {
		t.Fatalf("email after the username locked: %s", got)
	}
	// One guess per window, and the windows grow.
	prev := 1
	for range 5 {
		f.clock.Advance(time.Duration(prev)*time.Second + time.Millisecond)
		if got := ErrorCode(wrong("bob")); got != CodeInvalidCredentials {
			t.Fatalf("after the window: %s", got)
		}
		e, _ := wrong("bob").(*Error)
		if e == nil || e.Code != CodeRateLimited || e.RetryAfter != 2*prev {
			t.Fatalf("next window: %v, want %ds", e, 2*prev)
		}
		prev = e.RetryAfter
	}
	// The right password after the window resets the count.
	f.clock.Advance(time.Duration(prev)*time.Second + time.Millisecond)
	if _, err := f.svc.Login(ctx, "BOB", fixturePassword); err != nil {
		t.Fatal(err)
	}
	if got := ErrorCode(wrong("bob")); got != CodeInvalidCredentials {
		t.Fatalf("after a success: %s", got)
	}
	// A day without attempts forgets the failures.
	for range 4 {
		wrong("bob")
	}
	f.clock.Advance(throttleIdle + time.Second)
	for i := range 5 {
		if got := ErrorCode(wrong("bob")); got != CodeInvalidCredentials {
			t.Fatalf("after a quiet day, failure %d: %s", i+1, got)
		}
	}
}

// Parallel attempts after a lock window: exactly one is checked.
func TestParallelAttemptsGetOneGuessPerWindow(t *testing.T) {
	f := newFixture(t)
	for range 6 {
		_, _ = f.svc.Login(t.Context(), "ghost", "wrong password!")
	}
	for _, n := range []int{8, 32} {
		f.clock.Advance(time.Hour)
		checks := f.svc.PasswordChecks()
		var wg sync.WaitGroup
		var invalid atomic.Int32
		for range n {
			wg.Go(func() {
				if _, err := f.svc.Login(context.Background(), "ghost", "wrong password!"); ErrorCode(err) == CodeInvalidCredentials {
					invalid.Add(1)
				}
			})
		}
		wg.Wait()
		if invalid.Load() != 1 || f.svc.PasswordChecks()-checks != 1 {
			t.Fatalf("%d parallel: %d checked, want 1", n, invalid.Load())
		}
	}
}

func TestIdentifierHash(t *testing.T) {
	f := newFixture(t)
	a, b := f.svc.identifierHash("login", "bob"), f.svc.identifierHash("login", "bob@example.com")
	if a == b || a != f.svc.identifierHash("login", "bob") || len(a) != 32 {
		t.Fatalf("hashes %q, %q: want distinct, stable, 32 hex digits", a, b)
	}
	if f.svc.identifierHash("account", "bob") == a {
		t.Fatal("kinds share hashes")
	}
}
