package ws

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"

	"github.com/authgql/server/internal/auth"
)

// Socket is one WebSocket connection speaking graphql-transport-ws.
//
// An idle socket costs one goroutine parked in a read with a shallow stack,
// this struct, the connection and a 256-byte read buffer: every message is
// handled on a goroutine of its own, the write buffer is pooled between
// messages, and nothing of the upgrade request is kept.
type Socket struct {
	hub   *Hub
	ip    string   // the client's address, for the per-IP count
	perIP *counter // nil when not counted
	exec  graphql.GraphExecutor
	ctx   context.Context // the client, the request id and the socket: nothing of the request
	conn  *websocket.Conn // nil until upgraded
	// heard is when the client last sent anything (unix nanoseconds): the
	// hub's keep-alive closes a socket that stays silent two intervals.
	heard atomic.Int64
	acked atomic.Bool // connection_ack was written: keep-alive pings may follow

	wmu sync.Mutex // one writer at a time

	mu      sync.Mutex
	started bool // upgraded, and serve runs
	closed  bool
	inited  bool
	raw     string // the access token the socket runs on ("" anonymous)
	claims  auth.Claims
	authed  bool
	timer   *time.Timer // the init timeout, then the token's expiry
	ops     map[string]*operation
	events  int // securityEvents subscriptions running

	// guarded by hub.mu
	boundUser, boundSession string
}

// operation is one running subscribe.
type operation struct {
	cancel context.CancelFunc
	quiet  bool // no complete may follow: the client completed it
	// ending is set (under the socket's mu) when this operation delivers the
	// end of the socket's own session: its end closes the socket.
	ending *closing
}

type opKey struct{}

type closing struct {
	code   int
	reason string
	once   sync.Once
}

