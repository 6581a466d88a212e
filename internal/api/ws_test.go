package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// GraphQL over WebSockets (graphql-transport-ws): authentication at
// connection_init, sockets that die with their credentials, the protocol's
// close codes and the limits.

func TestWSAuthenticatesAtInit(t *testing.T) {
	e := newEnv(t)
	p := e.mustRegister(t, "ws_ann", "ws_ann@example.test")
	for name, payload := range map[string]any{
		"Authorization": map[string]any{"Authorization": "Bearer " + p.AccessToken},
		"authorization": map[string]any{"authorization": "bearer " + p.AccessToken},
		"authToken":     map[string]any{"authToken": p.AccessToken},
		"token":         map[string]any{"token": p.AccessToken},
	} {
		t.Run(name, func(t *testing.T) {
			c := e.dialWS(t, wsDial{})
			c.init(payload)
			res := c.result("1", meQuery, nil)
			if u := me(t, res); u.Username != "ws_ann" {
				t.Fatalf("me over the socket: %+v", u)
			}
		})
	}
	t.Run("anonymous", func(t *testing.T) {
		for _, init := range []any{nil, map[string]any{}, map[string]any{"Authorization": ""},
			map[string]any{"Authorization": "Bearer "}} {
			c := e.dialWS(t, wsDial{})
			c.init(init)
			wantUnauthenticated(t, c.result("1", meQuery, nil), "token_missing")
			// A subscription that needs @auth answers as over HTTP.
			c.subscribe("2", eventsSubscription, nil)
			f := c.expect("next", 5*time.Second)
			if !strings.Contains(string(f.Payload), `"UNAUTHENTICATED"`) {
				t.Fatalf("securityEvents anonymously: %s", f.Payload)
			}
			c.expect("complete", 5*time.Second)
			// Public operations work.
			res := c.result("3", loginMutation, map[string]any{"input": map[string]any{"username": "ws_ann", "password": testPassword}})
			if payload(t, res, "login").RefreshToken == "" {
				t.Fatalf("login over the socket must answer the refresh token in the body: %s", res.Raw)
			}
			// ... and a login over the socket does not sign the socket in.
			wantUnauthenticated(t, c.result("4", meQuery, nil), "token_missing")
		}
	})
	t.Run("a token in the URL or the upgrade's headers counts for nothing", func(t *testing.T) {
		c := e.dialWS(t, wsDial{query: "token=" + p.AccessToken + "&authToken=" + p.AccessToken,
			header: http.Header{"Authorization": {"Bearer " + p.AccessToken}}})
		c.init(nil)
		wantUnauthenticated(t, c.result("1", meQuery, nil), "token_missing")
	})
}

func TestWSRefusesBadTokensAtInit(t *testing.T) {
	o := defaultOptions()
	o.cfg.JWTClockSkew = 0
	e := newEnvWith(t, o)
	p := e.mustRegister(t, "ws_bad", "ws_bad@example.test")
	revoked := e.loginAs(t, "ws_bad")
	if res := e.post(t, revoked.AccessToken, `mutation { logout }`, nil); len(res.Errors) > 0 {
		t.Fatal(res.Raw)
	}
	sub := jwtClaims(t, p.AccessToken)["sub"].(string)
	sid := jwtClaims(t, p.AccessToken)["sid"].(string)
	expired := forge(t, claims{"sub": sub, "sid": sid, "iat": time.Now().Add(-time.Hour).Unix(),
		"nbf": time.Now().Add(-time.Hour).Unix(), "exp": time.Now().Add(-time.Minute).Unix()}, signHS256)
	for _, tt := range []struct {
		name    string
		payload any
		reason  string
	}{
		{"garbage", bearerPayload("not-a-jwt"), "token_invalid"},
		{"forged signature", bearerPayload(p.AccessToken[:len(p.AccessToken)-4] + "AAAA"), "token_invalid"},
		{"another scheme", map[string]any{"Authorization": "Basic " + p.AccessToken}, "token_invalid"},
		{"not a string", map[string]any{"authToken": 42}, "token_invalid"},
		{"expired", bearerPayload(expired), "token_expired"},
		{"revoked session", bearerPayload(revoked.AccessToken), "session_revoked"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := e.dialWS(t, wsDial{})
			c.send(map[string]any{"type": "connection_init", "payload": tt.payload})
			c.expectClose(4403, tt.reason, 5*time.Second)
		})
	}
}

