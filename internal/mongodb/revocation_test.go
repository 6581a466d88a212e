package mongodb_test

import (
	"github.com/authgql/server/internal/auth"

	"slices"
	"sync"
	"testing"
	"time"

	"github.com/authgql/server/internal/mongodb"
)

// Concurrent appends get distinct, gapless numbers on the embedded database
// (where only inserts against a unique key are atomic), and a reader that asks
// for what follows the last number it saw gets every entry once.
func TestRevocationLogNumbersAreUniqueAndGapless(t *testing.T) {
	l, err := mongodb.NewRevocationLog(t.Context(), testDB.Fresh(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, ok, err := l.Entry(ctx, 1); err != nil || ok {
		t.Fatalf("Entry(1) on an empty log = %v, %v", ok, err)
	}
	const writers = 12
	var wg sync.WaitGroup
	seqs := make([]int64, writers)
	for i := range writers {
		wg.Go(func() {
			seq, err := l.Append(ctx, auth.RevocationEntry{SessionIDs: []string{"s" + string(rune('a'+i))}, At: time.Now()})
			if err != nil {
				t.Error(err)
			}
			seqs[i] = seq
		})
	}
	wg.Wait()
	slices.Sort(seqs)
	for i, s := range seqs {
		if s != int64(i+1) {
			t.Fatalf("numbers = %v, want 1..%d", seqs, writers)
		}
	}
	if e, ok, err := l.Entry(ctx, writers); err != nil || !ok || e.Seq != writers || len(e.SessionIDs) != 1 {
		t.Fatalf("Entry(%d) = %+v, %v, %v", writers, e, ok, err)
	}
	// Another instance's log (no hint) agrees on the newest number.
	other, err := mongodb.NewRevocationLog(ctx, l.Database())
	if err != nil {
		t.Fatal(err)
	}
	if seq, err := other.Append(ctx, auth.RevocationEntry{SessionIDs: []string{"from-other"}, At: time.Now()}); err != nil || seq != writers+1 {
		t.Fatalf("append from a fresh instance = %d, %v; want %d", seq, err, writers+1)
	}
	if seq, err := l.Append(ctx, auth.RevocationEntry{SessionIDs: []string{"back"}, At: time.Now()}); err != nil || seq != writers+2 {
		t.Fatalf("append past a stale hint = %d, %v; want %d", seq, err, writers+2)
	}
	var seen []string
	var cursor int64
	for {
		entries, err := l.After(ctx, cursor, 5)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.Seq != cursor+1 {
				t.Fatalf("entry %d after %d: out of order", e.Seq, cursor)
			}
			cursor = e.Seq
			seen = append(seen, e.SessionIDs...)
		}
		if len(entries) < 5 {
			break
		}
	}
	if len(seen) != writers+2 {
		t.Fatalf("read %d session ids, want %d: %v", len(seen), writers+2, seen)
	}
	// Pruning by age removes old entries but keeps the newest, so numbering
	// goes on above it and readers past it miss nothing.
	if n, err := l.Prune(ctx, time.Now().Add(time.Minute)); err != nil || n != writers+1 {
		t.Fatalf("Prune = %d, %v; want %d", n, err, writers+1)
	}
	if seq, err := l.Append(ctx, auth.RevocationEntry{SessionIDs: []string{"z"}, At: time.Now()}); err != nil || seq != writers+3 {
		t.Fatalf("append after prune = %d, %v; want %d", seq, err, writers+3)
	}
}
