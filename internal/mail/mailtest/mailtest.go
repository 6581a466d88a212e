// Package mailtest runs an in-process SMTP server (go-smtp) for tests: plain,
// STARTTLS or implicit TLS, with or without AUTH PLAIN, that keeps what it
// accepts, can refuse on demand, and can go away and come back on the same port.
package mailtest

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Received is one message the server accepted.
type Received struct {
	From     string   // envelope sender (MAIL FROM)
	To       []string // envelope recipients (RCPT TO)
	Data     []byte   // the message as received
	Header   mail.Header
	Subject  string // decoded (RFC 2047)
	Text     string // the text/plain part, transfer encoding undone
	HTML     string // the text/html part, transfer encoding undone
	TLS      bool   // whether the session was encrypted when the message came
	AuthUser string // the user that authenticated, "" if none
}

// Command names the SMTP command FailNextAt answers with a failure.
type Command string

const (
	Mail Command = "MAIL" // MAIL FROM
	Rcpt Command = "RCPT" // RCPT TO
	Data Command = "DATA" // the end of DATA, after the message was sent
)

// Option configures Start.
type Option func(*Server)

// WithSTARTTLS offers STARTTLS with a self-signed certificate, made at start, for
// 127.0.0.1, ::1 and "localhost". TLSConfig returns a client config that trusts it.
func WithSTARTTLS() Option { return func(s *Server) { s.startTLS = true } }

// WithImplicitTLS serves smtps: TLS from the first byte, same certificate.
func WithImplicitTLS() Option { return func(s *Server) { s.implicitTLS = true } }

// WithAuth offers AUTH PLAIN (also without TLS, this being a test server) and
// refuses MAIL FROM until a client has authenticated as user with pass.
func WithAuth(user, pass string) Option {
	return func(s *Server) { s.user, s.pass = user, pass }
}

// Server is an SMTP server listening on 127.0.0.1.
type Server struct {
	t                     testing.TB
	startTLS, implicitTLS bool
	user, pass            string
	serverTLS, clientTLS  *tls.Config
	addr                  string

	mu         sync.Mutex
	srv        *smtp.Server // nil while stopped
	listener   net.Listener
	msgs       []Received
	arrived    chan struct{} // closed and replaced when a message arrives
	fail       map[Command]failure
	transcript bytes.Buffer
}

type failure struct{ n, code int }

// Start starts a server on 127.0.0.1 and a free port; t.Cleanup stops it.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{t: t, arrived: make(chan struct{}), fail: make(map[Command]failure)}
	for _, opt := range opts {
		opt(s)
	}
	if s.startTLS || s.implicitTLS {
		var err error
		if s.serverTLS, s.clientTLS, err = selfSigned(); err != nil {
			t.Fatalf("mailtest: certificate: %v", err)
		}
	}
	if err := s.listen("127.0.0.1:0"); err != nil {
		t.Fatalf("mailtest: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) listen(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if s.implicitTLS {
		l = tls.NewListener(l, s.serverTLS)
	}
	srv := smtp.NewServer(backend{s})
	srv.Domain = "localhost"
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.MaxMessageBytes = 1 << 20
	srv.AllowInsecureAuth = true
	srv.ErrorLog = log.New(io.Discard, "", 0)
	srv.Debug = transcriptWriter{s}
	if s.startTLS {
		srv.TLSConfig = s.serverTLS
	}
	s.mu.Lock()
	s.srv, s.listener, s.addr = srv, l, l.Addr().String()
	s.mu.Unlock()
	go func() { _ = srv.Serve(l) }()
	return nil
}

// Addr returns "127.0.0.1:port".
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// URL returns smtp://127.0.0.1:port, or smtps:// with WithImplicitTLS, with the
// credentials of WithAuth (percent-encoded).
func (s *Server) URL() string {
	u := url.URL{Scheme: "smtp", Host: s.Addr()}
	if s.implicitTLS {
		u.Scheme = "smtps"
	}
	if s.user != "" {
		u.User = url.UserPassword(s.user, s.pass)
	}
	return u.String()
}

// TLSConfig returns a client config whose RootCAs trust the server's certificate,
// or nil if the server does no TLS.
func (s *Server) TLSConfig() *tls.Config {
	if s.clientTLS == nil {
		return nil
	}
	return s.clientTLS.Clone()
}

// Messages returns a copy of what the server accepted so far.
func (s *Server) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.msgs...)
}

// Wait waits until the server has accepted n messages, and returns them all; it
// fails t if they do not come within timeout.
func (s *Server) Wait(t testing.TB, n int, timeout time.Duration) []Received {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		msgs, arrived := append([]Received(nil), s.msgs...), s.arrived
		s.mu.Unlock()
		if len(msgs) >= n {
			return msgs
		}
		select {
		case <-arrived:
		case <-deadline.C:
			t.Fatalf("mailtest: %d message(s) after %v, want %d", len(msgs), timeout, n)
			return nil
		}
	}
}

