package api

import (
	"net/http"
	"strings"
	"time"

	"github.com/authgql/server/internal/metrics"
)

// measure counts requests by route and status class, their duration and
// those in flight. A WebSocket is counted when it ends (status 101) but its
// life is not a request's duration, nor a request in flight.
func measure(m *metrics.Metrics, next http.Handler) http.Handler {
	if m == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route := routeOf(r.URL.Path)
		upgrade := strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
		if !upgrade {
			defer m.InFlight()()
		}
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		took := time.Since(start)
		if upgrade && status == http.StatusSwitchingProtocols {
			took = 0
		}
		m.HTTP(route, status, took)
	})
}

// routeOf maps a path to one of the server's routes: never the raw path.
func routeOf(path string) string {
	switch path {
	case "/query", "/healthz", "/readyz", "/.well-known/jwks.json", "/.well-known/openid-configuration":
		return path
	case "/":
		return "/playground"
	}
	if strings.HasPrefix(path, "/playground/") {
		return "/playground"
	}
	if strings.HasPrefix(path, "/auth/") {
		return "/auth" // one label for every provider and its callback
	}
	return "other"
}
