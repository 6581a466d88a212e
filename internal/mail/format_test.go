package mail_test

import (
	"testing"
	"time"

	"github.com/authgql/server/internal/mail"
)

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{24 * time.Hour, "24 hours"},
		{time.Hour, "1 hour"},
		{2 * time.Hour, "2 hours"},
		{36 * time.Hour, "36 hours"},
		{48 * time.Hour, "2 days"},
		{7 * 24 * time.Hour, "7 days"},
		{90 * time.Minute, "90 minutes"},
		{10 * time.Minute, "10 minutes"},
		{time.Minute, "1 minute"},
		{2 * time.Second, "2 seconds"},
		{time.Second, "1 second"},
		{90 * time.Second, "90 seconds"},
		{1500 * time.Millisecond, "2 seconds"},
		{time.Millisecond, "1 second"},
		{0, "0 seconds"},
	}
	for _, tt := range tests {
		if got := mail.FormatDuration(tt.d); got != tt.want {
			t.Errorf("FormatDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestMaskAddress(t *testing.T) {
	tests := []struct {
		addr, want string
	}{
		{"jane.doe@example.com", "j***@example.com"},
		{"j@example.com", "j***@example.com"},
		{"Jane Doe <jane.doe@example.com>", "j***@example.com"},
		{"élodie@example.fr", "é***@example.fr"},
		{"not an address", "***"},
		{"@example.com", "***"},
		{"jane@", "***"},
		{"", "***"},
	}
	for _, tt := range tests {
		if got := mail.MaskAddress(tt.addr); got != tt.want {
			t.Errorf("MaskAddress(%q) = %q, want %q", tt.addr, got, tt.want)
		}
	}
}
