package mongodb_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/authgql/server/internal/auth"
	"github.com/authgql/server/internal/mongodb"
)

func newOutboxStore(t *testing.T) (*mongodb.OutboxStore, *mongo.Database) {
	t.Helper()
	db := testDB.Fresh(t)
	s, err := mongodb.NewOutboxStore(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	return s, db
}

func mail(user string, created time.Time) *auth.Mail {
	return &auth.Mail{Kind: auth.MailVerifyEmail, To: user + "@example.com", UserID: user, Username: user,
		Link: "https://example.com/verify#t-" + user, ExpiresIn: 24 * time.Hour, CreatedAt: created}
}

func ids(ms []*auth.Mail) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

func TestOutboxRoundTrip(t *testing.T) {
	s, _ := newOutboxStore(t)
	// Sub-millisecond precision and a zone: what is read back is the
	// millisecond, in UTC; ExpiresIn keeps its nanoseconds.
	created := time.Now().Add(-time.Minute + 123456*time.Nanosecond).In(time.FixedZone("X", 5400))
	m := &auth.Mail{Kind: auth.MailConfirmEmailChange, To: "new@example.com", UserID: "u1", Username: "alice",
		Link: "https://example.com/confirm#tok", NewEmail: "New@example.com", ExpiresIn: time.Hour + time.Nanosecond,
		CreatedAt: created}
	if err := s.Enqueue(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	if m.ID == "" {
		t.Fatal("Enqueue did not set ID")
	}
	if !m.NextAt.Equal(created) {
		t.Errorf("NextAt = %v, want CreatedAt %v", m.NextAt, created)
	}
	due, err := s.Due(t.Context(), time.Now(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 1 {
		t.Fatalf("Due returned %d mails, want 1", len(due))
	}
	want := *m
	want.CreatedAt = created.Truncate(time.Millisecond).UTC()
	want.NextAt = want.CreatedAt
	if got := *due[0]; got != want {
		t.Errorf("Due[0] = %+v\nwant     %+v", got, want)
	}

	// An ID given is kept, and taken only once.
	given := mail("u2", created)
	given.ID = "given"
	if err := s.Enqueue(t.Context(), given); err != nil || given.ID != "given" {
		t.Errorf("Enqueue with an ID: id, err = %q, %v; want given, nil", given.ID, err)
	}
	again := mail("u3", created)
	again.ID = "given"
	if err := s.Enqueue(t.Context(), again); !errors.Is(err, auth.ErrDuplicate) {
		t.Errorf("Enqueue with a taken ID: err = %v, want ErrDuplicate", err)
	}
}

func TestOutboxDue(t *testing.T) {
	s, _ := newOutboxStore(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	enqueue := func(user string, created, next time.Time) *auth.Mail {
		t.Helper()
		m := mail(user, created)
		m.NextAt = next
		if err := s.Enqueue(t.Context(), m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	c := enqueue("c", now.Add(-time.Hour), now.Add(-time.Minute))
	a := enqueue("a", now.Add(-90*time.Second), time.Time{}) // due at its creation
	b := enqueue("b", now.Add(-2*time.Hour), now.Add(-30*time.Second))
	edge := enqueue("e", now.Add(-time.Hour), now) // due exactly now
	enqueue("future", now.Add(-time.Hour), now.Add(time.Second))
	failed := enqueue("failed", now.Add(-3*time.Hour), now.Add(-3*time.Hour))
	if err := s.GiveUp(t.Context(), failed.ID, 5, "550 no such mailbox"); err != nil {
		t.Fatal(err)
	}

	got, err := s.Due(t.Context(), now, 10)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{a.ID, c.ID, b.ID, edge.ID}; !slices.Equal(ids(got), want) {
		t.Errorf("Due = %v, want %v (a, c, b, edge: oldest NextAt first, no future, no failed)", ids(got), want)
	}
	got, err = s.Due(t.Context(), now, 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{a.ID, c.ID}; !slices.Equal(ids(got), want) {
		t.Errorf("Due with limit 2 = %v, want %v", ids(got), want)
	}

	// Retry moves a mail back in the queue and records the attempt.
	next := now.Add(time.Minute + 999*time.Microsecond)
	if err := s.Retry(t.Context(), a.ID, 1, next, "421 try later"); err != nil {
		t.Fatal(err)
	}
	got, err = s.Due(t.Context(), now, 10)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{c.ID, b.ID, edge.ID}; !slices.Equal(ids(got), want) {
		t.Errorf("after Retry: Due = %v, want %v", ids(got), want)
	}
	got, err = s.Due(t.Context(), next, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 || got[4].ID != a.ID {
		t.Fatalf("Due at the retry's NextAt = %v, want the retried mail last of 5", ids(got))
	}
	if r := got[4]; r.Attempts != 1 || !r.NextAt.Equal(next.Truncate(time.Millisecond)) || r.LastError != "421 try later" || r.Link == "" {
		t.Errorf("retried mail: attempts, next, last error, link = %d, %v, %q, %q", r.Attempts, r.NextAt, r.LastError, r.Link)
	}
}

func TestOutboxPrepare(t *testing.T) {
	s, _ := newOutboxStore(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	req := &auth.Mail{Kind: auth.MailResetRequest, To: "Who@example.com", CreatedAt: now}
	if err := s.Enqueue(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	prepared := &auth.Mail{ID: req.ID, Kind: auth.MailResetPassword, To: "who@example.com", UserID: "u9", Username: "who",
		Link: "https://example.com/reset#tok", ExpiresIn: 30 * time.Minute,
		// Not Prepare's to write:
		CreatedAt: now.Add(time.Hour), Attempts: 7, NextAt: now.Add(time.Hour), LastError: "x", Failed: true}
	if err := s.Prepare(t.Context(), prepared); err != nil {
		t.Fatal(err)
	}
	due, err := s.Due(t.Context(), now, 10)
	if err != nil || len(due) != 1 {
		t.Fatalf("Due = %v, %v; want the prepared mail", due, err)
	}
	want := auth.Mail{ID: req.ID, Kind: auth.MailResetPassword, To: "who@example.com", UserID: "u9", Username: "who",
		Link: "https://example.com/reset#tok", ExpiresIn: 30 * time.Minute, CreatedAt: now, NextAt: now}
	if got := *due[0]; got != want {
		t.Errorf("prepared = %+v\nwant       %+v", got, want)
	}
	// Prepared, it belongs to the user: deleting the user's mails takes it.
	if n, err := s.DeleteForUser(t.Context(), "u9"); err != nil || n != 1 {
		t.Errorf("DeleteForUser = %d, %v; want 1, nil", n, err)
	}
	// Writes to a mail that is gone never bring it back.
	for name, err := range map[string]error{
		"Prepare": s.Prepare(t.Context(), prepared),
		"Retry":   s.Retry(t.Context(), req.ID, 1, now, "x"),
		"GiveUp":  s.GiveUp(t.Context(), req.ID, 1, "x"),
	} {
		if !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("%s of a deleted mail: err = %v, want ErrNotFound", name, err)
		}
	}
	if due, _ := s.Due(t.Context(), now.Add(time.Hour), 10); len(due) != 0 {
		t.Errorf("after writes to a deleted mail: Due = %v, want none", ids(due))
	}
}

func TestOutboxGiveUpRemovesTheLink(t *testing.T) {
	s, db := newOutboxStore(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	m := mail("u1", now)
	if err := s.Enqueue(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	if err := s.GiveUp(t.Context(), m.ID, 8, "550 mailbox unavailable"); err != nil {
		t.Fatal(err)
	}
	var raw bson.M
	if err := db.Collection("mail_outbox").FindOne(t.Context(), bson.D{{Key: "_id", Value: m.ID}}).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	if link, ok := raw["link"]; ok {
		t.Errorf("given-up mail still has link %v", link)
	}
	if raw["failed"] != true || raw["last_error"] != "550 mailbox unavailable" || raw["to"] != "u1@example.com" {
		t.Errorf("given-up mail = %v; want failed, the last error and the address kept", raw)
	}
	if n, ok := raw["attempts"].(int32); !ok || n != 8 {
		if n64, ok := raw["attempts"].(int64); !ok || n64 != 8 {
			t.Errorf("attempts = %#v, want 8", raw["attempts"])
		}
	}
	if due, _ := s.Due(t.Context(), now.Add(time.Hour), 10); len(due) != 0 {
		t.Errorf("Due after GiveUp = %v, want none", ids(due))
	}
}

func TestOutboxDelete(t *testing.T) {
	s, db := newOutboxStore(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	enqueue := func(m *auth.Mail) *auth.Mail {
		t.Helper()
		if err := s.Enqueue(t.Context(), m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	oldFailed := enqueue(mail("u1", now.Add(-48*time.Hour)))
	newFailed := enqueue(mail("u2", now))
	edgeFailed := enqueue(mail("u2", now.Add(-24*time.Hour)))
	oldPending := enqueue(mail("u1", now.Add(-48*time.Hour)))
	pending := enqueue(mail("u2", now))
	request := enqueue(&auth.Mail{Kind: auth.MailResetRequest, To: "x@example.com", CreatedAt: now})
	for _, m := range []*auth.Mail{oldFailed, newFailed, edgeFailed} {
		if err := s.GiveUp(t.Context(), m.ID, 3, "x"); err != nil {
			t.Fatal(err)
		}
	}
	count := func() int64 {
		t.Helper()
		n, err := db.Collection("mail_outbox").CountDocuments(t.Context(), bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	if n, err := s.DeleteFailed(t.Context(), now.Add(-24*time.Hour)); err != nil || n != 1 {
		t.Errorf("DeleteFailed = %d, %v; want 1 (created before, failed), nil", n, err)
	}
	if got := count(); got != 5 {
		t.Errorf("%d mails after DeleteFailed, want 5", got)
	}

	if err := s.Delete(t.Context(), pending.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(t.Context(), pending.ID); err != nil {
		t.Errorf("Delete of a mail that is gone: %v, want nil", err)
	}
	if got := count(); got != 4 {
		t.Errorf("%d mails after Delete, want 4", got)
	}

	// DeleteForUser takes that user's mails, failed or not, and nobody else's;
	// an empty user is not the reset requests'.
	if n, err := s.DeleteForUser(t.Context(), ""); err != nil || n != 0 {
		t.Errorf(`DeleteForUser("") = %d, %v; want 0, nil`, n, err)
	}
	if n, err := s.DeleteForUser(t.Context(), "u2"); err != nil || n != 2 {
		t.Errorf("DeleteForUser(u2) = %d, %v; want 2 (newFailed, edgeFailed), nil", n, err)
	}
	var left []string
	cur, err := db.Collection("mail_outbox").Find(t.Context(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var docs []struct {
		ID string `bson:"_id"`
	}
	if err := cur.All(t.Context(), &docs); err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		left = append(left, d.ID)
	}
	slices.Sort(left)
	want := []string{oldPending.ID, request.ID}
	slices.Sort(want)
	if !slices.Equal(left, want) {
		t.Errorf("left %v, want %v (u1's pending mail and the reset request)", left, want)
	}
}
