package api

import (
	"net/http"
	"net/netip"
	"testing"
)

func TestClientIP(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32")}
	tests := []struct {
		name, remote string
		xff          []string
		trusted      []netip.Prefix
		want         string
	}{
		{"no proxies configured", "203.0.113.9:5555", []string{"198.51.100.1"}, nil, "203.0.113.9"},
		{"untrusted peer spoofing", "203.0.113.9:5555", []string{"198.51.100.1"}, proxies, "203.0.113.9"},
		{"trusted peer", "10.1.2.3:80", []string{"198.51.100.1"}, proxies, "198.51.100.1"},
		{"client-written hops ignored", "10.1.2.3:80", []string{"1.1.1.1, 198.51.100.1"}, proxies, "198.51.100.1"},
		{"chain of trusted proxies", "127.0.0.1:80", []string{"198.51.100.7, 10.9.9.9"}, proxies, "198.51.100.7"},
		{"several headers", "10.1.2.3:80", []string{"6.6.6.6", "198.51.100.2"}, proxies, "198.51.100.2"},
		{"garbage hop", "10.1.2.3:80", []string{"198.51.100.1, not-an-ip"}, proxies, "10.1.2.3"},
		{"no header from a proxy", "10.1.2.3:80", nil, proxies, "10.1.2.3"},
		{"IPv4-mapped peer", "[::ffff:10.1.2.3]:80", []string{"198.51.100.3"}, proxies, "198.51.100.3"},
		{"IPv6 client", "10.1.2.3:80", []string{"2001:db8::1"}, proxies, "2001:db8::1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := http.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tc.remote
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := clientIP(r, tc.trusted); got != tc.want {
				t.Errorf("clientIP = %q, want %q", got, tc.want)
			}
		})
	}
}
