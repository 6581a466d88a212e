package ws

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	coderws "github.com/coder/websocket"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/authgql/server/internal/auth"
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
// sockets per IP, shutdown), get a Socket in their context, and are counted
// until the socket's handler returns. Other requests pass through.
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
		s := &Socket{hub: h, accepted: make(chan struct{})}
		if !h.add(s) {
			perIP.give(ip)
			writeError(w, http.StatusServiceUnavailable, auth.CodeInternal, "shutting_down", "the server is shutting down")
			return
		}
		// The server's read and write timeouts are for requests: a socket
		// lives on, kept alive by pings.
		rc := http.NewResponseController(w)
		_ = rc.SetReadDeadline(time.Time{})
		_ = rc.SetWriteDeadline(time.Time{})
		// The socket runs on a goroutine of its own, and this one returns
		// once the connection is hijacked: an idle socket then holds a small
		// stack rather than the request's, deep under every middleware. Its
		// context outlives the request's (net/http cancels that on return).
		ctx := context.WithValue(context.WithoutCancel(r.Context()), socketKey{}, s)
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer perIP.give(ip)
			defer h.remove(s)
			defer s.stopTimers()
			next.ServeHTTP(w, r.WithContext(ctx))
		}()
		select {
		case <-s.accepted: // the socket is on its own
		case <-done: // refused before the upgrade: the answer is written
		}
	})
}

// Transport is gqlgen's websocket transport running through this hub.
func (h *Hub) Transport() transport.Websocket {
	limit := h.cfg.MaxMessageBytes
	return transport.Websocket{
		Implementation: implementation{h},
		InitFunc:       h.initFunc,
		InitTimeout:    h.cfg.InitTimeout,
		// Keep-alive pings come from the hub (one goroutine for every
		// socket), not from a goroutine and a ticker per socket.
		PayloadReadLimit: &limit,
	}
}

type implementation struct{ h *Hub }

// Accept upgrades the connection of a request that Handler let in.
func (i implementation) Accept(w http.ResponseWriter, r *http.Request, opts transport.WebsocketAcceptOptions) (transport.WebsocketConn, error) {
	s := FromContext(r.Context())
	if s == nil {
		return nil, errors.New("ws: an upgrade that did not pass through Hub.Handler")
	}
	// Origin was checked by Handler, against the server's own list.
	inner, err := transport.CoderWebsocketImplementation{
		AcceptOptions: coderws.AcceptOptions{InsecureSkipVerify: true},
	}.Accept(w, r, opts)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.inner = inner
	closed := s.closed
	s.mu.Unlock()
	close(s.accepted)
	if closed { // shutdown began meanwhile
		_ = inner.WriteClose(CodeGoingAway, reasonShutdown)
	}
	return s, nil
}

// initFunc authenticates connection_init. The socket's identity comes from
// its payload only: an Authorization header on the upgrade request, or a
// token in the URL, counts for nothing.
func (h *Hub) initFunc(ctx context.Context, payload transport.InitPayload) (context.Context, *transport.InitPayload, error) {
	ctx = auth.Anonymous(ctx)
	s := FromContext(ctx)
	raw, present, valid := tokenFrom(payload)
	if !present {
		return ctx, nil, nil
	}
	fail := func(code int, reason string, err error) (context.Context, *transport.InitPayload, error) {
		ctx = transport.WithWebsocketCloseCode(ctx, code)
		return transport.AppendCloseReason(ctx, reason), nil, err
	}
	if !valid {
		return fail(CodeForbidden, auth.ReasonTokenInvalid, errors.New(auth.ReasonTokenInvalid))
	}
	if code, reason, err := s.authenticate(raw); err != nil {
		return fail(code, reason, err)
	}
	return ctx, nil, nil
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

func (s *Socket) stopTimers() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.expiry != nil {
		s.expiry.Stop()
	}
}

func writeError(w http.ResponseWriter, status int, code auth.Code, reason, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]any{{
		"message": msg, "extensions": map[string]string{"code": string(code), "reason": reason},
	}}})
}
