package config_test

import (
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authgql/server/internal/config"
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
			if got, want := c.JWTIssuer, "authgql"; got != want {
				t.Errorf("JWTIssuer: got %q, want %q", got, want)
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

func TestLoadJWTSecretLength(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantErr bool
	}{
		{"31 bytes in development", map[string]string{"JWT_SECRET": secret32[:31]}, true},
		{"31 bytes in production", prodEnv(map[string]string{"JWT_SECRET": secret32[:31]}), true},
		{"1 byte in development", map[string]string{"JWT_SECRET": "x"}, true},
		{"32 bytes in development", map[string]string{"JWT_SECRET": secret32}, false},
		{"32 bytes in production", prodEnv(nil), false},
		{"64 bytes in production", prodEnv(map[string]string{"JWT_SECRET": secret32 + secret32}), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.wantErr {
				loadErr(t, tt.env, "JWT_SECRET")
				return
			}
			c := load(t, tt.env)
			if got, want := string(c.JWTSecret), tt.env["JWT_SECRET"]; got != want {
				t.Errorf("JWTSecret: got %q, want %q", got, want)
			}
		})
	}
}

func TestLoadBcryptCost(t *testing.T) {
	tests := []struct {
		value   string
		want    int
		wantErr bool
	}{
		{"9", 0, true},
		{"10", 10, false},
		{"12", 12, false},
		{"15", 15, false},
		{"16", 0, true},
		{"4", 0, true},
		{"31", 0, true},
		{"-1", 0, true},
		{"twelve", 0, true},
		{"12.5", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			m := map[string]string{"BCRYPT_COST": tt.value}
			if tt.wantErr {
				loadErr(t, m, "BCRYPT_COST", tt.value)
				return
			}
			if got := load(t, m).BcryptCost; got != tt.want {
				t.Errorf("BcryptCost: got %d, want %d", got, tt.want)
			}
		})
	}
}

// TestLoadBadValue checks that each malformed or out-of-range value is reported,
// naming the variable and the value.
func TestLoadBadValue(t *testing.T) {
	tests := []struct {
		name, key, value string
	}{
		{"PORT not a number", "PORT", "http"},
		{"PORT negative", "PORT", "-1"},
		{"PORT too large", "PORT", "65536"},
		{"PORT with suffix", "PORT", "80x"},
		{"ACCESS_TOKEN_TTL without unit", "ACCESS_TOKEN_TTL", "15"},
		{"ACCESS_TOKEN_TTL not a duration", "ACCESS_TOKEN_TTL", "forever"},
		{"ACCESS_TOKEN_TTL too short even in development", "ACCESS_TOKEN_TTL", "500ms"},
		{"REFRESH_TOKEN_TTL too short even in development", "REFRESH_TOKEN_TTL", "0s"},
		{"JWT_CLOCK_SKEW negative", "JWT_CLOCK_SKEW", "-1s"},
		{"JWT_CLOCK_SKEW too long", "JWT_CLOCK_SKEW", "6m"},
		{"ACCESS_TOKEN_TTL too long", "ACCESS_TOKEN_TTL", "25h"},
		{"ACCESS_TOKEN_TTL negative", "ACCESS_TOKEN_TTL", "-15m"},
		{"LOG_LEVEL unknown", "LOG_LEVEL", "verbose"},
		{"LOG_LEVEL trace", "LOG_LEVEL", "trace"},
		{"APP_ENV unknown", "APP_ENV", "staging"},
		{"APP_ENV abbreviated", "APP_ENV", "prod"},
		{"APP_ENV wrong case", "APP_ENV", "Production"},
		{"GRAPHQL_INTROSPECTION yes", "GRAPHQL_INTROSPECTION", "yes"},
		{"GRAPHQL_INTROSPECTION on", "GRAPHQL_INTROSPECTION", "on"},
		{"GRAPHQL_PLAYGROUND maybe", "GRAPHQL_PLAYGROUND", "maybe"},
		{"MAX_BODY_BYTES too small", "MAX_BODY_BYTES", "10"},
		{"MAX_BODY_BYTES too large", "MAX_BODY_BYTES", "1073741824"},
		{"GRAPHQL_TOKEN_LIMIT too small", "GRAPHQL_TOKEN_LIMIT", "1"},
		{"GRAPHQL_COMPLEXITY_LIMIT not a number", "GRAPHQL_COMPLEXITY_LIMIT", "lots"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loadErr(t, map[string]string{tt.key: tt.value}, tt.key, `"`+tt.value+`"`)
		})
	}
}

