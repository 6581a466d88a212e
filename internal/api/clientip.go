package api

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/authgql/server/internal/auth"
)

// client describes who is calling (user agent, client IP), for rate limits,
// audit events and the sessions a request may create.
func client(r *http.Request, trusted []netip.Prefix) auth.Client {
	ua := r.UserAgent()
	if len(ua) > maxUserAgent {
		ua = ua[:maxUserAgent]
	}
	return auth.Client{UserAgent: strings.ToValidUTF8(ua, ""), IP: clientIP(r, trusted)}
}

const maxUserAgent = 256

// clientIP is the peer address, unless the peer is a trusted proxy: then the
// right-most address of X-Forwarded-For that is not itself a trusted proxy.
// Addresses a client wrote at the left of the header are never believed.
func clientIP(r *http.Request, trusted []netip.Prefix) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	peer = peer.Unmap()
	if !isTrusted(peer, trusted) {
		return peer.String()
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // a malformed hop: stop believing the rest of the chain
		}
		a = a.Unmap()
		if !isTrusted(a, trusted) {
			return a.String()
		}
		peer = a
	}
	return peer.String()
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
