package ws

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"

	"github.com/authgql/server/internal/auth"
)

// Socket is one WebSocket connection. It is the transport.WebsocketConn that
// gqlgen reads and writes through, so every message passes here first.
type Socket struct {
	hub      *Hub
	inner    transport.WebsocketConn
	accepted chan struct{} // closed once the connection is upgraded
	// heard is when the client last sent anything (unix nanoseconds): the
	// hub's keep-alive closes a socket that stays silent two intervals.
	heard atomic.Int64
	acked atomic.Bool // connection_ack was written: keep-alive pings may follow

	mu     sync.Mutex
	closed bool
	inited bool
	raw    string // the access token the socket runs on ("" anonymous)
	claims auth.Claims
	authed bool
	expiry *time.Timer
	ops    map[string]struct{} // operation ids running
	ended  map[string]struct{} // ids that ended by the client's complete or an error: no complete follows
	events int                 // securityEvents subscriptions running
	// ending is set when a subscription delivers the end of the socket's own
	// session: the complete that follows its last event closes the socket.
	ending *closing

	// guarded by hub.mu
	boundUser, boundSession string
}

var (
	_ transport.WebsocketConn          = (*Socket)(nil)
	_ transport.WebsocketReadLimiter   = (*Socket)(nil)
	_ transport.WebsocketReadDeadliner = (*Socket)(nil)
)

