package mail

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// fileSender writes each message into a directory instead of sending it.
type fileSender struct {
	dir  string
	from *mail.Address
}

// NewFileSender returns a Sender for development without SMTP_URL: each message
// becomes an RFC 5322 .eml file in dir, the very message SMTP would carry, named
// <UTC time>-<subject>-<random>.eml so that a listing reads in order. dir is
// created 0700 and files 0600: they hold live links. from is MAIL_FROM, as for
// NewSMTP.
func NewFileSender(dir, from string) (Sender, error) {
	if dir == "" {
		return nil, errors.New("mail: the mail directory is empty")
	}
	f, err := parseFrom(from)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("mail: mail directory: %w", err)
	}
	return &fileSender{dir: dir, from: f}, nil
}

// Send writes m to a new file. A reader of the directory never sees a partial
// file: the message is written under a hidden temporary name, then renamed.
func (f *fileSender) Send(ctx context.Context, m Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	msg, err := newMsg(f.from, m)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(f.dir, ".*.eml.tmp") // mode 0600
	if err != nil {
		return fmt.Errorf("mail: write mail file: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }() // a no-op once renamed
	if _, err := msg.WriteTo(tmp); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("mail: write mail file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("mail: write mail file: %w", err)
	}
	name := time.Now().UTC().Format("20060102T150405.000000000Z") + "-" + slug(m.Subject) + "-" + rand.Text()[:8] + ".eml"
	if err := os.Rename(tmp.Name(), filepath.Join(f.dir, name)); err != nil {
		return fmt.Errorf("mail: write mail file: %w", err)
	}
	return nil
}

// slug turns a subject into a short file-name part: "Reset your password" ->
// "reset-your-password". Only a-z, 0-9 and '-' survive, so a subject cannot
// reach outside the directory.
func slug(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			dash = false
		default:
			dash = true
		}
		if b.Len() >= 40 {
			break
		}
	}
	if b.Len() == 0 {
		return "mail"
	}
	return b.String()
}
