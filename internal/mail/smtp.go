package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
)

const (
	defaultSMTPPort  = 587
	defaultSMTPSPort = 465
	defaultTimeout   = 30 * time.Second
)

type smtpConfig struct {
	timeout time.Duration
	tls     *tls.Config
	helo    string
	// dialAddr, when set, is dialled instead of host:port from the URL. Only tests
	// set it (export_test.go): it lets a test server on 127.0.0.1 stand in for a
	// host the client must treat as remote.
	dialAddr string
}

// SMTPOption configures NewSMTP.
type SMTPOption func(*smtpConfig)

// WithTLSConfig replaces the TLS configuration used for STARTTLS and smtps (tests
// pass one whose RootCAs trust a self-signed certificate). Its ServerName defaults
// to the URL's host, its MinVersion to TLS 1.2. nil keeps the default.
func WithTLSConfig(c *tls.Config) SMTPOption {
	return func(cfg *smtpConfig) { cfg.tls = c }
}

// WithTimeout bounds one Send, from dialling to the server's answer to the
// message (default 30s).
func WithTimeout(d time.Duration) SMTPOption {
	return func(cfg *smtpConfig) { cfg.timeout = d }
}

// WithHELO sets the name given in EHLO/HELO (default: the machine's host name).
func WithHELO(name string) SMTPOption {
	return func(cfg *smtpConfig) { cfg.helo = name }
}

// smtpSender delivers over SMTP, one connection per Send: mail volume is low, and
// a fresh connection cannot be found half-closed by the server.
type smtpSender struct {
	host, addr  string // addr is host:port, the only part of the URL errors show
	port        int
	implicitTLS bool
	loopback    bool
	user, pass  string
	from        *mail.Address
	cfg         smtpConfig
}

// NewSMTP parses SMTP_URL and returns a Sender:
//
//	smtp://[user:pass@]host[:port]   port 587; STARTTLS, required unless host is "localhost" or a loopback IP
//	smtps://[user:pass@]host[:port]  port 465; TLS from the first byte
//
// Credentials, URL-decoded, are sent with SMTP AUTH (PLAIN, else LOGIN, else what
// go-mail discovers), only over TLS or to a loopback host: with STARTTLS required
// for every other host, a password never crosses the network in clear. from is
// MAIL_FROM, "Name <address>" or a bare address. No error returned by NewSMTP or
// by Send contains the password. The Sender is safe for concurrent use.
func NewSMTP(rawURL, from string, opts ...SMTPOption) (Sender, error) {
	s := &smtpSender{cfg: smtpConfig{timeout: defaultTimeout}}
	for _, opt := range opts {
		opt(&s.cfg)
	}
	if s.cfg.timeout <= 0 {
		return nil, errors.New("mail: the SMTP timeout must be positive")
	}
	if strings.ContainsAny(s.cfg.helo, "\r\n ") {
		return nil, errors.New("mail: the HELO name cannot contain spaces, CR or LF")
	}
	if err := s.parseURL(rawURL); err != nil {
		return nil, err
	}
	var err error
	if s.from, err = parseFrom(from); err != nil {
		return nil, err
	}
	tlsConfig := &tls.Config{}
	if s.cfg.tls != nil {
		tlsConfig = s.cfg.tls.Clone()
	}
	if tlsConfig.ServerName == "" {
		tlsConfig.ServerName = s.host
	}
	if tlsConfig.MinVersion == 0 {
		tlsConfig.MinVersion = tls.VersionTLS12
	}
	s.cfg.tls = tlsConfig
	// Build a client once, so that go-mail refuses a bad option here and not at
	// the first mail.
	if _, err := s.client(context.Background()); err != nil {
		return nil, s.errorf("configure", err)
	}
	return s, nil
}

func (s *smtpSender) parseURL(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Parse quotes the whole URL, password included, in its error.
		return errors.New("mail: SMTP_URL is not a valid URL (characters such as @ : / % in the password must be percent-encoded)")
	}
	switch u.Scheme {
	case "smtp":
		s.port = defaultSMTPPort
	case "smtps":
		s.port, s.implicitTLS = defaultSMTPSPort, true
	default:
		return fmt.Errorf("mail: SMTP_URL: the scheme must be smtp or smtps, not %q", u.Scheme)
	}
	s.host = u.Hostname()
	if u.Opaque != "" || s.host == "" {
		return errors.New("mail: SMTP_URL: no host (the form is smtp://[user:pass@]host[:port])")
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("mail: SMTP_URL: a path, query or fragment is not supported")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("mail: SMTP_URL: invalid port %q", p)
		}
		s.port = n
	}
	if u.User != nil {
		s.user = u.User.Username()
		s.pass, _ = u.User.Password()
		if s.user == "" {
			return errors.New("mail: SMTP_URL: credentials need a user name")
		}
	}
	s.addr = net.JoinHostPort(s.host, strconv.Itoa(s.port))
	s.loopback = isLoopback(s.host)
	return nil
}