func TestWSProtocolCloseCodes(t *testing.T) {
	e := newEnv(t)
	p := e.mustRegister(t, "ws_proto", "ws_proto@example.test")
	t.Run("no connection_init within 3 s: 4408", func(t *testing.T) {
		c := e.dialWS(t, wsDial{})
		took := c.expectClose(4408, "Connection initialisation timeout", 6*time.Second)
		if took < 2500*time.Millisecond {
			t.Errorf("closed after %v, want about 3 s", took)
		}
	})
	t.Run("two inits: 4429", func(t *testing.T) {
		c := e.dialWS(t, wsDial{})
		c.init(bearerPayload(p.AccessToken))
		c.send(map[string]any{"type": "connection_init"})
		c.expectClose(4429, "Too many initialisation requests", 5*time.Second)
	})
	t.Run("subscribe before init: 4401", func(t *testing.T) {
		c := e.dialWS(t, wsDial{})
		c.subscribe("1", meQuery, nil)
		c.expectClose(4401, "Unauthorized", 5*time.Second)
	})
	t.Run("a message the protocol does not know: 4400", func(t *testing.T) {
		for _, msg := range []string{`{"type":"next","id":"1"}`, `not json`, `{"type":"subscribe","payload":{"query":"{ __typename }"}}`} {
			c := e.dialWS(t, wsDial{})
			c.init(nil)
			c.sendRaw([]byte(msg))
			c.expectClose(4400, "Invalid message received", 5*time.Second)
		}
	})
	t.Run("an id in use: 4409", func(t *testing.T) {
		c := e.dialWS(t, wsDial{})
		c.init(bearerPayload(p.AccessToken))
		c.subscribe("same", eventsSubscription, nil)
		c.subscribe("same", eventsSubscription, nil)
		c.expectClose(4409, "Subscriber for same already exists", 5*time.Second)
	})
	t.Run("no complete after an error, nor after the client's complete", func(t *testing.T) {
		c := e.dialWS(t, wsDial{})
		c.init(bearerPayload(p.AccessToken))
		c.subscribe("bad", `subscription { securityEvents { nope } }`, nil)
		if f := c.expect("error", 5*time.Second); f.ID != "bad" {
			t.Fatalf("error for %q", f.ID)
		}
		c.subscribe("ev", eventsSubscription, nil)
		time.Sleep(100 * time.Millisecond)
		c.send(map[string]any{"type": "complete", "id": "ev"})
		if f, err := c.read(700 * time.Millisecond); err == nil {
			t.Fatalf("after an error and the client's complete: got %+v %s, want nothing", f, f.Payload)
		}
		if u := me(t, c.result("after", meQuery, nil)); u.Username != "ws_proto" {
			t.Fatalf("the socket still serves: %+v", u)
		}
	})
	t.Run("a completed id is free again at once", func(t *testing.T) {
		c := e.dialWS(t, wsDial{})
		c.init(bearerPayload(p.AccessToken))
		for range 3 {
			c.subscribe("again", eventsSubscription, nil)
			c.send(map[string]any{"type": "complete", "id": "again"})
		}
		if u := me(t, c.result("again", meQuery, nil)); u.Username != "ws_proto" {
			t.Fatalf("me on a reused id: %+v", u)
		}
	})
	t.Run("ping before init is answered", func(t *testing.T) {
		c := e.dialWS(t, wsDial{})
		c.send(map[string]any{"type": "ping"})
		c.expect("pong", 5*time.Second)
		c.init(nil)
	})
	t.Run("a message over 64 KiB closes the socket", func(t *testing.T) {
		c := e.dialWS(t, wsDial{})
		c.init(nil)
		big := fmt.Sprintf(`{"type":"subscribe","id":"1","payload":{"query":"{ __typename }","variables":{"x":"%s"}}}`,
			strings.Repeat("a", 65<<10))
		c.sendRaw([]byte(big))
		c.expectClose(websocket.StatusMessageTooBig, "", 5*time.Second)
	})
	t.Run("a frame that announces 1 GiB is refused from its header", func(t *testing.T) {
		// Raw TCP: the upgrade by hand, then only a frame header claiming a
		// 1 GiB payload. The server must answer 1009 without waiting for
		// (or buffering) the payload.
		addr := strings.TrimPrefix(e.srv.URL, "http://")
		nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(nc, "GET /query HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"+
			"Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n", addr)
		br := bufio.NewReader(nc)
		res, err := http.ReadResponse(br, nil)
		if err != nil || res.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("upgrade: %v %v", res, err)
		}
		header := []byte{0x81, 0x80 | 127, 0, 0, 0, 0, 0x40, 0, 0, 0, 1, 2, 3, 4} // text, masked, 1<<30 bytes
		if _, err := nc.Write(header); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		frame := make([]byte, 4)
		if _, err := io.ReadFull(br, frame); err != nil {
			t.Fatalf("no close frame: %v", err)
		}
		if frame[0] != 0x88 || frame[1] < 2 || int(frame[2])<<8|int(frame[3]) != 1009 {
			t.Fatalf("got frame % x, want a close with 1009", frame)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("the close took %v", took)
		}
	})
	t.Run("a client without graphql-transport-ws: 4406", func(t *testing.T) {
		for _, protocols := range [][]string{nil, {"graphql-ws"}} {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			conn, _, err := websocket.Dial(ctx, e.wsURL(), &websocket.DialOptions{Subprotocols: protocols})
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			c := &wsClient{t: t, conn: conn, frames: make(chan wsFrame, 64), done: make(chan struct{})}
			go c.readLoop()
			t.Cleanup(func() { conn.CloseNow() })
			c.expectClose(4406, "Subprotocol not acceptable", 5*time.Second)
		}
	})
}

