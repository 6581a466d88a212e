package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"
)

// addRoutes is the whole HTTP surface in one place.
func addRoutes(mux *http.ServeMux, logger *slog.Logger, tokens TokenVerifier, graphql http.Handler,
	db Pinger, playground http.Handler, opts Options) {
	query := withCORS(opts.CORSOrigins, noStore(graphqlBody(opts.MaxBody,
		withClient(opts.TrustedProxies, authenticate(tokens, graphql)))))
	mux.Handle("POST /query", query)
	mux.Handle("GET /query", query)
	mux.Handle("OPTIONS /query", query)
	mux.Handle("/query", withCORS(opts.CORSOrigins, http.HandlerFunc(methodNotAllowed)))

	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := db.Ping(ctx); err != nil {
			logger.WarnContext(ctx, "readyz: database unavailable", "err", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	if playground != nil {
		mux.Handle("GET /{$}", playground)
		mux.Handle("GET /playground/", playground)
	}
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent) // browsers ask on every Playground load
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "not found")
	})
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Allow", "GET, POST, OPTIONS")
	writeError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "use POST (or GET for queries)")
}
