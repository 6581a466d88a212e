// Package config reads the server's configuration from the environment.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/authgql/server/internal/auth"
	"github.com/authgql/server/internal/federation"
	"github.com/authgql/server/internal/keys"
	"github.com/authgql/server/internal/token"
)

// Config is every setting of the server. Only server.go reads it; everything
// else receives plain values.
type Config struct {
	Env  string // "development" or "production"
	Host string
	Port int

	MongoURI      string // empty: start the embedded database (development only)
	MongoDatabase string
	DataDir       string

	JWTSecret []byte // empty in development: generated and kept under DataDir
	// JWTAlgorithm signs access tokens: ES256 (default), EdDSA, RS256 with
	// keys kept in MongoDB and published as a JWKS, or HS256 with JWTSecret.
	JWTAlgorithm       keys.Algorithm
	JWTKeyRotation     time.Duration // how long a key signs
	JWTKeyPublishAhead time.Duration // a successor is in the JWKS this long before it signs
	// PublicURL is the server's public base URL (discovery, JWKS, callbacks).
	PublicURL      string
	JWTIssuer      string
	JWTAudience    string
	AccessTokenTTL time.Duration
	JWTClockSkew   time.Duration // leeway for exp, nbf and iat
	BcryptCost     int

	RefreshTokenTTL      time.Duration // sliding lifetime of a session
	RefreshReuseInterval time.Duration // replaced refresh token still honoured this long
	RevocationSync       time.Duration // how often revocations from other instances are read
	UserCacheTTL         time.Duration // how long a user read by ID is reused

	CORSAllowedOrigins []string
	// AuthCookie puts a browser's refresh token in an HttpOnly cookie
	// (AUTH_COOKIE=on); AuthCookieDomain shares it with sibling subdomains and
	// AuthCookieSameSite is "Strict" or "Lax".
	AuthCookie         bool
	AuthCookieDomain   string
	AuthCookieSameSite string
	// WebSockets (graphql-transport-ws on /query).
	WSMaxPerIP, WSMaxPerUser, WSMaxSubscriptions int
	WSPingInterval                               time.Duration // keep-alive pings (15 s; tests shorten it)
	LogLevel                                     slog.Level
	BootstrapAdmins                              []string // usernames given ADMIN at start

	MaxBodyBytes     int64
	ParserTokenLimit int
	ComplexityLimit  int
	DepthLimit       int
	AliasLimit       int
	Introspection    bool
	Playground       bool

	// Abuse limits. A zero Rate is unlimited.
	LoginRate, RegisterRate, RefreshRate auth.Rate
	TrustedProxies                       []netip.Prefix
	ThrottleAfter                        int
	ThrottleBase, ThrottleMax            time.Duration
	HashConcurrency                      int
	HashQueueTimeout                     time.Duration

	// HTTP server.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	MaxHeaderBytes                                            int
	TLSCertFile, TLSKeyFile                                   string
	PprofAddr                                                 string // empty: no profiler
	MetricsAddr                                               string // empty: no metrics
	// AddrFile, when set, receives the address the server listens on (for
	// PORT=0); it is removed at shutdown.
	AddrFile string

	// Mail: account recovery and email ownership.
	SMTPURL             string // empty: mails are .eml files under DataDir/mail (development)
	MailFrom            string
	AppURL              string // the front end: links are AppURL/verify-email?token=…
	MailDisabled        bool
	MailMaxAttempts     int
	MailRetryBase       time.Duration
	MailTemplatesDir    string
	MailAddressInterval time.Duration
	MailRate            auth.Rate
	EmailVerifyTTL      time.Duration
	PasswordResetTTL    time.Duration
	EmailChangeTTL      time.Duration

	// Passkeys (WebAuthn; off when WebAuthnRPID is empty): the relying party
	// ID credentials are bound to, its name shown by authenticators, and the
	// exact origins of the pages that may use them; WebAuthnAnyLoopback also
	// accepts http://localhost:<port> and http://127.0.0.1:<port>
	// (development without WEBAUTHN_ORIGINS).
	WebAuthnRPID        string
	WebAuthnRPName      string
	WebAuthnOrigins     []string
	WebAuthnAnyLoopback bool

	// OIDCProviders are the identity providers users may sign in with
	// (OIDC_PROVIDERS), each complete: presets filled in, scopes and display
	// name defaulted. Empty: no federation.
	OIDCProviders []federation.Provider
}