// The socket dies with its credentials: the token's expiry, or the end of its
// session on any instance, closes it with 4403 within the revocation bound.
func TestWSClosesWhenTheTokenExpires(t *testing.T) {
	o := defaultOptions()
	o.cfg.AccessTokenTTL, o.cfg.JWTClockSkew = 2*time.Second, 0
	e := newEnvWith(t, o)
	p := e.mustRegister(t, "ws_exp", "ws_exp@example.test")
	c := e.dialWS(t, wsDial{})
	c.init(bearerPayload(p.AccessToken))
	took := c.expectClose(4403, "token_expired", 5*time.Second)
	t.Logf("closed %v after init (token lifetime 2 s)", took.Round(time.Millisecond))

	// A fresh token of the same session, sent in a ping, keeps the socket
	// open past the first token's expiry.
	p2 := e.loginAs(t, "ws_exp")
	c = e.dialWS(t, wsDial{})
	c.init(bearerPayload(p2.AccessToken))
	time.Sleep(time.Second)
	next := payload(t, e.refresh(t, "", p2.RefreshToken), "refreshToken")
	c.send(map[string]any{"type": "ping", "payload": bearerPayload(next.AccessToken)})
	pong := c.expect("pong", 5*time.Second)
	if strings.Contains(string(pong.Payload), next.AccessToken) {
		t.Fatal("the pong echoes the token")
	}
	c.staysOpen(1500 * time.Millisecond) // past the first token's expiry
	if u := me(t, c.result("1", meQuery, nil)); u.Username != "ws_exp" {
		t.Fatalf("me after renewal: %+v", u)
	}
	c.expectClose(4403, "token_expired", 5*time.Second) // the second one's

	// A token of another session in a ping closes the socket.
	a, b := e.loginAs(t, "ws_exp"), e.loginAs(t, "ws_exp")
	c = e.dialWS(t, wsDial{})
	c.init(bearerPayload(a.AccessToken))
	c.send(map[string]any{"type": "ping", "payload": bearerPayload(b.AccessToken)})
	c.expectClose(4403, "token_invalid", 5*time.Second)
	// ... and so does another user's.
	other := e.mustRegister(t, "ws_exp2", "ws_exp2@example.test")
	a = e.loginAs(t, "ws_exp")
	c = e.dialWS(t, wsDial{})
	c.init(bearerPayload(a.AccessToken))
	c.send(map[string]any{"type": "ping", "payload": map[string]any{"token": other.AccessToken}})
	c.expectClose(4403, "token_invalid", 5*time.Second)
}

