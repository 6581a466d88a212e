package api

import (
	"net"
	"net/http"
	"net/netip"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
)

// traceRequests makes a server span for each request (otelhttp), named by
// its route. A trace context sent by the client (traceparent, tracestate,
// baggage) is continued only when the direct peer is a trusted proxy:
// anyone else could otherwise pick trace ids, or flood a sampled trace.
func traceRequests(trusted []netip.Prefix, next http.Handler) http.Handler {
	h := otelhttp.NewHandler(next, "http",
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + routeOf(r.URL.Path) }))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !peerTrusted(r, trusted) {
			r.Header.Del("Traceparent")
			r.Header.Del("Tracestate")
			r.Header.Del("Baggage")
		}
		h.ServeHTTP(w, r)
	})
}

func peerTrusted(r *http.Request, trusted []netip.Prefix) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	return isTrusted(peer.Unmap(), trusted)
}
