package api

import (
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/rs/cors"

	"github.com/authgql/server/internal/browser"
)

// CookieOptions configure browser sessions (AUTH_COOKIE=on): a browser on an
// allowed origin gets its refresh token in an HttpOnly cookie instead of the
// response body.
type CookieOptions struct {
	Enabled bool
	// Domain shares the cookie with sibling subdomains; empty makes it
	// host-only, under the __Host- prefix.
	Domain   string
	SameSite http.SameSite // Strict or Lax
}

// Name is the refresh cookie's name: __Host-authgql_refresh when host-only
// (the prefix makes browsers refuse one set with a Domain or by a
// subdomain), authgql_refresh with a Domain.
func (c CookieOptions) Name() string {
	if c.Domain == "" {
		return "__Host-authgql_refresh"
	}
	return "authgql_refresh"
}

// refreshCookies gives each request a browser.Session (see package browser)
// when cookie mode is on. The resolvers decide what to do with it; this only
// judges the Origin, reads the cookie and writes the answer's cookie.
func refreshCookies(opts Options, now func() time.Time, next http.Handler) http.Handler {
	c := opts.Cookie
	if !c.Enabled {
		return next
	}
	allowed := originChecker(opts.PublicURL, opts.CORSOrigins)
	name := c.Name()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			// A socket's answers are not HTTP responses: tokens go in the body.
			next.ServeHTTP(w, r)
			return
		}
		var mu sync.Mutex
		write := func(token string, expires time.Time) {
			ck := &http.Cookie{Name: name, Value: token, Path: "/", Domain: c.Domain,
				HttpOnly: true, Secure: true, SameSite: c.SameSite}
			if token == "" {
				ck.MaxAge = -1 // Max-Age=0: the browser drops it
			} else {
				ck.MaxAge = max(1, int(math.Ceil(expires.Sub(now()).Seconds())))
			}
			mu.Lock()
			defer mu.Unlock()
			// One cookie per answer: a later rotation in the same document wins.
			w.Header().Set("Set-Cookie", ck.String())
		}
		sess := browser.New(allowed(r), cookieValue(r, name), write)
		next.ServeHTTP(w, r.WithContext(browser.With(r.Context(), sess)))
	})
}

// cookieValue is the first non-empty cookie called name.
func cookieValue(r *http.Request, name string) string {
	for _, c := range r.CookiesNamed(name) {
		if c.Value != "" {
			return c.Value
		}
	}
	return ""
}

// OriginChecker reports whether a request's Origin is the server's own (the
// origin of publicURL) or one of the allowed front ends; see originChecker.
func OriginChecker(publicURL string, origins []string) func(*http.Request) bool {
	return originChecker(publicURL, origins)
}

// originChecker reports whether a request's single Origin header is the
// server's own (the origin of publicURL) or one of the allowed front ends. No
// Origin, "null" (sandboxed frames, file: pages, some redirects) or several
// are refused. "*" never counts: configuration refuses it with cookies.
func originChecker(publicURL string, origins []string) func(*http.Request) bool {
	own := originOf(publicURL)
	var list []string
	for _, o := range origins {
		if o != "*" {
			list = append(list, o)
		}
	}
	var c *cors.Cors
	if len(list) > 0 {
		c = cors.New(cors.Options{AllowedOrigins: list})
	}
	return func(r *http.Request) bool {
		values := r.Header.Values("Origin")
		if len(values) != 1 || values[0] == "" || values[0] == "null" {
			return false
		}
		if own != "" && strings.EqualFold(values[0], own) {
			return true
		}
		return c != nil && c.OriginAllowed(r)
	}
}

// originOf is the scheme://host[:port] of a base URL, without a default port.
func originOf(base string) string {
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return ""
	}
	host := strings.ToLower(u.Host)
	scheme := strings.ToLower(u.Scheme)
	if scheme == "https" && strings.HasSuffix(host, ":443") || scheme == "http" && strings.HasSuffix(host, ":80") {
		host = host[:strings.LastIndexByte(host, ':')]
	}
	return scheme + "://" + host
}
