package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// wsSubprotocol is the graphql-ws library's protocol, the one the server
// speaks on /query.
const wsSubprotocol = "graphql-transport-ws"

// wsOpenTimeout bounds a socket's handshake, init and ack together.
const wsOpenTimeout = 15 * time.Second

// socketPool holds the idle sockets of the sockets phase. Each socket has a
// reader goroutine that answers the server's pings (the server closes a socket
// that leaves one unanswered for 30 s) and notes the socket's end; nothing
// else is sent.
type socketPool struct {
	url string
	hc  *http.Client

	mu      sync.Mutex
	conns   []*websocket.Conn
	dropped tally // sockets that ended before the pool closed them, by close code and reason
	readers sync.WaitGroup
	closing atomic.Bool
	pongs   atomic.Int64
}

// newSocketPool returns a pool of sockets to the server at baseURL
// (http://host:port).
func newSocketPool(baseURL string) *socketPool {
	tr := &http.Transport{
		Proxy:       nil, // loopback: never through a proxy from the environment
		DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
	}
	return &socketPool{url: "ws" + strings.TrimPrefix(baseURL, "http") + "/query", hc: &http.Client{Transport: tr}}
}

// open opens one socket, authenticated with accessToken at connection_init,
// and returns once the server has acknowledged it.
func (p *socketPool) open(ctx context.Context, accessToken string) error {
	ctx, cancel := context.WithTimeout(ctx, wsOpenTimeout)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, p.url, &websocket.DialOptions{HTTPClient: p.hc, Subprotocols: []string{wsSubprotocol}})
	if err != nil {
		if resp != nil {
			return &opError{kind: fmt.Sprintf("http %d", resp.StatusCode), err: err}
		}
		return wsError("dial", err)
	}
	if got := c.Subprotocol(); got != wsSubprotocol {
		c.CloseNow()
		return &opError{kind: "wrong subprotocol", err: fmt.Errorf("the server chose %q", got)}
	}
	init, _ := json.Marshal(map[string]any{"type": "connection_init",
		"payload": map[string]string{"Authorization": "Bearer " + accessToken}})
	if err := c.Write(ctx, websocket.MessageText, init); err != nil {
		c.CloseNow()
		return wsError("init", err)
	}
	// The server's first message is the ack, or a close with its reason.
	_, data, err := c.Read(ctx)
	if err != nil {
		c.CloseNow()
		return wsError("ack", err)
	}
	if t := messageType(data); t != "connection_ack" {
		c.CloseNow()
		return &opError{kind: "no ack", err: fmt.Errorf("first message %q", truncate(string(data), 100))}
	}
	p.mu.Lock()
	p.conns = append(p.conns, c)
	p.mu.Unlock()
	p.readers.Go(func() { p.read(c) })
	return nil
}

// read answers pings until the socket ends.
func (p *socketPool) read(c *websocket.Conn) {
	for {
		_, data, err := c.Read(context.Background())
		if err != nil {
			if !p.closing.Load() {
				p.mu.Lock()
				p.dropped.addError(wsError("closed", err))
				p.mu.Unlock()
			}
			return
		}
		if messageType(data) == "ping" {
			if err := c.Write(context.Background(), websocket.MessageText, []byte(`{"type":"pong"}`)); err == nil {
				p.pongs.Add(1)
			}
		}
	}
}

// openCount is how many sockets are open: opened, and not ended since.
func (p *socketPool) openCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns) - droppedCount(p.dropped)
}

// drops returns the sockets that ended on their own, as a phase's errors.
func (p *socketPool) drops() tally {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dropped
}

// close drops every socket without a close handshake (the server sees the
// connection end) and waits for the readers.
func (p *socketPool) close() {
	p.closing.Store(true)
	p.mu.Lock()
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	for _, c := range conns {
		c.CloseNow()
	}
	p.readers.Wait()
	p.hc.CloseIdleConnections()
}

func droppedCount(t tally) int {
	n := 0
	for _, k := range t.errs {
		n += k
	}
	return n
}

// wsError names a socket failure by its close code and reason when the
// server closed it ("close 4403 token_expired"), else by the step.
func wsError(step string, err error) error {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		return &opError{kind: fmt.Sprintf("close %d %s", int(ce.Code), ce.Reason), err: err}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &opError{kind: step + " timeout", err: err}
	}
	return &opError{kind: step, err: err}
}

// messageType is the type of a graphql-transport-ws message ("" if none).
func messageType(data []byte) string {
	var m struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(data, &m)
	return m.Type
}
