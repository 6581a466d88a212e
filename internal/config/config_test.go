package config_test

import (
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authgql/server/internal/config"
	"github.com/authgql/server/internal/keys"
)

const (
	secret32 = "0123456789abcdef0123456789abcdef"
	mongoURI = "mongodb://db.internal:27017/?replicaSet=rs0"
)

// env returns a getenv that reads m; unset keys read as "".
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// prodEnv returns a valid production environment plus the given overrides.
func prodEnv(overrides map[string]string) map[string]string {
	m := map[string]string{
		"APP_ENV":     "production",
		"JWT_SECRET":  secret32,
		"MONGODB_URI": mongoURI,
		"SMTP_URL":    "smtps://mailer:pw@smtp.example.com:465",
		"MAIL_FROM":   "Example <no-reply@example.com>",
		"APP_URL":     "https://app.example.com",
		"PUBLIC_URL":  "https://auth.example.com",
	}
	for k, v := range overrides {
		m[k] = v
	}
	return m
}

func load(t *testing.T, m map[string]string) config.Config {
	t.Helper()
	c, err := config.Load(env(m))
	if err != nil {
		t.Fatalf("Load(%v): got error %v, want none", m, err)
	}
	return c
}

// loadErr loads m, expects an error, and checks that its message mentions
// every string in want. It returns the message.
func loadErr(t *testing.T, m map[string]string, want ...string) string {
	t.Helper()
	c, err := config.Load(env(m))
	if err == nil {
		t.Fatalf("Load(%v): got no error, want one mentioning %q", m, want)
	}
	if !reflect.DeepEqual(c, config.Config{}) {
		t.Errorf("Load with error: got config %+v, want zero Config", c)
	}
	msg := err.Error()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("Load error: got %q, want it to mention %q", msg, w)
		}
	}
	return msg
}

func TestLoadDevelopmentDefaults(t *testing.T) {
	for _, tt := range []struct {
		name string
		env  map[string]string
	}{
		{"nothing set", map[string]string{}},
		{"APP_ENV=development", map[string]string{"APP_ENV": "development"}},
		{"blank values", map[string]string{"APP_ENV": "  ", "PORT": " ", "BCRYPT_COST": "", "HOST": "\t"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := load(t, tt.env)
			if got, want := c.Env, "development"; got != want {
				t.Errorf("Env: got %q, want %q", got, want)
			}
			if c.Production() {
				t.Errorf("Production(): got true, want false")
			}
			if got, want := c.Port, 8080; got != want {
				t.Errorf("Port: got %d, want %d", got, want)
			}
			if got, want := c.Host, "127.0.0.1"; got != want {
				t.Errorf("Host: got %q, want %q", got, want)
			}
			if got, want := c.BcryptCost, 12; got != want {
				t.Errorf("BcryptCost: got %d, want %d", got, want)
			}
			if got, want := c.AccessTokenTTL, 15*time.Minute; got != want {
				t.Errorf("AccessTokenTTL: got %v, want %v", got, want)
			}
			if got, want := c.MaxBodyBytes, int64(1<<20); got != want {
				t.Errorf("MaxBodyBytes: got %d, want %d", got, want)
			}
			if !c.Introspection {
				t.Errorf("Introspection: got false, want true in development")
			}
			if !c.Playground {
				t.Errorf("Playground: got false, want true in development")
			}
			if got, want := c.LogLevel, slog.LevelInfo; got != want {
				t.Errorf("LogLevel: got %v, want %v", got, want)
			}
			if got, want := c.MongoDatabase, "authgql"; got != want {
				t.Errorf("MongoDatabase: got %q, want %q", got, want)
			}
			if got, want := c.JWTIssuer, "http://127.0.0.1:8080"; got != want {
				t.Errorf("JWTIssuer: got %q, want %q (PUBLIC_URL's default)", got, want)
			}
			if got, want := c.JWTAlgorithm, keys.ES256; got != want {
				t.Errorf("JWTAlgorithm: got %q, want %q", got, want)
			}
			if got, want := c.JWTAudience, "authgql"; got != want {
				t.Errorf("JWTAudience: got %q, want %q", got, want)
			}
			if c.MongoURI != "" {
				t.Errorf("MongoURI: got %q, want empty (embedded database)", c.MongoURI)
			}
			if len(c.JWTSecret) != 0 {
				t.Errorf("JWTSecret: got %d bytes, want none (generated later)", len(c.JWTSecret))
			}
			wantLoopbackOnly(t, c.CORSAllowedOrigins)
			if got, want := c.ParserTokenLimit, 2000; got != want {
				t.Errorf("ParserTokenLimit: got %d, want %d", got, want)
			}
			if got, want := c.ComplexityLimit, 200; got != want {
				t.Errorf("ComplexityLimit: got %d, want %d", got, want)
			}
		})
	}
}

func TestLoadProductionRequiresSecretAndDatabase(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"neither set", map[string]string{"APP_ENV": "production"}, []string{"JWT_SECRET", "MONGODB_URI"}},
		{"blank values", map[string]string{"APP_ENV": "production", "JWT_SECRET": "", "MONGODB_URI": "   "}, []string{"JWT_SECRET", "MONGODB_URI"}},
		{"no JWT_SECRET", map[string]string{"APP_ENV": "production", "MONGODB_URI": mongoURI}, []string{"JWT_SECRET"}},
		{"no MONGODB_URI", map[string]string{"APP_ENV": "production", "JWT_SECRET": secret32}, []string{"MONGODB_URI"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := loadErr(t, tt.env, tt.want...)
			for _, key := range []string{"JWT_SECRET", "MONGODB_URI"} {
				if !slices.Contains(tt.want, key) && strings.Contains(msg, key) {
					t.Errorf("Load error: got %q, want no complaint about %s, which is set", msg, key)
				}
			}
		})
	}
}

