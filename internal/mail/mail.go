// Package mail renders and delivers the server's transactional mails: templates
// in, multipart/alternative messages out, over SMTP (go-mail) or into .eml files
// for development. It knows nothing of users, tokens or queues: the caller keeps
// the outbox and asks Permanent whether a failed send is worth retrying.
package mail

import (
	"context"
	"errors"

	gomail "github.com/wneessen/go-mail"
)

// Kind names one kind of mail; each has a template.
type Kind string

const (
	KindVerifyEmail        Kind = "verify_email"         // data: Username, Link, ExpiresIn
	KindResetPassword      Kind = "reset_password"       // data: Username, Link, ExpiresIn
	KindConfirmEmailChange Kind = "confirm_email_change" // sent to the NEW address; data: Username, Link, ExpiresIn, NewEmail
	KindEmailChangeNotice  Kind = "email_change_notice"  // sent to the OLD address; data: Username, NewEmailMasked
	KindAccountDeleted     Kind = "account_deleted"      // data: Username
	KindIdentityLinked     Kind = "identity_linked"      // data: Username, Provider
)

// kinds lists every Kind, in a stable order.
var kinds = []Kind{KindVerifyEmail, KindResetPassword, KindConfirmEmailChange, KindEmailChangeNotice, KindAccountDeleted,
	KindIdentityLinked}

// hasLink reports whether mails of this kind carry a link to follow.
func (k Kind) hasLink() bool {
	return k == KindVerifyEmail || k == KindResetPassword || k == KindConfirmEmailChange
}

// Data is what a template sees. Link and ExpiresIn are empty for kinds without a link.
type Data struct {
	Username, Link, NewEmail, NewEmailMasked string
	ExpiresIn                                string // human text such as "1 hour", "24 hours", "2 seconds"
	Provider                                 string // identity_linked: the provider's display name
}

// Message is a rendered mail.
type Message struct {
	To      string // one address
	Subject string
	Text    string
	HTML    string
}

// Sender delivers one message.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// ErrInvalidMessage means a message can never be sent as it is: a recipient that
// is not one valid address (or carries CR/LF), a missing text or HTML part.
var ErrInvalidMessage = errors.New("mail: invalid message")

// Permanent reports whether err means "do not retry": ErrInvalidMessage, or an
// SMTP 5xx answer to the recipient (RCPT TO) or to the message (DATA and its end).
//
// Everything else is temporary: connection refused, timeouts, TLS failures, 4xx
// answers, and also two 5xx answers that are about our configuration rather than
// the message: a failed SMTP AUTH (535) and a refused sender (5xx to MAIL FROM).
// Every message would fail alike until an operator fixes SMTP_URL or MAIL_FROM,
// so the caller should log them loudly and retry slowly rather than drop mail.
func Permanent(err error) bool {
	if errors.Is(err, ErrInvalidMessage) {
		return true
	}
	// go-mail reports failures inside the mail transaction as *SendError (joined
	// with errors.Join, hence errors.As); the code is the server's reply code.
	var se *gomail.SendError
	if !errors.As(err, &se) {
		return false
	}
	switch se.Reason {
	case gomail.ErrSMTPRcptTo, gomail.ErrSMTPData, gomail.ErrSMTPDataClose:
		return se.ErrorCode()/100 == 5
	}
	return false
}
