package config_test

import (
	"log/slog"
	"testing"
)

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