// Production reports whether the server runs with production defaults.
func (c Config) Production() bool { return c.Env == "production" }

// Load parses, defaults and validates the configuration, reporting every
// problem at once.
func Load(getenv func(string) string) (Config, error) {
	p := parser{getenv: getenv}
	env := p.oneOf("APP_ENV", "development", "development", "production")
	p.prod = env == "production"
	c := Config{
		Env:                  env,
		Port:                 p.intRange("PORT", 8080, 0, 65535),
		MongoURI:             p.str("MONGODB_URI", ""),
		MongoDatabase:        p.str("MONGODB_DATABASE", "authgql"),
		DataDir:              p.str("DATA_DIR", "./data"),
		JWTSecret:            []byte(getenv("JWT_SECRET")),
		JWTAlgorithm:         keys.Algorithm(p.oneOf("JWT_ALGORITHM", "ES256", "ES256", "EdDSA", "RS256", "HS256")),
		JWTKeyRotation:       p.ttl("JWT_KEY_ROTATION", 720*time.Hour, time.Hour, 8760*time.Hour),
		JWTKeyPublishAhead:   p.ttl("JWT_KEY_PUBLISH_AHEAD", time.Hour, 5*time.Minute, 720*time.Hour),
		JWTAudience:          p.str("JWT_AUDIENCE", "authgql"),
		AccessTokenTTL:       p.ttl("ACCESS_TOKEN_TTL", 15*time.Minute, time.Minute, 24*time.Hour),
		JWTClockSkew:         p.duration("JWT_CLOCK_SKEW", 30*time.Second, 0, 5*time.Minute),
		BcryptCost:           p.intRange("BCRYPT_COST", 12, 10, 15),
		RefreshTokenTTL:      p.ttl("REFRESH_TOKEN_TTL", 30*24*time.Hour, time.Hour, 365*24*time.Hour),
		RefreshReuseInterval: p.duration("REFRESH_REUSE_INTERVAL", 10*time.Second, 0, time.Minute),
		RevocationSync:       p.duration("REVOCATION_SYNC_INTERVAL", time.Second, 100*time.Millisecond, 10*time.Second),
		CORSAllowedOrigins:   p.list("CORS_ALLOWED_ORIGINS"),
		AuthCookie:           p.oneOf("AUTH_COOKIE", "off", "off", "on") == "on",
		AuthCookieDomain:     strings.ToLower(strings.TrimPrefix(p.str("AUTH_COOKIE_DOMAIN", ""), ".")),
		AuthCookieSameSite:   p.oneOf("AUTH_COOKIE_SAMESITE", "Strict", "Strict", "Lax"),
		WSMaxPerIP:           p.intRange("WS_MAX_CONNECTIONS_PER_IP", 50, 1, 1000000),
		WSMaxPerUser:         p.intRange("WS_MAX_CONNECTIONS_PER_USER", 10, 1, 1000000),
		WSMaxSubscriptions:   p.intRange("WS_MAX_SUBSCRIPTIONS", 20, 1, 10000),
		WSPingInterval:       15 * time.Second,
		LogLevel:             p.level("LOG_LEVEL", slog.LevelInfo),
		BootstrapAdmins:      p.list("BOOTSTRAP_ADMINS"),
		UserCacheTTL:         p.duration("USER_CACHE_TTL", 2*time.Second, 0, time.Minute),
		MaxBodyBytes:         int64(p.intRange("MAX_BODY_BYTES", 1<<20, 1<<10, 64<<20)),
		ParserTokenLimit:     p.intRange("GRAPHQL_TOKEN_LIMIT", 2000, 100, 100000),
		ComplexityLimit:      p.intRange("GRAPHQL_COMPLEXITY_LIMIT", 200, 10, 100000),
		DepthLimit:           p.intRange("GRAPHQL_DEPTH_LIMIT", 15, 2, 100),
		AliasLimit:           p.intRange("GRAPHQL_ALIAS_LIMIT", 20, 0, 10000),

		LoginRate:        p.rate("RATE_LIMIT_LOGIN", auth.Rate{N: 30, Per: time.Minute}),
		RegisterRate:     p.rate("RATE_LIMIT_REGISTER", auth.Rate{N: 20, Per: 10 * time.Minute}),
		RefreshRate:      p.rate("RATE_LIMIT_REFRESH", auth.Rate{N: 60, Per: time.Minute}),
		TrustedProxies:   p.prefixes("TRUSTED_PROXIES"),
		ThrottleAfter:    p.intRange("LOGIN_THROTTLE_AFTER", 5, 1, 1000),
		ThrottleBase:     p.duration("LOGIN_THROTTLE_BASE", time.Second, 10*time.Millisecond, time.Hour),
		ThrottleMax:      p.duration("LOGIN_THROTTLE_MAX", 15*time.Minute, time.Second, 24*time.Hour),
		HashConcurrency:  p.intRange("HASH_CONCURRENCY", runtime.NumCPU(), 1, 1024),
		HashQueueTimeout: p.duration("HASH_QUEUE_TIMEOUT", time.Second, time.Millisecond, time.Minute),

		ReadHeaderTimeout: p.duration("HTTP_READ_HEADER_TIMEOUT", 5*time.Second, 100*time.Millisecond, time.Minute),
		ReadTimeout:       p.duration("HTTP_READ_TIMEOUT", 15*time.Second, 100*time.Millisecond, 10*time.Minute),
		WriteTimeout:      p.duration("HTTP_WRITE_TIMEOUT", 30*time.Second, 100*time.Millisecond, 10*time.Minute),
		IdleTimeout:       p.duration("HTTP_IDLE_TIMEOUT", 2*time.Minute, time.Second, time.Hour),
		MaxHeaderBytes:    p.intRange("MAX_HEADER_BYTES", 64<<10, 4<<10, 1<<20),
		TLSCertFile:       p.str("TLS_CERT_FILE", ""),
		TLSKeyFile:        p.str("TLS_KEY_FILE", ""),
		PprofAddr:         p.str("PPROF_ADDR", ""),
		MetricsAddr:       p.str("METRICS_ADDR", ""),
		AddrFile:          p.str("ADDR_FILE", ""),

		SMTPURL:             p.str("SMTP_URL", ""),
		MailFrom:            p.str("MAIL_FROM", ""),
		AppURL:              strings.TrimRight(p.str("APP_URL", ""), "/"),
		MailDisabled:        p.boolean("MAIL_DISABLED", false),
		MailMaxAttempts:     p.intRange("MAIL_MAX_ATTEMPTS", 10, 1, 100),
		MailRetryBase:       p.duration("MAIL_RETRY_BASE", 5*time.Second, 100*time.Millisecond, time.Hour),
		MailTemplatesDir:    p.str("MAIL_TEMPLATES_DIR", ""),
		MailAddressInterval: p.duration("MAIL_ADDRESS_INTERVAL", time.Minute, 0, 24*time.Hour),
		MailRate:            p.rate("RATE_LIMIT_MAIL", auth.Rate{N: 5, Per: 10 * time.Minute}),
		EmailVerifyTTL:      p.ttl("EMAIL_VERIFICATION_TTL", 24*time.Hour, 5*time.Minute, 30*24*time.Hour),
		PasswordResetTTL:    p.ttl("PASSWORD_RESET_TTL", time.Hour, 5*time.Minute, 24*time.Hour),
		EmailChangeTTL:      p.ttl("EMAIL_CHANGE_TTL", time.Hour, 5*time.Minute, 7*24*time.Hour),
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		p.fail("TLS_CERT_FILE and TLS_KEY_FILE go together: set both to serve TLS, or neither")
	}
	prod := c.Production()
	c.Host = p.str("HOST", map[bool]string{true: "0.0.0.0", false: "127.0.0.1"}[prod])
	c.PublicURL = strings.TrimRight(p.str("PUBLIC_URL", ""), "/")
	if c.PublicURL == "" && !prod {
		c.PublicURL = fmt.Sprintf("http://%s", net.JoinHostPort(c.Host, strconv.Itoa(c.Port)))
	}
	c.JWTIssuer = p.str("JWT_ISSUER", c.PublicURL)
	if c.JWTKeyPublishAhead >= c.JWTKeyRotation {
		p.fail(fmt.Sprintf("JWT_KEY_PUBLISH_AHEAD (%s) must be shorter than JWT_KEY_ROTATION (%s)", c.JWTKeyPublishAhead, c.JWTKeyRotation))
	}
	c.Introspection = p.boolean("GRAPHQL_INTROSPECTION", !prod)
	c.Playground = p.boolean("GRAPHQL_PLAYGROUND", !prod)
	if c.CORSAllowedOrigins == nil && !prod {
		// Front-end dev servers (Vite, Next.js, ...) run on another local port.
		c.CORSAllowedOrigins = []string{"http://localhost:*", "http://127.0.0.1:*"}
	}

	if c.Playground && !c.Introspection {
		p.fail("GRAPHQL_PLAYGROUND needs GRAPHQL_INTROSPECTION: the Playground loads the schema by introspection")
	}
	if len(c.JWTSecret) > 0 && len(c.JWTSecret) < token.MinSecretBytes {
		p.fail(fmt.Sprintf("JWT_SECRET must be at least %d bytes", token.MinSecretBytes))
	}
	if prod {
		if len(c.JWTSecret) == 0 {
			p.fail(fmt.Sprintf("JWT_SECRET is required in production (at least %d random bytes)", token.MinSecretBytes))
		}
		if c.MongoURI == "" {
			p.fail("MONGODB_URI is required in production (the embedded database is for development)")
		}
		if c.PublicURL == "" {
			p.fail("PUBLIC_URL is required in production: the server's public base URL, e.g. https://auth.example.com " +
				"(the tokens' issuer and the address of its JWKS)")
		}
		if !c.MailDisabled && (c.SMTPURL == "" || c.MailFrom == "" || c.AppURL == "") {
			p.fail("SMTP_URL, MAIL_FROM and APP_URL are required in production (verification and password reset " +
				"mails); set MAIL_DISABLED=true to run without mail")
		}
	}
	if !prod {
		if c.MailFrom == "" {
			c.MailFrom = "authgql <no-reply@localhost>"
		}
		if c.AppURL == "" {
			c.AppURL = "http://localhost:3000"
		}
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			p.fail(fmt.Sprintf("PUBLIC_URL must be the server's base URL like https://auth.example.com, got %q", c.PublicURL))
		}
	}
	if c.AppURL != "" {
		if u, err := url.Parse(c.AppURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			p.fail(fmt.Sprintf("APP_URL must be the front end's base URL like https://app.example.com, got %q", c.AppURL))
		}
	}
	if c.SMTPURL != "" && !strings.HasPrefix(c.SMTPURL, "smtp://") && !strings.HasPrefix(c.SMTPURL, "smtps://") {
		p.fail("SMTP_URL must be smtp://[user:pass@]host:port or smtps://[user:pass@]host:port")
	}
	for _, o := range c.CORSAllowedOrigins {
		if o != "*" && !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") {
			p.fail(fmt.Sprintf("CORS_ALLOWED_ORIGINS: %q is not an origin like https://app.example.com", o))
		}
	}
	p.checkCookie(c)
	p.webAuthn(&c)
	p.oidcProviders(&c)
	if c.JWTIssuer == "" && c.PublicURL != "" || c.JWTAudience == "" {
		p.fail("JWT_ISSUER and JWT_AUDIENCE must not be empty")
	}
	if c.MongoDatabase == "" {
		p.fail("MONGODB_DATABASE must not be empty")
	}
	if err := errors.Join(p.errs...); err != nil {
		return Config{}, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return c, nil
}

