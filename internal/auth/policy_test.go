package auth_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/authgql/server/internal/auth"
)

// wantBadInput asserts that err is a BAD_USER_INPUT error for field with
// reason, or nil when reason is empty.
func wantBadInput(t *testing.T, err *auth.Error, field, reason string) {
	t.Helper()
	if reason == "" {
		if err != nil {
			t.Fatalf("got error %+v, want none", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("got no error, want %s/%s", field, reason)
	}
	if got, want := err.Code, auth.CodeBadUserInput; got != want {
		t.Errorf("Code: got %q, want %q", got, want)
	}
	if got, want := err.Field, field; got != want {
		t.Errorf("Field: got %q, want %q", got, want)
	}
	if got, want := err.Reason, reason; got != want {
		t.Errorf("Reason: got %q, want %q", got, want)
	}
	if err.Message == "" {
		t.Errorf("Message: got empty, want a message for the client")
	}
	if got, want := err.Error(), "BAD_USER_INPUT: "+err.Message; got != want {
		t.Errorf("Error(): got %q, want %q", got, want)
	}
	if got, want := auth.ErrorCode(err), auth.CodeBadUserInput; got != want {
		t.Errorf("ErrorCode: got %q, want %q", got, want)
	}
}

func TestNormalizeUsername(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		wantName string
		wantKey  string
		reason   string // empty: accepted
	}{
		{"plain", "alice", "alice", "alice", ""},
		{"mixed case keyed lower", "Alice", "Alice", "alice", ""},
		{"all allowed characters", "A.b-C_9", "A.b-C_9", "a.b-c_9", ""},
		{"trimmed", "  Bob_Smith \t\n", "Bob_Smith", "bob_smith", ""},
		{"digits only", "007", "007", "007", ""},
		{"punctuation only", "._-", "._-", "._-", ""},
		{"3 chars", "abc", "abc", "abc", ""},
		{"32 chars", strings.Repeat("Ab", 16), strings.Repeat("Ab", 16), strings.Repeat("ab", 16), ""},

		{"empty", "", "", "", auth.ReasonRequired},
		{"blank", " \t\r\n ", "", "", auth.ReasonRequired},
		{"1 char", "a", "", "", auth.ReasonTooShort},
		{"2 chars", "ab", "", "", auth.ReasonTooShort},
		{"2 chars padded with spaces", "  ab  ", "", "", auth.ReasonTooShort},
		{"33 chars", strings.Repeat("a", 33), "", "", auth.ReasonTooLong},
		{"100 chars", strings.Repeat("x", 100), "", "", auth.ReasonTooLong},

		{"at sign", "alice@example", "", "", auth.ReasonInvalidFormat},
		{"email address", "a@b.com", "", "", auth.ReasonInvalidFormat},
		{"inner space", "alice smith", "", "", auth.ReasonInvalidFormat},
		{"inner tab", "alice\tsmith", "", "", auth.ReasonInvalidFormat},
		{"NUL byte", "alice\x00", "", "", auth.ReasonInvalidFormat},
		{"plus", "alice+1", "", "", auth.ReasonInvalidFormat},
		{"slash", "a/b/c", "", "", auth.ReasonInvalidFormat},
		{"dollar operator", "$ne", "", "", auth.ReasonInvalidFormat},
		{"regex metacharacters", "a.*b", "", "", auth.ReasonInvalidFormat},
		{"quote", `al"ice`, "", "", auth.ReasonInvalidFormat},
		{"accented letter", "josé", "", "", auth.ReasonInvalidFormat},
		{"two accented letters", "éé", "", "", auth.ReasonInvalidFormat},
		{"Cyrillic homoglyph", "\u0430lice", "", "", auth.ReasonInvalidFormat},
		{"fullwidth letters", "ａｂｃ", "", "", auth.ReasonInvalidFormat},
		{"CJK", "用户名", "", "", auth.ReasonInvalidFormat},
		{"Kelvin sign", "\u212Aelvin", "", "", auth.ReasonInvalidFormat},
		{"zero-width space", "ali\u200bce", "", "", auth.ReasonInvalidFormat},
		{"invalid UTF-8", "ali\xffce", "", "", auth.ReasonInvalidFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name, key, err := auth.NormalizeUsername(tt.in)
			wantBadInput(t, err, "username", tt.reason)
			if got, want := name, tt.wantName; got != want {
				t.Errorf("name: got %q, want %q", got, want)
			}
			if got, want := key, tt.wantKey; got != want {
				t.Errorf("key: got %q, want %q", got, want)
			}
		})
	}
}

