package api_test

import (
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
)

func TestRegisterValidation(t *testing.T) {
	long := strings.Repeat("a", 243) + "@example.com" // 255 bytes
	tests := []struct {
		name, username, email, password string
		field, reason                   string
	}{
		{"empty username", "  ", "a@example.com", testPassword, "username", "required"},
		{"short username", "ab", "a@example.com", testPassword, "username", "too_short"},
		{"long username", strings.Repeat("a", 33), "a@example.com", testPassword, "username", "too_long"},
		{"username with space", "al ice", "a@example.com", testPassword, "username", "invalid_format"},
		{"username with @", "al@ice", "a@example.com", testPassword, "username", "invalid_format"},
		{"username with unicode", "alïce", "a@example.com", testPassword, "username", "invalid_format"},
		{"regex username", "a.*$", "a@example.com", testPassword, "username", "invalid_format"},
		{"empty email", "alice", "", testPassword, "email", "required"},
		{"email without domain dot", "alice", "alice@example", testPassword, "email", "invalid_format"},
		{"email with display name", "alice", "Alice <alice@example.com>", testPassword, "email", "invalid_format"},
		{"two addresses", "alice", "a@example.com, b@example.com", testPassword, "email", "invalid_format"},
		{"email too long", "alice", long, testPassword, "email", "too_long"},
		{"empty password", "alice", "a@example.com", "", "password", "required"},
		{"short password", "alice", "a@example.com", "seven77", "password", "too_short"},
		{"7 runes in 14 bytes", "alice", "a@example.com", "ääääääa", "password", "too_short"},
		{"73 bytes", "alice", "a@example.com", strings.Repeat("x", 73), "password", "too_long"},
		{"huge password", "alice", "a@example.com", strings.Repeat("x", 100000), "password", "too_long"},
		{"common password", "alice", "a@example.com", "Password123", "password", "too_common"},
		{"password equals username", "alice_wonder", "a@example.com", "Alice_Wonder", "password", "matches_identity"},
		{"password equals email", "alice", "alice@example.com", "ALICE@example.com", "password", "matches_identity"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			res := e.register(t, tc.username, tc.email, tc.password)
			if res.Status != http.StatusOK {
				t.Fatalf("status = %d, want 200", res.Status)
			}
			if got := res.code(t); got != "BAD_USER_INPUT" {
				t.Fatalf("code = %q, want BAD_USER_INPUT: %s", got, res.Raw)
			}
			if got := res.ext("field"); got != tc.field {
				t.Errorf("field = %q, want %q", got, tc.field)
			}
			if got := res.ext("reason"); got != tc.reason {
				t.Errorf("reason = %q, want %q", got, tc.reason)
			}
			if string(res.Data["register"]) != "" && string(res.Data["register"]) != "null" {
				t.Errorf("data.register = %s, want null", res.Data["register"])
			}
			if strings.Contains(res.Raw, tc.password) && tc.password != "" {
				t.Errorf("response echoes the password: %s", res.Raw)
			}
			if n := e.countUsers(t); n != 0 {
				t.Errorf("%d users stored, want 0", n)
			}
		})
	}
}

func TestRegisterRejectsMalformedInput(t *testing.T) {
	tests := []struct {
		name string
		vars map[string]any
	}{
		{"operator injection", map[string]any{"input": map[string]any{"username": map[string]any{"$ne": nil}, "email": "a@example.com", "password": testPassword}}},
		{"unknown field", map[string]any{"input": map[string]any{"username": "alice", "email": "a@example.com", "password": testPassword, "isAdmin": true}}},
		{"missing field", map[string]any{"input": map[string]any{"username": "alice", "email": "a@example.com"}}},
		{"null password", map[string]any{"input": map[string]any{"username": "alice", "email": "a@example.com", "password": nil}}},
		{"list as string", map[string]any{"input": map[string]any{"username": []string{"a", "b"}, "email": "a@example.com", "password": testPassword}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			res := e.post(t, "", registerMutation, tc.vars)
			if got := res.code(t); got != "GRAPHQL_VALIDATION_FAILED" && got != "BAD_USER_INPUT" {
				t.Fatalf("code = %q, want a validation code: %s", got, res.Raw)
			}
			if n := e.countUsers(t); n != 0 {
				t.Errorf("%d users stored, want 0", n)
			}
		})
	}
}

func TestRegisterDuplicateInAnotherCase(t *testing.T) {
	e := newEnv(t)
	e.mustRegister(t, "Bob", "bob@example.com")
	tests := []struct {
		name, username, email, field string
	}{
		{"same username", "Bob", "other@example.com", "username"},
		{"username in other case", "bOB", "other@example.com", "username"},
		{"email in other case", "robert", "BOB@EXAMPLE.COM", "email"},
		{"email padded", "robert", "  bob@example.com ", "email"},
		{"both taken", "BOB", "Bob@Example.com", "username"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := e.register(t, tc.username, tc.email, testPassword)
			if got := res.code(t); got != "BAD_USER_INPUT" {
				t.Fatalf("code = %q, want BAD_USER_INPUT: %s", got, res.Raw)
			}
			if got, want := res.ext("field"), tc.field; got != want {
				t.Errorf("field = %q, want %q", got, want)
			}
			if got := res.ext("reason"); got != "taken" {
				t.Errorf("reason = %q, want taken", got)
			}
			for _, leak := range []string{"E11000", "dup key", "duplicate key", "username_key", "email_key", "index"} {
				if strings.Contains(res.Raw, leak) {
					t.Errorf("response leaks %q: %s", leak, res.Raw)
				}
			}
			if n := e.countUsers(t); n != 1 {
				t.Errorf("%d users stored, want 1", n)
			}
		})
	}
}

func TestConcurrentRegistrationsOfOneName(t *testing.T) {
	e := newEnv(t)
	const n = 20
	var wg sync.WaitGroup
	results := make([]gqlResponse, n)
	for i := range n {
		wg.Go(func() {
			// One name in many letter cases, each with its own email.
			name := "carol"
			if i%2 == 1 {
				name = "CAROL"
			}
			results[i] = e.register(t, name, "carol"+string(rune('a'+i))+"@example.com", testPassword)
		})
	}
	wg.Wait()
	var ok int
	var codes []string
	for _, r := range results {
		if len(r.Errors) == 0 {
			ok++
			continue
		}
		codes = append(codes, r.code(t)+"/"+r.ext("field")+"/"+r.ext("reason"))
	}
	if ok != 1 {
		t.Fatalf("%d registrations succeeded, want exactly 1", ok)
	}
	sort.Strings(codes)
	for _, c := range codes {
		if c != "BAD_USER_INPUT/username/taken" {
			t.Errorf("loser got %s, want BAD_USER_INPUT/username/taken", c)
		}
	}
	if got := e.countUsers(t); got != 1 {
		t.Errorf("%d users stored, want 1", got)
	}
}