// isLoopback reports whether host is "localhost" or a loopback IP. Names are not
// resolved: a name that points at 127.0.0.1 still gets mandatory TLS.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// client returns a go-mail client for one Send bounded by ctx.
func (s *smtpSender) client(ctx context.Context) (*gomail.Client, error) {
	// TLS: the dialer does smtps itself (below); for smtp:// go-mail does
	// STARTTLS, mandatory unless the host is loopback. With TLSMandatory go-mail
	// stops after EHLO, before AUTH or MAIL, if the server does not offer it.
	policy := gomail.TLSMandatory
	switch {
	case s.implicitTLS:
		policy = gomail.NoTLS // already TLS: no STARTTLS inside it
	case s.loopback:
		policy = gomail.TLSOpportunistic
	}
	opts := []gomail.Option{
		gomail.WithPort(s.port),
		gomail.WithTimeout(s.cfg.timeout),
		gomail.WithTLSPolicy(policy),
		gomail.WithTLSConfig(s.cfg.tls),
		gomail.WithDialContextFunc(s.dialer(ctx)),
		// One message per connection: no NOOP before it, no RSET after it (a failed
		// RSET after an accepted message would read as a failed send).
		gomail.WithoutNoop(),
		gomail.WithoutRset(),
	}
	if s.cfg.helo != "" {
		opts = append(opts, gomail.WithHELO(s.cfg.helo))
	}
	if s.user != "" {
		// go-mail's own autodiscovery (SMTPAuthAutoDiscover) never picks PLAIN or
		// LOGIN on a connection it did not encrypt itself, and it does not know that
		// our dialer did smtps; so name them first. PLAIN and LOGIN still refuse to
		// send the password without TLS except to localhost; the -NOENC variants,
		// which skip that check, are only used for a loopback host, where the
		// password never leaves the machine.
		mechs := []gomail.SMTPAuthType{gomail.SMTPAuthPlain, gomail.SMTPAuthLogin}
		if s.loopback {
			mechs = []gomail.SMTPAuthType{gomail.SMTPAuthPlainNoEnc, gomail.SMTPAuthLoginNoEnc}
		}
		opts = append(opts,
			gomail.WithOpportunisticSMTPAuth(mechs...),
			gomail.WithUsername(s.user),
			gomail.WithPassword(s.pass),
		)
	}
	return gomail.NewClient(s.host, opts...)
}

// dialer connects for go-mail, and does the TLS handshake itself for smtps.
func (s *smtpSender) dialer(sendCtx context.Context) gomail.DialContextFunc {
	// Not go-mail's address: it joins host and port without brackets for IPv6.
	addr := s.addr
	if s.cfg.dialAddr != "" {
		addr = s.cfg.dialAddr
	}
	return func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		// go-mail bounds each command with a deadline but, once connected, no longer
		// watches the context; closing the connection when the Send's context ends
		// bounds the whole conversation (and closes the connection go-mail leaves
		// open when it gives up at EHLO or STARTTLS).
		context.AfterFunc(sendCtx, func() { _ = conn.Close() })
		if !s.implicitTLS {
			return conn, nil
		}
		tc := tls.Client(conn, s.cfg.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = conn.Close()
			return nil, err
		}
		return tc, nil
	}
}

// Send delivers m in one SMTP session.
func (s *smtpSender) Send(ctx context.Context, m Message) error {
	msg, err := newMsg(s.from, m)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.timeout)
	defer cancel()

	c, err := s.client(ctx)
	if err != nil {
		return s.errorf("configure", err)
	}
	// Dial, send and close by hand rather than DialAndSendWithContext: that one
	// reports a failed QUIT as a failed send, after the server has taken the
	// message, and the caller would send it twice.
	conn, err := c.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return s.errorf("connect", s.withContext(ctx, err))
	}
	err = c.SendWithSMTPClient(conn, msg)
	_ = c.CloseWithSMTPClient(conn)
	if err != nil && !msg.IsDelivered() {
		return s.errorf("send", s.withContext(ctx, err))
	}
	return nil
}

// withContext adds the context's error, when it ended the Send, to err (a
// "use of closed network connection" on its own would not say why).
func (s *smtpSender) withContext(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		return fmt.Errorf("%w: %w", ctxErr, err)
	}
	return err
}

// errorf wraps err with the server's host and port. go-mail's errors carry no
// credentials (its debug log, which would, is off); the password is still cut
// out of the text should a server ever echo it back.
func (s *smtpSender) errorf(op string, err error) error {
	err = fmt.Errorf("mail: smtp %s %s: %w", op, s.addr, err)
	if s.pass != "" && strings.Contains(err.Error(), s.pass) {
		return redacted{err: err, secret: s.pass}
	}
	return err
}

// redacted is err with secret blanked out of its text; errors.Is and errors.As
// still see err.
type redacted struct {
	err    error
	secret string
}

func (r redacted) Error() string { return strings.ReplaceAll(r.err.Error(), r.secret, "[redacted]") }
func (r redacted) Unwrap() error { return r.err }
