package mail_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authgql/server/internal/mail"
	"github.com/authgql/server/internal/mail/mailtest"
)

// password is distinctive, so that finding it in an error text cannot be chance,
// and needs percent-encoding in a URL.
const password = "Zq7@pw:sECRET/42%x"

// newSMTP is NewSMTP that fails t on an error; a short timeout keeps failing
// tests short.
func newSMTP(t *testing.T, rawURL string, opts ...mail.SMTPOption) mail.Sender {
	t.Helper()
	s, err := mail.NewSMTP(rawURL, from, append([]mail.SMTPOption{mail.WithTimeout(10 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatalf("NewSMTP: %v", err)
	}
	return s
}

func send(t *testing.T, s mail.Sender, m mail.Message) error {
	t.Helper()
	err := s.Send(context.Background(), m)
	if err != nil && strings.Contains(err.Error(), password) {
		t.Errorf("error contains the password: %v", err)
	}
	return err
}

// checkReceived checks what the server got for m: the envelope, the message, the
// session's TLS and AUTH.
func checkReceived(t *testing.T, r mailtest.Received, m mail.Message, tls bool, authUser string) {
	t.Helper()
	if r.From != "noreply@example.com" || len(r.To) != 1 || r.To[0] != m.To {
		t.Errorf("envelope = %q -> %q, want noreply@example.com -> [%s]", r.From, r.To, m.To)
	}
	if r.TLS != tls {
		t.Errorf("TLS = %v, want %v", r.TLS, tls)
	}
	if r.AuthUser != authUser {
		t.Errorf("AuthUser = %q, want %q", r.AuthUser, authUser)
	}
	if r.Subject != m.Subject || !strings.Contains(r.Text, link) || !strings.Contains(r.HTML, "<a href=") {
		t.Errorf("received subject %q, text %q, HTML %q: not the message sent", r.Subject, r.Text, r.HTML)
	}
	checkMessage(t, r.Data, m)
}

func TestSMTPPlainOnLoopback(t *testing.T) {
	srv := mailtest.Start(t)
	m := render(t)
	if err := send(t, newSMTP(t, srv.URL()), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	checkReceived(t, srv.Wait(t, 1, 5*time.Second)[0], m, false, "")
}

func TestSMTPConcurrentSends(t *testing.T) {
	srv := mailtest.Start(t)
	s := newSMTP(t, srv.URL())
	m := render(t)
	errs := make(chan error, 4)
	for range 4 {
		go func() { errs <- s.Send(context.Background(), m) }()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Errorf("Send: %v", err)
		}
	}
	srv.Wait(t, 4, 5*time.Second)
}

func TestSMTPLocalhostName(t *testing.T) {
	srv := mailtest.Start(t)
	_, port, _ := net.SplitHostPort(srv.Addr())
	m := render(t)
	// "localhost" may resolve to ::1 first, where nothing listens: dial 127.0.0.1.
	s := newSMTP(t, "smtp://localhost:"+port, mail.WithDialAddr(srv.Addr()))
	if err := send(t, s, m); err != nil {
		t.Fatalf("Send: %v (localhost must not require STARTTLS)", err)
	}
	srv.Wait(t, 1, 5*time.Second)
}

func TestSMTPSTARTTLSOnLoopbackIsUsed(t *testing.T) {
	srv := mailtest.Start(t, mailtest.WithSTARTTLS())
	m := render(t)
	if err := send(t, newSMTP(t, srv.URL(), mail.WithTLSConfig(srv.TLSConfig())), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	checkReceived(t, srv.Wait(t, 1, 5*time.Second)[0], m, true, "")
}

func TestSMTPSTARTTLSOnLoopbackUntrustedCertificate(t *testing.T) {
	// Offered STARTTLS is used even on loopback, and a certificate that does not
	// verify ends the session: there is no falling back to clear text.
	srv := mailtest.Start(t, mailtest.WithSTARTTLS())
	err := send(t, newSMTP(t, srv.URL()), render(t))
	if err == nil || mail.Permanent(err) {
		t.Fatalf("Send = %v, want a temporary error", err)
	}
	if got := srv.Messages(); len(got) != 0 {
		t.Errorf("server received %d message(s), want none", len(got))
	}
}

// A host that is not loopback gets mandatory STARTTLS. The test server listens on
// 127.0.0.1, so the client is told the URL's host, mail.example.test, and dials
// the server's address in its stead (WithDialAddr, export_test.go): it behaves as
// it would towards a remote relay, and the test server sees all it would send.
// Without credentials the message itself must not go out in clear; with them,
// neither must the password.
func TestSMTPRemoteHostRequiresSTARTTLS(t *testing.T) {
	for _, withAuth := range []bool{false, true} {
		t.Run("auth "+strconv.FormatBool(withAuth), func(t *testing.T) {
			var opts []mailtest.Option // no STARTTLS
			userinfo := ""
			if withAuth {
				opts = append(opts, mailtest.WithAuth("mailer", password))
				userinfo = "mailer:" + url.QueryEscape(password) + "@"
			}
			srv := mailtest.Start(t, opts...)
			_, port, _ := net.SplitHostPort(srv.Addr())
			s := newSMTP(t, "smtp://"+userinfo+"mail.example.test:"+port, mail.WithDialAddr(srv.Addr()))

			err := send(t, s, render(t))
			if err == nil {
				t.Fatal("Send without STARTTLS to a remote host: no error")
			}
			if mail.Permanent(err) {
				t.Errorf("Permanent(%v) = true, want false (a configuration to fix, then retry)", err)
			}
			if !strings.Contains(err.Error(), "mail.example.test:"+port) {
				t.Errorf("error %q does not name the server", err)
			}
			transcript := srv.Transcript()
			if !strings.Contains(transcript, "EHLO") {
				t.Fatalf("the client never reached the server:\n%s", transcript)
			}
			for _, sent := range []string{"AUTH", "MAIL FROM"} {
				if regexp.MustCompile(`(?m)^` + sent).MatchString(transcript) { // the server's lines start with a code
					t.Errorf("the client sent %s without TLS:\n%s", sent, transcript)
				}
			}
			if got := srv.Messages(); len(got) != 0 {
				t.Errorf("server received %d message(s), want none", len(got))
			}
		})
	}
}

func TestSMTPRemoteHostWithSTARTTLSAndAuth(t *testing.T) {
	srv := mailtest.Start(t, mailtest.WithSTARTTLS(), mailtest.WithAuth("mailer", password))
	_, port, _ := net.SplitHostPort(srv.Addr())
	tlsConfig := srv.TLSConfig()
	tlsConfig.ServerName = "localhost" // the test certificate's name, not mail.example.test
	s := newSMTP(t, "smtp://mailer:"+url.QueryEscape(password)+"@mail.example.test:"+port,
		mail.WithDialAddr(srv.Addr()), mail.WithTLSConfig(tlsConfig))
	m := render(t)
	if err := send(t, s, m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	checkReceived(t, srv.Wait(t, 1, 5*time.Second)[0], m, true, "mailer")
}

func TestSMTPAuthOverSTARTTLS(t *testing.T) {
	srv := mailtest.Start(t, mailtest.WithSTARTTLS(), mailtest.WithAuth("mailer", password))
	if !strings.Contains(srv.URL(), "%40") {
		t.Fatalf("URL() = %q: the password is not percent-encoded", srv.URL())
	}
	m := render(t)
	if err := send(t, newSMTP(t, srv.URL(), mail.WithTLSConfig(srv.TLSConfig())), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	checkReceived(t, srv.Wait(t, 1, 5*time.Second)[0], m, true, "mailer")
}

func TestSMTPAuthInClearOnLoopback(t *testing.T) {
	srv := mailtest.Start(t, mailtest.WithAuth("mailer", password))
	m := render(t)
	if err := send(t, newSMTP(t, srv.URL()), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	checkReceived(t, srv.Wait(t, 1, 5*time.Second)[0], m, false, "mailer")
}

func TestSMTPWrongPassword(t *testing.T) {
	srv := mailtest.Start(t, mailtest.WithSTARTTLS(), mailtest.WithAuth("mailer", "the right one"))
	rawURL := "smtp://mailer:" + url.QueryEscape(password) + "@" + srv.Addr()
	err := send(t, newSMTP(t, rawURL, mail.WithTLSConfig(srv.TLSConfig())), render(t))
	if err == nil {
		t.Fatal("Send with a wrong password: no error")
	}
	// 535 is a 5xx, but about our configuration, not the message: retry (slowly).
	if mail.Permanent(err) {
		t.Errorf("Permanent(%v) = true, want false", err)
	}
	if !strings.Contains(err.Error(), "535") {
		t.Errorf("error %q does not carry the server's answer", err)
	}
	if got := srv.Messages(); len(got) != 0 {
		t.Errorf("server received %d message(s), want none", len(got))
	}
}

func TestSMTPImplicitTLS(t *testing.T) {
	srv := mailtest.Start(t, mailtest.WithImplicitTLS(), mailtest.WithAuth("mailer", password))
	if !strings.HasPrefix(srv.URL(), "smtps://") {
		t.Fatalf("URL() = %q, want smtps://", srv.URL())
	}
	m := render(t)
	if err := send(t, newSMTP(t, srv.URL(), mail.WithTLSConfig(srv.TLSConfig())), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	checkReceived(t, srv.Wait(t, 1, 5*time.Second)[0], m, true, "mailer")
}

func TestSMTPImplicitTLSRemoteHost(t *testing.T) {
	// smtps to a remote host: AUTH PLAIN must still be chosen (go-mail's own
	// autodiscovery would not, not having done the TLS itself).
	srv := mailtest.Start(t, mailtest.WithImplicitTLS(), mailtest.WithAuth("mailer", password))
	_, port, _ := net.SplitHostPort(srv.Addr())
	tlsConfig := srv.TLSConfig()
	tlsConfig.ServerName = "localhost"
	s := newSMTP(t, "smtps://mailer:"+url.QueryEscape(password)+"@mail.example.test:"+port,
		mail.WithDialAddr(srv.Addr()), mail.WithTLSConfig(tlsConfig))
	m := render(t)
	if err := send(t, s, m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	checkReceived(t, srv.Wait(t, 1, 5*time.Second)[0], m, true, "mailer")
}

func TestSMTPPermanent(t *testing.T) {
	tests := []struct {
		cmd       mailtest.Command
		code      int
		permanent bool
	}{
		{mailtest.Data, 451, false},
		{mailtest.Data, 452, false},
		{mailtest.Data, 550, true},
		{mailtest.Data, 554, true},
		{mailtest.Rcpt, 450, false},
		{mailtest.Rcpt, 550, true},
		{mailtest.Rcpt, 553, true},
		{mailtest.Mail, 451, false},
		// A refused sender is MAIL_FROM's fault, the same for every message.
		{mailtest.Mail, 550, false},
	}
	for _, tt := range tests {
		t.Run(string(tt.cmd)+" "+strconv.Itoa(tt.code), func(t *testing.T) {
			srv := mailtest.Start(t)
			srv.FailNextAt(tt.cmd, 1, tt.code)
			s := newSMTP(t, srv.URL())
			err := send(t, s, render(t))
			if err == nil {
				t.Fatal("Send: no error")
			}
			if got := mail.Permanent(err); got != tt.permanent {
				t.Errorf("Permanent(%v) = %v, want %v", err, got, tt.permanent)
			}
			if got := srv.Messages(); len(got) != 0 {
				t.Errorf("server kept %d message(s), want none", len(got))
			}
			// The failure was for one attempt only: the retry goes through.
			if err := send(t, s, render(t)); err != nil {
				t.Errorf("second Send: %v", err)
			}
		})
	}
}

func TestSMTPFailNextDefaultsToData(t *testing.T) {
	srv := mailtest.Start(t)
	srv.FailNext(2, 451)
	s := newSMTP(t, srv.URL())
	for i := range 2 {
		if err := send(t, s, render(t)); err == nil || mail.Permanent(err) {
			t.Errorf("Send %d = %v, want a temporary error", i+1, err)
		}
	}
	if err := send(t, s, render(t)); err != nil {
		t.Errorf("third Send: %v", err)
	}
	srv.Wait(t, 1, 5*time.Second)
}

func TestSMTPConnectionRefusedThenBack(t *testing.T) {
	srv := mailtest.Start(t, mailtest.WithAuth("mailer", password))
	s := newSMTP(t, srv.URL())
	srv.Stop()
	err := send(t, s, render(t))
	if err == nil || mail.Permanent(err) {
		t.Fatalf("Send to a stopped server = %v, want a temporary error", err)
	}
	var opErr *net.OpError
	if !errors.As(err, &opErr) {
		t.Errorf("error %q is not a *net.OpError", err)
	}
	srv.Restart()
	if err := send(t, s, render(t)); err != nil {
		t.Fatalf("Send after Restart: %v", err)
	}
	srv.Wait(t, 1, 5*time.Second)
}

func TestSMTPDialsTheURLsAddress(t *testing.T) {
	// Nothing listens on these ports here: each Send fails to connect, and the
	// error says where it tried.
	tests := []struct{ url, addr string }{
		{"smtp://127.0.0.1", "127.0.0.1:587"},
		{"smtps://127.0.0.1", "127.0.0.1:465"},
		{"smtp://127.0.0.1:1", "127.0.0.1:1"},
		{"smtp://[::1]:1", "[::1]:1"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			err := send(t, newSMTP(t, tt.url), render(t))
			var opErr *net.OpError
			if !errors.As(err, &opErr) || opErr.Op != "dial" || opErr.Addr == nil || opErr.Addr.String() != tt.addr {
				t.Fatalf("Send = %v, want a failure to dial %s", err, tt.addr)
			}
			if mail.Permanent(err) {
				t.Errorf("Permanent(%v) = true, want false", err)
			}
		})
	}
}

func TestSMTPTimeout(t *testing.T) {
	// A server that accepts the connection and never says a word.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		var conns []net.Conn
		for {
			c, err := l.Accept()
			if err != nil {
				for _, c := range conns {
					_ = c.Close()
				}
				return
			}
			conns = append(conns, c)
		}
	}()
	s, err := mail.NewSMTP("smtp://"+l.Addr().String(), from, mail.WithTimeout(300*time.Millisecond))
	if err != nil {
		t.Fatalf("NewSMTP: %v", err)
	}
	start := time.Now()
	err = s.Send(context.Background(), render(t))
	if err == nil || mail.Permanent(err) {
		t.Fatalf("Send = %v, want a temporary error", err)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("Send took %v with a timeout of 300ms", elapsed)
	}
}

func TestSMTPContextCancelled(t *testing.T) {
	srv := mailtest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := newSMTP(t, srv.URL()).Send(ctx, render(t))
	if !errors.Is(err, context.Canceled) || mail.Permanent(err) {
		t.Errorf("Send with a cancelled context = %v, want a temporary context.Canceled", err)
	}
}

func TestSMTPHeaderInjection(t *testing.T) {
	srv := mailtest.Start(t)
	s := newSMTP(t, srv.URL())

	t.Run("recipient is refused", func(t *testing.T) {
		m := render(t)
		m.To = "jane@example.com\r\nBcc: victim@example.com"
		err := send(t, s, m)
		if !errors.Is(err, mail.ErrInvalidMessage) || !mail.Permanent(err) {
			t.Errorf("Send = %v, want a permanent ErrInvalidMessage", err)
		}
		if strings.Contains(srv.Transcript(), "MAIL FROM") {
			t.Error("the client started a transaction for an invalid recipient")
		}
	})
	t.Run("subject is folded", func(t *testing.T) {
		m := render(t)
		m.Subject = "Hello\r\nBcc: victim@example.com\r\n\r\nforged body"
		if err := send(t, s, m); err != nil {
			t.Fatalf("Send: %v", err)
		}
		r := srv.Wait(t, 1, 5*time.Second)[0]
		if len(r.To) != 1 || r.Header.Get("Bcc") != "" {
			t.Errorf("recipients %q, Bcc %q: the subject added a header", r.To, r.Header.Get("Bcc"))
		}
		if want := "Hello Bcc: victim@example.com forged body"; r.Subject != want {
			t.Errorf("Subject = %q, want %q", r.Subject, want)
		}
	})
}

func TestSMTPRefusesAMessageWithoutBothParts(t *testing.T) {
	srv := mailtest.Start(t)
	m := render(t)
	m.HTML = ""
	if err := send(t, newSMTP(t, srv.URL()), m); !errors.Is(err, mail.ErrInvalidMessage) {
		t.Errorf("Send = %v, want ErrInvalidMessage", err)
	}
}

func TestNewSMTPRefuses(t *testing.T) {
	tests := []struct {
		name, url, from string
		opts            []mail.SMTPOption
	}{
		{"other scheme", "http://mail.example.com", from, nil},
		{"no scheme", "mail.example.com:587", from, nil},
		{"no host", "smtp://", from, nil},
		{"opaque", "smtp:mail.example.com", from, nil},
		{"port 0", "smtp://mail.example.com:0", from, nil},
		{"port too big", "smtp://mail.example.com:65536", from, nil},
		{"query", "smtp://mail.example.com?tls=off", from, nil},
		{"path", "smtp://mail.example.com/x", from, nil},
		{"password without user", "smtp://:" + password + "@mail.example.com", from, nil},
		{"unencoded password", "smtp://mailer:" + password + "@mail.example.com", from, nil},
		{"bad escape in password", "smtp://mailer:" + "pw%zz" + password + "@mail.example.com", from, nil},
		{"no from", "smtp://mail.example.com", "", nil},
		{"bad from", "smtp://mail.example.com", "noreply", nil},
		{"two froms", "smtp://mail.example.com", "a@example.com, b@example.com", nil},
		{"CRLF in from", "smtp://mail.example.com", "noreply@example.com\r\nBcc: victim@example.com", nil},
		{"zero timeout", "smtp://mail.example.com", from, []mail.SMTPOption{mail.WithTimeout(0)}},
		{"CRLF in HELO", "smtp://mail.example.com", from, []mail.SMTPOption{mail.WithHELO("a\r\nMAIL FROM:<x@y>")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := mail.NewSMTP(tt.url, tt.from, tt.opts...)
			if err == nil {
				t.Fatalf("NewSMTP = %v, want an error", s)
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("error contains the password: %v", err)
			}
		})
	}
}

func TestNewSMTPAccepts(t *testing.T) {
	for _, rawURL := range []string{
		"smtp://mail.example.com",
		"smtp://mail.example.com:25/",
		"smtps://mailer:" + url.QueryEscape(password) + "@mail.example.com",
		"smtp://[::1]:2525",
		"smtp://mailer@localhost",
	} {
		if _, err := mail.NewSMTP(rawURL, "noreply@example.com", mail.WithTLSConfig(&tls.Config{}), mail.WithHELO("app.example.com")); err != nil {
			t.Errorf("NewSMTP(%q): %v", rawURL, err)
		}
	}
}
