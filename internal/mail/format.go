package mail

import (
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"
)

// FormatDuration renders a link lifetime for Data.ExpiresIn in the largest unit
// that states it exactly: "24 hours", "1 hour", "90 minutes", "2 seconds", and
// whole days from two days up ("7 days"). Fractions of a second round to the
// nearest second, but never down to nothing.
func FormatDuration(d time.Duration) string {
	switch {
	case d >= 48*time.Hour && d%(24*time.Hour) == 0:
		return plural(int64(d/(24*time.Hour)), "day")
	case d >= time.Hour && d%time.Hour == 0:
		return plural(int64(d/time.Hour), "hour")
	case d >= time.Minute && d%time.Minute == 0:
		return plural(int64(d/time.Minute), "minute")
	case d <= 0:
		return plural(0, "second")
	}
	return plural(max(1, int64(d.Round(time.Second)/time.Second)), "second")
}

func plural(n int64, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

// MaskAddress hides most of an address for a mail sent elsewhere (the notice to
// the old address names the new one): "jane.doe@example.com" -> "j***@example.com".
// The domain stays, so the owner can recognise their provider. Anything that is
// not an address becomes "***".
func MaskAddress(addr string) string {
	if a, err := mail.ParseAddress(addr); err == nil {
		addr = a.Address
	}
	at := strings.LastIndexByte(addr, '@')
	if at < 1 || at == len(addr)-1 || strings.ContainsAny(addr, " \t\r\n") {
		return "***"
	}
	first, _ := utf8.DecodeRuneInString(addr)
	return string(first) + "***" + addr[at:]
}
