// Package config reads the server's configuration from the environment.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
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

	JWTSecret      []byte // empty in development: generated and kept under DataDir
	JWTIssuer      string
	JWTAudience    string
	AccessTokenTTL time.Duration
	BcryptCost     int

	RefreshTokenTTL      time.Duration // sliding lifetime of a session
	RefreshReuseInterval time.Duration // replaced refresh token still honoured this long
	RevocationSync       time.Duration // how often revocations from other instances are read

	CORSAllowedOrigins []string
	LogLevel           slog.Level

	MaxBodyBytes     int64
	ParserTokenLimit int
	ComplexityLimit  int
	Introspection    bool
	Playground       bool
}

// Production reports whether the server runs with production defaults.
func (c Config) Production() bool { return c.Env == "production" }

const minSecretBytes = 32

// Load parses, defaults and validates the configuration, reporting every
// problem at once.
func Load(getenv func(string) string) (Config, error) {
	p := parser{getenv: getenv}
	c := Config{
		Env:                  p.oneOf("APP_ENV", "development", "development", "production"),
		Port:                 p.intRange("PORT", 8080, 0, 65535),
		MongoURI:             p.str("MONGODB_URI", ""),
		MongoDatabase:        p.str("MONGODB_DATABASE", "authgql"),
		DataDir:              p.str("DATA_DIR", "./data"),
		JWTSecret:            []byte(getenv("JWT_SECRET")),
		JWTIssuer:            p.str("JWT_ISSUER", "authgql"),
		JWTAudience:          p.str("JWT_AUDIENCE", "authgql"),
		AccessTokenTTL:       p.duration("ACCESS_TOKEN_TTL", 15*time.Minute, time.Minute, 24*time.Hour),
		BcryptCost:           p.intRange("BCRYPT_COST", 12, 10, 15),
		RefreshTokenTTL:      p.duration("REFRESH_TOKEN_TTL", 30*24*time.Hour, time.Hour, 365*24*time.Hour),
		RefreshReuseInterval: p.duration("REFRESH_REUSE_INTERVAL", 10*time.Second, 0, time.Minute),
		RevocationSync:       p.duration("REVOCATION_SYNC_INTERVAL", time.Second, 100*time.Millisecond, 10*time.Second),
		CORSAllowedOrigins:   p.list("CORS_ALLOWED_ORIGINS"),
		LogLevel:             p.level("LOG_LEVEL", slog.LevelInfo),
		MaxBodyBytes:         int64(p.intRange("MAX_BODY_BYTES", 1<<20, 1<<10, 64<<20)),
		ParserTokenLimit:     p.intRange("GRAPHQL_TOKEN_LIMIT", 2000, 100, 100000),
		ComplexityLimit:      p.intRange("GRAPHQL_COMPLEXITY_LIMIT", 200, 10, 100000),
	}
	prod := c.Production()
	c.Host = p.str("HOST", map[bool]string{true: "0.0.0.0", false: "127.0.0.1"}[prod])
	c.Introspection = p.boolean("GRAPHQL_INTROSPECTION", !prod)
	c.Playground = p.boolean("GRAPHQL_PLAYGROUND", !prod)
	if c.CORSAllowedOrigins == nil && !prod {
		// Front-end dev servers (Vite, Next.js, ...) run on another local port.
		c.CORSAllowedOrigins = []string{"http://localhost:*", "http://127.0.0.1:*"}
	}

	if c.Playground && !c.Introspection {
		p.fail("GRAPHQL_PLAYGROUND needs GRAPHQL_INTROSPECTION: the Playground loads the schema by introspection")
	}
	if len(c.JWTSecret) > 0 && len(c.JWTSecret) < minSecretBytes {
		p.fail(fmt.Sprintf("JWT_SECRET must be at least %d bytes", minSecretBytes))
	}
	if prod {
		if len(c.JWTSecret) == 0 {
			p.fail(fmt.Sprintf("JWT_SECRET is required in production (at least %d random bytes)", minSecretBytes))
		}
		if c.MongoURI == "" {
			p.fail("MONGODB_URI is required in production (the embedded database is for development)")
		}
	}
	for _, o := range c.CORSAllowedOrigins {
		if o != "*" && !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") {
			p.fail(fmt.Sprintf("CORS_ALLOWED_ORIGINS: %q is not an origin like https://app.example.com", o))
		}
	}
	if c.JWTIssuer == "" || c.JWTAudience == "" {
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

type parser struct {
	getenv func(string) string
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
