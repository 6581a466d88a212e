package mongodb_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/authgql/server/internal/auth"
	"github.com/authgql/server/internal/mongodb"
)

func TestThrottleStoreAttempts(t *testing.T) {
	s, err := mongodb.NewThrottleStore(t.Context(), testDB.Fresh(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := s.Last(ctx, "aa"); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("Last of a new key: err = %v, want ErrNotFound", err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	for seq := int64(1); seq <= 11; seq++ {
		if err := s.Reserve(ctx, "aa", auth.Attempt{Seq: seq, Failures: int(seq), At: now.Add(time.Duration(seq) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	// "aa0" sorts after every "aa/..." id: it must not be read as aa's newest.
	if err := s.Reserve(ctx, "aa0", auth.Attempt{Seq: 99, Failures: 99, At: now}); err != nil {
		t.Fatal(err)
	}
	last, err := s.Last(ctx, "aa")
	if err != nil || last.Seq != 11 || last.Failures != 11 || !last.At.Equal(now.Add(11*time.Second)) {
		t.Fatalf("Last = %+v, %v; want seq 11 (numeric order, not text order)", last, err)
	}
	if err := s.Reserve(ctx, "aa", auth.Attempt{Seq: 11, Failures: 1, At: now}); !errors.Is(err, auth.ErrDuplicate) {
		t.Fatalf("Reserve of a taken seq: err = %v, want ErrDuplicate", err)
	}
	if err := s.Reset(ctx, "aa"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Last(ctx, "aa"); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("Last after Reset: err = %v, want ErrNotFound", err)
	}
	if last, err := s.Last(ctx, "aa0"); err != nil || last.Seq != 99 {
		t.Fatalf("Reset of aa touched aa0: %+v, %v", last, err)
	}
	if n, err := s.DeleteIdle(ctx, now.Add(time.Second)); err != nil || n != 1 {
		t.Fatalf("DeleteIdle = %d, %v; want 1", n, err)
	}
}

// The reservation is the one write the throttle's guarantee rests on: of
// concurrent reservations of one seq exactly one wins. Proven here on the
// embedded database, which does not isolate updates (inserts against a unique
// key are atomic on it and on MongoDB).
func TestThrottleReserveHasOneWinner(t *testing.T) {
	s, err := mongodb.NewThrottleStore(t.Context(), testDB.Fresh(t))
	if err != nil {
		t.Fatal(err)
	}
	for trial := range 10 {
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for range 16 {
			wg.Go(func() {
				err := s.Reserve(t.Context(), "bb", auth.Attempt{Seq: int64(trial + 1), Failures: 1, At: time.Now()})
				if err == nil {
					mu.Lock()
					wins++
					mu.Unlock()
				} else if !errors.Is(err, auth.ErrDuplicate) {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if wins != 1 {
			t.Fatalf("trial %d: %d winners, want 1", trial, wins)
		}
	}
}