// FailNext answers the end of the next n DATA commands with code (451, 550 ...),
// after the message was sent: the server does not keep it.
func (s *Server) FailNext(n int, code int) { s.FailNextAt(Data, n, code) }

// FailNextAt answers the next n commands cmd with code.
func (s *Server) FailNextAt(cmd Command, n int, code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail[cmd] = failure{n: n, code: code}
}

// injected returns the failure to answer cmd with, if one is due.
func (s *Server) injected(cmd Command) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.fail[cmd]
	if f.n <= 0 {
		return nil
	}
	f.n--
	s.fail[cmd] = f
	return &smtp.SMTPError{Code: f.code, EnhancedCode: smtp.EnhancedCodeNotSet, Message: "mailtest: injected failure"}
}

// Transcript returns everything said on every connection so far, both ways, as
// go-smtp's debug log has it (AUTH lines included), for tests that must prove
// what a client did not send.
func (s *Server) Transcript() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.transcript.String()
}

type transcriptWriter struct{ s *Server }

func (w transcriptWriter) Write(p []byte) (int, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	return w.s.transcript.Write(p)
}

// Stop closes the listener and every open connection, to simulate an outage.
// Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	srv, l := s.srv, s.listener
	s.srv, s.listener = nil, nil
	s.mu.Unlock()
	if srv != nil {
		// go-smtp closes only the listeners its Serve goroutine has registered,
		// which it may not have done yet: close ours too.
		_ = l.Close()
		_ = srv.Close()
	}
}

// Restart listens again on the same port after Stop; it fails the test (so call
// it from the test's goroutine) if the server is running or the port was taken.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	running := s.srv != nil
	s.mu.Unlock()
	if running {
		s.t.Fatal("mailtest: Restart while running")
	}
	if err := s.listen(s.Addr()); err != nil {
		s.t.Fatalf("mailtest: restart: %v", err)
	}
}

func (s *Server) record(r Received) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, r)
	close(s.arrived)
	s.arrived = make(chan struct{})
}

type backend struct{ s *Server }

func (b backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{s: b.s, conn: c}, nil
}

// session is one SMTP session; go-smtp starts a new one after STARTTLS.
type session struct {
	s        *Server
	conn     *smtp.Conn
	authUser string
	from     string
	to       []string
}

func (ss *session) AuthMechanisms() []string {
	if ss.s.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	if ss.s.user == "" || mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if user != ss.s.user || pass != ss.s.pass || (identity != "" && identity != user) {
			return smtp.ErrAuthFailed
		}
		ss.authUser = user
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.user != "" && ss.authUser == "" {
		return smtp.ErrAuthRequired
	}
	if err := ss.s.injected(Mail); err != nil {
		return err
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := ss.s.injected(Rcpt); err != nil {
		return err
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if err := ss.s.injected(Data); err != nil {
		return err
	}
	_, isTLS := ss.conn.TLSConnectionState()
	rec := Received{
		From: ss.from, To: append([]string(nil), ss.to...), Data: data, TLS: isTLS, AuthUser: ss.authUser,
	}
	parse(&rec)
	ss.s.record(rec)
	return nil
}

func (ss *session) Reset() { ss.from, ss.to = "", nil }

func (ss *session) Logout() error { return nil }

// parse fills Header, Subject, Text and HTML from Data, as far as it can.
func parse(r *Received) {
	m, err := mail.ReadMessage(bytes.NewReader(r.Data))
	if err != nil {
		return
	}
	r.Header = m.Header
	var dec mime.WordDecoder
	if r.Subject, err = dec.DecodeHeader(m.Header.Get("Subject")); err != nil {
		r.Subject = m.Header.Get("Subject")
	}
	parsePart(r, m.Header.Get("Content-Type"), m.Header.Get("Content-Transfer-Encoding"), m.Body)
}

func parsePart(r *Received, contentType, encoding string, body io.Reader) {
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		mediaType = "text/plain"
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		// NextPart undoes quoted-printable by itself.
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err != nil {
				return
			}
			parsePart(r, p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p)
		}
	}
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, body) // skips line breaks
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return
	}
	switch mediaType {
	case "text/plain":
		r.Text = string(b)
	case "text/html":
		r.HTML = string(b)
	}
}

// selfSigned makes a certificate for 127.0.0.1, ::1 and localhost, and the server
// and client configs that use and trust it.
func selfSigned() (server, client *tls.Config, err error) {
	cert, err := newCertificate()
	if err != nil {
		return nil, nil, fmt.Errorf("make certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}