// frame is the envelope of every graphql-transport-ws message.
type frame struct {
	Type    string          `json:"type"`
	ID      string          `json:"id,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// NextReader hands gqlgen the next message the protocol allows, after
// acting on it; anything else closes the socket.
func (s *Socket) NextReader() (int, io.Reader, error) {
	for {
		mt, r, err := s.inner.NextReader()
		if err != nil {
			return mt, r, err
		}
		s.heard.Store(time.Now().UnixNano())
		data, err := io.ReadAll(r)
		if err != nil {
			return mt, nil, err
		}
		var f frame
		if json.Unmarshal(data, &f) != nil {
			return s.refuse(CodeBadRequest, "Invalid message received")
		}
		switch f.Type {
		case "connection_init":
			if !s.markInit() {
				return s.refuse(CodeTooManyInits, reasonTooManyInits)
			}
		case "subscribe":
			if !s.isInited() {
				return s.refuse(CodeUnauthorized, reasonUnauthorized)
			}
			if f.ID == "" || len(f.ID) > 128 || len(f.Payload) == 0 {
				return s.refuse(CodeBadRequest, "Invalid message received")
			}
			switch s.startOp(f.ID) {
			case opDuplicate:
				return s.refuse(CodeDuplicateID, fmt.Sprintf("Subscriber for %.64s already exists", f.ID))
			case opTooMany:
				s.tooManyOps(f.ID)
				continue // gqlgen never sees it
			}
		case "complete":
			if !s.isInited() {
				return s.refuse(CodeUnauthorized, reasonUnauthorized)
			}
			s.endOp(f.ID, true)
		case "ping":
			if len(f.Payload) > 0 && string(f.Payload) != "null" {
				if code, reason, ok := s.renew(f.Payload); !ok {
					return s.refuse(code, reason)
				}
				data = []byte(`{"type":"ping"}`) // the pong must not echo a token back
			}
			if !s.isInited() {
				// Allowed at any time by the protocol; gqlgen expects init first.
				_ = s.inner.WriteJSON(json.RawMessage(`{"type":"pong"}`))
				continue
			}
		case "pong":
			if !s.isInited() {
				continue
			}
		default:
			return s.refuse(CodeBadRequest, "Invalid message received")
		}
		return mt, bytes.NewReader(data), nil
	}
}

// refuse closes the socket and ends gqlgen's read loop quietly.
func (s *Socket) refuse(code int, reason string) (int, io.Reader, error) {
	s.CloseWith(code, reason)
	return 0, nil, transport.ErrWebsocketClosed
}

func (s *Socket) markInit() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inited {
		return false
	}
	s.inited = true
	return true
}

func (s *Socket) isInited() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inited
}

type opResult int

const (
	opStarted opResult = iota
	opDuplicate
	opTooMany
)

func (s *Socket) startOp(id string) opResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.ops[id]; ok {
		return opDuplicate
	}
	if max := s.hub.cfg.MaxOperations; max > 0 && len(s.ops) >= max {
		return opTooMany
	}
	if s.ops == nil {
		s.ops = make(map[string]struct{})
	}
	s.ops[id] = struct{}{}
	return opStarted
}

// endOp forgets a finished operation; quiet says that no complete message
// may follow (the client completed it, or an error ended it).
func (s *Socket) endOp(id string, quiet bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, running := s.ops[id]; running && quiet {
		if s.ended == nil {
			s.ended = make(map[string]struct{})
		}
		s.ended[id] = struct{}{}
	}
	delete(s.ops, id)
}

// suppressComplete reports whether gqlgen's complete for id must not be
// sent: the protocol sends none after an error, nor to a client that
// completed the operation itself.
func (s *Socket) suppressComplete(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.ended[id]; ok {
		delete(s.ended, id)
		return true
	}
	return false
}

// tooManyOps answers an operation over WS_MAX_SUBSCRIPTIONS with an error
// for its id; the socket and its other operations go on.
func (s *Socket) tooManyOps(id string) {
	payload, _ := json.Marshal([]map[string]any{{
		"message":    fmt.Sprintf("at most %d operations may run on one connection; complete one first", s.hub.cfg.MaxOperations),
		"extensions": map[string]any{"code": string(auth.CodeRateLimited), "reason": "subscriptions"},
	}})
	msg, _ := json.Marshal(frame{Type: "error", ID: id, Payload: payload})
	_ = s.inner.WriteJSON(json.RawMessage(msg))
}

// WriteJSON writes gqlgen's message, noting operations that ended and waking
// whoever waits for the next result to be on the wire.
func (s *Socket) WriteJSON(v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var f frame
	_ = json.Unmarshal(data, &f)
	switch f.Type {
	case "connection_ack":
		defer s.acked.Store(true)
	case "error":
		s.endOp(f.ID, true)
	case "complete":
		s.mu.Lock()
		ending := s.ending
		s.mu.Unlock()
		if ending != nil {
			// gqlgen runs a subscription's results one after another: this
			// complete comes after the final event was written. The socket
			// closes instead, with no complete before its close frame.
			ending.once.Do(func() { s.CloseWith(ending.code, ending.reason) })
			return nil
		}
		if s.suppressComplete(f.ID) {
			return nil
		}
		s.endOp(f.ID, false)
	}
	return s.inner.WriteJSON(json.RawMessage(data))
}

type closing struct {
	code   int
	reason string
	once   sync.Once
}

// WriteClose is gqlgen closing the socket: its codes are mapped to the
// protocol's, and a socket this package closed first stays as it was closed.
func (s *Socket) WriteClose(code int, message string) error {
	if code == transport.WebsocketCloseProtocolError && message == "connection initialisation timeout" {
		code, message = CodeInitTimeout, reasonInitTimeout
	}
	s.CloseWith(code, message)
	return nil
}

// CloseWith closes the socket with code and reason (once; later calls do
// nothing). The close handshake runs in the background; gqlgen's read loop
// then ends and the handler returns.
func (s *Socket) CloseWith(code int, reason string) {
	s.mu.Lock()
	if s.closed || s.inner == nil {
		s.closed = true
		s.mu.Unlock()
		return
	}
	s.closed = true
	if s.expiry != nil {
		s.expiry.Stop()
	}
	s.mu.Unlock()
	_ = s.inner.WriteClose(code, reason)
}

// Closed reports whether the socket was closed.
func (s *Socket) Closed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// CloseAfterFinalEvent closes the socket once a subscription's final event
// has been written: the subscription hands the event on and then ends, and
// gqlgen, which writes a subscription's results in order, sends its complete
// only after that event; the socket closes there (or after the hub's grace
// period at the latest). A subscription delivering the end of the socket's
// own session calls it before handing that event on.
func (s *Socket) CloseAfterFinalEvent(code int, reason string) {
	c := &closing{code: code, reason: reason}
	s.mu.Lock()
	if s.ending == nil {
		s.ending = c
	} else {
		c = s.ending
	}
	s.mu.Unlock()
	time.AfterFunc(s.hub.cfg.CloseGracePeriod, func() { c.once.Do(func() { s.CloseWith(c.code, c.reason) }) })
}

// WatchEvents records a securityEvents subscription on this socket until the
// returned function is called.
func (s *Socket) WatchEvents() (done func()) {
	s.mu.Lock()
	s.events++
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			s.events--
			s.mu.Unlock()
		})
	}
}

func (s *Socket) watchingEvents() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.events > 0
}

// Close releases the connection: gqlgen's last call.
func (s *Socket) Close() error {
	if s.inner == nil {
		return nil
	}
	return s.inner.Close()
}

// Subprotocol is the negotiated subprotocol.
func (s *Socket) Subprotocol() string { return s.inner.Subprotocol() }

// SetReadLimit bounds a message (gqlgen sets PayloadReadLimit here).
func (s *Socket) SetReadLimit(limit int64) {
	if l, ok := s.inner.(transport.WebsocketReadLimiter); ok {
		l.SetReadLimit(limit)
	}
}

// SetReadDeadline is gqlgen's missing-pong deadline.
func (s *Socket) SetReadDeadline(t time.Time) error {
	if d, ok := s.inner.(transport.WebsocketReadDeadliner); ok {
		return d.SetReadDeadline(t)
	}
	return nil
}

// authenticate runs the socket on an access token (connection_init): it
// must verify, and the user must have a free socket.
func (s *Socket) authenticate(raw string) (code int, reason string, err error) {
	c, err := s.hub.cfg.Verifier.VerifyAccessToken(raw)
	if err != nil {
		return CodeForbidden, reasonOf(err), err
	}
	if !s.hub.bind(s, c) {
		return CodeTryAgainLater, ReasonTooManySockets, errTooManySockets
	}
	s.setToken(raw, c)
	return 0, "", nil
}

var errTooManySockets = errors.New("too many connections for this user")

// renew takes a fresh token from a ping payload: it must be of the same
// user and session.
func (s *Socket) renew(payload json.RawMessage) (code int, reason string, ok bool) {
	var p map[string]any
	if json.Unmarshal(payload, &p) != nil {
		return CodeBadRequest, "Invalid message received", false
	}
	raw, present, valid := tokenFrom(p)
	if !present {
		return 0, "", true // an ordinary ping
	}
	if !valid {
		return CodeForbidden, auth.ReasonTokenInvalid, false
	}
	c, err := s.hub.cfg.Verifier.VerifyAccessToken(raw)
	if err != nil {
		return CodeForbidden, reasonOf(err), false
	}
	s.mu.Lock()
	same := s.authed && c.UserID == s.claims.UserID && c.SessionID == s.claims.SessionID
	s.mu.Unlock()
	if !same {
		return CodeForbidden, reasonSessionMismatch, false
	}
	s.setToken(raw, c)
	return 0, "", true
}

// setToken makes raw the socket's token and arms the close at its expiry.
func (s *Socket) setToken(raw string, c auth.Claims) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.raw, s.claims, s.authed = raw, c, true
	if s.expiry != nil {
		s.expiry.Stop()
	}
	wait := c.ExpiresAt.Add(s.hub.cfg.Leeway).Sub(s.hub.cfg.Now())
	s.expiry = time.AfterFunc(max(wait, 0), func() { s.CloseWith(CodeForbidden, auth.ReasonTokenExpired) })
}

// token is the socket's current access token.
func (s *Socket) token() (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.raw, s.authed
}

func reasonOf(err error) string {
	if r := auth.ErrorReason(err); r != "" && r != "internal" && r != string(auth.CodeInternal) {
		return r
	}
	return auth.ReasonTokenInvalid
}

// tokenFrom reads the access token of a connection_init or ping payload:
// Authorization or authorization ("Bearer …"), or authToken or token (the
// bare token). present says one of the keys was there; valid that it held a
// usable string ("Bearer " alone is a logged-out client: not present).
func tokenFrom(p map[string]any) (raw string, present, valid bool) {
	for _, k := range []string{"Authorization", "authorization"} {
		if v, ok := p[k]; ok {
			str, isStr := v.(string)
			if !isStr {
				return "", true, false
			}
			scheme, rest, _ := bytes.Cut([]byte(str), []byte(" "))
			if !bytes.EqualFold(scheme, []byte("Bearer")) {
				if len(bytes.TrimSpace([]byte(str))) == 0 {
					return "", false, false
				}
				return "", true, false
			}
			t := string(bytes.TrimSpace(rest))
			if t == "" {
				return "", false, false
			}
			return t, true, true
		}
	}
	for _, k := range []string{"authToken", "token"} {
		if v, ok := p[k]; ok {
			str, isStr := v.(string)
			if !isStr {
				return "", true, false
			}
			if str == "" {
				return "", false, false
			}
			return str, true, true
		}
	}
	return "", false, false
}