func TestLoadLogLevel(t *testing.T) {
	tests := []struct {
		value string
		want  slog.Level
	}{
		{"debug", slog.LevelDebug},
		{"info", slog.LevelInfo},
		{"WARN", slog.LevelWarn},
		{"error", slog.LevelError},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			if got := load(t, map[string]string{"LOG_LEVEL": tt.value}).LogLevel; got != tt.want {
				t.Errorf("LogLevel: got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestLoadReportsEveryProblem(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{
			name: "four bad values",
			env: map[string]string{
				"PORT":        "abc",
				"BCRYPT_COST": "9",
				"LOG_LEVEL":   "verbose",
				"APP_ENV":     "staging",
			},
			want: []string{"PORT", `"abc"`, "BCRYPT_COST", `"9"`, "LOG_LEVEL", `"verbose"`, "APP_ENV", `"staging"`},
		},
		{
			name: "production with bad values and missing requirements",
			env: map[string]string{
				"APP_ENV":              "production",
				"ACCESS_TOKEN_TTL":     "1y",
				"GRAPHQL_PLAYGROUND":   "nope",
				"CORS_ALLOWED_ORIGINS": "example.com",
			},
			want: []string{"ACCESS_TOKEN_TTL", "GRAPHQL_PLAYGROUND", "CORS_ALLOWED_ORIGINS", "example.com", "JWT_SECRET", "MONGODB_URI"},
		},
		{
			name: "short secret and bad booleans",
			env: map[string]string{
				"JWT_SECRET":            "short",
				"GRAPHQL_INTROSPECTION": "yes",
				"PORT":                  "99999",
			},
			want: []string{"JWT_SECRET", "GRAPHQL_INTROSPECTION", "PORT"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loadErr(t, tt.env, tt.want...)
		})
	}
}

// wantLoopbackOnly asserts that a development default for CORS, if any, only
// lets in local front-end dev servers: never "*", never a remote origin.
func wantLoopbackOnly(t *testing.T, origins []string) {
	t.Helper()
	for _, o := range origins {
		if !strings.HasPrefix(o, "http://localhost:") && !strings.HasPrefix(o, "http://127.0.0.1:") {
			t.Errorf("default CORSAllowedOrigins in development: got %q, want loopback origins only", origins)
			return
		}
	}
}

func TestLoadCORSAllowedOriginsUnset(t *testing.T) {
	t.Run("production", func(t *testing.T) {
		for _, v := range []string{"", " ", ", ,"} {
			if got := load(t, prodEnv(map[string]string{"CORS_ALLOWED_ORIGINS": v})).CORSAllowedOrigins; len(got) != 0 {
				t.Errorf("CORSAllowedOrigins for %q in production: got %q, want none", v, got)
			}
		}
	})
	t.Run("development", func(t *testing.T) {
		wantLoopbackOnly(t, load(t, map[string]string{}).CORSAllowedOrigins)
	})
}

func TestLoadCORSAllowedOrigins(t *testing.T) {
	tests := []struct {
		name  string
		value string
		want  []string
	}{
		{"one", "https://app.example.com", []string{"https://app.example.com"}},
		{
			"comma list with spaces and trailing slashes",
			" https://app.example.com/ , http://localhost:3000,https://admin.example.com// ",
			[]string{"https://app.example.com", "http://localhost:3000", "https://admin.example.com"},
		},
		{"empty items skipped", ",https://a.example.com,, ,", []string{"https://a.example.com"}},
		{"wildcard", "*", []string{"*"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := load(t, map[string]string{"CORS_ALLOWED_ORIGINS": tt.value}).CORSAllowedOrigins
			if !slices.Equal(got, tt.want) {
				t.Errorf("CORSAllowedOrigins: got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLoadCORSAllowedOriginsRefused(t *testing.T) {
	tests := []struct {
		name  string
		value string
		bad   string
	}{
		{"no scheme", "example.com", "example.com"},
		{"no scheme after a good one", "https://ok.example.com, app.example.com", "app.example.com"},
		{"other scheme", "ftp://example.com", "ftp://example.com"},
		{"scheme-relative", "//example.com", "//example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loadErr(t, map[string]string{"CORS_ALLOWED_ORIGINS": tt.value}, "CORS_ALLOWED_ORIGINS", `"`+tt.bad+`"`)
		})
	}
}

func TestLoadPlaygroundNeedsIntrospection(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantErr bool
		wantPG  bool
		wantInt bool
	}{
		{"development, playground without introspection", map[string]string{
			"GRAPHQL_PLAYGROUND": "true", "GRAPHQL_INTROSPECTION": "false",
		}, true, false, false},
		{"development, introspection off only", map[string]string{
			"GRAPHQL_INTROSPECTION": "false",
		}, true, false, false},
		{"production, playground on only", prodEnv(map[string]string{
			"GRAPHQL_PLAYGROUND": "true",
		}), true, false, false},
		{"development, playground off, introspection off", map[string]string{
			"GRAPHQL_PLAYGROUND": "false", "GRAPHQL_INTROSPECTION": "false",
		}, false, false, false},
		{"development, introspection without playground", map[string]string{
			"GRAPHQL_PLAYGROUND": "false", "GRAPHQL_INTROSPECTION": "true",
		}, false, false, true},
		{"production, both on", prodEnv(map[string]string{
			"GRAPHQL_PLAYGROUND": "true", "GRAPHQL_INTROSPECTION": "true",
		}), false, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.wantErr {
				loadErr(t, tt.env, "GRAPHQL_PLAYGROUND", "GRAPHQL_INTROSPECTION")
				return
			}
			c := load(t, tt.env)
			if c.Playground != tt.wantPG || c.Introspection != tt.wantInt {
				t.Errorf("Playground, Introspection: got %v, %v, want %v, %v",
					c.Playground, c.Introspection, tt.wantPG, tt.wantInt)
			}
		})
	}
}

func TestLoadEmptyNames(t *testing.T) {
	// Blank values fall back to the defaults rather than leaving names empty.
	c := load(t, map[string]string{"JWT_ISSUER": " ", "JWT_AUDIENCE": "", "MONGODB_DATABASE": "\t"})
	if c.JWTIssuer != "authgql" || c.JWTAudience != "authgql" || c.MongoDatabase != "authgql" {
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
