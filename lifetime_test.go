package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// A front-end developer watching their refresh logic: ACCESS_TOKEN_TTL=2s and
// JWT_CLOCK_SKEW=0s start in development, and an issued token is refused
// about 2 s later.
func TestShortAccessTokenInDevelopment(t *testing.T) {
	env := map[string]string{"PORT": "0", "HOST": "127.0.0.1", "DATA_DIR": t.TempDir(), "BCRYPT_COST": "10",
		"ACCESS_TOKEN_TTL": "2s", "JWT_CLOCK_SKEW": "0s"}
	base, _, stop := start(t, env)
	defer func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	}()
	res := gql(t, base, "", `mutation { register(input: {username: "dev", email: "dev@example.com", password: "`+fixturePassword+`"}) { accessToken expiresIn } }`, nil)
	tok := field(t, res, "register", "accessToken")
	if n := res["data"].(map[string]any)["register"].(map[string]any)["expiresIn"]; n != float64(2) {
		t.Fatalf("expiresIn = %v, want 2", n)
	}
	issued := time.Now()
	if r := gql(t, base, tok, `{ me { id } }`, nil); r["errors"] != nil {
		t.Fatalf("fresh token refused: %v", r)
	}
	for {
		r := gql(t, base, tok, `{ me { id } }`, nil)
		if r["errors"] != nil {
			reason := r["errors"].([]any)[0].(map[string]any)["extensions"].(map[string]any)["reason"]
			if reason != "token_expired" {
				t.Fatalf("refused with %v, want token_expired", r)
			}
			// exp has one-second resolution: refused between 1 and 3 s after issue.
			if d := time.Since(issued); d < time.Second || d > 3*time.Second {
				t.Fatalf("refused %v after issue, want about 2s", d)
			}
			return
		}
		if time.Since(issued) > 5*time.Second {
			t.Fatal("a 2s token is still accepted after 5s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Production keeps its floors and says why.
func TestShortAccessTokenRefusedInProduction(t *testing.T) {
	var out bytes.Buffer
	err := run(t.Context(), []string{"server"}, fakeEnv(map[string]string{
		"APP_ENV": "production", "JWT_SECRET": strings.Repeat("k", 32), "MONGODB_URI": "mongodb://127.0.0.1:1",
		"ACCESS_TOKEN_TTL": "2s"}), &out, &out)
	if err == nil || !strings.Contains(err.Error(), "ACCESS_TOKEN_TTL must be at least 1m0s in production") {
		t.Fatalf("run = %v, want the production floor named", err)
	}
}
