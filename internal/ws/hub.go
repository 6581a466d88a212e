// Package ws serves GraphQL over WebSockets (the graphql-transport-ws
// protocol of the graphql-ws library) with authentication as strict as the
// HTTP API's. It is a gqlgen transport: gqlgen's executor runs the operations
// (the same extensions, limits and error presenter as over HTTP), and this
// package speaks the protocol: it authenticates connection_init, polices
// every message (one init, known types, unique ids, a bound on operations),
// closes a socket when its token expires or its session ends, and keeps the
// per-IP and per-user limits and the registry that shutdown drains.
package ws

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/authgql/server/internal/auth"
)

// Close codes and reasons. 4403 is the code graphql-ws clients retry after
// calling connectionParams again, which is where a client refreshes.
const (
	CodeForbidden          = 4403 // the token is invalid, expired or its session ended
	CodeInitTimeout        = 4408 // no connection_init within InitTimeout
	CodeTooManyInits       = 4429 // a second connection_init
	CodeBadRequest         = 4400 // a message the protocol does not allow
	CodeUnauthorized       = 4401 // an operation before connection_init
	CodeDuplicateID        = 4409 // an operation id already in use
	CodeSubprotocol        = 4406 // the client did not offer graphql-transport-ws
	CodeMessageTooBig      = 1009 // a message over MaxMessageBytes
	CodeGoingAway          = 1001 // server shutdown
	CodeTryAgainLater      = 1013 // WS_MAX_CONNECTIONS_PER_USER reached
	ReasonTooManySockets   = "too_many_connections"
	reasonShutdown         = "server shutting down"
	reasonInitTimeout      = "Connection initialisation timeout"
	reasonTooManyInits     = "Too many initialisation requests"
	reasonUnauthorized     = "Unauthorized"
	reasonSessionMismatch  = auth.ReasonTokenInvalid
	defaultInitTimeout     = 3 * time.Second
	defaultPingInterval    = 15 * time.Second
	defaultMaxMessageBytes = 64 << 10
)

// Verifier checks an access token as the HTTP API does.
type Verifier interface {
	VerifyAccessToken(raw string) (auth.Claims, error)
}

// Config is what the hub needs.
type Config struct {
	Verifier Verifier
	// Leeway is added to a token's expiry before its socket is closed (the
	// verifier's clock skew).
	Leeway           time.Duration
	MaxPerUser       int // sockets of one user (0: unlimited)
	MaxOperations    int // operations running on one socket (0: unlimited)
	MaxMessageBytes  int64
	InitTimeout      time.Duration
	PingInterval     time.Duration
	Logger           *slog.Logger
	Now              func() time.Time
	CloseGracePeriod time.Duration // how long a revoked socket waits for its own event to be written
}

// Hub is the registry of this instance's sockets.
type Hub struct {
	cfg Config

	mu        sync.Mutex
	sockets   map[*Socket]struct{}
	bySession map[string]map[*Socket]struct{}
	perUser   map[string]int
	closing   bool
	wg        sync.WaitGroup

	// writeBuffers lends a socket a write buffer only while it writes.
	writeBuffers *sync.Pool
}

// New returns a hub.
func New(cfg Config) *Hub {
	if cfg.MaxMessageBytes == 0 {
		cfg.MaxMessageBytes = defaultMaxMessageBytes
	}
	if cfg.InitTimeout == 0 {
		cfg.InitTimeout = defaultInitTimeout
	}
	if cfg.PingInterval == 0 {
		cfg.PingInterval = defaultPingInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.CloseGracePeriod == 0 {
		cfg.CloseGracePeriod = time.Second
	}
	return &Hub{
		cfg:          cfg,
		sockets:      make(map[*Socket]struct{}),
		bySession:    make(map[string]map[*Socket]struct{}),
		perUser:      make(map[string]int),
		writeBuffers: &sync.Pool{},
	}
}

// Open reports how many sockets are open on this instance.
func (h *Hub) Open() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.sockets)
}

// RunningOperations counts the operations running on this instance's sockets.
func (h *Hub) RunningOperations() int {
	h.mu.Lock()
	all := make([]*Socket, 0, len(h.sockets))
	for s := range h.sockets {
		all = append(all, s)
	}
	h.mu.Unlock()
	n := 0
	for _, s := range all {
		s.mu.Lock()
		n += len(s.ops)
		s.mu.Unlock()
	}
	return n
}

