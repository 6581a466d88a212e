package mongodb_test

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/authgql/server/internal/auth"
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

// Entries keep the account and its security events; user agents and
// addresses are bounded.
func TestRevocationLogKeepsEvents(t *testing.T) {
	l, err := mongodb.NewRevocationLog(t.Context(), testDB.Fresh(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Millisecond)
	long := strings.Repeat("a", 255) + "é" + strings.Repeat("b", 100) // é straddles byte 256
	want := auth.RevocationEntry{UserID: "u1", SessionIDs: []string{"s2"}, At: now, Events: []auth.SecurityEvent{
		{Type: auth.EventPasswordChanged, At: now, UserID: "u1", SessionID: "s1", IP: "192.0.2.1"},
		{Type: auth.EventSessionRevoked, At: now.Add(time.Millisecond), UserID: "u1", SessionID: "s2"},
	}}
	seq, err := l.Append(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	created := auth.RevocationEntry{UserID: "u1", At: now, Events: []auth.SecurityEvent{
		{Type: auth.EventSessionCreated, At: now, UserID: "u1", SessionID: "s3", UserAgent: long, IP: strings.Repeat("1", 100)},
	}}
	if _, err := l.Append(ctx, created); err != nil {
		t.Fatal(err)
	}
	want.Seq = seq
	got, ok, err := l.Entry(ctx, seq)
	if err != nil || !ok || !reflect.DeepEqual(got, want) {
		t.Fatalf("Entry = %+v, %v, %v\nwant %+v", got, ok, err, want)
	}
	all, err := l.After(ctx, 0, 10)
	if err != nil || len(all) != 2 || !reflect.DeepEqual(all[0], want) {
		t.Fatalf("After = %+v, %v", all, err)
	}
	ev := all[1].Events[0]
	if len(all[1].SessionIDs) != 0 || ev.Type != auth.EventSessionCreated || ev.UserID != "u1" || ev.SessionID != "s3" {
		t.Fatalf("event-only entry = %+v", all[1])
	}
	if ev.UserAgent != strings.Repeat("a", 255) || len(ev.IP) != 64 {
		t.Fatalf("stored user agent %q (%d bytes), IP of %d bytes; want 255 bytes of valid UTF-8 and 64", ev.UserAgent, len(ev.UserAgent), len(ev.IP))
	}
	// An entry is one account's.
	mixed := auth.RevocationEntry{UserID: "u1", At: now, Events: []auth.SecurityEvent{{Type: auth.EventRolesChanged, At: now, UserID: "u2"}}}
	if _, err := l.Append(ctx, mixed); err == nil {
		t.Fatal("an entry with another user's event was stored")
	}
}

// Entries written before events existed read as entries without them, and
// entries with events read as before by an instance that knows nothing of
// them (during a rolling deploy).
func TestRevocationLogOldAndNewEntries(t *testing.T) {
	l, err := mongodb.NewRevocationLog(t.Context(), testDB.Fresh(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	coll := l.Database().Collection("revocations")
	now := time.Now().UTC().Truncate(time.Millisecond)
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: fmt.Sprintf("%019d", 1)},
		{Key: "session_ids", Value: bson.A{"old"}}, {Key: "account_deleted", Value: true}, {Key: "at", Value: now}}); err != nil {
		t.Fatal(err)
	}
	got, ok, err := l.Entry(ctx, 1)
	want := auth.RevocationEntry{Seq: 1, SessionIDs: []string{"old"}, AccountDeleted: true, At: now}
	if err != nil || !ok || !reflect.DeepEqual(got, want) {
		t.Fatalf("old entry = %+v, %v, %v; want %+v", got, ok, err, want)
	}
	for _, e := range []auth.RevocationEntry{
		{UserID: "u1", SessionIDs: []string{"s1"}, At: now, Events: []auth.SecurityEvent{{Type: auth.EventSessionRevoked, At: now, UserID: "u1", SessionID: "s1"}}},
		{UserID: "u1", At: now, Events: []auth.SecurityEvent{{Type: auth.EventEmailChanged, At: now, UserID: "u1"}}},
	} {
		if _, err := l.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	// The document as the previous version declared it.
	type oldDoc struct {
		ID             string    `bson:"_id"`
		SessionIDs     []string  `bson:"session_ids"`
		AccountDeleted bool      `bson:"account_deleted,omitempty"`
		At             time.Time `bson:"at"`
	}
	for i, wantIDs := range [][]string{{"s1"}, nil} {
		var d oldDoc
		if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: fmt.Sprintf("%019d", i+2)}}).Decode(&d); err != nil {
			t.Fatalf("the previous version cannot read entry %d: %v", i+2, err)
		}
		if !slices.Equal(d.SessionIDs, wantIDs) || !d.At.Equal(now) {
			t.Fatalf("entry %d as the previous version reads it: %+v", i+2, d)
		}
	}
}
