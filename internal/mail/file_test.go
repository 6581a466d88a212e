package mail_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/authgql/server/internal/mail"
)

func TestFileSender(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mails")
	s, err := mail.NewFileSender(dir, from)
	if err != nil {
		t.Fatalf("NewFileSender: %v", err)
	}
	m := render(t)
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}

	info, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o700 {
		t.Errorf("directory mode = %o, want 700", perm)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("%d files, want 1 (no temporary file left)", len(entries))
	}
	name := entries[0].Name()
	if !regexp.MustCompile(`^\d{8}T\d{6}\.\d{9}Z-confirm-your-email-address-[A-Z2-7]{8}\.eml$`).MatchString(name) {
		t.Errorf("file name = %q, want <UTC time>-confirm-your-email-address-<random>.eml", name)
	}
	info, err = entries[0].Info()
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("file mode = %o, want 600", perm)
	}
	raw, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	checkMessage(t, raw, m)
}

func TestFileSenderRefuses(t *testing.T) {
	if _, err := mail.NewFileSender(t.TempDir(), "not an address"); err == nil {
		t.Error("NewFileSender with a bad from: no error")
	}
	dir := t.TempDir()
	s, err := mail.NewFileSender(dir, from)
	if err != nil {
		t.Fatalf("NewFileSender: %v", err)
	}
	m := render(t)
	m.To = "jane@example.com\r\nBcc: victim@example.com"
	if err := s.Send(context.Background(), m); !errors.Is(err, mail.ErrInvalidMessage) || !mail.Permanent(err) {
		t.Errorf("Send to a CRLF address = %v, want a permanent ErrInvalidMessage", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("%d files written, want none", len(entries))
	}
}
