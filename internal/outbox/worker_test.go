package outbox_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"mime"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/authgql/server/internal/auth"
	"github.com/authgql/server/internal/mail"
	"github.com/authgql/server/internal/mail/mailtest"
	"github.com/authgql/server/internal/mongodb"
	"github.com/authgql/server/internal/outbox"
)

const from = "authgql <no-reply@localhost>"

// syncBuffer is a log sink that tests read while workers write.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// logs is what one instance logged, as JSON lines.
type logs struct{ buf syncBuffer }

func (l *logs) records(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(l.buf.String()) {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, line)
		}
		out = append(out, r)
	}
	return out
}

// events returns the audit events named event.
func (l *logs) events(t *testing.T, event string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, r := range l.records(t) {
		if r["log"] == "audit" && r["event"] == event {
			out = append(out, r)
		}
	}
	return out
}

// find returns the records at level with message msg.
func (l *logs) find(t *testing.T, level, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, r := range l.records(t) {
		if r["level"] == level && r["msg"] == msg {
			out = append(out, r)
		}
	}
	return out
}

// recordingSender is the real SMTP sender that also keeps every message it
// was asked to send, delivered or not.
type recordingSender struct {
	mail.Sender
	mu   sync.Mutex
	sent []mail.Message
}

func (s *recordingSender) Send(ctx context.Context, m mail.Message) error {
	s.mu.Lock()
	s.sent = append(s.sent, m)
	s.mu.Unlock()
	return s.Sender.Send(ctx, m)
}

func (s *recordingSender) attempts() []mail.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sent)
}

// instance is one server process as the outbox sees it: a database client of
// its own, the stores on it, a worker and its logs.
type instance struct {
	client  *mongo.Client
	store   *mongodb.OutboxStore
	markers *mongodb.MarkerStore
	worker  *outbox.Worker
	sender  *recordingSender
	logs    *logs
}