func TestWSClosesWhenTheSessionEnds(t *testing.T) {
	o := defaultOptions()
	o.db = testDB.Fresh(t)
	o.cfg.RevocationSync = time.Second // the production default
	a := newEnvWith(t, o)
	b := newEnvWith(t, o)
	a.mustRegister(t, "ws_rev", "ws_rev@example.test")

	for _, tt := range []struct {
		name string
		end  func(t *testing.T, p authPayload)
	}{
		{"logout on the other instance", func(t *testing.T, p authPayload) {
			if res := b.post(t, p.AccessToken, `mutation { logout }`, nil); len(res.Errors) > 0 {
				t.Fatal(res.Raw)
			}
		}},
		{"logout ALL from another session on this instance", func(t *testing.T, p authPayload) {
			q := a.loginAs(t, "ws_rev")
			if res := a.post(t, q.AccessToken, `mutation { logout(scope: ALL) }`, nil); len(res.Errors) > 0 {
				t.Fatal(res.Raw)
			}
		}},
		{"refresh token reuse", func(t *testing.T, p authPayload) {
			payload(t, b.refresh(t, "", p.RefreshToken), "refreshToken")
			b.clock.Advance(time.Minute) // past the reuse interval
			wantRefreshError(t, b.refresh(t, "", p.RefreshToken), "reused")
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := a.loginAs(t, "ws_rev")
			plain := a.dialWS(t, wsDial{}) // no subscription: closed at once when the sync sees it
			plain.init(bearerPayload(p.AccessToken))
			watching := a.dialWS(t, wsDial{})
			watching.init(bearerPayload(p.AccessToken))
			watching.subscribe("ev", eventsSubscription, nil)
			watching.staysOpen(300 * time.Millisecond)
			start := time.Now()
			tt.end(t, p)
			took := plain.expectClose(4403, "session_revoked", 3*time.Second)
			if took > 2*time.Second+200*time.Millisecond {
				t.Errorf("closed %v after the session ended, want within 2 s", took)
			}
			// The subscriber hears its own session end, then the socket closes.
			sid := jwtClaims(t, p.AccessToken)["sid"].(string)
			for {
				ev := watching.nextEvent("ev", 3*time.Second)
				if ev.Type == "SESSION_REVOKED" && ev.SessionID != nil && *ev.SessionID == sid {
					if !ev.Current {
						t.Errorf("SESSION_REVOKED of the socket's own session: current false")
					}
					break
				}
			}
			watching.expectClose(4403, "session_revoked", 3*time.Second)
			t.Logf("%s: closed within %v", tt.name, time.Since(start).Round(time.Millisecond))
		})
	}
}

