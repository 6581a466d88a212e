package token_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/authgql/server/internal/auth"
	"github.com/authgql/server/internal/token"
)

func TestVerifyGarbage(t *testing.T) {
	iss := newIssuer(t, t0)
	genuine := issue(t)
	tests := []struct {
		name string
		raw  string
	}{
		{"empty", ""},
		{"one dot", "."},
		{"two dots", ".."},
		{"a.b.c", "a.b.c"},
		{"four dots", "...."},
		{"no dots", "notatoken"},
		{"non-base64 segments", "!!!.@@@.###"},
		{"spaces", "   .   .   "},
		{"Bearer prefix kept", "Bearer " + genuine},
		{"leading space", " " + genuine},
		{"NUL byte", genuine[:10] + "\x00" + genuine[10:]},
		{"header not JSON", base64.RawURLEncoding.EncodeToString([]byte("{")) + "." + parts(t, genuine)[1] + "." + parts(t, genuine)[2]},
		{"invalid UTF-8", "\xff\xfe.\xff.\xff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantVerifyErr(t, iss, tt.raw, auth.ErrTokenInvalid)
		})
	}
}

// TestVerifyLineBreaks checks that a token is accepted only as issued. Go's
// base64 decoders skip CR and LF, and the signature segment is not part of
// the signed input, so line breaks there must be refused explicitly.
func TestVerifyLineBreaks(t *testing.T) {
	iss := newIssuer(t, t0)
	genuine := issue(t)
	p := parts(t, genuine)
	tests := []struct {
		name string
		raw  string
	}{
		{"LF inside the header", p[0][:5] + "\n" + p[0][5:] + "." + p[1] + "." + p[2]},
		{"LF inside the payload", p[0] + "." + p[1][:5] + "\n" + p[1][5:] + "." + p[2]},
		{"trailing LF", genuine + "\n"},
		{"trailing CRLF", genuine + "\r\n"},
		{"CRLF inside the signature", p[0] + "." + p[1] + "." + p[2][:10] + "\r\n" + p[2][10:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantVerifyErr(t, iss, tt.raw, auth.ErrTokenInvalid)
		})
	}
}

// padded returns a correctly signed, otherwise valid token with a junk claim
// of n bytes.
func padded(t *testing.T, n int) string {
	t.Helper()
	return hs256(t, with(validClaims(), "pad", strings.Repeat("x", n)))
}

func TestVerifySize(t *testing.T) {
	iss := newIssuer(t, t0)

	// The largest token that fits under the limit verifies; so the limit, not
	// the padding, is what refuses the larger ones.
	var fits string
	for n := 0; ; n++ {
		raw := padded(t, n)
		if len(raw) > token.MaxTokenBytes {
			break
		}
		fits = raw
	}
	if len(fits) < token.MaxTokenBytes-3 {
		t.Fatalf("largest fitting token: got %d bytes, want close to %d", len(fits), token.MaxTokenBytes)
	}
	t.Run("largest under the limit", func(t *testing.T) {
		wantVerifyOK(t, iss, fits)
	})

	tests := []struct {
		name string
		raw  string
	}{
		{"just over the limit", padded(t, (token.MaxTokenBytes*3)/4)},
		{"1 MiB", padded(t, 1<<20)},
		{"1 MiB of dots", strings.Repeat(".", 1<<20)},
		{"1 MiB of letters", strings.Repeat("a", 1<<20)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.raw) <= token.MaxTokenBytes {
				t.Fatalf("test token: got %d bytes, want more than %d", len(tt.raw), token.MaxTokenBytes)
			}
			wantVerifyErr(t, iss, tt.raw, auth.ErrTokenInvalid)
		})
	}
}
