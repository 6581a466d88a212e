package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strings"
	"time"

	"github.com/rs/cors"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/authgql/server/internal/auth"
	"github.com/authgql/server/internal/requestid"
)

// withRequestID gives each request an id, taken from X-Request-ID when the
// client (or a proxy) sent a sane one, and returns it in the response.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-ID")
		if !validRequestID(id) {
			id = requestid.New()
		}
		w.Header().Set("X-Request-ID", id)
		next.ServeHTTP(w, r.WithContext(requestid.With(r.Context(), id)))
	})
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += n
	return n, err
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// logRequests writes one line per request. It logs the path only: a GET
// query string may carry variables, and bodies and headers carry secrets.
func logRequests(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		logger.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", rec.status),
			slog.Int("bytes", rec.bytes),
			slog.Duration("duration", time.Since(start)),
			slog.String("request_id", requestid.From(r.Context())),
		)
	})
}

// recoverPanics answers a panic outside GraphQL execution with a 500 and
// logs it with the request id; the client learns nothing more.
func recoverPanics(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				logger.ErrorContext(r.Context(), "http: panic", "request_id", requestid.From(r.Context()),
					"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				writeError(w, http.StatusInternalServerError, string(auth.CodeInternal), "internal error")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func securityHeaders(hsts bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if hsts {
			h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		}
		next.ServeHTTP(w, r)
	})
}

// noStore keeps GraphQL responses (tokens, personal data) out of caches.
func noStore(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// withCORS lets the allow-listed browser origins call the API. Tokens travel
// in the Authorization header, never in cookies, so credentials are never
// allowed. With no origins, no cross-origin request is allowed.
func withCORS(origins []string, next http.Handler) http.Handler {
	if len(origins) == 0 {
		return next // rs/cors treats an empty list as "*"
	}
	return cors.New(cors.Options{
		AllowedOrigins:   origins,
		AllowedMethods:   []string{http.MethodGet, http.MethodPost, http.MethodOptions},
		AllowedHeaders:   []string{"Authorization", "Content-Type", "Accept", "X-Request-ID", "Apollo-Require-Preflight"},
		ExposedHeaders:   []string{"X-Request-ID"},
		AllowCredentials: false,
		MaxAge:           600,
	}).Handler(next)
}

// graphqlBody admits only what the GraphQL transports should see: a JSON POST
// body within maxBody bytes that is one GraphQL request object. gqlgen reads
// bodies without a limit and echoes undecodable ones back to the client, so
// this is checked before it sees them.
func graphqlBody(maxBody int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			methodNotAllowed(w, r)
			return
		}
		if r.Method == http.MethodGet {
			if getRunsMutation(r) {
				w.Header().Set("Allow", "POST")
				writeError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED",
					"mutations must be sent with POST")
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		if r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "application/json" {
			// Forms, multipart and text/plain are what a browser sends cross-site
			// without a preflight: they never reach an operation.
			writeError(w, http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE",
				"send the GraphQL request as application/json")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				writeError(w, http.StatusRequestEntityTooLarge, "PAYLOAD_TOO_LARGE",
					fmt.Sprintf("request body is larger than %d bytes", maxBody))
				return
			}
			writeError(w, http.StatusBadRequest, "BAD_REQUEST", "could not read the request body")
			return
		}
		if !wellFormed(body) {
			writeError(w, http.StatusBadRequest, "BAD_REQUEST",
				`request body must be a JSON object like {"query": "...", "variables": {...}}`)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

// getRunsMutation reports whether a GET request selects a mutation or
// subscription. gqlgen refuses those too, but with no error code; this answers
// with one. Only documents that contain the keyword are parsed.
func getRunsMutation(r *http.Request) bool {
	q := r.URL.Query()
	doc := q.Get("query")
	if !strings.Contains(doc, "mutation") && !strings.Contains(doc, "subscription") {
		return false
	}
	parsed, err := parser.ParseQuery(&ast.Source{Input: doc})
	if err != nil {
		return false // gqlgen reports the syntax error
	}
	op := parsed.Operations.ForName(q.Get("operationName"))
	return op != nil && op.Operation != ast.Query
}

// wellFormed reports whether body decodes as gqlgen will decode it: one
// object with a string query and operationName and object variables and
// extensions.
func wellFormed(body []byte) bool {
	var req struct {
		Query         string          `json:"query"`
		OperationName string          `json:"operationName"`
		Variables     json.RawMessage `json:"variables"`
		Extensions    json.RawMessage `json:"extensions"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return false
	}
	return objectOrNull(req.Variables) && objectOrNull(req.Extensions)
}

func objectOrNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || raw[0] == '{' || string(raw) == "null"
}

// authenticate reads the Authorization header. No header (or an empty one,
// as Apollo's auth link sends when logged out) is anonymous. A bad or expired
// token is anonymous too, with the reason kept for @auth: it never blocks
// public operations such as login.
func authenticate(tokens TokenVerifier, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := auth.WithSignIn(r.Context())
		values := r.Header.Values("Authorization")
		if len(values) == 0 || len(values) == 1 && strings.TrimSpace(values[0]) == "" {
			next.ServeHTTP(w, r.WithContext(ctx))
			return
		}
		raw, ok := bearer(values)
		switch {
		case ok && raw == "":
			// "Bearer " with nothing after it: a logged-out client.
		case !ok:
			ctx = auth.WithTokenError(ctx, auth.ErrTokenInvalid)
		default:
			claims, err := tokens.VerifyAccessToken(raw)
			if err != nil {
				ae, isAuth := errors.AsType[*auth.Error](err)
				if !isAuth {
					ae = auth.ErrTokenInvalid
				}
				ctx = auth.WithTokenError(ctx, ae)
			} else {
				ctx = auth.WithClaims(ctx, claims)
			}
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// withClient records who is calling (user agent, client IP) for rate limits,
// audit events and the sessions a request may create.
func withClient(trusted []netip.Prefix, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ua := r.UserAgent()
		if len(ua) > maxUserAgent {
			ua = ua[:maxUserAgent]
		}
		ip := clientIP(r, trusted)
		ctx := auth.WithClient(r.Context(), auth.Client{UserAgent: strings.ToValidUTF8(ua, ""), IP: ip})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
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

// bearer extracts the token of a single "Bearer <token>" header value.
func bearer(values []string) (string, bool) {
	if len(values) != 1 {
		return "", false
	}
	scheme, rest, _ := strings.Cut(strings.TrimSpace(values[0]), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(rest), true
}

// writeError answers with a GraphQL-shaped error body, so that clients that
// only read errors[].extensions.code still understand transport failures.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{
		"errors": []map[string]any{{"message": msg, "extensions": map[string]string{"code": code}}},
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