// Security events reach subscribers on every instance within 2 s, their own
// account's only, in order.
func TestWSSecurityEventsAcrossInstances(t *testing.T) {
	o := defaultOptions()
	o.db = testDB.Fresh(t)
	o.cfg.RevocationSync = time.Second
	a := newEnvWith(t, o)
	b := newEnvWith(t, o)
	p := a.mustRegister(t, "ws_ev", "ws_ev@example.test")
	a.mustRegister(t, "ws_other", "ws_other@example.test")
	c := a.dialWS(t, wsDial{})
	c.init(bearerPayload(p.AccessToken))
	c.subscribe("ev", eventsSubscription, nil)
	// The registration's own SESSION_CREATED, written just before the
	// subscription and read by the next sync, is not news to the socket.
	if f, err := c.read(1500 * time.Millisecond); err == nil {
		t.Fatalf("before any other activity: %+v %s", f, f.Payload)
	}

	b.loginAs(t, "ws_other") // someone else's sign-in: not ours to see
	start := time.Now()
	req, _ := http.NewRequest(http.MethodPost, b.srv.URL+"/query", strings.NewReader(mustJSON(t, map[string]any{
		"query": loginMutation, "variables": map[string]any{"input": map[string]any{"username": "ws_ev", "password": testPassword}}})))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "phone-app/1.0")
	elsewhere := payload(t, b.send(t, req), "login")
	ev := c.nextEvent("ev", 3*time.Second)
	took := time.Since(start)
	newSid := jwtClaims(t, elsewhere.AccessToken)["sid"].(string)
	if ev.Type != "SESSION_CREATED" || ev.SessionID == nil || *ev.SessionID != newSid || ev.Current ||
		ev.UserAgent == nil || *ev.UserAgent != "phone-app/1.0" || ev.IP == nil || *ev.IP != "127.0.0.1" {
		t.Fatalf("got %+v, want SESSION_CREATED of %s from phone-app/1.0 at 127.0.0.1, not current", ev, newSid)
	}
	if took > 2*time.Second+200*time.Millisecond {
		t.Errorf("SESSION_CREATED arrived %v after the login on the other instance, want within 2 s", took)
	}
	// The other session ends, then a password change: in this order.
	if res := b.post(t, elsewhere.AccessToken, `mutation { logout }`, nil); len(res.Errors) > 0 {
		t.Fatal(res.Raw)
	}
	payload(t, b.post(t, p.AccessToken, changePasswordMutation, map[string]any{"c": testPassword, "n": "ws a new passphrase"}),
		"changePassword")
	var got []string
	for len(got) < 2 {
		ev := c.nextEvent("ev", 3*time.Second)
		got = append(got, ev.Type)
		if ev.Type == "SESSION_REVOKED" && (ev.SessionID == nil || *ev.SessionID != newSid || ev.Current) {
			t.Errorf("SESSION_REVOKED: %+v, want the other session, not current", ev)
		}
	}
	if got[0] != "SESSION_REVOKED" || got[1] != "PASSWORD_CHANGED" {
		t.Fatalf("events %v, want SESSION_REVOKED then PASSWORD_CHANGED", got)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Cross-site WebSocket hijacking: a browser page on a foreign origin cannot
// open a socket; no Origin (not a browser) can.
func TestWSOriginCheck(t *testing.T) {
	o := defaultOptions()
	o.cfg.PublicURL = ownOrigin
	o.cfg.CORSAllowedOrigins = []string{appOrigin}
	e := newEnvWith(t, o)
	for _, origin := range []string{"", ownOrigin, appOrigin} {
		c := e.dialWS(t, wsDial{header: http.Header{"Origin": {origin}}})
		c.init(nil)
	}
	for _, origin := range []string{evilOrigin, "null", "https://app.example.test.evil.example", "http://app.example.test"} {
		_, res, err := e.tryDialWS(t, wsDial{header: http.Header{"Origin": {origin}}})
		if err == nil || res == nil || res.StatusCode != http.StatusForbidden {
			status := 0
			if res != nil {
				status = res.StatusCode
			}
			t.Errorf("Origin %q: got %v (HTTP %d), want 403", origin, err, status)
		}
	}
}

func TestWSLimits(t *testing.T) {
	o := defaultOptions()
	o.cfg.WSMaxPerIP, o.cfg.WSMaxPerUser, o.cfg.WSMaxSubscriptions = 4, 2, 2
	e := newEnvWith(t, o)
	p := e.mustRegister(t, "ws_lim", "ws_lim@example.test")

	t.Run("operations per socket", func(t *testing.T) {
		c := e.dialWS(t, wsDial{})
		c.init(bearerPayload(p.AccessToken))
		c.subscribe("a", eventsSubscription, nil)
		c.subscribe("b", eventsSubscription, nil)
		c.subscribe("c", eventsSubscription, nil)
		f := c.expect("error", 5*time.Second)
		if f.ID != "c" || !strings.Contains(string(f.Payload), `"RATE_LIMITED"`) {
			t.Fatalf("third operation: %+v %s, want an error RATE_LIMITED for c", f, f.Payload)
		}
		// Completing one frees its place.
		c.send(map[string]any{"type": "complete", "id": "a"})
		time.Sleep(100 * time.Millisecond)
		res := c.result("d", meQuery, nil)
		if me(t, res).Username != "ws_lim" {
			t.Fatal(res.Raw)
		}
		c.conn.Close(websocket.StatusNormalClosure, "")
	})
	time.Sleep(200 * time.Millisecond) // the server notices the closed socket

	t.Run("sockets per user", func(t *testing.T) {
		one := e.dialWS(t, wsDial{})
		one.init(bearerPayload(p.AccessToken))
		two := e.dialWS(t, wsDial{})
		two.init(bearerPayload(p.AccessToken))
		three := e.dialWS(t, wsDial{})
		three.send(map[string]any{"type": "connection_init", "payload": bearerPayload(p.AccessToken)})
		three.expectClose(websocket.StatusTryAgainLater, "too_many_connections", 5*time.Second)
		// Anonymous sockets do not count against a user.
		anon := e.dialWS(t, wsDial{})
		anon.init(nil)
		// One closes: the user may open another.
		one.conn.Close(websocket.StatusNormalClosure, "")
		time.Sleep(200 * time.Millisecond)
		again := e.dialWS(t, wsDial{})
		again.init(bearerPayload(p.AccessToken))
		for _, c := range []*wsClient{two, anon, again} {
			c.conn.Close(websocket.StatusNormalClosure, "")
		}
	})
	time.Sleep(200 * time.Millisecond)

	t.Run("sockets per IP", func(t *testing.T) {
		var open []*wsClient
		for range 4 {
			open = append(open, e.dialWS(t, wsDial{}))
		}
		_, res, err := e.tryDialWS(t, wsDial{})
		if err == nil || res == nil || res.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("fifth socket from one IP: %v, want HTTP 429", err)
		}
		open[0].conn.Close(websocket.StatusNormalClosure, "")
		time.Sleep(200 * time.Millisecond)
		e.dialWS(t, wsDial{}).init(nil)
	})
}

