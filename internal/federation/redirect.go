package federation

import (
	"net/url"
	"strings"
)

// SanitizeRedirect returns redirect when it is an app-relative path ("/…")
// and "" otherwise: never "//host" or "/\host" (browsers read both as another
// host), a scheme, a host, or control characters. The server only ever
// redirects to APP_URL and hands this path to the app, so it cannot become an
// open redirect.
func SanitizeRedirect(redirect string) string {
	if len(redirect) > 2048 || !strings.HasPrefix(redirect, "/") {
		return ""
	}
	if len(redirect) > 1 && (redirect[1] == '/' || redirect[1] == '\\') {
		return ""
	}
	for _, r := range redirect {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return ""
		}
	}
	u, err := url.Parse(redirect)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || !strings.HasPrefix(u.Path, "/") ||
		strings.HasPrefix(u.Path, "//") {
		return ""
	}
	return redirect
}
