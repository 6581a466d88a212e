package mail

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/mail"
	"strings"

	gomail "github.com/wneessen/go-mail"
)

// parseFrom validates MAIL_FROM: "Name <address>" or a bare address.
func parseFrom(from string) (*mail.Address, error) {
	a, err := parseAddress(from)
	if err != nil {
		return nil, fmt.Errorf("mail: MAIL_FROM: %w", err)
	}
	return a, nil
}

// parseRecipient validates Message.To: one address.
func parseRecipient(to string) (*mail.Address, error) {
	a, err := parseAddress(to)
	if err != nil {
		return nil, fmt.Errorf("%w: recipient: %w", ErrInvalidMessage, err)
	}
	return a, nil
}

func parseAddress(s string) (*mail.Address, error) {
	// net/mail would refuse a CR or LF too; saying so first makes the reason plain.
	if strings.ContainsAny(s, "\r\n") {
		return nil, errors.New("an address cannot contain CR or LF")
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return nil, err
	}
	return a, nil
}

// newMsg builds the one message both senders write: multipart/alternative with a
// text/plain and a text/html part (UTF-8, quoted-printable), From, To, Subject,
// Date, a Message-ID in the sender's domain, and Auto-Submitted so that
// auto-responders stay quiet (RFC 3834).
func newMsg(from *mail.Address, m Message) (*gomail.Msg, error) {
	to, err := parseRecipient(m.To)
	if err != nil {
		return nil, err
	}
	if m.Text == "" || m.HTML == "" {
		return nil, fmt.Errorf("%w: a message needs both a text and an HTML part", ErrInvalidMessage)
	}
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	msg.FromMailAddress(from)
	msg.ToMailAddress(to)
	// go-mail would encode a CR or LF into an encoded-word, which is safe but ugly.
	msg.Subject(oneLine(m.Subject))
	msg.SetDate()
	msg.SetMessageIDWithValue(rand.Text() + "@" + domain(from.Address))
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	msg.SetGenHeader(gomail.HeaderXAutoResponseSuppress, "All")
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	return msg, nil
}

func domain(addr string) string {
	return addr[strings.LastIndexByte(addr, '@')+1:]
}
