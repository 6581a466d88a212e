// Command floor is the bare floor of the bench's `me` phase: a plain net/http
// handler that does what the server's `me` cannot avoid doing — read the JSON
// body, verify the access token exactly as internal/token does (HS256 with
// the same secret, issuer, audience, required exp and iat, leeway and strict
// decoding, the at+jwt type) and write the same JSON answer — with no GraphQL
// engine and no middleware. The bench runs the same `me` phase against it and
// reports the server's rate as a fraction of this one. The in-memory work of
// the server's `me` is kept too: the revocation set and the user, each a map
// read under a read lock (the server's revocation set and user cache).
//
// It reads HOST, PORT, JWT_SECRET, JWT_ISSUER, JWT_AUDIENCE (as the server)
// and FLOOR_USERS: a JSON file mapping user ids to usernames, what the
// server's user cache would hold.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string) error {
	b, err := os.ReadFile(getenv("FLOOR_USERS"))
	if err != nil {
		return fmt.Errorf("FLOOR_USERS: %w", err)
	}
	var users map[string]string
	if err := json.Unmarshal(b, &users); err != nil {
		return fmt.Errorf("FLOOR_USERS: %w", err)
	}
	h, err := newHandler([]byte(getenv("JWT_SECRET")), getenv("JWT_ISSUER"), getenv("JWT_AUDIENCE"), users, time.Now)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(getenv("HOST"), getenv("PORT")))
	if err != nil {
		return err
	}
	// The server's timeouts, so that both keep connections alike.
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 15 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}

const (
	meQuery       = `{ me { id username } }`
	maxBody       = 1 << 20 // the server's MAX_BODY_BYTES
	maxTokenBytes = 4096    // internal/token's MaxTokenBytes
	leeway        = 30 * time.Second
	accessType    = "at+jwt"
)

// handler answers `{ me { id username } }` and nothing else.
type handler struct {
	secret []byte
	parser *jwt.Parser
	mux    *http.ServeMux

	mu      sync.RWMutex
	users   map[string]string   // id → username
	revoked map[string]struct{} // session ids; always empty here
}

func newHandler(secret []byte, issuer, audience string, users map[string]string, now func() time.Time) (*handler, error) {
	if len(secret) < 32 || issuer == "" || audience == "" {
		return nil, errors.New("JWT_SECRET (32 bytes or more), JWT_ISSUER and JWT_AUDIENCE are required")
	}
	h := &handler{secret: secret, users: users, revoked: map[string]struct{}{}, mux: http.NewServeMux(), parser: jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(now),
		jwt.WithStrictDecoding(),
	)}
	h.mux.HandleFunc("POST /query", h.me)
	h.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ok"}`+"\n")
	})
	return h, nil
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

type claims struct {
	SessionID string   `json:"sid"`
	Roles     []string `json:"roles,omitempty"`
	jwt.RegisteredClaims
}

type meAnswer struct {
	Data struct {
		Me struct {
			ID       string `json:"id"`
			Username string `json:"username"`
		} `json:"me"`
	} `json:"data"`
}

func (h *handler) me(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		http.Error(w, "could not read the request body", http.StatusBadRequest)
		return
	}
	var req struct {
		Query     string          `json:"query"`
		Variables json.RawMessage `json:"variables"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.Query != meQuery {
		http.Error(w, "the floor answers "+meQuery+" only", http.StatusBadRequest)
		return
	}
	userID, sessionID, ok := h.verify(r.Header.Get("Authorization"))
	h.mu.RLock()
	_, revoked := h.revoked[sessionID]
	name, known := h.users[userID]
	h.mu.RUnlock()
	if !ok || revoked || !known {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"errors":[{"message":"not authenticated","path":["me"],"extensions":{"code":"UNAUTHENTICATED"}}],"data":null}`)
		return
	}
	var a meAnswer
	a.Data.Me.ID, a.Data.Me.Username = userID, name
	b, err := json.Marshal(a)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// verify returns the subject and session of a valid "Bearer <access token>"
// header, checked as internal/token's Verify checks it.
func (h *handler) verify(header string) (userID, sessionID string, ok bool) {
	scheme, raw, _ := strings.Cut(strings.TrimSpace(header), " ")
	raw = strings.TrimSpace(raw)
	if !strings.EqualFold(scheme, "Bearer") || raw == "" || len(raw) > maxTokenBytes || !compact(raw) {
		return "", "", false
	}
	var c claims
	t, err := h.parser.ParseWithClaims(raw, &c, func(t *jwt.Token) (any, error) {
		if t.Method != jwt.SigningMethodHS256 {
			return nil, jwt.ErrTokenSignatureInvalid
		}
		return h.secret, nil
	})
	if err != nil || t.Header["typ"] != accessType || c.Subject == "" || c.ID == "" || c.SessionID == "" {
		return "", "", false
	}
	return c.Subject, c.SessionID, true
}

// compact reports whether s uses only the JWS compact alphabet.
func compact(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
