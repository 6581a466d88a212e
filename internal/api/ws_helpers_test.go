package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// wsClient speaks graphql-transport-ws (the graphql-ws library's protocol)
// over a real socket, as a test sees it: every frame, every close code.
type wsClient struct {
	t    *testing.T
	conn *websocket.Conn
	// frames read by the reader goroutine; err is why reading stopped
	frames chan wsFrame
	done   chan struct{}
	err    error
	// frames read but not yet consumed by an expectation
	pending []wsFrame
	// pings counts the server's pings; silent makes the reader leave them
	// unanswered.
	pings  atomic.Int32
	silent atomic.Bool
}

type wsFrame struct {
	Type    string          `json:"type"`
	ID      string          `json:"id,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

type wsDial struct {
	header http.Header
	query  string // appended to the URL (a token there must count for nothing)
}

func (e *env) wsURL() string { return "ws" + strings.TrimPrefix(e.srv.URL, "http") + "/query" }

// dialWS opens a socket; it fails the test when the upgrade is refused.
func (e *env) dialWS(t *testing.T, d wsDial) *wsClient {
	t.Helper()
	c, res, err := e.tryDialWS(t, d)
	if err != nil {
		status := 0
		if res != nil {
			status = res.StatusCode
		}
		t.Fatalf("dial %s: %v (HTTP %d)", e.wsURL(), err, status)
	}
	return c
}

func (e *env) tryDialWS(t *testing.T, d wsDial) (*wsClient, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	url := e.wsURL()
	if d.query != "" {
		url += "?" + d.query
	}
	conn, res, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		Subprotocols: []string{"graphql-transport-ws"}, HTTPHeader: d.header})
	if err != nil {
		return nil, res, err
	}
	conn.SetReadLimit(1 << 20)
	c := &wsClient{t: t, conn: conn, frames: make(chan wsFrame, 64), done: make(chan struct{})}
	// One reader for the socket's life: coder/websocket closes a connection
	// whose Read is cancelled, so reads never time out; waits do.
	go c.readLoop()
	t.Cleanup(func() { conn.CloseNow() })
	return c, res, nil
}

func (c *wsClient) readLoop() {
	defer close(c.done)
	for {
		_, b, err := c.conn.Read(context.Background())
		if err != nil {
			c.err = err
			return
		}
		var f wsFrame
		if err := json.Unmarshal(b, &f); err != nil {
			c.err = fmt.Errorf("frame is not JSON: %s", b)
			return
		}
		if f.Type == "ping" {
			c.pings.Add(1)
			if c.silent.Load() {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = c.conn.Write(ctx, websocket.MessageText, []byte(`{"type":"pong"}`))
			cancel()
			continue
		}
		c.frames <- f
	}
}

func (c *wsClient) send(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(b)
}

func (c *wsClient) sendRaw(b []byte) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.conn.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Fatalf("ws write: %v", err)
	}
}

// read returns the next frame (answering the server's pings), or the error
// that ended the socket.
func (c *wsClient) read(within time.Duration) (wsFrame, error) {
	if len(c.pending) > 0 {
		f := c.pending[0]
		c.pending = c.pending[1:]
		return f, nil
	}
	timer := time.NewTimer(within)
	defer timer.Stop()
	select {
	case f := <-c.frames:
		return f, nil
	case <-c.done:
		select {
		case f := <-c.frames: // frames read before the end come first
			return f, nil
		default:
		}
		return wsFrame{}, c.err
	case <-timer.C:
		return wsFrame{}, context.DeadlineExceeded
	}
}

func (c *wsClient) expect(typ string, within time.Duration) wsFrame {
	c.t.Helper()
	f, err := c.read(within)
	if err != nil {
		c.t.Fatalf("waiting for %q: %v", typ, err)
	}
	if typ == "next" && f.Type == "complete" {
		return c.expect(typ, within) // the end of another operation
	}
	if f.Type != typ {
		c.t.Fatalf("got frame %+v (payload %s), want %q", f, f.Payload, typ)
	}
	return f
}

// init sends connection_init and expects the ack.
func (c *wsClient) init(payload any) {
	c.t.Helper()
	c.send(map[string]any{"type": "connection_init", "payload": payload})
	c.expect("connection_ack", 5*time.Second)
}

// subscribe starts an operation.
func (c *wsClient) subscribe(id, query string, vars map[string]any) {
	c.t.Helper()
	c.send(map[string]any{"type": "subscribe", "id": id, "payload": map[string]any{"query": query, "variables": vars}})
}

// result runs a query or mutation and returns its one result (frames of
// other operations are dropped).
func (c *wsClient) result(id, query string, vars map[string]any) gqlResponse {
	c.t.Helper()
	c.subscribe(id, query, vars)
	f := c.expect("next", 5*time.Second)
	for f.ID != id {
		f = c.expect("next", 5*time.Second)
	}
	var res gqlResponse
	if err := json.Unmarshal(f.Payload, &res); err != nil {
		c.t.Fatalf("next payload: %v: %s", err, f.Payload)
	}
	res.Raw, res.Status = string(f.Payload), http.StatusOK
	if f.ID != id {
		c.t.Fatalf("next for %q, want %q", f.ID, id)
	}
	c.expect("complete", 5*time.Second)
	return res
}

// expectClose reads until the server closes the socket and checks the code
// and reason; it returns how long that took.
func (c *wsClient) expectClose(code websocket.StatusCode, reason string, within time.Duration) time.Duration {
	c.t.Helper()
	start := time.Now()
	for {
		f, err := c.read(within)
		if err == nil {
			if time.Since(start) > within {
				c.t.Fatalf("socket still open after %v", within)
			}
			c.t.Logf("frame before close: %+v %s", f, f.Payload)
			continue
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) {
			c.t.Fatalf("socket ended with %v, want close %d %q", err, code, reason)
		}
		if ce.Code != code || ce.Reason != reason {
			c.t.Fatalf("close %d %q, want %d %q", ce.Code, ce.Reason, code, reason)
		}
		return time.Since(start)
	}
}

// staysOpen checks that nothing closes the socket for d.
func (c *wsClient) staysOpen(d time.Duration) {
	c.t.Helper()
	f, err := c.read(d)
	if err == nil {
		c.pending = append(c.pending, f)
		return
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return
	}
	c.t.Fatalf("socket closed: %v", err)
}

func bearerPayload(tok string) map[string]any {
	return map[string]any{"Authorization": "Bearer " + tok}
}

// event decodes a securityEvents result.
type securityEvent struct {
	Type      string  `json:"type"`
	At        string  `json:"at"`
	SessionID *string `json:"sessionId"`
	Current   bool    `json:"current"`
	UserAgent *string `json:"userAgent"`
	IP        *string `json:"ip"`
}

const eventsSubscription = `subscription { securityEvents { type at sessionId current userAgent ip } }`

func (c *wsClient) nextEvent(id string, within time.Duration) securityEvent {
	c.t.Helper()
	f := c.expect("next", within)
	if f.ID != id {
		c.t.Fatalf("event for %q, want %q", f.ID, id)
	}
	var res struct {
		Data struct {
			SecurityEvents securityEvent `json:"securityEvents"`
		} `json:"data"`
		Errors []gqlError `json:"errors"`
	}
	if err := json.Unmarshal(f.Payload, &res); err != nil || len(res.Errors) > 0 {
		c.t.Fatalf("event payload %s (%v)", f.Payload, err)
	}
	return res.Data.SecurityEvents
}
