package mailtest_test

import (
	"crypto/tls"
	"net"
	"net/smtp"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authgql/server/internal/mail/mailtest"
)

// raw is a multipart/alternative message as a mail library writes it: an
// encoded-word subject, quoted-printable parts with soft line breaks.
const raw = "From: a@example.com\r\n" +
	"To: b@example.com\r\n" +
	"Subject: =?UTF-8?q?R=C3=A9initialiser?=\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/alternative; boundary=XYZ\r\n" +
	"\r\n" +
	"--XYZ\r\n" +
	"Content-Type: text/plain; charset=UTF-8\r\n" +
	"Content-Transfer-Encoding: quoted-printable\r\n" +
	"\r\n" +
	"Open https://example.com/r?token=3Dabc&x=3D=\r\n" +
	"1 now.\r\n" +
	"--XYZ\r\n" +
	"Content-Type: text/html; charset=UTF-8\r\n" +
	"Content-Transfer-Encoding: quoted-printable\r\n" +
	"\r\n" +
	"<a href=3D\"https://example.com/r\">open</a>\r\n" +
	"--XYZ--\r\n"

func TestPlain(t *testing.T) {
	srv := mailtest.Start(t)
	if !strings.HasPrefix(srv.Addr(), "127.0.0.1:") || srv.URL() != "smtp://"+srv.Addr() || srv.TLSConfig() != nil {
		t.Fatalf("Addr %q, URL %q, TLSConfig %v", srv.Addr(), srv.URL(), srv.TLSConfig())
	}
	if err := smtp.SendMail(srv.Addr(), nil, "a@example.com", []string{"b@example.com", "c@example.com"}, []byte(raw)); err != nil {
		t.Fatalf("SendMail: %v", err)
	}
	r := srv.Wait(t, 1, 5*time.Second)[0]
	if r.From != "a@example.com" || strings.Join(r.To, ",") != "b@example.com,c@example.com" {
		t.Errorf("envelope %q -> %q", r.From, r.To)
	}
	if r.Subject != "Réinitialiser" {
		t.Errorf("Subject = %q, want Réinitialiser", r.Subject)
	}
	if want := "Open https://example.com/r?token=abc&x=1 now."; r.Text != want {
		t.Errorf("Text = %q, want %q", r.Text, want)
	}
	if want := `<a href="https://example.com/r">open</a>`; r.HTML != want {
		t.Errorf("HTML = %q, want %q", r.HTML, want)
	}
	if r.Header.Get("To") != "b@example.com" || string(r.Data) != raw {
		t.Errorf("Header/Data not the message sent")
	}
	if r.TLS || r.AuthUser != "" {
		t.Errorf("TLS %v, AuthUser %q, want false, none", r.TLS, r.AuthUser)
	}
	msgs := srv.Messages()
	msgs[0].From = "changed"
	if srv.Messages()[0].From != "a@example.com" {
		t.Error("Messages does not return a copy")
	}
}

func TestAuth(t *testing.T) {
	srv := mailtest.Start(t, mailtest.WithAuth("u@x", "p:w/d"))
	u, err := url.Parse(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	if pass, _ := u.User.Password(); u.User.Username() != "u@x" || pass != "p:w/d" {
		t.Errorf("URL() = %q: credentials do not round-trip", srv.URL())
	}
	host, _, _ := net.SplitHostPort(srv.Addr())
	if err := smtp.SendMail(srv.Addr(), nil, "a@example.com", []string{"b@example.com"}, []byte(raw)); err == nil {
		t.Error("SendMail without AUTH: no error")
	}
	if err := smtp.SendMail(srv.Addr(), smtp.PlainAuth("", "u@x", "wrong", host), "a@example.com", []string{"b@example.com"}, []byte(raw)); err == nil || !strings.Contains(err.Error(), "535") {
		t.Errorf("SendMail with a wrong password = %v, want 535", err)
	}
	if err := smtp.SendMail(srv.Addr(), smtp.PlainAuth("", "u@x", "p:w/d", host), "a@example.com", []string{"b@example.com"}, []byte(raw)); err != nil {
		t.Fatalf("SendMail: %v", err)
	}
	if r := srv.Wait(t, 1, 5*time.Second)[0]; r.AuthUser != "u@x" {
		t.Errorf("AuthUser = %q, want u@x", r.AuthUser)
	}
	if !strings.Contains(srv.Transcript(), "AUTH PLAIN") {
		t.Error("the transcript lacks the AUTH command")
	}
}

func TestSTARTTLS(t *testing.T) {
	srv := mailtest.Start(t, mailtest.WithSTARTTLS())
	c, err := smtp.Dial(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); !ok {
		t.Fatal("STARTTLS not offered")
	}
	cfg := srv.TLSConfig()
	cfg.ServerName = "localhost"
	if err := c.StartTLS(cfg); err != nil {
		t.Fatalf("StartTLS: %v", err)
	}
	sendWith(t, c)
	if r := srv.Wait(t, 1, 5*time.Second)[0]; !r.TLS {
		t.Error("TLS = false after STARTTLS")
	}
}

func TestImplicitTLS(t *testing.T) {
	srv := mailtest.Start(t, mailtest.WithImplicitTLS())
	if srv.URL() != "smtps://"+srv.Addr() {
		t.Errorf("URL() = %q", srv.URL())
	}
	cfg := srv.TLSConfig()
	cfg.ServerName = "127.0.0.1"
	conn, err := tls.Dial("tcp", srv.Addr(), cfg)
	if err != nil {
		t.Fatalf("tls.Dial: %v", err)
	}
	c, err := smtp.NewClient(conn, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sendWith(t, c)
	if r := srv.Wait(t, 1, 5*time.Second)[0]; !r.TLS {
		t.Error("TLS = false over smtps")
	}
}

func sendWith(t *testing.T, c *smtp.Client) {
	t.Helper()
	if err := c.Mail("a@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("b@example.com"); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(raw)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestFailNextAt(t *testing.T) {
	srv := mailtest.Start(t)
	srv.FailNextAt(mailtest.Rcpt, 1, 550)
	srv.FailNext(1, 451)
	send := func() error {
		return smtp.SendMail(srv.Addr(), nil, "a@example.com", []string{"b@example.com"}, []byte(raw))
	}
	for _, want := range []string{"550", "451"} {
		if err := send(); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("SendMail = %v, want %s", err, want)
		}
	}
	if err := send(); err != nil {
		t.Fatalf("SendMail after the failures: %v", err)
	}
	if got := len(srv.Wait(t, 1, 5*time.Second)); got != 1 {
		t.Errorf("%d messages kept, want 1", got)
	}
}

func TestStopRestart(t *testing.T) {
	srv := mailtest.Start(t)
	addr := srv.Addr()
	srv.Stop()
	srv.Stop() // again: nothing
	if err := smtp.SendMail(addr, nil, "a@example.com", []string{"b@example.com"}, []byte(raw)); err == nil {
		t.Fatal("SendMail to a stopped server: no error")
	}
	srv.Restart()
	if srv.Addr() != addr {
		t.Errorf("Addr after Restart = %q, want %q", srv.Addr(), addr)
	}
	if err := smtp.SendMail(addr, nil, "a@example.com", []string{"b@example.com"}, []byte(raw)); err != nil {
		t.Fatalf("SendMail after Restart: %v", err)
	}
	srv.Wait(t, 1, 5*time.Second)
}
