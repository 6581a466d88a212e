package main

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// WebSockets through run(): a socket outlives the HTTP read and write
// timeouts (it is kept alive by pings, not bounded like a request), and
// stopping the server closes it with 1001 before run returns.
func TestRunWebSocketsOutliveHTTPTimeoutsAndCloseOnShutdown(t *testing.T) {
	env := map[string]string{"PORT": "0", "HOST": "127.0.0.1", "DATA_DIR": t.TempDir(), "BCRYPT_COST": "10",
		"HTTP_READ_TIMEOUT": "3s", "HTTP_WRITE_TIMEOUT": "3s"}
	base, out, stop := start(t, env)
	reg := gql(t, base, "", `mutation($i: RegisterInput!) { register(input: $i) { accessToken } }`,
		map[string]any{"i": map[string]any{"username": "wendy", "email": "wendy@example.com", "password": fixturePassword}})
	tok := field(t, reg, "register", "accessToken")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/query",
		&websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		t.Fatalf("dial: %v\n%s", err, out.String())
	}
	defer conn.CloseNow()
	send := func(v any) {
		b, _ := json.Marshal(v)
		if err := conn.Write(ctx, websocket.MessageText, b); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	frames := make(chan map[string]any, 16)
	readErr := make(chan error, 1)
	go func() {
		for {
			_, b, err := conn.Read(context.Background())
			if err != nil {
				readErr <- err
				return
			}
			var f map[string]any
			_ = json.Unmarshal(b, &f)
			frames <- f
		}
	}()
	next := func() map[string]any {
		select {
		case f := <-frames:
			return f
		case err := <-readErr:
			t.Fatalf("socket ended: %v", err)
		case <-time.After(5 * time.Second):
			t.Fatal("no frame within 5 s")
		}
		return nil
	}
	send(map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + tok}})
	if f := next(); f["type"] != "connection_ack" {
		t.Fatalf("got %v, want connection_ack", f)
	}
	time.Sleep(3500 * time.Millisecond) // past HTTP_READ_TIMEOUT and HTTP_WRITE_TIMEOUT
	send(map[string]any{"type": "subscribe", "id": "1", "payload": map[string]any{"query": "{ me { username } }"}})
	f := next()
	if b, _ := json.Marshal(f); f["type"] != "next" || !strings.Contains(string(b), `"wendy"`) {
		t.Fatalf("me over the socket after the HTTP timeouts: %s", b)
	}
	if err := stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
	for {
		select {
		case <-frames:
			continue
		case err := <-readErr:
			var ce websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != websocket.StatusGoingAway {
				t.Fatalf("socket ended with %v, want close 1001", err)
			}
			return
		case <-time.After(5 * time.Second):
			t.Fatal("the socket was not closed by shutdown")
		}
	}
}
