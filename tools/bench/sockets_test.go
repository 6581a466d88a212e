package bench

import (
	"bytes"
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestSocketsChecks(t *testing.T) {
	result := func(n, opened, openAtEnd int, rssPerSocket, meOpen, meAlone float64, meErrors int) *SocketsResult {
		return &SocketsResult{Sockets: n, Opening: PhaseResult{Requests: opened}, OpenAtEnd: openAtEnd,
			PerSocket: PerSocket{RSSBytes: rssPerSocket}, MeOpen: PhaseResult{RPS: meOpen, Errors: meErrors},
			MeAlone: PhaseResult{RPS: meAlone}}
	}
	tests := []struct {
		name   string
		in     *SocketsResult
		values []float64
		met    []bool // memory, me ratio, open at the end, me errors
	}{
		{"all met", result(5000, 5000, 5000, 12<<10, 9500, 10000, 0),
			[]float64{12, 0.95, 5000, 0}, []bool{true, true, true, true}},
		{"memory at the target is not under it", result(5000, 5000, 5000, 20<<10, 9000, 10000, 0),
			[]float64{20, 0.9, 5000, 0}, []bool{false, true, true, true}},
		{"me below 0.9", result(5000, 5000, 5000, 10<<10, 8900, 10000, 0),
			[]float64{10, 0.89, 5000, 0}, []bool{true, false, true, true}},
		{"sockets dropped", result(5000, 5000, 4990, 10<<10, 10000, 10000, 0),
			[]float64{10, 1, 4990, 0}, []bool{true, true, false, true}},
		{"fewer opened than asked", result(5000, 4000, 4000, 10<<10, 10000, 10000, 0),
			[]float64{10, 1, 4000, 0}, []bool{true, true, false, true}},
		{"me errors", result(500, 500, 500, 10<<10, 10000, 10000, 3),
			[]float64{10, 1, 500, 3}, []bool{true, true, true, false}},
		{"nothing opened, no me alone", result(500, 0, 0, 0, 0, 0, 0),
			[]float64{0, 0, 0, 0}, []bool{false, false, false, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := socketsChecks(tt.in)
			if len(got) != len(tt.met) {
				t.Fatalf("checks: got %d, want %d", len(got), len(tt.met))
			}
			for i := range got {
				if math.Abs(got[i].Value-tt.values[i]) > 1e-9 || got[i].Met != tt.met[i] {
					t.Errorf("%s: got %g (%s) met %v, want %g met %v", got[i].Name, got[i].Value, got[i].Display, got[i].Met,
						tt.values[i], tt.met[i])
				}
			}
		})
	}
	t.Run("what could not be measured says so", func(t *testing.T) {
		got := socketsChecks(result(500, 0, 0, 0, 0, 0, 0))
		if got[0].Display != "no sockets" || got[1].Display != "no me" {
			t.Errorf("got %q and %q, want no sockets and no me", got[0].Display, got[1].Display)
		}
	})
}

func TestPerSocket(t *testing.T) {
	before := ServerMemory{RSSBytes: 40 << 20, HeapInuseBytes: 4 << 20, StackInuseBytes: 1 << 20, Goroutines: 30}
	open := ServerMemory{RSSBytes: 140 << 20, HeapInuseBytes: 54 << 20, StackInuseBytes: 41 << 20, Goroutines: 15030}
	got := perSocket(before, open, 5000)
	want := PerSocket{RSSBytes: 100 << 20 / 5000.0, HeapBytes: 50 << 20 / 5000.0, StackBytes: 40 << 20 / 5000.0, Goroutines: 3}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if got := perSocket(before, open, 0); got != (PerSocket{}) {
		t.Errorf("no sockets: got %+v, want zero", got)
	}
}

func TestParseMemStats(t *testing.T) {
	profile := `heap profile: 3: 1024 [10: 4096] @ heap/1048576
1: 512 [1: 512] @ 0x1 0x2

# runtime.MemStats
# Alloc = 4194304
# Sys = 37748736
# HeapAlloc = 4194304
# HeapInuse = 5242880
# Stack = 1179648 / 1179648
# MSpan = 100 / 200
# NumGC = 7
`
	got, err := parseMemStats(profile)
	if err != nil {
		t.Fatal(err)
	}
	if want := (ServerMemory{HeapInuseBytes: 5242880, StackInuseBytes: 1179648, GoSysBytes: 37748736}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	for name, text := range map[string]string{
		"no MemStats":   "heap profile: 3: 1024 [10: 4096] @ heap/1048576\n",
		"not a number":  "# Sys = many\n# HeapInuse = 1\n# Stack = 1 / 2\n",
		"a field short": "# Sys = 1\n# HeapInuse = 1\n",
	} {
		if _, err := parseMemStats(text); err == nil {
			t.Errorf("%s: got no error", name)
		}
	}
}

func TestSocketsEnv(t *testing.T) {
	env := map[string]string{"JWT_ALGORITHM": "HS256", "WS_MAX_CONNECTIONS_PER_IP": "50"}
	got := socketsEnv(env, 5000)
	for k, want := range map[string]string{"WS_MAX_CONNECTIONS_PER_IP": "5100", "WS_MAX_CONNECTIONS_PER_USER": "5100",
		"ACCESS_TOKEN_TTL": "1h", "JWT_ALGORITHM": "HS256"} {
		if got[k] != want {
			t.Errorf("%s: got %q, want %q", k, got[k], want)
		}
	}
	if env["WS_MAX_CONNECTIONS_PER_IP"] != "50" || len(env) != 2 {
		t.Errorf("the run's settings changed: %v", env)
	}
}

// fakeSocketServer speaks enough graphql-transport-ws for the pool: it
// closes a socket whose init carries the token "bad" with 4403, acks the
// others, pings each once, and closes one whose pong it got with 4403
// session_revoked when the test sends on revoke.
func fakeSocketServer(t *testing.T, revoke <-chan struct{}) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{wsSubprotocol}})
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := r.Context()
		_, init, err := c.Read(ctx)
		if err != nil || messageType(init) != "connection_init" {
			return
		}
		if bytes.Contains(init, []byte(`"Bearer bad"`)) {
			c.Close(4403, "token_invalid")
			return
		}
		_ = c.Write(ctx, websocket.MessageText, []byte(`{"type":"connection_ack"}`))
		_ = c.Write(ctx, websocket.MessageText, []byte(`{"type":"ping"}`))
		if _, pong, err := c.Read(ctx); err != nil || messageType(pong) != "pong" {
			return
		}
		select {
		case <-revoke:
			c.Close(4403, "session_revoked")
		case <-ctx.Done():
		}
		_, _, _ = c.Read(ctx) // until the pool closes it
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestSocketPool(t *testing.T) {
	revoke := make(chan struct{}, 1)
	srv := fakeSocketServer(t, revoke)
	pool := newSocketPool(srv.URL)
	t.Cleanup(pool.close)
	ctx := context.Background()

	res := openSockets(ctx, pool, 6, 3, func(i int) string {
		if i == 5 {
			return "bad"
		}
		return "good"
	})
	if res.Requests != 5 || res.Errors != 1 || res.ErrorKinds["close 4403 token_invalid"] != 1 {
		t.Fatalf("opening: got %d opened, errors %v; want 5 and one close 4403 token_invalid", res.Requests, res.ErrorKinds)
	}
	waitFor(t, "every ping answered", func() bool { return pool.pongs.Load() == 5 })

	revoke <- struct{}{}
	waitFor(t, "the revoked socket counted", func() bool { return pool.openCount() == 4 })
	if got := pool.drops(); got.errs["close 4403 session_revoked"] != 1 {
		t.Errorf("drops: got %v, want one close 4403 session_revoked", got.errs)
	}

	pool.close()
	if got := pool.drops(); droppedCount(got) != 1 {
		t.Errorf("closing the pool counted its own sockets as dropped: %v", got.errs)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPrintSocketsOnly(t *testing.T) {
	s := &SocketsResult{Sockets: 500, Opening: PhaseResult{Name: "sockets: open", Requests: 500, Concurrency: 64},
		Before: ServerMemory{RSSBytes: 40 << 20}, Open: ServerMemory{RSSBytes: 60 << 20},
		MeOpen: phase("me, 500 sockets", 9000, 5, 0), MeAlone: phase("me, no sockets", 10000, 5, 0), OpenAtEnd: 499,
		Dropped: 1, DropKinds: map[string]int{"close 1001 server shutting down": 1},
		DropSamples: map[string]string{"close 1001 server shutting down": "close 1001 server shutting down: …"}}
	s.PerSocket = perSocket(s.Before, s.Open, 500)
	s.Checks = socketsChecks(s)
	r := &Report{Sockets: s}
	r.Ratios = r.ratios()
	if r.Ratios != nil {
		t.Errorf("ratios without the main phases: got %+v, want none", r.Ratios)
	}
	var buf bytes.Buffer
	r.print(&buf)
	out := buf.String()
	for _, want := range []string{"the sockets phase only", "500 idle authenticated WebSockets", "per socket", "41.0 KiB",
		"\nme, 500 sockets  ", "\nme, no sockets  ", "memory per idle socket (server RSS)", "41.0 KiB   < 20 KiB  FAIL",
		"me, sockets open / no sockets               0.90     ≥ 0.90  PASS", "sockets open after me", "1 × close 1001"} {
		if !strings.Contains(out, want) {
			t.Errorf("the table lacks %q:\n%s", want, out)
		}
	}
	for _, unwanted := range []string{"limits", "bcrypt", "ratio  "} {
		if strings.Contains(out, unwanted) {
			t.Errorf("a sockets-only table shows %q:\n%s", unwanted, out)
		}
	}
}