// TestNormalizeUsernameKeyCollides checks that usernames differing only in
// case share one key, so they cannot both be registered.
func TestNormalizeUsernameKeyCollides(t *testing.T) {
	variants := []string{"alice", "Alice", "ALICE", "aLiCe", " alice "}
	var keys []string
	for _, v := range variants {
		_, key, err := auth.NormalizeUsername(v)
		if err != nil {
			t.Fatalf("NormalizeUsername(%q): %v", v, err)
		}
		keys = append(keys, key)
	}
	for i, k := range keys {
		if got, want := k, "alice"; got != want {
			t.Errorf("key of %q: got %q, want %q", variants[i], got, want)
		}
	}
}

func TestNormalizeEmail(t *testing.T) {
	// 64 + 1 + 63 + 1 + 63 + 1 + 57 + 4 = 254 bytes.
	max := strings.Repeat("a", 64) + "@" + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." +
		strings.Repeat("d", 57) + ".com"
	tooLong := "a" + max
	if len(max) != 254 || len(tooLong) != 255 {
		t.Fatalf("test addresses: got %d and %d bytes, want 254 and 255", len(max), len(tooLong))
	}

	tests := []struct {
		name      string
		in        string
		wantEmail string
		wantKey   string
		reason    string // empty: accepted
	}{
		{"plain", "alice@example.com", "alice@example.com", "alice@example.com", ""},
		{"trimmed", "  alice@example.com \t\n", "alice@example.com", "alice@example.com", ""},
		{"mixed case keyed lower", "Alice.Smith@Example.COM", "Alice.Smith@Example.COM", "alice.smith@example.com", ""},
		{"plus tag", "a+tag@example.com", "a+tag@example.com", "a+tag@example.com", ""},
		{"subdomain", "x@mail.example.co.uk", "x@mail.example.co.uk", "x@mail.example.co.uk", ""},
		{"non-ASCII local part keyed lower", "Jösé@Example.com", "Jösé@Example.com", "jösé@example.com", ""},
		{"fullwidth keyed by NFKC", "ＡＢＣ@example.com", "ＡＢＣ@example.com", "abc@example.com", ""},
		{"254 bytes", max, max, max, ""},

		{"empty", "", "", "", auth.ReasonRequired},
		{"blank", "   ", "", "", auth.ReasonRequired},
		{"255 bytes", tooLong, "", "", auth.ReasonTooLong},
		{"1000 bytes", strings.Repeat("a", 990) + "@b.example", "", "", auth.ReasonTooLong},

		{"display name", "Name <a@b.com>", "", "", auth.ReasonInvalidFormat},
		{"quoted display name", `"Name" <a@b.com>`, "", "", auth.ReasonInvalidFormat},
		{"angle brackets only", "<a@b.com>", "", "", auth.ReasonInvalidFormat},
		{"comment", "a@b.com (work)", "", "", auth.ReasonInvalidFormat},
		{"two addresses", "a@b.com, c@d.com", "", "", auth.ReasonInvalidFormat},
		{"two addresses with semicolon", "a@b.com;c@d.com", "", "", auth.ReasonInvalidFormat},
		{"no dot in domain", "a@b", "", "", auth.ReasonInvalidFormat},
		{"no local part", "@b.com", "", "", auth.ReasonInvalidFormat},
		{"no domain", "a@", "", "", auth.ReasonInvalidFormat},
		{"no at sign", "alice.example.com", "", "", auth.ReasonInvalidFormat},
		{"just an at sign", "@", "", "", auth.ReasonInvalidFormat},
		{"space in local part", "a b@c.com", "", "", auth.ReasonInvalidFormat},
		{"space in domain", "a@c .com", "", "", auth.ReasonInvalidFormat},
		{"two at signs", "a@b@c.com", "", "", auth.ReasonInvalidFormat},
		{"quoted at sign", `"a@b"@c.com`, "", "", auth.ReasonInvalidFormat},
		{"quoted local part", `"alice"@example.com`, "", "", auth.ReasonInvalidFormat},
		{"escaped at sign", `a\@b@c.com`, "", "", auth.ReasonInvalidFormat},
		{"IP literal domain", "a@[127.0.0.1]", "", "", auth.ReasonInvalidFormat},
		{"trailing dot", "a@example.com.", "", "", auth.ReasonInvalidFormat},
		{"double dot", "a..b@example.com", "", "", auth.ReasonInvalidFormat},
		{"newline header injection", "a@b.com\nBcc: c@d.com", "", "", auth.ReasonInvalidFormat},
		{"invalid UTF-8", "a\xff@example.com", "", "", auth.ReasonInvalidFormat},
		{"invalid UTF-8 in domain", "a@exa\xc3mple.com", "", "", auth.ReasonInvalidFormat},
		{"mongo operator", `{"$ne": null}`, "", "", auth.ReasonInvalidFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			email, key, err := auth.NormalizeEmail(tt.in)
			wantBadInput(t, err, "email", tt.reason)
			if got, want := email, tt.wantEmail; got != want {
				t.Errorf("email: got %q, want %q", got, want)
			}
			if got, want := key, tt.wantKey; got != want {
				t.Errorf("key: got %q, want %q", got, want)
			}
		})
	}
}