// Over the socket, operations obey what they obey over HTTP.
func TestWSOperationsObeyHTTPRules(t *testing.T) {
	o := defaultOptions()
	o.cfg.DepthLimit = 4
	e := newEnvWith(t, o)
	e.mustRegister(t, "ws_rules", "ws_rules@example.test")
	c := e.dialWS(t, wsDial{})
	c.init(nil)
	two := `mutation($i: LoginInput!) { a: login(input: $i) { accessToken } b: login(input: $i) { accessToken } }`
	res := c.result("1", two, map[string]any{"i": map[string]any{"username": "ws_rules", "password": testPassword}})
	if len(res.Errors) == 0 || res.code(t) != "PASSWORD_FIELD_LIMIT_EXCEEDED" {
		t.Fatalf("two logins over the socket: %s", res.Raw)
	}
	deep := `{ me { sessions { edges { node { id } } } } }`
	c.subscribe("2", deep, nil)
	f, err := c.read(5 * time.Second)
	if err != nil || !strings.Contains(string(f.Payload), "DEPTH_LIMIT_EXCEEDED") && !strings.Contains(string(f.Payload), "GRAPHQL_VALIDATION_FAILED") {
		t.Fatalf("a deep document over the socket: %+v %s (%v)", f, f.Payload, err)
	}
}