// checkCookie refuses cookie settings that browsers would ignore or that
// would let any site use the cookie.
func (p *parser) checkCookie(c Config) {
	if c.AuthCookieDomain != "" {
		if !validCookieDomain(c.AuthCookieDomain) {
			p.fail(fmt.Sprintf("AUTH_COOKIE_DOMAIN must be a host name like example.com (no scheme, port or path), got %q",
				c.AuthCookieDomain))
		} else if u, err := url.Parse(c.PublicURL); c.PublicURL != "" && err == nil && !domainMatch(u.Hostname(), c.AuthCookieDomain) {
			p.fail(fmt.Sprintf("AUTH_COOKIE_DOMAIN %q must be PUBLIC_URL's host or one of its parents (PUBLIC_URL is %q): "+
				"browsers ignore a cookie for another domain", c.AuthCookieDomain, c.PublicURL))
		}
	}
	if !c.AuthCookie {
		return
	}
	for _, o := range c.CORSAllowedOrigins {
		if anyOrigin(o) {
			p.fail(fmt.Sprintf("CORS_ALLOWED_ORIGINS %q allows every site, which AUTH_COOKIE=on cannot allow: the refresh "+
				"cookie is sent with credentials; list the front ends' origins", o))
		}
	}
}

// webAuthn sets and checks the passkey settings. By default the origins are
// the exact CORS_ALLOWED_ORIGINS (patterns are not origins) and PUBLIC_URL's,
// the RP ID the first one's host (localhost in development, where any
// loopback origin is accepted as well); a defaulted origin that is not on the
// RP ID's domain is left out, since browsers refuse it anyway.
func (p *parser) webAuthn(c *Config) {
	c.WebAuthnRPName = p.str("WEBAUTHN_RP_NAME", "authgql")
	if n := len([]rune(c.WebAuthnRPName)); n > 64 {
		p.fail(fmt.Sprintf("WEBAUTHN_RP_NAME has at most 64 characters, got %d", n))
	}
	explicit := p.list("WEBAUTHN_ORIGINS")
	var origins []string
	if explicit != nil {
		for _, o := range explicit {
			if !exactOrigin(o) {
				p.fail(fmt.Sprintf("WEBAUTHN_ORIGINS: %q is not an exact origin like https://app.example.com "+
					"(scheme and host, with a port if not the default; no path or pattern)", o))
				continue
			}
			origins = append(origins, strings.ToLower(o))
		}
	} else {
		candidates := slices.Clone(c.CORSAllowedOrigins)
		if u, err := url.Parse(c.PublicURL); c.PublicURL != "" && err == nil {
			candidates = append(candidates, u.Scheme+"://"+u.Host)
		}
		for _, o := range candidates {
			if o = strings.ToLower(o); exactOrigin(o) && !slices.Contains(origins, o) {
				origins = append(origins, o)
			}
		}
		c.WebAuthnAnyLoopback = !p.prod
	}
	rpID := strings.ToLower(p.str("WEBAUTHN_RP_ID", ""))
	switch {
	case rpID != "":
		if !validRPID(rpID) {
			p.fail(fmt.Sprintf("WEBAUTHN_RP_ID must be a domain name like example.com (no scheme, port, path or IP "+
				"address), got %q", rpID))
			return
		}
	case !p.prod && explicit == nil:
		rpID = "localhost"
	case len(origins) > 0:
		u, _ := url.Parse(origins[0])
		rpID = u.Hostname()
		if !validRPID(rpID) {
			p.fail(fmt.Sprintf("WEBAUTHN_RP_ID: the default, the host of %q, is not a domain name: set WEBAUTHN_RP_ID",
				origins[0]))
			return
		}
	}
	kept := origins[:0:0]
	for _, o := range origins {
		u, _ := url.Parse(o)
		host := u.Hostname()
		switch {
		case !p.prod && loopbackHost(host), domainMatch(host, rpID) && (u.Scheme == "https" || loopbackHost(host)):
			kept = append(kept, o)
		case explicit == nil: // a default that cannot carry this RP ID's passkeys
		case u.Scheme != "https" && !loopbackHost(host):
			p.fail(fmt.Sprintf("WEBAUTHN_ORIGINS: %q must use https (browsers allow WebAuthn over http only on "+
				"localhost)", o))
		default:
			p.fail(fmt.Sprintf("WEBAUTHN_ORIGINS: %q is not on WEBAUTHN_RP_ID %q or a subdomain of it: browsers refuse "+
				"passkeys of that RP ID there", o, rpID))
		}
	}
	if len(kept) == 0 && !c.WebAuthnAnyLoopback {
		if explicit != nil || p.str("WEBAUTHN_RP_ID", "") != "" {
			p.fail(fmt.Sprintf("WEBAUTHN_ORIGINS: no https origin on WEBAUTHN_RP_ID %q: list the front ends' exact "+
				"origins", rpID))
		}
		return // nothing configured and nothing to default to: passkeys are off
	}
	c.WebAuthnRPID, c.WebAuthnOrigins = rpID, kept
}