// add registers a socket that was just accepted; false during shutdown.
func (h *Hub) add(s *Socket) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing {
		return false
	}
	h.sockets[s] = struct{}{}
	h.wg.Add(1)
	return true
}

// remove forgets a socket that closed.
func (h *Hub) remove(s *Socket) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.sockets[s]; !ok {
		return
	}
	delete(h.sockets, s)
	h.unbindLocked(s)
	h.wg.Done()
}

// bind records the socket's session and user after connection_init; false
// when the user already has MaxPerUser sockets.
func (h *Hub) bind(s *Socket, c auth.Claims) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cfg.MaxPerUser > 0 && h.perUser[c.UserID] >= h.cfg.MaxPerUser {
		return false
	}
	h.perUser[c.UserID]++
	set := h.bySession[c.SessionID]
	if set == nil {
		set = make(map[*Socket]struct{})
		h.bySession[c.SessionID] = set
	}
	set[s] = struct{}{}
	s.boundUser, s.boundSession = c.UserID, c.SessionID
	return true
}

func (h *Hub) unbindLocked(s *Socket) {
	if s.boundUser == "" {
		return
	}
	if h.perUser[s.boundUser]--; h.perUser[s.boundUser] <= 0 {
		delete(h.perUser, s.boundUser)
	}
	if set := h.bySession[s.boundSession]; set != nil {
		delete(set, s)
		if len(set) == 0 {
			delete(h.bySession, s.boundSession)
		}
	}
	s.boundUser, s.boundSession = "", ""
}

// SessionsEnded closes the sockets of sessions that ended (logout, revocation,
// a password change, a disabled or deleted account) with 4403
// session_revoked. A socket that is delivering security events first gets
// the chance to write its own SESSION_REVOKED (see Socket.CloseAfterFinalEvent).
func (h *Hub) SessionsEnded(ids []string) {
	h.mu.Lock()
	var hit []*Socket
	for _, id := range ids {
		for s := range h.bySession[id] {
			hit = append(hit, s)
		}
	}
	h.mu.Unlock()
	for _, s := range hit {
		if s.watchingEvents() {
			time.AfterFunc(h.cfg.CloseGracePeriod, func() { s.CloseWith(CodeForbidden, auth.ReasonSessionRevoked) })
			continue
		}
		s.CloseWith(CodeForbidden, auth.ReasonSessionRevoked)
	}
}

// KeepAlive pings every socket each PingInterval, from one goroutine for
// all of them, and closes those that sent nothing (not even a pong) for two
// intervals. It runs until ctx ends.
func (h *Hub) KeepAlive(ctx context.Context) {
	t := time.NewTicker(h.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		h.mu.Lock()
		all := make([]*Socket, 0, len(h.sockets))
		for s := range h.sockets {
			all = append(all, s)
		}
		h.mu.Unlock()
		silentSince := time.Now().Add(-2 * h.cfg.PingInterval).UnixNano()
		for _, s := range all {
			s.mu.Lock()
			started, closed := s.started, s.closed
			s.mu.Unlock()
			if !started || closed || !s.acked.Load() {
				continue // not yet acknowledged: the init timeout guards it
			}
			if heard := s.heard.Load(); heard != 0 && heard < silentSince {
				s.CloseWith(CodeGoingAway, "keep-alive timeout")
				continue
			}
			s.ping()
		}
	}
}

// Shutdown closes every socket with 1001 and waits until their handlers have
// returned, or ctx ends. New sockets are refused from then on.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	h.closing = true
	all := make([]*Socket, 0, len(h.sockets))
	for s := range h.sockets {
		all = append(all, s)
	}
	h.mu.Unlock()
	for _, s := range all {
		s.CloseWith(CodeGoingAway, reasonShutdown)
	}
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// counter counts sockets per key (client IP).
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func newCounter() *counter { return &counter{n: make(map[string]int)} }

// take counts one more for key unless it already has max (0: no limit).
func (c *counter) take(key string, max int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if max > 0 && c.n[key] >= max {
		return false
	}
	c.n[key]++
	return true
}

func (c *counter) give(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[key]--; c.n[key] <= 0 {
		delete(c.n, key)
	}
}
