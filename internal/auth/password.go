package auth

import (
	"bufio"
	_ "embed"
	"strings"
	"unicode/utf8"
)

const (
	passwordMinRunes = 8
	// bcrypt reads at most 72 bytes; accepting more would silently truncate.
	passwordMaxBytes = 72
)

//go:embed common_passwords.txt
var commonPasswordsFile string

// commonPasswords is the blocklist, lower-cased, read once at start.
var commonPasswords = func() map[string]struct{} {
	m := make(map[string]struct{}, 256)
	sc := bufio.NewScanner(strings.NewReader(commonPasswordsFile))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m[strings.ToLower(line)] = struct{}{}
	}
	return m
}()

// CheckPassword applies the password policy of NIST SP 800-63B: a length window
// (code points for the minimum, bcrypt's bytes for the maximum), no composition
// rules, a blocklist of common passwords and of the account's own identifiers.
func CheckPassword(password, username, email string) *Error {
	if password == "" {
		return badInput("password", ReasonRequired, "password is required")
	}
	if len(password) > passwordMaxBytes {
		return badInput("password", ReasonTooLong, "password must be at most 72 bytes")
	}
	if utf8.RuneCountInString(password) < passwordMinRunes {
		return badInput("password", ReasonTooShort, "password must be at least 8 characters")
	}
	lower := strings.ToLower(password)
	if _, ok := commonPasswords[lower]; ok {
		return badInput("password", ReasonTooCommon, "password is too common; choose another")
	}
	if lower == strings.ToLower(username) || lower == strings.ToLower(email) {
		return badInput("password", ReasonMatchesIdentity, "password must not be the same as the username or email")
	}
	return nil
}