// oidcProviders reads OIDC_PROVIDERS, a comma-separated list of provider
// names, and for each NAME the OIDC_NAME_* settings, where NAME is upper-cased
// with hyphens as underscores (my-idp: OIDC_MY_IDP_CLIENT_ID). google,
// microsoft and github are presets that need only a client ID and secret
// (github also reads OIDC_GITHUB_URL and OIDC_GITHUB_API_URL); any other name
// is an OpenID Connect provider at OIDC_NAME_ISSUER.
func (p *parser) oidcProviders(c *Config) {
	seen := map[string]bool{}
	for _, name := range p.list("OIDC_PROVIDERS") {
		if !validProviderName(name) {
			p.fail(fmt.Sprintf("OIDC_PROVIDERS: %q is not a provider name: 1 to 32 lower-case letters, digits and hyphens "+
				"(it is the path /auth/NAME)", name))
			continue
		}
		if seen[name] {
			p.fail(fmt.Sprintf("OIDC_PROVIDERS: %q is listed twice", name))
			continue
		}
		seen[name] = true
		c.OIDCProviders = append(c.OIDCProviders, p.oidcProvider(name))
	}
	if len(c.OIDCProviders) > 0 && p.prod && (c.PublicURL == "" || c.AppURL == "") {
		p.fail("PUBLIC_URL and APP_URL are required in production with OIDC_PROVIDERS: providers call back to " +
			"PUBLIC_URL/auth/NAME/callback and the browser returns to APP_URL/auth/callback")
	}
}

