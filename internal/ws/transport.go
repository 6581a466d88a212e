package ws

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/99designs/gqlgen/graphql"

	"github.com/authgql/server/internal/auth"
	"github.com/authgql/server/internal/requestid"
)

type socketKey struct{}

// FromContext returns the socket an operation runs on, or nil over HTTP.
func FromContext(ctx context.Context) *Socket {
	s, _ := ctx.Value(socketKey{}).(*Socket)
	return s
}

// IsUpgrade reports whether r asks for a WebSocket.
func IsUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// Limits are checked before a socket is accepted.
type Limits struct {
	// CheckOrigin reports whether a browser's Origin may open a socket
	// (cross-site WebSocket hijacking); a request without Origin (not a
	// browser) always may, since no cookie authenticates a socket.
	CheckOrigin func(r *http.Request) bool
	MaxPerIP    int // sockets from one client IP (0: unlimited)
}

// Handler wraps the GraphQL handler: upgrade requests are checked (Origin,
// sockets per IP, shutdown) and get a Socket in their context, which the
// hub's Transport upgrades. Other requests pass through.
func (h *Hub) Handler(l Limits, next http.Handler) http.Handler {
	perIP := newCounter()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !IsUpgrade(r) {
			next.ServeHTTP(w, r)
			return
		}
		if r.Header.Get("Origin") != "" && (l.CheckOrigin == nil || !l.CheckOrigin(r)) {
			writeError(w, http.StatusForbidden, auth.CodeForbidden, auth.ReasonOriginNotAllowed,
				"this origin may not open a WebSocket to this server")
			return
		}
		ip := auth.ClientFromContext(r.Context()).IP
		if !perIP.take(ip, l.MaxPerIP) {
			w.Header().Set("Retry-After", "10")
			writeError(w, http.StatusTooManyRequests, auth.CodeRateLimited, "connections",
				"too many WebSocket connections from this address")
			return
		}
		s := &Socket{hub: h, ip: ip, perIP: perIP}
		if !h.add(s) {
			perIP.give(ip)
			writeError(w, http.StatusServiceUnavailable, auth.CodeInternal, "shutting_down", "the server is shutting down")
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), socketKey{}, s)))
		s.mu.Lock()
		started := s.started
		s.mu.Unlock()
		if !started { // refused before the upgrade: the answer is written
			h.remove(s)
			perIP.give(ip)
		}
	})
}

// protocol is the one subprotocol served: graphql-ws's graphql-transport-ws.
const protocol = "graphql-transport-ws"

// Transport is the gqlgen transport that upgrades the requests Handler let
// in and runs graphql-transport-ws on them, with gqlgen's executor.
func (h *Hub) Transport() graphql.Transport { return wsTransport{h} }

type wsTransport struct{ h *Hub }

var _ graphql.Transport = wsTransport{}

func (wsTransport) Supports(r *http.Request) bool { return IsUpgrade(r) }

// Do upgrades the connection and starts the socket's read loop on a
// goroutine of its own; it returns at once, and with it the request and
// everything the middleware put in its context.
func (t wsTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	s := FromContext(r.Context())
	if s == nil {
		writeError(w, http.StatusBadRequest, "BAD_REQUEST", "upgrade", "a WebSocket upgrade that did not pass through the hub")
		return
	}
	up := websocket.Upgrader{
		HandshakeTimeout: writeWait,
		ReadBufferSize:   256, // grown by bufio only for frame headers; payloads are read through it
		WriteBufferPool:  t.h.writeBuffers,
		Subprotocols:     []string{protocol},
		// Origin was checked by Handler, against the server's own list.
		CheckOrigin: func(*http.Request) bool { return true },
		Error: func(w http.ResponseWriter, _ *http.Request, status int, reason error) {
			writeError(w, status, "BAD_REQUEST", "upgrade", "not a valid WebSocket upgrade: "+reason.Error())
		},
	}
	conn, err := up.Upgrade(hijacker{w}, r, nil)
	if err != nil {
		return // Upgrade answered
	}
	conn.SetReadLimit(t.h.cfg.MaxMessageBytes)
	ctx := auth.WithClient(context.Background(), auth.ClientFromContext(r.Context()))
	if id := requestid.From(r.Context()); id != "" {
		ctx = requestid.With(ctx, id)
	}
	s.ctx = context.WithValue(ctx, socketKey{}, s)
	s.exec = exec
	s.heard.Store(time.Now().UnixNano())

	s.mu.Lock()
	s.conn, s.started = conn, true
	closed := s.closed
	if !closed {
		s.timer = time.AfterFunc(t.h.cfg.InitTimeout, func() {
			if !s.isInited() {
				s.CloseWith(CodeInitTimeout, reasonInitTimeout)
			}
		})
	}
	s.mu.Unlock()
	switch {
	case closed: // shutdown began meanwhile
		closeConn(conn, CodeGoingAway, reasonShutdown)
	case conn.Subprotocol() != protocol:
		s.CloseWith(CodeSubprotocol, reasonSubprotocol)
	}
	go s.serve()
}

// hijacker lets the upgrader take the connection through the middleware's
// response writers (they unwrap to net/http's own).
type hijacker struct{ http.ResponseWriter }

func (h hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(h.ResponseWriter).Hijack()
}

// Operations is the gqlgen extension that gives each operation on a socket
// the socket's current identity, checked again as an HTTP request's token
// is (revocation included): a socket whose session ended runs nothing more.
func (h *Hub) Operations() graphql.HandlerExtension { return operations{} }

type operations struct{}

func (operations) ExtensionName() string                   { return "ws.operations" }
func (operations) Validate(graphql.ExecutableSchema) error { return nil }
func (operations) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	s := FromContext(ctx)
	if s == nil {
		return next(ctx)
	}
	ctx = auth.WithSignIn(auth.Anonymous(ctx)) // a sign-in is the operation's, not the socket's
	if raw, ok := s.token(); ok {
		c, err := s.hub.cfg.Verifier.VerifyAccessToken(raw)
		if err != nil {
			reason := reasonOf(err)
			s.CloseWith(CodeForbidden, reason)
			return graphql.OneShot(&graphql.Response{Errors: gqlerror.List{{
				Message:    "the connection's token is no longer valid",
				Extensions: map[string]any{"code": string(auth.CodeUnauthenticated), "reason": reason},
			}}})
		}
		ctx = auth.WithClaims(ctx, c)
	}
	return next(ctx)
}

func writeError(w http.ResponseWriter, status int, code auth.Code, reason, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]any{{
		"message": msg, "extensions": map[string]string{"code": string(code), "reason": reason},
	}}})
}
