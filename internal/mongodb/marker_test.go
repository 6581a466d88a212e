package mongodb_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/authgql/server/internal/auth"
	"github.com/authgql/server/internal/mongodb"
)

func newMarkerStore(t *testing.T) *mongodb.MarkerStore {
	t.Helper()
	s, err := mongodb.NewMarkerStore(t.Context(), testDB.Fresh(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestMarkerStore(t *testing.T) {
	s := newMarkerStore(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	// Sub-millisecond precision and a zone: what is read back is the
	// millisecond, in UTC.
	until := now.Add(time.Hour + 987654*time.Nanosecond).In(time.FixedZone("X", -7200))
	if err := s.Put(t.Context(), "used/abc", until); err != nil {
		t.Fatal(err)
	}
	got, err := s.Until(t.Context(), "used/abc")
	if err != nil {
		t.Fatal(err)
	}
	if want := until.Truncate(time.Millisecond).UTC(); got != want {
		t.Errorf("Until = %v, want %v", got, want)
	}
	// A key that exists is taken, whatever its until.
	if err := s.Put(t.Context(), "used/abc", now.Add(time.Hour)); !errors.Is(err, auth.ErrDuplicate) {
		t.Errorf("second Put: err = %v, want ErrDuplicate", err)
	}
	if got, _ := s.Until(t.Context(), "used/abc"); !got.Equal(until.Truncate(time.Millisecond)) {
		t.Errorf("after a duplicate Put: Until = %v, want %v", got, until)
	}
	for name, key := range map[string]string{"unknown": "used/abd", "empty": "", "prefix": "used/"} {
		if _, err := s.Until(t.Context(), key); !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("%s key: err = %v, want ErrNotFound", name, err)
		}
	}

	for key, until := range map[string]time.Time{"old": now.Add(-time.Minute), "edge": now, "new": now.Add(time.Minute)} {
		if err := s.Put(t.Context(), key, until); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.DeleteBefore(t.Context(), now)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("DeleteBefore removed %d, want 1", n)
	}
	for key, gone := range map[string]bool{"old": true, "edge": false, "new": false, "used/abc": false} {
		_, err := s.Until(t.Context(), key)
		if gone && !errors.Is(err, auth.ErrNotFound) || !gone && err != nil {
			t.Errorf("marker %s: err = %v, want gone = %v", key, err, gone)
		}
	}
	// A swept key can be taken again.
	if err := s.Put(t.Context(), "old", now.Add(time.Hour)); err != nil {
		t.Errorf("Put of a swept key: %v", err)
	}
}

// Put is what every single-use guarantee rests on: of concurrent Puts of one
// key exactly one wins, on the embedded database too (it does not isolate
// updates, but an insert against the unique _id is atomic).
func TestMarkerPutHasOneWinner(t *testing.T) {
	s := newMarkerStore(t)
	until := time.Now().Add(time.Hour)
	for trial := range 5 {
		key := fmt.Sprintf("token/%d", trial)
		errs := make([]error, 10)
		var wg sync.WaitGroup
		for i := range errs {
			wg.Go(func() { errs[i] = s.Put(t.Context(), key, until) })
		}
		wg.Wait()
		var wins, dups int
		for _, err := range errs {
			switch {
			case err == nil:
				wins++
			case errors.Is(err, auth.ErrDuplicate):
				dups++
			default:
				t.Errorf("trial %d: err = %v, want nil or ErrDuplicate", trial, err)
			}
		}
		if wins != 1 || dups != 9 {
			t.Errorf("trial %d: %d won, %d duplicates; want 1 and 9", trial, wins, dups)
		}
	}
}