func (p *parser) oidcProvider(name string) federation.Provider {
	key := "OIDC_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")) + "_"
	pr, preset := federation.Preset(name)
	if !preset {
		pr = federation.Provider{Name: name, Kind: federation.KindOIDC, Scopes: slices.Clone(federation.DefaultScopes),
			DisplayName: name}
	}
	switch issuer := p.str(key+"ISSUER", ""); {
	case preset && issuer != "":
		p.fail(fmt.Sprintf("%sISSUER: %s is a preset with its own issuer; for another issuer, list the provider under "+
			"another name", key, name))
	case !preset && issuer == "":
		p.fail(fmt.Sprintf("%sISSUER is required for provider %q (the presets are google, microsoft and github): the "+
			"issuer URL, with discovery at ISSUER/.well-known/openid-configuration", key, name))
	case !preset:
		// Kept as written: the issuer is compared exactly, trailing slash
		// included, with the discovery document's and the tokens'.
		pr.Issuer = issuer
		p.providerURL(key+"ISSUER", issuer)
	}
	pr.ClientID = p.str(key+"CLIENT_ID", "")
	pr.ClientSecret = p.str(key+"CLIENT_SECRET", "")
	if pr.ClientID == "" || pr.ClientSecret == "" {
		p.fail(fmt.Sprintf("%sCLIENT_ID and %sCLIENT_SECRET are required for provider %q: the client registered at the "+
			"provider, with the callback URL PUBLIC_URL/auth/%s/callback", key, key, name, name))
	}
	if v := p.str(key+"SCOPES", ""); v != "" {
		pr.Scopes = strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' })
	}
	switch {
	case pr.Kind == federation.KindOIDC && !slices.Contains(pr.Scopes, "openid"):
		p.fail(fmt.Sprintf("%sSCOPES must include openid (without it there is no ID token), got %q", key,
			strings.Join(pr.Scopes, " ")))
	case pr.Kind == federation.KindGitHub && !slices.Contains(pr.Scopes, "user:email"):
		p.fail(fmt.Sprintf("%sSCOPES must include user:email (the verified address is read from /user/emails), got %q",
			key, strings.Join(pr.Scopes, " ")))
	}
	pr.DisplayName = p.str(key+"DISPLAY_NAME", pr.DisplayName)
	if n := len([]rune(pr.DisplayName)); n > 64 {
		p.fail(fmt.Sprintf("%sDISPLAY_NAME has at most 64 characters, got %d", key, n))
	}
	if pr.Kind == federation.KindGitHub {
		pr.GitHubURL = strings.TrimRight(p.str(key+"URL", pr.GitHubURL), "/")
		pr.GitHubAPIURL = strings.TrimRight(p.str(key+"API_URL", pr.GitHubAPIURL), "/")
		p.providerURL(key+"URL", pr.GitHubURL)
		p.providerURL(key+"API_URL", pr.GitHubAPIURL)
	}
	return pr
}