func TestWSShutdownClosesWith1001(t *testing.T) {
	e := newEnv(t)
	p := e.mustRegister(t, "ws_down", "ws_down@example.test")
	var clients []*wsClient
	for range 3 {
		c := e.dialWS(t, wsDial{})
		c.init(bearerPayload(p.AccessToken))
		clients = append(clients, c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.app.Sockets.Shutdown(ctx) }()
	for _, c := range clients {
		c.expectClose(websocket.StatusGoingAway, "server shutting down", 5*time.Second)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if n := e.app.Sockets.Open(); n != 0 {
		t.Fatalf("%d sockets still registered after the drain", n)
	}
	if _, res, err := e.tryDialWS(t, wsDial{}); err == nil || res == nil || res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("a socket during shutdown: %v, want 503", err)
	}
}

// 1,000 idle authenticated sockets are held, each answers, and logout of
// their session closes them all.
func TestWSManyIdleSockets(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 sockets")
	}
	o := defaultOptions()
	o.cfg.WSMaxPerIP, o.cfg.WSMaxPerUser = 2000, 2000
	e := newEnvWith(t, o)
	p := e.mustRegister(t, "ws_many", "ws_many@example.test")
	const n = 1000
	clients := make([]*wsClient, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 50)
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			c := e.dialWS(t, wsDial{})
			c.init(bearerPayload(p.AccessToken))
			clients[i] = c
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if got := e.app.Sockets.Open(); got != n {
		t.Fatalf("%d sockets registered, want %d", got, n)
	}
	if u := me(t, clients[n/2].result("1", meQuery, nil)); u.Username != "ws_many" {
		t.Fatalf("me over socket %d: %+v", n/2, u)
	}
	if !e.meWorks(t, p.AccessToken) {
		t.Fatal("HTTP me fails with 1,000 sockets open")
	}
	if res := e.post(t, p.AccessToken, `mutation { logout }`, nil); len(res.Errors) > 0 {
		t.Fatal(res.Raw)
	}
	for i, c := range clients {
		if i%100 == 0 {
			c.expectClose(4403, "session_revoked", 3*time.Second)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for e.app.Sockets.Open() > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if got := e.app.Sockets.Open(); got != 0 {
		t.Fatalf("%d sockets still open after logout", got)
	}
}

// Keep-alive: the server pings every socket each interval (one goroutine for
// all of them); a client that answers stays, one that stays silent for two
// intervals is closed.
func TestWSKeepAlive(t *testing.T) {
	o := defaultOptions()
	o.cfg.WSPingInterval = 200 * time.Millisecond
	e := newEnvWith(t, o)
	p := e.mustRegister(t, "ws_alive", "ws_alive@example.test")
	live := e.dialWS(t, wsDial{})
	live.init(bearerPayload(p.AccessToken))
	quiet := e.dialWS(t, wsDial{})
	quiet.silent.Store(true)
	quiet.init(bearerPayload(p.AccessToken))
	took := quiet.expectClose(websocket.StatusGoingAway, "keep-alive timeout", 3*time.Second)
	t.Logf("the silent socket was closed %v after its init", took.Round(time.Millisecond))
	live.staysOpen(300 * time.Millisecond)
	if n := live.pings.Load(); n < 3 {
		t.Fatalf("the live socket got %d pings in about a second, want several", n)
	}
	if u := me(t, live.result("1", meQuery, nil)); u.Username != "ws_alive" {
		t.Fatalf("me: %+v", u)
	}
}