// frame is the envelope of every graphql-transport-ws message.
type frame struct {
	Type    string          `json:"type"`
	ID      string          `json:"id,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

const (
	writeWait         = 10 * time.Second // a write that takes longer closes the socket
	pingWait          = time.Second      // the keep-alive's write, which must not hold up the others
	closeWait         = time.Second      // how long a closed socket waits for the client's close frame
	maxIDBytes        = 128
	reasonInvalid     = "Invalid message received"
	reasonSubprotocol = "Subprotocol not acceptable"
)

var (
	msgAck  = []byte(`{"type":"connection_ack"}`)
	msgPing = []byte(`{"type":"ping"}`)
	msgPong = []byte(`{"type":"pong"}`)
)

// serve reads the socket until it closes. It runs on a goroutine of its own
// that parks in the read; each message is handled on another goroutine, so
// this one's stack stays small for the socket's life.
func (s *Socket) serve() {
	defer s.finish()
	for {
		_, r, err := s.conn.NextReader()
		if err != nil {
			if errors.Is(err, websocket.ErrReadLimit) {
				s.linger() // a message over the limit: 1009 was sent
			}
			return // closed, by either side
		}
		data, err := io.ReadAll(r)
		if err != nil {
			if errors.Is(err, websocket.ErrReadLimit) {
				s.linger()
			}
			return
		}
		s.heard.Store(time.Now().UnixNano())
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.handle(data)
		}()
		<-done
	}
}

// linger lets a client that is still sending a message over the limit see
// the 1009 close frame rather than a reset: what it sends is discarded, for
// closeWait and 1 MiB at most, until it closes.
func (s *Socket) linger() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	nc := s.conn.NetConn()
	_ = nc.SetReadDeadline(time.Now().Add(closeWait))
	_, _ = io.Copy(io.Discard, io.LimitReader(nc, 1<<20))
}

// finish releases everything once the read loop has ended.
func (s *Socket) finish() {
	s.mu.Lock()
	s.closed = true
	if s.timer != nil {
		s.timer.Stop()
	}
	ops := s.ops
	s.ops = nil
	s.mu.Unlock()
	for _, op := range ops {
		op.cancel()
	}
	_ = s.conn.Close()
	s.hub.remove(s)
	if s.perIP != nil {
		s.perIP.give(s.ip)
	}
}

// handle acts on one message; anything the protocol does not allow closes
// the socket.
func (s *Socket) handle(data []byte) {
	start := graphql.Now()
	var f frame
	if json.Unmarshal(data, &f) != nil {
		s.CloseWith(CodeBadRequest, reasonInvalid)
		return
	}
	switch f.Type {
	case "connection_init":
		s.init(f.Payload)
	case "subscribe":
		if !s.isInited() {
			s.CloseWith(CodeUnauthorized, reasonUnauthorized)
			return
		}
		if f.ID == "" || len(f.ID) > maxIDBytes || !isObject(f.Payload) {
			s.CloseWith(CodeBadRequest, reasonInvalid)
			return
		}
		s.subscribe(f.ID, f.Payload, start)
	case "complete":
		if !s.isInited() {
			s.CloseWith(CodeUnauthorized, reasonUnauthorized)
			return
		}
		s.mu.Lock()
		op := s.ops[f.ID]
		if op != nil {
			op.quiet = true
			delete(s.ops, f.ID) // the id is free again
		}
		s.mu.Unlock()
		if op != nil {
			op.cancel()
		}
	case "ping":
		if len(f.Payload) > 0 && string(f.Payload) != "null" {
			if code, reason, ok := s.renew(f.Payload); !ok {
				s.CloseWith(code, reason)
				return
			}
		}
		s.write(msgPong, writeWait) // never an echo: the payload may hold a token
	case "pong":
	default:
		s.CloseWith(CodeBadRequest, reasonInvalid)
	}
}

func isObject(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '{'
}

// init authenticates connection_init. The socket's identity comes from its
// payload only: an Authorization header on the upgrade request, or a token
// in the URL, counts for nothing.
func (s *Socket) init(payload json.RawMessage) {
	s.mu.Lock()
	again := s.inited
	s.inited = true
	if !again && s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	s.mu.Unlock()
	if again {
		s.CloseWith(CodeTooManyInits, reasonTooManyInits)
		return
	}
	var p map[string]any
	if len(payload) > 0 && string(payload) != "null" {
		if json.Unmarshal(payload, &p) != nil {
			s.CloseWith(CodeBadRequest, reasonInvalid)
			return
		}
	}
	if raw, present, valid := tokenFrom(p); present {
		if !valid {
			s.CloseWith(CodeForbidden, auth.ReasonTokenInvalid)
			return
		}
		if code, reason, err := s.authenticate(raw); err != nil {
			s.CloseWith(code, reason)
			return
		}
	}
	if s.write(msgAck, writeWait) {
		s.acked.Store(true)
	}
}

func (s *Socket) isInited() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inited
}

// subscribe starts an operation, unless its id is in use (4409) or the socket
// runs WS_MAX_SUBSCRIPTIONS already (an error for this id only).
func (s *Socket) subscribe(id string, payload json.RawMessage, start time.Time) {
	ctx, cancel := context.WithCancel(s.ctx)
	op := &operation{cancel: cancel}
	s.mu.Lock()
	_, dup := s.ops[id]
	max := s.hub.cfg.MaxOperations
	full := max > 0 && len(s.ops) >= max
	closed := s.closed
	if !dup && !full && !closed {
		if s.ops == nil {
			s.ops = make(map[string]*operation)
		}
		s.ops[id] = op
	}
	s.mu.Unlock()
	switch {
	case closed:
		cancel()
	case dup:
		cancel()
		s.CloseWith(CodeDuplicateID, fmt.Sprintf("Subscriber for %.64s already exists", id))
	case full:
		cancel()
		s.sendError(id, &gqlerror.Error{
			Message:    fmt.Sprintf("at most %d operations may run on one connection; complete one first", max),
			Extensions: map[string]any{"code": string(auth.CodeRateLimited), "reason": "subscriptions"},
		})
	default:
		go s.run(ctx, op, id, payload, start)
	}
}

// run executes an operation through gqlgen's executor (the same extensions,
// limits and error presenter as over HTTP) and writes its results in order:
// next for each, then complete — or error alone when the document is refused.
func (s *Socket) run(ctx context.Context, op *operation, id string, payload json.RawMessage, start time.Time) {
	failed := false
	var rc *graphql.OperationContext
	defer func() {
		if r := recover(); r != nil {
			failed = true
			var err error = fmt.Errorf("panic: %v", r)
			if rc != nil {
				err = rc.Recover(ctx, r)
			}
			s.hub.cfg.Logger.ErrorContext(ctx, "ws: operation panicked", "err", err)
			s.sendError(id, &gqlerror.Error{
				Message: "internal server error", Extensions: map[string]any{"code": string(auth.CodeInternal)},
			})
		}
		s.endOp(id, op, failed)
	}()

	ctx = graphql.StartOperationTrace(context.WithValue(ctx, opKey{}, op))
	params := &graphql.RawParams{}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(params); err != nil {
		failed = true
		s.sendError(id, &gqlerror.Error{
			Message: "the subscribe payload is not a GraphQL request", Extensions: map[string]any{"code": "BAD_REQUEST"},
		})
		return
	}
	params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}
	rc, errs := s.exec.CreateOperationContext(ctx, params)
	if errs != nil {
		resp := s.exec.DispatchError(graphql.WithOperationContext(ctx, rc), errs)
		if errcode.GetErrorKind(errs) == errcode.KindProtocol {
			failed = true
			s.sendError(id, resp.Errors...)
			return
		}
		s.sendNext(id, resp)
		return
	}
	ctx = graphql.WithOperationContext(ctx, rc)
	responses, ctx := s.exec.DispatchOperation(ctx, rc)
	for {
		resp := responses(ctx)
		if resp == nil {
			return
		}
		s.sendNext(id, resp)
	}
}

// endOp forgets a finished operation and tells the client: complete, unless
// an error ended it, the client completed it, or the socket closed. After
// the final event of the socket's own session the socket closes instead.
func (s *Socket) endOp(id string, op *operation, failed bool) {
	s.mu.Lock()
	if s.ops[id] == op {
		delete(s.ops, id)
	}
	quiet, closed, ending := op.quiet, s.closed, op.ending
	s.mu.Unlock()
	op.cancel()
	if ending != nil {
		ending.once.Do(func() { s.CloseWith(ending.code, ending.reason) })
		return
	}
	if failed || quiet || closed {
		return
	}
	s.writeFrame(frame{Type: "complete", ID: id})
}

func (s *Socket) sendNext(id string, resp *graphql.Response) {
	b, err := json.Marshal(resp)
	if err != nil {
		s.hub.cfg.Logger.Error("ws: encode a result", "err", err)
		return
	}
	s.writeFrame(frame{Type: "next", ID: id, Payload: b})
}

func (s *Socket) sendError(id string, errs ...*gqlerror.Error) {
	b, err := json.Marshal(errs)
	if err != nil {
		s.hub.cfg.Logger.Error("ws: encode an error", "err", err)
		return
	}
	s.writeFrame(frame{Type: "error", ID: id, Payload: b})
}

func (s *Socket) writeFrame(f frame) {
	b, err := json.Marshal(f)
	if err != nil {
		return
	}
	s.write(b, writeWait)
}

// write sends one message; false when it could not be written. A write that
// fails or takes longer than wait (a client that reads nothing) ends the
// socket.
func (s *Socket) write(data []byte, wait time.Duration) bool {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.writeLocked(data, wait)
}

func (s *Socket) writeLocked(data []byte, wait time.Duration) bool {
	_ = s.conn.SetWriteDeadline(time.Now().Add(wait))
	if err := s.conn.WriteMessage(websocket.TextMessage, data); err != nil {
		_ = s.conn.NetConn().Close() // the read loop ends and cleans up
		return false
	}
	return true
}

// ping is the hub's keep-alive write: skipped when another write is under
// way (the socket is busy, not dead), and bounded by pingWait so that a
// client that reads nothing cannot hold up the round.
func (s *Socket) ping() {
	if !s.wmu.TryLock() {
		return
	}
	defer s.wmu.Unlock()
	s.writeLocked(msgPing, pingWait)
}

// CloseWith closes the socket with code and reason (once; later calls do
// nothing): the close frame is sent, and the read loop ends when the client
// answers it or closeWait has passed.
func (s *Socket) CloseWith(code int, reason string) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	if s.timer != nil {
		s.timer.Stop()
	}
	conn := s.conn
	s.mu.Unlock()
	if conn != nil {
		closeConn(conn, code, reason)
	}
}

func closeConn(conn *websocket.Conn, code int, reason string) {
	_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(closeWait))
	_ = conn.SetReadDeadline(time.Now().Add(closeWait))
}

// Closed reports whether the socket was closed.
func (s *Socket) Closed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// CloseAfterFinalEvent closes the socket once the final event of the
// subscription running in ctx has been written: the subscription hands the
// event on and then ends, and the end of its operation (no other) closes the
// socket, with no complete before the close frame — or the hub's grace
// period at the latest. A subscription delivering the end of the socket's
// own session calls it before handing that event on.
func (s *Socket) CloseAfterFinalEvent(ctx context.Context, code int, reason string) {
	c := &closing{code: code, reason: reason}
	if op, _ := ctx.Value(opKey{}).(*operation); op != nil {
		s.mu.Lock()
		if op.ending == nil {
			op.ending = c
		} else {
			c = op.ending
		}
		s.mu.Unlock()
	}
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
		return CodeBadRequest, reasonInvalid, false
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
	if s.timer != nil {
		s.timer.Stop()
	}
	wait := c.ExpiresAt.Add(s.hub.cfg.Leeway).Sub(s.hub.cfg.Now())
	s.timer = time.AfterFunc(max(wait, 0), func() { s.CloseWith(CodeForbidden, auth.ReasonTokenExpired) })
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