func TestNormalizeEmailKeyCollides(t *testing.T) {
	variants := []string{"bob@example.com", "Bob@Example.com", "BOB@EXAMPLE.COM", " bob@example.com "}
	for _, v := range variants {
		_, key, err := auth.NormalizeEmail(v)
		if err != nil {
			t.Fatalf("NormalizeEmail(%q): %v", v, err)
		}
		if got, want := key, "bob@example.com"; got != want {
			t.Errorf("key of %q: got %q, want %q", v, got, want)
		}
	}
}

func TestCheckPassword(t *testing.T) {
	const (
		user  = "Alice_Wonder"
		email = "Alice.W@Example.com"
	)
	seven := "ääääääa" // 7 code points, 13 bytes
	eightMB := "äöüßéèçñ"
	bytes72 := strings.Repeat("ä", 36)           // 36 code points, 72 bytes
	bytes73 := bytes72 + "x"                     // 73 bytes
	ascii72 := strings.Repeat("Tr0ub4dor&3-", 6) // 72 bytes
	ascii64 := "the quick brown fox jumps over the lazy dog while it sleeps 1234"
	emoji := strings.Repeat("🔑", 18) // 18 code points, 72 bytes
	checks := []struct {
		s            string
		bytes, runes int
	}{
		{seven, 13, 7}, {eightMB, 16, 8}, {bytes72, 72, 36}, {bytes73, 73, 37},
		{ascii72, 72, 72}, {ascii64, 64, 64}, {emoji, 72, 18},
	}
	for _, c := range checks {
		if len(c.s) != c.bytes || utf8.RuneCountInString(c.s) != c.runes {
			t.Fatalf("test password %q: got %d bytes, %d runes, want %d, %d",
				c.s, len(c.s), utf8.RuneCountInString(c.s), c.bytes, c.runes)
		}
	}

	tests := []struct {
		name     string
		password string
		username string
		email    string
		reason   string // empty: accepted
	}{
		{"empty", "", user, email, auth.ReasonRequired},
		{"7 ASCII chars", "xK9#qL2", user, email, auth.ReasonTooShort},
		{"7 code points in 13 bytes", seven, user, email, auth.ReasonTooShort},
		{"7 emoji in 28 bytes", strings.Repeat("🔑", 7), user, email, auth.ReasonTooShort},
		{"8 ASCII chars", "xK9#qL2v", user, email, ""},
		{"8 multibyte code points", eightMB, user, email, ""},
		{"72 bytes of multibyte", bytes72, user, email, ""},
		{"72 bytes of ASCII", ascii72, user, email, ""},
		{"72 bytes of emoji", emoji, user, email, ""},
		{"64 ASCII chars", ascii64, user, email, ""},
		{"spaces allowed", "correct horse battery staple", user, email, ""},
		{"no composition rules", "abcdefghzyx", user, email, ""},
		{"73 bytes of multibyte", bytes73, user, email, auth.ReasonTooLong},
		{"73 bytes of ASCII", ascii72 + "x", user, email, auth.ReasonTooLong},
		{"1 MiB", strings.Repeat("a", 1<<20), user, email, auth.ReasonTooLong},
		{"blocklisted password123", "password123", user, email, auth.ReasonTooCommon},
		{"blocklisted Password123", "Password123", user, email, auth.ReasonTooCommon},
		{"blocklisted PASSWORD123", "PASSWORD123", user, email, auth.ReasonTooCommon},
		{"blocklisted 12345678", "12345678", user, email, auth.ReasonTooCommon},
		{"blocklisted P@ssw0rd", "P@ssw0rd", user, email, auth.ReasonTooCommon},
		{"username", user, user, email, auth.ReasonMatchesIdentity},
		{"username in another case", "ALICE_W1", "alice_w1", email, auth.ReasonMatchesIdentity},
		{"username in mixed case", "mYlOnGuSeRnAmE", "MyLongUsername", email, auth.ReasonMatchesIdentity},
		{"email", email, user, email, auth.ReasonMatchesIdentity},
		{"email in another case", "alice.w@EXAMPLE.COM", user, email, auth.ReasonMatchesIdentity},
		{"username as a part", "Alice_Wonder is me!", user, email, ""},
		{"no identity given", "xK9#qL2v", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantBadInput(t, auth.CheckPassword(tt.password, tt.username, tt.email), "password", tt.reason)
		})
	}
}