// providerURL checks a provider's address: https, or http outside production
// (a provider on the developer's machine).
func (p *parser) providerURL(key, v string) {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "https" && (u.Scheme != "http" || p.prod)) || u.Host == "" || u.RawQuery != "" ||
		u.Fragment != "" || u.User != nil {
		p.fail(fmt.Sprintf("%s must be an https URL like https://idp.example.com (http only outside production), got %q",
			key, v))
	}
}

// validProviderName reports whether name is 1 to 32 of [a-z0-9-].
func validProviderName(name string) bool {
	if name == "" || len(name) > 32 {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// exactOrigin reports whether o is an origin: http or https, a host, an
// optional port, nothing else.
func exactOrigin(o string) bool {
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" ||
		u.RawQuery != "" || u.Fragment != "" || u.User != nil || strings.ContainsAny(o, "*?#") {
		return false
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		return err == nil && n > 0 && n <= 65535
	}
	return !strings.HasSuffix(u.Host, ":")
}

// validRPID reports whether id can be a WebAuthn relying party ID: a domain
// name (not an IP address).
func validRPID(id string) bool {
	if _, err := netip.ParseAddr(id); err == nil {
		return false
	}
	return id == "localhost" || validCookieDomain(id)
}

func loopbackHost(h string) bool { return h == "localhost" || h == "127.0.0.1" || h == "::1" }

// anyOrigin reports whether a CORS_ALLOWED_ORIGINS entry matches every site:
// "*", or a pattern whose host is a wildcard over a top-level domain or more
// (https://*, http://*:*, https://*.com).
func anyOrigin(o string) bool {
	if o == "*" {
		return true
	}
	_, rest, ok := strings.Cut(o, "://")
	if !ok {
		return false
	}
	host := rest
	if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		host = rest[:i]
	}
	// *.example.com is one site's subdomains; *.com or * is everyone.
	return host == "" || strings.HasPrefix(host, "*") && !strings.Contains(strings.TrimPrefix(host, "*."), ".")
}

func validCookieDomain(d string) bool {
	if len(d) > 253 || !strings.Contains(d, ".") && d != "localhost" {
		return false
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// domainMatch is RFC 6265 5.1.3: host is domain or a subdomain of it.
func domainMatch(host, domain string) bool {
	host = strings.ToLower(host)
	return host == domain || strings.HasSuffix(host, "."+domain)
}

type parser struct {
	getenv func(string) string
	prod   bool
	errs   []error
}

func (p *parser) fail(msg string) { p.errs = append(p.errs, errors.New("  "+msg)) }

func (p *parser) str(key, def string) string {
	if v := strings.TrimSpace(p.getenv(key)); v != "" {
		return v
	}
	return def
}

func (p *parser) oneOf(key, def string, allowed ...string) string {
	v := p.str(key, def)
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	p.fail(fmt.Sprintf("%s must be one of %s, got %q", key, strings.Join(allowed, ", "), v))
	return def
}

func (p *parser) intRange(key string, def, lo, hi int) int {
	v := p.str(key, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		p.fail(fmt.Sprintf("%s must be a whole number from %d to %d, got %q", key, lo, hi, v))
		return def
	}
	return n
}

func (p *parser) duration(key string, def, lo, hi time.Duration) time.Duration {
	v := p.str(key, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < lo || d > hi {
		p.fail(fmt.Sprintf("%s must be a duration from %s to %s (like 15m), got %q", key, lo, hi, v))
		return def
	}
	return d
}

// devFloor is the shortest lifetime any setting takes in development, where a
// front-end developer wants to watch a token expire and be refreshed.
const devFloor = time.Second

// ttl is duration for lifetimes: in development they may be as short as
// devFloor; production keeps prodLo and says so.
func (p *parser) ttl(key string, def, prodLo, hi time.Duration) time.Duration {
	if !p.prod {
		return p.duration(key, def, devFloor, hi)
	}
	v := p.str(key, "")
	if d, err := time.ParseDuration(v); err == nil && d >= devFloor && d < prodLo {
		p.fail(fmt.Sprintf("%s must be at least %s in production (development allows down to %s), got %q", key, prodLo, devFloor, v))
		return def
	}
	return p.duration(key, def, prodLo, hi)
}

func (p *parser) boolean(key string, def bool) bool {
	v := p.str(key, "")
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.fail(fmt.Sprintf("%s must be true or false, got %q", key, v))
		return def
	}
	return b
}

func (p *parser) list(key string) []string {
	var out []string
	for _, s := range strings.Split(p.getenv(key), ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, strings.TrimRight(s, "/"))
		}
	}
	return out
}

// rate parses "N/duration" (e.g. 30/1m) or "off".
func (p *parser) rate(key string, def auth.Rate) auth.Rate {
	v := p.str(key, "")
	if v == "" {
		return def
	}
	if v == "off" {
		return auth.Rate{}
	}
	n, per, ok := strings.Cut(v, "/")
	count, err1 := strconv.Atoi(n)
	d, err2 := time.ParseDuration(per)
	if !ok || err1 != nil || err2 != nil || count < 1 || d < time.Second {
		p.fail(fmt.Sprintf("%s must be like 30/1m (requests per duration, at least 1s) or off, got %q", key, v))
		return def
	}
	return auth.Rate{N: count, Per: d}
}

// prefixes parses a comma-separated list of IP addresses and CIDR ranges.
func (p *parser) prefixes(key string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range p.list(key) {
		if pfx, err := netip.ParsePrefix(s); err == nil {
			out = append(out, pfx.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			p.fail(fmt.Sprintf("%s: %q is not an IP address or CIDR range", key, s))
			continue
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out
}

func (p *parser) level(key string, def slog.Level) slog.Level {
	v := p.str(key, "")
	if v == "" {
		return def
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(v)); err != nil {
		p.fail(fmt.Sprintf("%s must be debug, info, warn or error, got %q", key, v))
		return def
	}
	return l
}
