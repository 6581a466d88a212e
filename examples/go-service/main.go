// Command go-service is a small HTTP service that accepts the access tokens
// of an authgql server, verified with the package
// github.com/authgql/server/verify.
//
//	AUTHGQL_ISSUER=https://auth.example.com AUTHGQL_AUDIENCE=authgql PORT=8081 go run ./examples/go-service
//	curl -H "Authorization: Bearer $TOKEN" localhost:8081/whoami
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/authgql/server/verify"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// run serves until ctx is done. AUTHGQL_ISSUER is the server's PUBLIC_URL
// (its tokens' iss), AUTHGQL_AUDIENCE its JWT_AUDIENCE (default authgql),
// PORT where to listen (default 8081).
func run(ctx context.Context, getenv func(string) string, stderr io.Writer) error {
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	issuer, audience, port := getenv("AUTHGQL_ISSUER"), getenv("AUTHGQL_AUDIENCE"), getenv("PORT")
	if issuer == "" {
		return errors.New("AUTHGQL_ISSUER is required: the authgql server's public URL, e.g. https://auth.example.com")
	}
	if audience == "" {
		audience = "authgql"
	}
	if port == "" {
		port = "8081"
	}

	// The key set is refreshed in the background until ctx is done.
	tokens, err := verify.New(ctx, issuer, audience, verify.WithLogger(logger))
	if err != nil {
		return err
	}

	mux := http.NewServeMux()
	mux.Handle("GET /whoami", tokens.Require(http.HandlerFunc(whoami))) // 401 without a valid token
	mux.Handle("GET /hello", tokens.Handler(http.HandlerFunc(hello)))   // anonymous allowed
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })

	ln, err := net.Listen("tcp", net.JoinHostPort("", port))
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	logger.Info("listening", "addr", ln.Addr().String(), "issuer", issuer, "audience", audience)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}

// whoami answers the verified claims of the caller.
func whoami(w http.ResponseWriter, r *http.Request) {
	c, _ := verify.ClaimsFrom(r.Context()) // Require let only verified requests through
	writeJSON(w, map[string]any{
		"userId":        c.UserID,
		"sessionId":     c.SessionID,
		"roles":         c.Roles,
		"emailVerified": c.EmailVerified,
		"tokenId":       c.TokenID,
		"issuedAt":      c.IssuedAt,
		"expiresAt":     c.ExpiresAt,
	})
}

// hello greets the caller, signed in or not.
func hello(w http.ResponseWriter, r *http.Request) {
	if c, ok := verify.ClaimsFrom(r.Context()); ok {
		writeJSON(w, map[string]string{"hello": c.UserID})
		return
	}
	writeJSON(w, map[string]string{"hello": "anonymous"})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}
