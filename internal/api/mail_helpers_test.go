package api_test

// Helpers for the account recovery tests (issue 12): mails read from the
// in-process SMTP server, link tokens, and the GraphQL documents of the flows.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/authgql/server/internal/mail/mailtest"
)

// Subjects of the mails the server sends.
const (
	subjectVerify  = "Confirm your email address"
	subjectReset   = "Reset your password"
	subjectConfirm = "Confirm your new email address"
	subjectNotice  = "A change of your email address was requested"
	subjectDeleted = "Your account was deleted"
)

const (
	appURL = "https://app.example.test" // defaultOptions' APP_URL
	// mailWait is how long a mail may take: the worker polls every 50 ms and
	// is woken by each enqueue.
	mailWait = 10 * time.Second
	// quietWait is how long to watch for a mail that must not come.
	quietWait = 1500 * time.Millisecond
)

const (
	accountFields          = `id username email emailVerified`
	verifyEmailMutation    = `mutation($t: String!) { verifyEmail(token: $t) { ` + accountFields + ` } }`
	confirmEmailMutation   = `mutation($t: String!) { confirmEmailChange(token: $t) { ` + accountFields + ` } }`
	requestResetMutation   = `mutation($e: String!) { requestPasswordReset(email: $e) }`
	resetPasswordMutation  = `mutation($t: String!, $p: String!) { resetPassword(token: $t, newPassword: $p) { ` + payloadFields + ` } }`
	changeEmailMutation    = `mutation($e: String!, $p: String!) { changeEmail(newEmail: $e, currentPassword: $p) }`
	changePasswordMutation = `mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) { ` + payloadFields + ` } }`
	deleteAccountMutation  = `mutation($p: String!) { deleteAccount(currentPassword: $p) }`
	deleteUserMutation     = `mutation($id: ID!) { deleteUser(id: $id) }`
	meAccountQuery         = `{ me { ` + accountFields + ` } }`
)

// account is a User with the fields of issue 12.
type account struct {
	ID            string `json:"id"`
	Username      string `json:"username"`
	Email         string `json:"email"`
	EmailVerified bool   `json:"emailVerified"`
}

// accountIn decodes data[field] of a successful response.
func accountIn(t *testing.T, res gqlResponse, field string) account {
	t.Helper()
	if len(res.Errors) > 0 || res.Status != http.StatusOK {
		t.Fatalf("%s failed: status %d: %s", field, res.Status, res.Raw)
	}
	var a account
	if err := json.Unmarshal(res.Data[field], &a); err != nil {
		t.Fatalf("decode %s: %v: %s", field, err, res.Raw)
	}
	return a
}

// meAccount returns the caller's account, failing t on any error.
func (e *env) meAccount(t *testing.T, access string) account {
	t.Helper()
	return accountIn(t, e.post(t, access, meAccountQuery, nil), "me")
}

