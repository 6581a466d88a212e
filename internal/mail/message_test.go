package mail_test

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	netmail "net/mail"
	"strings"
	"testing"

	"github.com/authgql/server/internal/mail"
)

const from = "Auth Server <noreply@example.com>"

// render returns a real message for jane@example.com.
func render(t *testing.T) mail.Message {
	t.Helper()
	m, err := loadDefaults(t).Render(mail.KindVerifyEmail, "jane@example.com", data())
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	return m
}

// checkMessage parses raw as a mail client would and checks that it is m, sent
// from the address from: multipart/alternative with a UTF-8 text/plain and a
// text/html part, and the headers every message carries.
func checkMessage(t *testing.T, raw []byte, m mail.Message) {
	t.Helper()
	msg, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("ReadMessage: %v", err)
	}
	h := msg.Header
	var dec mime.WordDecoder
	subject, err := dec.DecodeHeader(h.Get("Subject"))
	if err != nil {
		t.Errorf("Subject %q: %v", h.Get("Subject"), err)
	}
	if subject != m.Subject {
		t.Errorf("Subject = %q, want %q", subject, m.Subject)
	}
	if got, err := h.AddressList("From"); err != nil || len(got) != 1 || got[0].Address != "noreply@example.com" || got[0].Name != "Auth Server" {
		t.Errorf("From = %q (%v), want %q", h.Get("From"), err, from)
	}
	if got, err := h.AddressList("To"); err != nil || len(got) != 1 || got[0].Address != m.To {
		t.Errorf("To = %q (%v), want %q", h.Get("To"), err, m.To)
	}
	if _, err := h.Date(); err != nil {
		t.Errorf("Date %q: %v", h.Get("Date"), err)
	}
	if id := h.Get("Message-Id"); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@example.com>") {
		t.Errorf("Message-ID = %q, want <…@example.com>", id)
	}
	for name, want := range map[string]string{"Auto-Submitted": "auto-generated", "Mime-Version": "1.0"} {
		if got := h.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	for _, name := range []string{"User-Agent", "X-Mailer", "Bcc", "Cc"} {
		if got := h.Get(name); got != "" {
			t.Errorf("%s = %q, want none", name, got)
		}
	}

	mediaType, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || mediaType != "multipart/alternative" {
		t.Fatalf("Content-Type = %q (%v), want multipart/alternative", h.Get("Content-Type"), err)
	}
	var parts []string
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("NextPart: %v", err)
		}
		ct := p.Header.Get("Content-Type")
		parts = append(parts, ct)
		body, err := io.ReadAll(p) // quoted-printable undone by NextPart
		if err != nil {
			t.Fatalf("read part %s: %v", ct, err)
		}
		got := strings.ReplaceAll(string(body), "\r\n", "\n")
		switch ct {
		case "text/plain; charset=UTF-8":
			if got != m.Text {
				t.Errorf("text part = %q, want %q", got, m.Text)
			}
		case "text/html; charset=UTF-8":
			if got != m.HTML {
				t.Errorf("HTML part = %q, want %q", got, m.HTML)
			}
		}
	}
	if want := []string{"text/plain; charset=UTF-8", "text/html; charset=UTF-8"}; strings.Join(parts, ",") != strings.Join(want, ",") {
		t.Errorf("parts = %q, want %q (text first: the last is preferred)", parts, want)
	}
}