func TestLoadProduction(t *testing.T) {
	c := load(t, prodEnv(nil))
	if got, want := c.Env, "production"; got != want {
		t.Errorf("Env: got %q, want %q", got, want)
	}
	if !c.Production() {
		t.Errorf("Production(): got false, want true")
	}
	if c.Introspection {
		t.Errorf("Introspection: got true, want false in production")
	}
	if c.Playground {
		t.Errorf("Playground: got true, want false in production")
	}
	if got, want := c.Host, "0.0.0.0"; got != want {
		t.Errorf("Host: got %q, want %q", got, want)
	}
	if got, want := string(c.JWTSecret), secret32; got != want {
		t.Errorf("JWTSecret: got %q, want %q", got, want)
	}
	if got, want := c.MongoURI, mongoURI; got != want {
		t.Errorf("MongoURI: got %q, want %q", got, want)
	}
	if got, want := c.Port, 8080; got != want {
		t.Errorf("Port: got %d, want %d", got, want)
	}
}

func TestLoadOverrides(t *testing.T) {
	c := load(t, prodEnv(map[string]string{
		"HOST":                  " 10.0.0.5 ",
		"PORT":                  " 9090 ",
		"ACCESS_TOKEN_TTL":      "5m",
		"BCRYPT_COST":           "14",
		"LOG_LEVEL":             "DEBUG",
		"MAX_BODY_BYTES":        "2048",
		"GRAPHQL_INTROSPECTION": "true",
		"GRAPHQL_PLAYGROUND":    "1",
		"JWT_ISSUER":            "https://auth.example.com",
		"JWT_AUDIENCE":          "example-api",
		"MONGODB_DATABASE":      "accounts",
	}))
	if got, want := c.Host, "10.0.0.5"; got != want {
		t.Errorf("Host: got %q, want %q", got, want)
	}
	if got, want := c.Port, 9090; got != want {
		t.Errorf("Port: got %d, want %d", got, want)
	}
	if got, want := c.AccessTokenTTL, 5*time.Minute; got != want {
		t.Errorf("AccessTokenTTL: got %v, want %v", got, want)
	}
	if got, want := c.BcryptCost, 14; got != want {
		t.Errorf("BcryptCost: got %d, want %d", got, want)
	}
	if got, want := c.LogLevel, slog.LevelDebug; got != want {
		t.Errorf("LogLevel: got %v, want %v", got, want)
	}
	if got, want := c.MaxBodyBytes, int64(2048); got != want {
		t.Errorf("MaxBodyBytes: got %d, want %d", got, want)
	}
	if !c.Introspection || !c.Playground {
		t.Errorf("Introspection, Playground: got %v, %v, want true, true", c.Introspection, c.Playground)
	}
	if got, want := c.JWTIssuer, "https://auth.example.com"; got != want {
		t.Errorf("JWTIssuer: got %q, want %q", got, want)
	}
	if got, want := c.JWTAudience, "example-api"; got != want {
		t.Errorf("JWTAudience: got %q, want %q", got, want)
	}
	if got, want := c.MongoDatabase, "accounts"; got != want {
		t.Errorf("MongoDatabase: got %q, want %q", got, want)
	}
}

func TestLoadEmptyNames(t *testing.T) {
	// Blank values fall back to the defaults rather than leaving names empty.
	c := load(t, map[string]string{"JWT_ISSUER": " ", "JWT_AUDIENCE": "", "MONGODB_DATABASE": "\t"})
	if c.JWTIssuer != c.PublicURL || c.JWTAudience != "authgql" || c.MongoDatabase != "authgql" {
		t.Errorf("JWTIssuer, JWTAudience, MongoDatabase: got %q, %q, %q, want the defaults",
			c.JWTIssuer, c.JWTAudience, c.MongoDatabase)
	}
}

// Short lifetimes are for watching a client's refresh logic work: allowed
// down to 1s in development, refused in production with the reason.
func TestShortLifetimesInDevelopmentOnly(t *testing.T) {
	c := load(t, map[string]string{"ACCESS_TOKEN_TTL": "2s", "REFRESH_TOKEN_TTL": "10s", "JWT_CLOCK_SKEW": "0s"})
	if c.AccessTokenTTL != 2*time.Second || c.RefreshTokenTTL != 10*time.Second || c.JWTClockSkew != 0 {
		t.Errorf("development: got %v, %v, %v; want 2s, 10s, 0s", c.AccessTokenTTL, c.RefreshTokenTTL, c.JWTClockSkew)
	}
	if got := load(t, nil).JWTClockSkew; got != 30*time.Second {
		t.Errorf("JWT_CLOCK_SKEW default: got %v, want 30s", got)
	}
	msg := loadErr(t, prodEnv(map[string]string{"ACCESS_TOKEN_TTL": "2s"}), "ACCESS_TOKEN_TTL", "at least 1m0s in production", `"2s"`)
	if !strings.Contains(msg, "development allows") {
		t.Errorf("the production error does not say development allows it: %s", msg)
	}
	loadErr(t, prodEnv(map[string]string{"REFRESH_TOKEN_TTL": "30m"}), "REFRESH_TOKEN_TTL", "at least 1h0m0s in production")
	if got := load(t, prodEnv(map[string]string{"ACCESS_TOKEN_TTL": "1m"})).AccessTokenTTL; got != time.Minute {
		t.Errorf("production at the floor: got %v, want 1m", got)
	}
}