// mailsTo returns the mails received so far for addr with subject.
func mailsTo(s *mailtest.Server, addr, subject string) []mailtest.Received {
	var out []mailtest.Received
	for _, m := range s.Messages() {
		if m.Subject != subject {
			continue
		}
		for _, to := range m.To {
			if strings.EqualFold(to, addr) {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// waitMails waits until n mails for addr with subject have arrived and
// returns them in the order they came.
func waitMails(t *testing.T, s *mailtest.Server, addr, subject string, n int) []mailtest.Received {
	t.Helper()
	deadline := time.Now().Add(mailWait)
	for {
		got := mailsTo(s, addr, subject)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d mail(s) %q to %s after %v, want %d; all received: %s", len(got), subject, addr, mailWait, n, summary(s))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitMail waits for the n-th (1-based) mail for addr with subject.
func waitMail(t *testing.T, s *mailtest.Server, addr, subject string, n int) mailtest.Received {
	t.Helper()
	return waitMails(t, s, addr, subject, n)[n-1]
}

// summary lists what s received, for failure messages.
func summary(s *mailtest.Server) string {
	var b strings.Builder
	for _, m := range s.Messages() {
		b.WriteString("\n  " + strings.Join(m.To, ",") + ": " + m.Subject)
	}
	return b.String()
}

// quiet waits quietWait and fails t if s received more than n mails in all.
func quiet(t *testing.T, s *mailtest.Server, n int) {
	t.Helper()
	time.Sleep(quietWait)
	if got := len(s.Messages()); got != n {
		t.Fatalf("%d mails received, want %d:%s", got, n, summary(s))
	}
}

var linkToken = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// tokenIn returns the token of the link to path in m, checking that the
// text and the HTML parts carry the same link and that the token has 256
// bits in URL-safe base64.
func tokenIn(t *testing.T, m mailtest.Received, path string) string {
	t.Helper()
	re := regexp.MustCompile(regexp.QuoteMeta(appURL+path+"?token=") + `([A-Za-z0-9_\-]*)`)
	inText := re.FindAllStringSubmatch(m.Text, -1)
	if len(inText) == 0 {
		t.Fatalf("no %s link in the text of %q:\n%s", path, m.Subject, m.Text)
	}
	tok := inText[0][1]
	if !linkToken.MatchString(tok) {
		t.Fatalf("link token %q: want 43 URL-safe base64 characters (256 bits)", tok)
	}
	for _, l := range inText {
		if l[1] != tok {
			t.Fatalf("the text of %q holds two different links: %q", m.Subject, inText)
		}
	}
	if !strings.Contains(m.HTML, appURL+path+"?token="+tok) {
		t.Fatalf("the HTML of %q lacks the link of its text (%s):\n%s", m.Subject, tok, m.HTML)
	}
	if strings.Contains(m.HTML, "src=") || strings.Contains(m.HTML, "url(") {
		t.Errorf("the HTML of %q loads a resource:\n%s", m.Subject, m.HTML)
	}
	return tok
}

// randomToken is a well-formed link token the server never issued.
func randomToken(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// wantEmailTokenError asserts INVALID_EMAIL_TOKEN with reason, with HTTP 200
// and null data.
func wantEmailTokenError(t *testing.T, res gqlResponse, reason string) {
	t.Helper()
	if res.Status != http.StatusOK {
		t.Fatalf("status = %d, want 200: %s", res.Status, res.Raw)
	}
	if got := res.code(t); got != "INVALID_EMAIL_TOKEN" {
		t.Fatalf("code = %q, want INVALID_EMAIL_TOKEN: %s", got, res.Raw)
	}
	if got := res.ext("reason"); got != reason {
		t.Fatalf("reason = %q, want %q: %s", got, reason, res.Raw)
	}
	for k, v := range res.Data {
		if string(v) != "null" {
			t.Fatalf("data.%s = %s alongside the error", k, v)
		}
	}
}

// wantInputError asserts BAD_USER_INPUT on field, with reason unless it is empty.
func wantInputError(t *testing.T, res gqlResponse, field, reason string) {
	t.Helper()
	if res.Status != http.StatusOK {
		t.Fatalf("status = %d, want 200: %s", res.Status, res.Raw)
	}
	if got := res.code(t); got != "BAD_USER_INPUT" {
		t.Fatalf("code = %q, want BAD_USER_INPUT: %s", got, res.Raw)
	}
	if got := res.ext("field"); got != field {
		t.Fatalf("field = %q, want %q: %s", got, field, res.Raw)
	}
	if got := res.ext("reason"); reason != "" && got != reason {
		t.Fatalf("reason = %q, want %q: %s", got, reason, res.Raw)
	}
}

// boolIn returns data[field] of a successful response as a bool.
func boolIn(t *testing.T, res gqlResponse, field string) bool {
	t.Helper()
	if len(res.Errors) > 0 || res.Status != http.StatusOK {
		t.Fatalf("%s failed: status %d: %s", field, res.Status, res.Raw)
	}
	var b bool
	if err := json.Unmarshal(res.Data[field], &b); err != nil {
		t.Fatalf("decode %s: %v: %s", field, err, res.Raw)
	}
	return b
}

func (e *env) requestReset(t *testing.T, email string) gqlResponse {
	t.Helper()
	return e.post(t, "", requestResetMutation, map[string]any{"e": email})
}

func (e *env) resetPassword(t *testing.T, token, password string) gqlResponse {
	t.Helper()
	return e.post(t, "", resetPasswordMutation, map[string]any{"t": token, "p": password})
}

func (e *env) verifyEmail(t *testing.T, token string) gqlResponse {
	t.Helper()
	return e.post(t, "", verifyEmailMutation, map[string]any{"t": token})
}

func (e *env) confirmEmail(t *testing.T, token string) gqlResponse {
	t.Helper()
	return e.post(t, "", confirmEmailMutation, map[string]any{"t": token})
}

// resetToken asks for a reset of addr and returns the token of the n-th
// reset mail to addr.
func (e *env) resetToken(t *testing.T, addr string, n int) string {
	t.Helper()
	if !boolIn(t, e.requestReset(t, addr), "requestPasswordReset") {
		t.Fatal("requestPasswordReset answered false")
	}
	return tokenIn(t, waitMail(t, e.smtp, addr, subjectReset, n), "/reset-password")
}

// verifyToken returns the token of the n-th verification mail to addr.
func (e *env) verifyToken(t *testing.T, addr string, n int) string {
	t.Helper()
	return tokenIn(t, waitMail(t, e.smtp, addr, subjectVerify, n), "/verify-email")
}

// jwtClaims decodes the payload of a JWT without checking it.
func jwtClaims(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// docs returns the documents of collection that match filter.
func (e *env) docs(t *testing.T, collection string, filter bson.D) []bson.M {
	t.Helper()
	cur, err := e.db.Collection(collection).Find(context.Background(), filter)
	if err != nil {
		t.Fatalf("find in %s: %v", collection, err)
	}
	var out []bson.M
	if err := cur.All(context.Background(), &out); err != nil {
		t.Fatalf("read %s: %v", collection, err)
	}
	return out
}

// dump returns every document of every collection of the test's database as
// extended JSON, to search for what must not be stored.
func (e *env) dump(t *testing.T) string {
	t.Helper()
	names, err := e.db.ListCollectionNames(context.Background(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, n := range names {
		for _, d := range e.docs(t, n, bson.D{}) {
			j, err := bson.MarshalExtJSON(d, false, false)
			if err != nil {
				t.Fatal(err)
			}
			b.WriteString(n + ": " + string(j) + "\n")
		}
	}
	return b.String()
}

// auditLines returns the server's log records whose event is event.
func (e *env) auditLines(t *testing.T, event string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(e.logs.String(), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			continue
		}
		if rec["event"] == event {
			out = append(out, rec)
		}
	}
	return out
}

// slowProxy relays TCP connections to addr, holding each chunk the server
// sends for delay: an SMTP server that answers slowly. It returns an smtp://
// URL for the proxy.
func slowProxy(t *testing.T, addr string, delay time.Duration) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				s, err := net.Dial("tcp", addr)
				if err != nil {
					return
				}
				defer s.Close()
				go func() { _, _ = io.Copy(s, c) }()
				buf := make([]byte, 4096)
				for {
					n, err := s.Read(buf)
					if n > 0 {
						time.Sleep(delay)
						if _, err := c.Write(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return "smtp://" + l.Addr().String()
}