// newInstance connects to the test database named db and builds a worker
// that sends to smtpURL; change adjusts the worker's configuration.
func newInstance(t *testing.T, db, smtpURL string, change func(*outbox.Config)) *instance {
	t.Helper()
	ctx := context.Background()
	client, err := mongodb.Connect(ctx, testDB.URI)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	d := client.Database(db)
	store, err := mongodb.NewOutboxStore(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	markers, err := mongodb.NewMarkerStore(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	templates, err := mail.LoadTemplates("")
	if err != nil {
		t.Fatal(err)
	}
	smtp, err := mail.NewSMTP(smtpURL, from, mail.WithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	in := &instance{client: client, store: store, markers: markers, sender: &recordingSender{Sender: smtp}, logs: &logs{}}
	logger := slog.New(slog.NewJSONHandler(&in.logs.buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := outbox.Config{
		Store: store, Markers: markers,
		Prepare:   func(_ context.Context, m *auth.Mail) (*auth.Mail, error) { return m, nil },
		Templates: templates, Sender: in.sender, Logger: logger, Audit: logger.With("log", "audit"),
		MaxAttempts: 10, RetryBase: 50 * time.Millisecond, Lease: 10 * time.Second, SendTimeout: 5 * time.Second,
		Poll: 20 * time.Millisecond,
	}
	if change != nil {
		change(&c)
	}
	in.worker = outbox.NewWorker(c)
	return in
}

// run runs the instance's worker until the test ends.
func (in *instance) run(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		in.worker.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// setup returns a fresh database and a running SMTP server.
func setup(t *testing.T) (*mongo.Database, *mailtest.Server) {
	t.Helper()
	return testDB.Fresh(t), mailtest.Start(t)
}

func verifyMail(i int) *auth.Mail {
	return &auth.Mail{Kind: auth.MailVerifyEmail, To: fmt.Sprintf("user%d@example.com", i), UserID: fmt.Sprintf("u%d", i),
		Username: fmt.Sprintf("user%d", i), Link: "https://app.example.test/verify-email?token=" + rand.Text(),
		ExpiresIn: 24 * time.Hour, CreatedAt: time.Now()}
}

func enqueue(t *testing.T, o auth.Outbox, ms ...*auth.Mail) {
	t.Helper()
	for _, m := range ms {
		if err := o.Enqueue(context.Background(), m); err != nil {
			t.Fatalf("Enqueue: %v", err)
		}
	}
}

// rawMails returns the documents of mail_outbox as stored.
func rawMails(t *testing.T, db *mongo.Database) []bson.M {
	t.Helper()
	cur, err := db.Collection("mail_outbox").Find(context.Background(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var out []bson.M
	if err := cur.All(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// rawMail returns the stored document of mail id, or nil.
func rawMail(t *testing.T, db *mongo.Database, id string) bson.M {
	t.Helper()
	for _, d := range rawMails(t, db) {
		if d["_id"] == id {
			return d
		}
	}
	return nil
}

// claims returns the keys of the markers that claimed attempts at mail id.
func claims(t *testing.T, db *mongo.Database, id string) []string {
	t.Helper()
	cur, err := db.Collection("markers").Find(context.Background(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var docs []bson.M
	if err := cur.All(context.Background(), &docs); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range docs {
		if k, _ := d["_id"].(string); strings.HasPrefix(k, "outbox/"+id+"/") {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func attemptKeys(id string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("outbox/%s/%d", id, i)
	}
	return out
}

// number reads an integer field of a stored document or a log record.
func number(v any) int {
	switch n := v.(type) {
	case int32:
		return int(n)
	case int64:
		return int(n)
	case float64:
		return int(n)
	}
	return -1
}

var linkPattern = regexp.MustCompile(`https://app\.example\.test/[a-z-]+\?token=[A-Za-z0-9_-]+`)

// checkOnce checks that the server received each of mails exactly once, to
// its address with its link, and nothing else.
func checkOnce(t *testing.T, msgs []mailtest.Received, mails []*auth.Mail) {
	t.Helper()
	got := map[string]int{}
	for _, r := range msgs {
		link := linkPattern.FindString(r.Text)
		got[link]++
		for _, m := range mails {
			if m.Link == link && (len(r.To) != 1 || r.To[0] != m.To) {
				t.Errorf("link of %s went to %v", m.To, r.To)
			}
		}
	}
	for _, m := range mails {
		if n := got[m.Link]; n != 1 {
			t.Errorf("mail to %s received %d times, want once", m.To, n)
		}
	}
	if len(msgs) != len(mails) {
		t.Errorf("server received %d messages, want %d", len(msgs), len(mails))
	}
}

// transactions counts the mail transactions (MAIL FROM) the server saw: one
// per attempt that reached it.
func transactions(s *mailtest.Server) int { return strings.Count(s.Transcript(), "MAIL FROM:") }

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// drive runs w's passes until cond holds.
func drive(t *testing.T, w *outbox.Worker, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	eventually(t, timeout, what, func() bool {
		w.RunOnce(context.Background())
		return cond()
	})
}

func TestDelivery(t *testing.T) {
	db, smtp := setup(t)
	in := newInstance(t, db.Name(), smtp.URL(), nil)
	m := verifyMail(1)
	enqueue(t, in.store, m)

	if n := in.worker.RunOnce(context.Background()); n != 1 {
		t.Fatalf("RunOnce = %d, want 1", n)
	}
	msgs := smtp.Messages()
	checkOnce(t, msgs, []*auth.Mail{m})
	if len(msgs) != 1 {
		t.FailNow()
	}
	r := msgs[0]
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "multipart/alternative" {
		t.Errorf("Content-Type = %q, want multipart/alternative", r.Header.Get("Content-Type"))
	}
	if r.Subject == "" || !strings.Contains(r.Text, m.Link) || !strings.Contains(r.HTML, m.Link) {
		t.Errorf("subject %q, text %q, HTML %q: want a subject and the link in both parts", r.Subject, r.Text, r.HTML)
	}
	if docs := rawMails(t, db); len(docs) != 0 {
		t.Errorf("outbox after delivery = %v, want empty (the link gone)", docs)
	}
	sent := in.logs.events(t, "mail_sent")
	if len(sent) != 1 || sent[0]["mail_id"] != m.ID || number(sent[0]["attempt"]) != 1 || sent[0]["kind"] != "verify_email" {
		t.Errorf("mail_sent events = %v, want one for %s at attempt 1", sent, m.ID)
	}
	if n := in.worker.RunOnce(context.Background()); n != 0 || len(smtp.Messages()) != 1 {
		t.Errorf("second pass attempted %d, server has %d messages; want 0 and 1", n, len(smtp.Messages()))
	}
}

func TestSMTPOutage(t *testing.T) {
	db, smtp := setup(t)
	smtp.Stop()
	in := newInstance(t, db.Name(), smtp.URL(), func(c *outbox.Config) { c.MaxAttempts = 20 })
	in.run(t)
	out := in.worker.Outbox(in.store) // as requests enqueue
	var mails []*auth.Mail
	for i := range 3 {
		m := verifyMail(i)
		start := time.Now()
		enqueue(t, out, m)
		if d := time.Since(start); d > time.Second {
			t.Errorf("Enqueue took %v while SMTP is down: a request waits for delivery", d)
		}
		mails = append(mails, m)
	}

	eventually(t, 10*time.Second, "three failed attempts recorded for each mail", func() bool {
		docs := rawMails(t, db)
		for _, d := range docs {
			if number(d["attempts"]) < 3 {
				return false
			}
		}
		return len(docs) == 3
	})
	for _, d := range rawMails(t, db) {
		if d["failed"] != false || d["last_error"] == "" || d["link"] == nil {
			t.Errorf("during the outage: failed %v, last_error %q, link %v; want a pending mail with its error and link",
				d["failed"], d["last_error"], d["link"])
		}
	}
	if n := len(smtp.Messages()); n != 0 {
		t.Fatalf("%d messages delivered while the server was down", n)
	}

	smtp.Restart()
	smtp.Wait(t, 3, 10*time.Second)
	time.Sleep(500 * time.Millisecond) // any duplicate would arrive now
	checkOnce(t, smtp.Messages(), mails)
	if docs := rawMails(t, db); len(docs) != 0 {
		t.Errorf("outbox after delivery = %v, want empty", docs)
	}
}

func TestTemporaryFailureRetried(t *testing.T) {
	db, smtp := setup(t)
	in := newInstance(t, db.Name(), smtp.URL(), func(c *outbox.Config) { c.RetryBase = 20 * time.Millisecond })
	smtp.FailNext(2, 451)
	m := verifyMail(1)
	enqueue(t, in.store, m)

	drive(t, in.worker, 5*time.Second, "delivery", func() bool { return len(smtp.Messages()) > 0 })
	time.Sleep(100 * time.Millisecond)
	in.worker.RunOnce(context.Background())
	checkOnce(t, smtp.Messages(), []*auth.Mail{m})
	if got, want := transactions(smtp), 3; got != want {
		t.Errorf("server saw %d attempts, want %d", got, want)
	}
	if got, want := claims(t, db, m.ID), attemptKeys(m.ID, 3); !slices.Equal(got, want) {
		t.Errorf("claims = %v, want %v", got, want)
	}
	if sent := in.logs.events(t, "mail_sent"); len(sent) != 1 || number(sent[0]["attempt"]) != 3 {
		t.Errorf("mail_sent events = %v, want one at attempt 3", sent)
	}
	if got := len(in.logs.find(t, "WARN", "outbox: delivery failed; will retry")); got != 2 {
		t.Errorf("%d retry warnings, want 2", got)
	}
	if docs := rawMails(t, db); len(docs) != 0 {
		t.Errorf("outbox after delivery = %v, want empty", docs)
	}
}

func TestPermanentFailureGivesUp(t *testing.T) {
	for _, cmd := range []mailtest.Command{mailtest.Rcpt, mailtest.Data} {
		t.Run("550 at "+string(cmd), func(t *testing.T) {
			db, smtp := setup(t)
			in := newInstance(t, db.Name(), smtp.URL(), func(c *outbox.Config) { c.RetryBase = 20 * time.Millisecond })
			smtp.FailNextAt(cmd, 1, 550)
			m := verifyMail(1)
			enqueue(t, in.store, m)

			if n := in.worker.RunOnce(context.Background()); n != 1 {
				t.Fatalf("RunOnce = %d, want 1", n)
			}
			d := rawMail(t, db, m.ID)
			if d == nil {
				t.Fatal("a given-up mail is gone from the outbox; want it kept (without its link) for operators")
			}
			if d["failed"] != true || number(d["attempts"]) != 1 || d["last_error"] == "" {
				t.Errorf("stored failed %v, attempts %v, last_error %q; want true, 1 and the error",
					d["failed"], d["attempts"], d["last_error"])
			}
			if link, ok := d["link"]; ok {
				t.Errorf("given-up mail still holds its link %v", link)
			}
			if ev := in.logs.events(t, "mail_failed"); len(ev) != 1 || ev[0]["mail_id"] != m.ID || number(ev[0]["attempts"]) != 1 {
				t.Errorf("mail_failed events = %v, want one for %s after 1 attempt", ev, m.ID)
			}
			if got := len(in.logs.find(t, "ERROR", "outbox: giving up on a mail")); got != 1 {
				t.Errorf("%d give-up errors logged, want 1", got)
			}

			time.Sleep(100 * time.Millisecond) // well past any retry
			if n := in.worker.RunOnce(context.Background()); n != 0 {
				t.Errorf("a pass after giving up attempted %d, want 0", n)
			}
			if got := transactions(smtp); got != 1 {
				t.Errorf("server saw %d attempts, want 1", got)
			}
			if got, want := claims(t, db, m.ID), attemptKeys(m.ID, 1); !slices.Equal(got, want) {
				t.Errorf("claims = %v, want %v", got, want)
			}
			if n := len(smtp.Messages()) + len(in.logs.events(t, "mail_sent")); n != 0 {
				t.Errorf("a refused mail counted as delivered")
			}
		})
	}
}

func TestGivesUpAfterMaxAttempts(t *testing.T) {
	db, smtp := setup(t)
	smtp.Stop()
	in := newInstance(t, db.Name(), smtp.URL(), func(c *outbox.Config) {
		c.MaxAttempts, c.RetryBase = 3, 20*time.Millisecond
	})
	m := verifyMail(1)
	enqueue(t, in.store, m)
	in.run(t)

	eventually(t, 5*time.Second, "the mail given up", func() bool {
		d := rawMail(t, db, m.ID)
		return d != nil && d["failed"] == true
	})
	time.Sleep(300 * time.Millisecond) // no attempt after the last
	d := rawMail(t, db, m.ID)
	if number(d["attempts"]) != 3 || d["last_error"] == "" {
		t.Errorf("stored attempts %v, last_error %q; want 3 and the error", d["attempts"], d["last_error"])
	}
	if link, ok := d["link"]; ok {
		t.Errorf("given-up mail still holds its link %v", link)
	}
	if got, want := claims(t, db, m.ID), attemptKeys(m.ID, 3); !slices.Equal(got, want) {
		t.Errorf("claims = %v, want %v", got, want)
	}
	errs := in.logs.find(t, "ERROR", "outbox: giving up on a mail")
	if len(errs) != 1 || errs[0]["mail_id"] != m.ID || number(errs[0]["attempts"]) != 3 || errs[0]["err"] == "" {
		t.Errorf("give-up errors = %v, want one for %s after 3 attempts with the error", errs, m.ID)
	}
	if ev := in.logs.events(t, "mail_failed"); len(ev) != 1 || number(ev[0]["attempts"]) != 3 {
		t.Errorf("mail_failed events = %v, want one after 3 attempts", ev)
	}
	if got := len(in.logs.find(t, "WARN", "outbox: delivery failed; will retry")); got != 2 {
		t.Errorf("%d retry warnings, want 2", got)
	}
}

// Two instances share the outbox: every mail goes exactly once, also when
// the server refuses some attempts.
func TestTwoInstancesDeliverEachMailOnce(t *testing.T) {
	const mailCount, trials = 30, 3
	for _, tc := range []struct {
		name  string
		fails int // 451 answers to the first attempts
	}{{"steady", 0}, {"flaky", 10}} {
		t.Run(tc.name, func(t *testing.T) {
			for trial := range trials {
				t.Run(fmt.Sprint("trial ", trial), func(t *testing.T) {
					db, smtp := setup(t)
					fast := func(c *outbox.Config) { c.RetryBase, c.Poll = 20*time.Millisecond, 10*time.Millisecond }
					a := newInstance(t, db.Name(), smtp.URL(), fast)
					b := newInstance(t, db.Name(), smtp.URL(), fast)
					mails := make([]*auth.Mail, mailCount)
					for i := range mails {
						mails[i] = verifyMail(i)
						enqueue(t, []*instance{a, b}[i%2].store, mails[i])
					}
					smtp.FailNext(tc.fails, 451)
					// Both start on the same due mails.
					a.run(t)
					b.run(t)

					smtp.Wait(t, mailCount, 20*time.Second)
					time.Sleep(300 * time.Millisecond) // any duplicate would arrive now
					checkOnce(t, smtp.Messages(), mails)
					if got, want := transactions(smtp), mailCount+tc.fails; got != want {
						t.Errorf("server saw %d attempts, want %d (%d refused)", got, want, tc.fails)
					}
					sentA, sentB := len(a.logs.events(t, "mail_sent")), len(b.logs.events(t, "mail_sent"))
					if sentA+sentB != mailCount {
						t.Errorf("mail_sent events: %d + %d, want %d in all", sentA, sentB, mailCount)
					}
					if docs := rawMails(t, db); len(docs) != 0 {
						t.Errorf("%d mails left in the outbox, want none", len(docs))
					}
					t.Logf("instance A sent %d, instance B %d", sentA, sentB)
				})
			}
		})
	}
}

// An instance that claimed an attempt and died holds the mail until its
// lease passes; then another instance sends it, once.
func TestClaimOfADeadInstanceWaitsForTheLease(t *testing.T) {
	const lease = 600 * time.Millisecond
	db, smtp := setup(t)
	in := newInstance(t, db.Name(), smtp.URL(), func(c *outbox.Config) { c.Lease = lease })
	dead := newInstance(t, db.Name(), smtp.URL(), func(c *outbox.Config) { c.Lease = lease })
	m := verifyMail(1)
	enqueue(t, dead.store, m)
	until := time.Now().Add(lease)
	if err := dead.markers.Put(context.Background(), "outbox/"+m.ID+"/0", until); err != nil {
		t.Fatal(err)
	}
	in.run(t)

	for time.Now().Before(until.Add(-100 * time.Millisecond)) {
		if n := len(smtp.Messages()); n != 0 {
			t.Fatalf("sent %v before the dead instance's lease passed", time.Until(until))
		}
		time.Sleep(10 * time.Millisecond)
	}
	smtp.Wait(t, 1, 5*time.Second)
	time.Sleep(300 * time.Millisecond) // any duplicate would arrive now
	checkOnce(t, smtp.Messages(), []*auth.Mail{m})
	if got, want := claims(t, db, m.ID), attemptKeys(m.ID, 2); !slices.Equal(got, want) {
		t.Errorf("claims = %v, want %v", got, want)
	}
	if sent := in.logs.events(t, "mail_sent"); len(sent) != 1 || number(sent[0]["attempt"]) != 2 {
		t.Errorf("mail_sent events = %v, want one at attempt 2", sent)
	}
	if docs := rawMails(t, db); len(docs) != 0 {
		t.Errorf("outbox after delivery = %v, want empty", docs)
	}
}

// A mail queued by an instance that died before sending it is sent by the
// instance that starts next.
func TestRestartedInstanceDelivers(t *testing.T) {
	db, smtp := setup(t)
	old := newInstance(t, db.Name(), smtp.URL(), nil)
	m := verifyMail(1)
	enqueue(t, old.worker.Outbox(old.store), m) // its worker never runs
	if err := old.client.Disconnect(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(smtp.Messages()); n != 0 {
		t.Fatalf("%d messages sent without a running worker", n)
	}

	restarted := newInstance(t, db.Name(), smtp.URL(), nil)
	restarted.run(t)
	smtp.Wait(t, 1, 5*time.Second)
	time.Sleep(200 * time.Millisecond)
	checkOnce(t, smtp.Messages(), []*auth.Mail{m})
	if docs := rawMails(t, db); len(docs) != 0 {
		t.Errorf("outbox after delivery = %v, want empty", docs)
	}
}

func TestPrepareDropsAMail(t *testing.T) {
	db, smtp := setup(t)
	in := newInstance(t, db.Name(), smtp.URL(), func(c *outbox.Config) {
		c.Prepare = func(_ context.Context, m *auth.Mail) (*auth.Mail, error) {
			if m.Kind == auth.MailResetRequest {
				return nil, nil // no account has the address
			}
			return m, nil
		}
	})
	enqueue(t, in.store, &auth.Mail{Kind: auth.MailResetRequest, To: "nobody@example.com", CreatedAt: time.Now()})

	if n := in.worker.RunOnce(context.Background()); n != 1 {
		t.Fatalf("RunOnce = %d, want 1", n)
	}
	if docs := rawMails(t, db); len(docs) != 0 {
		t.Errorf("outbox after dropping = %v, want empty", docs)
	}
	if n := len(in.sender.attempts()); n != 0 || smtp.Transcript() != "" {
		t.Errorf("%d sends, transcript %q; want nothing sent", n, smtp.Transcript())
	}
	if ev := in.logs.events(t, "mail_sent"); len(ev) != 0 {
		t.Errorf("mail_sent events = %v, want none", ev)
	}
}

// A reset request becomes a reset mail with a link once; a retry sends the
// very same mail instead of preparing a new link.
func TestPreparedMailIsKeptForTheRetry(t *testing.T) {
	db, smtp := setup(t)
	var prepared atomic.Int32
	in := newInstance(t, db.Name(), smtp.URL(), func(c *outbox.Config) {
		c.RetryBase = 20 * time.Millisecond
		c.Prepare = func(_ context.Context, m *auth.Mail) (*auth.Mail, error) {
			if m.Kind != auth.MailResetRequest {
				return m, nil
			}
			prepared.Add(1)
			out := *m
			out.Kind, out.UserID, out.Username = auth.MailResetPassword, "u1", "alice"
			out.Link, out.ExpiresIn = "https://app.example.test/reset-password?token="+rand.Text(), time.Hour
			return &out, nil
		}
	})
	smtp.FailNext(1, 451)
	m := &auth.Mail{Kind: auth.MailResetRequest, To: "alice@example.com", CreatedAt: time.Now()}
	enqueue(t, in.store, m)

	if n := in.worker.RunOnce(context.Background()); n != 1 {
		t.Fatalf("RunOnce = %d, want 1", n)
	}
	d := rawMail(t, db, m.ID)
	if d == nil {
		t.Fatal("mail gone after a failed attempt")
	}
	link, _ := d["link"].(string)
	if d["kind"] != string(auth.MailResetPassword) || !linkPattern.MatchString(link) || number(d["attempts"]) != 1 {
		t.Fatalf("stored after the failed attempt: kind %v, link %q, attempts %v; want the prepared reset mail",
			d["kind"], link, d["attempts"])
	}

	drive(t, in.worker, 5*time.Second, "delivery on retry", func() bool { return len(smtp.Messages()) > 0 })
	checkOnce(t, smtp.Messages(), []*auth.Mail{{To: m.To, Link: link}})
	attempts := in.sender.attempts()
	if len(attempts) != 2 {
		t.Fatalf("%d sends, want 2", len(attempts))
	}
	for i, a := range attempts {
		if got := linkPattern.FindString(a.Text); got != link {
			t.Errorf("attempt %d sent link %q, want %q (the one kept)", i+1, got, link)
		}
	}
	if n := prepared.Load(); n != 1 {
		t.Errorf("the request was prepared %d times, want once", n)
	}
	if docs := rawMails(t, db); len(docs) != 0 {
		t.Errorf("outbox after delivery = %v, want empty", docs)
	}
}

// An instance that stalls in the middle of a pass (a slow database, a paused
// process) holds copies of mails read before the stall. When it resumes after
// the lease of another instance's attempt has passed, that attempt's marker
// is no proof the other instance died: the mail may have moved on (delivered,
// given up). The stalled instance must not send it again.
func TestStalledInstanceDoesNotResendAMailThatMovedOn(t *testing.T) {
	const lease = 300 * time.Millisecond
	for _, tc := range []struct {
		name   string
		refuse bool // the other instance's attempt is refused for good (550): the mail is given up
	}{{"delivered meanwhile", false}, {"given up meanwhile", true}} {
		t.Run(tc.name, func(t *testing.T) {
			db, smtp := setup(t)
			first, second := verifyMail(1), verifyMail(2)
			first.CreatedAt = time.Now().Add(-time.Second) // due first
			short := func(c *outbox.Config) { c.Lease, c.SendTimeout = lease, 100*time.Millisecond }
			a := newInstance(t, db.Name(), smtp.URL(), short)
			stalled, resume := make(chan struct{}), make(chan struct{})
			b := newInstance(t, db.Name(), smtp.URL(), func(c *outbox.Config) {
				short(c)
				c.Prepare = func(_ context.Context, m *auth.Mail) (*auth.Mail, error) {
					if m.ID == first.ID {
						close(stalled)
						<-resume
					}
					return m, nil
				}
			})
			enqueue(t, a.store, first, second)

			bDone := make(chan struct{})
			go func() {
				defer close(bDone)
				b.worker.RunOnce(context.Background()) // reads both, claims the first, stalls
			}()
			select {
			case <-stalled:
			case <-time.After(5 * time.Second):
				t.Fatal("instance B never reached the first mail")
			}
			if tc.refuse {
				smtp.FailNextAt(mailtest.Rcpt, 1, 550)
			}
			if n := a.worker.RunOnce(context.Background()); n != 1 { // the second; the first is B's
				t.Fatalf("instance A attempted %d mails, want 1", n)
			}
			time.Sleep(lease + 200*time.Millisecond)
			close(resume)
			<-bDone

			if tc.refuse {
				checkOnce(t, smtp.Messages(), []*auth.Mail{first})
				d := rawMail(t, db, second.ID)
				if d == nil || d["failed"] != true || d["link"] != nil {
					t.Errorf("given-up mail afterwards = %v, want it kept failed without its link", d)
				}
			} else {
				checkOnce(t, smtp.Messages(), []*auth.Mail{first, second})
			}
			t.Logf("claims of the second mail: %v; B logged mail_sent %d times", claims(t, db, second.ID),
				len(b.logs.events(t, "mail_sent")))
		})
	}
}
