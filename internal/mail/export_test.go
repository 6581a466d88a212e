package mail

// WithDialAddr makes the client dial addr whatever the URL's host: a test server
// on 127.0.0.1 then stands in for a host the client treats as remote (TLS
// mandatory), and the test sees what the client would have sent there.
func WithDialAddr(addr string) SMTPOption {
	return func(cfg *smtpConfig) { cfg.dialAddr = addr }
}
