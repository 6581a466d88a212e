package config_test

import (
	"testing"
	"time"

	"github.com/authgql/server/internal/auth"
)

func TestLoadMailDevelopmentDefaults(t *testing.T) {
	c := load(t, map[string]string{})
	if c.SMTPURL != "" || c.MailDisabled {
		t.Errorf("SMTP_URL %q, MAIL_DISABLED %v: want no SMTP (mails as files) and mail on", c.SMTPURL, c.MailDisabled)
	}
	if c.MailFrom == "" || c.AppURL != "http://localhost:3000" {
		t.Errorf("MAIL_FROM %q, APP_URL %q: want development defaults", c.MailFrom, c.AppURL)
	}
	if c.EmailVerifyTTL != 24*time.Hour || c.PasswordResetTTL != time.Hour || c.EmailChangeTTL != time.Hour {
		t.Errorf("link lifetimes %s %s %s, want 24h 1h 1h", c.EmailVerifyTTL, c.PasswordResetTTL, c.EmailChangeTTL)
	}
	if c.MailAddressInterval != time.Minute || c.MailMaxAttempts != 10 || c.MailRate != (auth.Rate{N: 5, Per: 10 * time.Minute}) {
		t.Errorf("interval %s, attempts %d, rate %+v", c.MailAddressInterval, c.MailMaxAttempts, c.MailRate)
	}
}

func TestLoadMailProduction(t *testing.T) {
	for _, key := range []string{"SMTP_URL", "MAIL_FROM", "APP_URL"} {
		t.Run("without "+key, func(t *testing.T) {
			loadErr(t, prodEnv(map[string]string{key: ""}), "SMTP_URL, MAIL_FROM and APP_URL are required", "MAIL_DISABLED")
		})
	}
	c := load(t, prodEnv(map[string]string{"SMTP_URL": "", "MAIL_FROM": "", "APP_URL": "", "MAIL_DISABLED": "true"}))
	if !c.MailDisabled {
		t.Error("MAIL_DISABLED=true not read")
	}
	c = load(t, prodEnv(map[string]string{"APP_URL": "https://app.example.com/"}))
	if c.AppURL != "https://app.example.com" {
		t.Errorf("APP_URL %q, want the trailing slash trimmed", c.AppURL)
	}
}

func TestLoadMailRefused(t *testing.T) {
	tests := map[string]map[string]string{
		"APP_URL":                {"APP_URL": "app.example.com"},
		"APP_URL ":               {"APP_URL": "javascript:alert(1)"},
		"APP_URL  ":              {"APP_URL": "https://app.example.com/?next=x"},
		"APP_URL   ":             {"APP_URL": "https://user:pw@app.example.com"},
		"SMTP_URL":               {"SMTP_URL": "http://smtp.example.com"},
		"MAIL_MAX_ATTEMPTS":      {"MAIL_MAX_ATTEMPTS": "0"},
		"MAIL_ADDRESS_INTERVAL":  {"MAIL_ADDRESS_INTERVAL": "-1s"},
		"RATE_LIMIT_MAIL":        {"RATE_LIMIT_MAIL": "5"},
		"PASSWORD_RESET_TTL":     {"PASSWORD_RESET_TTL": "48h"},
		"EMAIL_VERIFICATION_TTL": {"EMAIL_VERIFICATION_TTL": "0s"},
	}
	for name, env := range tests {
		t.Run(name, func(t *testing.T) {
			for key := range env {
				loadErr(t, env, key)
			}
		})
	}
}

func TestLoadMailLifetimesShortInDevelopmentOnly(t *testing.T) {
	for _, key := range []string{"EMAIL_VERIFICATION_TTL", "PASSWORD_RESET_TTL", "EMAIL_CHANGE_TTL"} {
		t.Run(key, func(t *testing.T) {
			c := load(t, map[string]string{key: "2s"})
			got := map[string]time.Duration{"EMAIL_VERIFICATION_TTL": c.EmailVerifyTTL,
				"PASSWORD_RESET_TTL": c.PasswordResetTTL, "EMAIL_CHANGE_TTL": c.EmailChangeTTL}[key]
			if got != 2*time.Second {
				t.Errorf("%s=2s in development: got %s", key, got)
			}
			loadErr(t, prodEnv(map[string]string{key: "2s"}), key, "development allows")
		})
	}
}

func TestLoadSigningKeys(t *testing.T) {
	c := load(t, map[string]string{"PORT": "9000"})
	if c.PublicURL != "http://127.0.0.1:9000" || c.JWTIssuer != c.PublicURL {
		t.Errorf("development PUBLIC_URL %q and JWT_ISSUER %q, want http://127.0.0.1:9000 for both", c.PublicURL, c.JWTIssuer)
	}
	if c.JWTKeyRotation != 720*time.Hour || c.JWTKeyPublishAhead != time.Hour {
		t.Errorf("rotation %s, publish ahead %s; want 720h and 1h", c.JWTKeyRotation, c.JWTKeyPublishAhead)
	}
	c = load(t, prodEnv(map[string]string{"PUBLIC_URL": "https://auth.example.com/", "JWT_ALGORITHM": "EdDSA"}))
	if c.PublicURL != "https://auth.example.com" || c.JWTIssuer != "https://auth.example.com" || c.JWTAlgorithm != "EdDSA" {
		t.Errorf("production: PUBLIC_URL %q, JWT_ISSUER %q, JWT_ALGORITHM %q", c.PublicURL, c.JWTIssuer, c.JWTAlgorithm)
	}
	if c := load(t, prodEnv(map[string]string{"JWT_ISSUER": "authgql"})); c.JWTIssuer != "authgql" {
		t.Errorf("JWT_ISSUER set: got %q", c.JWTIssuer)
	}
	loadErr(t, prodEnv(map[string]string{"PUBLIC_URL": ""}), "PUBLIC_URL is required in production")
	loadErr(t, prodEnv(map[string]string{"PUBLIC_URL": "auth.example.com"}), "PUBLIC_URL must be")
	loadErr(t, map[string]string{"JWT_ALGORITHM": "none"}, "JWT_ALGORITHM")
	loadErr(t, map[string]string{"JWT_ALGORITHM": "HS512"}, "JWT_ALGORITHM")
	loadErr(t, map[string]string{"JWT_KEY_ROTATION": "1h", "JWT_KEY_PUBLISH_AHEAD": "2h"}, "JWT_KEY_PUBLISH_AHEAD")
	if c := load(t, map[string]string{"JWT_KEY_ROTATION": "10s", "JWT_KEY_PUBLISH_AHEAD": "2s"}); c.JWTKeyRotation != 10*time.Second {
		t.Errorf("a 10s rotation in development: got %s", c.JWTKeyRotation)
	}
	loadErr(t, prodEnv(map[string]string{"JWT_KEY_ROTATION": "10s"}), "JWT_KEY_ROTATION", "development allows")
}
