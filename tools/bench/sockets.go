package bench

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The sockets phase (issue 15): N idle authenticated WebSockets held open
// against a fresh server. What does an idle socket cost the server in memory,
// and does `me` keep its rate beside them?
const (
	// socketsOpenConcurrency bounds the handshakes in flight: enough to open
	// thousands in seconds, few enough that the server's accept queue never
	// overflows.
	socketsOpenConcurrency = 64
	// socketsHeadroom is added to N for the server's per-IP and per-user
	// socket limits: every socket comes from one address, and from
	// setupAccounts users.
	socketsHeadroom = 100
	// socketTargetBytes and socketsMeTarget are the targets.
	socketTargetBytes = 20 << 10
	socketsMeTarget   = 0.9
	// socketsDrainTimeout bounds the wait for the server to let go of the
	// sockets the bench closed, before it reads its memory once more.
	socketsDrainTimeout = 20 * time.Second
)

// SocketsResult is what the sockets phase measured.
type SocketsResult struct {
	Sockets int `json:"sockets"` // asked for (-sockets)
	// Opening: one request per socket (handshake, connection_init,
	// connection_ack); requests/s is sockets opened per second.
	Opening PhaseResult `json:"opening"`
	// IdleS is how long the sockets sat idle before the memory was read;
	// IdleServerCores the server's CPU meanwhile (its pings every 15 s).
	IdleS           float64 `json:"idle_s"`
	IdleServerCores float64 `json:"idle_server_cores"`
	// Before is the server before the first socket, Open after all of them
	// sat idle, Closed after MeOpen, once the bench closed them and the
	// server's goroutine count fell back (or socketsDrainTimeout passed);
	// each after a garbage collection.
	Before    ServerMemory `json:"before"`
	Open      ServerMemory `json:"open"`
	Closed    ServerMemory `json:"closed"`
	PerSocket PerSocket    `json:"per_socket"`
	// MeOpen is the me phase while the sockets are open, MeAlone the same
	// on a fresh server of the same settings without them.
	MeOpen  PhaseResult `json:"me_open"`
	MeAlone PhaseResult `json:"me_alone"`
	// OpenAtEnd are the sockets still open after MeOpen; Dropped ended on
	// their own before (by close code and reason in DropKinds).
	OpenAtEnd   int               `json:"open_at_end"`
	Pongs       int64             `json:"pongs"` // the server's pings the sockets answered
	Dropped     int               `json:"dropped"`
	DropKinds   map[string]int    `json:"drop_kinds,omitempty"`
	DropSamples map[string]string `json:"drop_samples,omitempty"`
	Checks      []Ratio           `json:"checks"`
}

// ServerMemory is the server's memory at one moment: its resident set from
// /proc, and Go's own figures from its pprof endpoint, read after a garbage
// collection.
type ServerMemory struct {
	RSSBytes        int64 `json:"rss_bytes"`
	HeapInuseBytes  int64 `json:"heap_inuse_bytes"`
	StackInuseBytes int64 `json:"stack_inuse_bytes"`
	GoSysBytes      int64 `json:"go_sys_bytes"` // everything the Go runtime holds from the OS
	Goroutines      int   `json:"goroutines"`
}

// PerSocket is (open − before) / sockets opened.
type PerSocket struct {
	RSSBytes   float64 `json:"rss_bytes"`
	HeapBytes  float64 `json:"heap_bytes"`
	StackBytes float64 `json:"stack_bytes"`
	Goroutines float64 `json:"goroutines"`
}

func perSocket(before, open ServerMemory, n int) PerSocket {
	if n <= 0 {
		return PerSocket{}
	}
	f := float64(n)
	return PerSocket{
		RSSBytes:   float64(open.RSSBytes-before.RSSBytes) / f,
		HeapBytes:  float64(open.HeapInuseBytes-before.HeapInuseBytes) / f,
		StackBytes: float64(open.StackInuseBytes-before.StackInuseBytes) / f,
		Goroutines: float64(open.Goroutines-before.Goroutines) / f,
	}
}

// socketsEnv is the server's configuration for n sockets: the per-IP and
// per-user limits above n, and access tokens that outlive the phase (the
// server closes a socket when its token expires).
func socketsEnv(env map[string]string, n int) map[string]string {
	out := maps.Clone(env)
	limit := strconv.Itoa(n + socketsHeadroom)
	out["WS_MAX_CONNECTIONS_PER_IP"], out["WS_MAX_CONNECTIONS_PER_USER"] = limit, limit
	out["ACCESS_TOKEN_TTL"] = "1h"
	return out
}

// runSockets runs the sockets phase, on two fresh servers of the same
// settings on the run's database. The first registers setupAccounts accounts
// and runs the me phase alone. The second signs them in, reads its memory,
// opens cfg.Sockets sockets spread over their sessions, lets them sit idle for
// cfg.SocketsIdle, reads the memory again, runs the same me phase beside them,
// and closes them. Two servers, not one: me alone measured after the sockets
// closed would pay for the runtime returning their memory to the OS, and
// measured before they opened would leave freed heap behind for them to reuse,
// hiding part of their memory from the resident set.
func runSockets(ctx context.Context, cfg Config, bin string, env map[string]string, runID string,
	logf func(string, ...any)) (*SocketsResult, error) {
	if err := raiseFileLimit(cfg.Sockets + 1024); err != nil {
		return nil, err
	}
	res := &SocketsResult{Sockets: cfg.Sockets}
	env = socketsEnv(env, cfg.Sockets)
	var accounts []account
	logf("sockets: a fresh server with WS_MAX_CONNECTIONS_PER_IP and _PER_USER at %s, for me alone", env["WS_MAX_CONNECTIONS_PER_IP"])
	err := withServer(ctx, bin, env, logf, func(ctx context.Context, srv *serverProc) error {
		r := newRunner(srv, "", env, cfg.PprofDir, runID, logf)
		defer r.close()
		logf("sockets: registering %d accounts", setupAccounts)
		var err error
		if accounts, err = r.registerAll(ctx, r.names("w", setupAccounts)); err != nil {
			return err
		}
		r.accounts = accounts
		runPhase(ctx, r.mePhase(r.c, "warmup", meConcurrency, cfg.Warmup))
		logf("phase me, no sockets (%s)", cfg.PhaseDuration)
		res.MeAlone = r.step(ctx, srv, r.mePhase(r.c, "me, no sockets", meConcurrency, cfg.PhaseDuration))[0]
		return ctx.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("sockets: %w", err)
	}

	logf("sockets: a fresh server for %d sockets", cfg.Sockets)
	err = withServer(ctx, bin, env, logf, func(ctx context.Context, srv *serverProc) error {
		r := newRunner(srv, "", env, cfg.PprofDir, runID, logf)
		defer r.close()
		logf("sockets: signing in %d accounts", len(accounts))
		if err := r.signIn(ctx, accounts, env["JWT_ALGORITHM"]); err != nil {
			return err
		}
		// Let what the sign-ins started (audit events, the revocation sync)
		// settle before measuring.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
		var err error
		if res.Before, err = r.memory(ctx, srv, "before"); err != nil {
			return err
		}

		pool := newSocketPool(srv.baseURL)
		defer pool.close()
		logf("sockets: opening %d, %d at a time", cfg.Sockets, socketsOpenConcurrency)
		res.Opening = openSockets(ctx, pool, cfg.Sockets, socketsOpenConcurrency, func(i int) string {
			return r.accounts[i%len(r.accounts)].session.AccessToken
		})
		opened := res.Opening.Requests
		logf("sockets: %d open in %.1fs; idle for %s", opened, res.Opening.ElapsedS, cfg.SocketsIdle)
		cpu0, _ := readProc(srv.pid())
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(cfg.SocketsIdle):
		}
		cpu1, _ := readProc(srv.pid())
		res.IdleS = cfg.SocketsIdle.Seconds()
		res.IdleServerCores = (cpu1.cpu() - cpu0.cpu()).Seconds() / res.IdleS
		if res.Open, err = r.memory(ctx, srv, "open"); err != nil {
			return err
		}
		res.PerSocket = perSocket(res.Before, res.Open, opened)

		runPhase(ctx, r.mePhase(r.c, "warmup", meConcurrency, cfg.Warmup))
		name := fmt.Sprintf("me, %d sockets", opened)
		logf("phase %s (%s)", name, cfg.PhaseDuration)
		res.MeOpen = r.step(ctx, srv, r.mePhase(r.c, name, meConcurrency, cfg.PhaseDuration))[0]
		res.OpenAtEnd, res.Pongs = pool.openCount(), pool.pongs.Load()
		drops := summarize("sockets: dropped", 0, 0, []tally{pool.drops()})
		res.Dropped, res.DropKinds, res.DropSamples = drops.Errors, drops.ErrorKinds, drops.ErrorSamples

		logf("sockets: closing them")
		pool.close()
		// The me phase leaves keep-alive connections and database
		// connections behind: wait until nine in ten of the sockets'
		// goroutines are gone, not for the count before.
		r.waitGoroutines(ctx, srv, res.Open.Goroutines-(res.Open.Goroutines-res.Before.Goroutines)*9/10, socketsDrainTimeout)
		res.Closed, err = r.memory(ctx, srv, "closed")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sockets: %w", err)
	}
	res.Checks = socketsChecks(res)
	return res, nil
}

// openSockets opens n sockets through pool, concurrency at a time, socket i
// with token(i). Each socket is one request of the result.
func openSockets(ctx context.Context, pool *socketPool, n, concurrency int, token func(i int) string) PhaseResult {
	next := make(chan int)
	go func() {
		defer close(next)
		for i := range n {
			select {
			case next <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	start := time.Now()
	tallies := make([]tally, concurrency)
	var wg sync.WaitGroup
	for w := range concurrency {
		wg.Go(func() {
			t := &tallies[w]
			for i := range next {
				t0 := time.Now()
				if err := pool.open(ctx, token(i)); err != nil {
					t.addError(err)
					continue
				}
				t.latencies = append(t.latencies, time.Since(t0))
			}
		})
	}
	wg.Wait()
	return summarize("sockets: open", concurrency, time.Since(start), tallies)
}

// memory reads the server's memory after a garbage collection (the pprof
// heap endpoint's gc=1) and, with -pprof, saves its heap profile and
// goroutines as sockets-WHEN.heap.pb.gz and sockets-WHEN.goroutines.txt:
// `go tool pprof -base sockets-before.heap.pb.gz sockets-open.heap.pb.gz`
// shows what the sockets hold.
func (r *runner) memory(ctx context.Context, srv *serverProc, when string) (ServerMemory, error) {
	if srv.pprofURL == "" {
		return ServerMemory{}, fmt.Errorf("the server has no pprof address")
	}
	var m ServerMemory
	body, err := fetch(ctx, srv.pprofURL+"/debug/pprof/heap?debug=1&gc=1")
	if err != nil {
		return m, err
	}
	if m, err = parseMemStats(body); err != nil {
		return m, err
	}
	u, err := readProc(srv.pid())
	if err != nil {
		return m, err
	}
	m.RSSBytes = u.RSS
	if m.Goroutines, err = goroutines(ctx, srv.pprofURL); err != nil {
		return m, err
	}
	if r.pprofDir != "" {
		base := filepath.Join(r.pprofDir, "sockets-"+when)
		err := fetchTo(ctx, srv.pprofURL+"/debug/pprof/heap?gc=1", base+".heap.pb.gz")
		if err == nil {
			err = fetchTo(ctx, srv.pprofURL+"/debug/pprof/goroutine?debug=1", base+".goroutines.txt")
		}
		if err != nil {
			r.logf("warning: %v", err)
		}
	}
	return m, nil
}

// waitGoroutines waits until the server runs at most n goroutines, or d has
// passed: the sockets the bench closed are gone from the server.
func (r *runner) waitGoroutines(ctx context.Context, srv *serverProc, n int, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if g, err := goroutines(ctx, srv.pprofURL); err != nil || g <= n {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	r.logf("warning: the server still runs more than %d goroutines %s after the sockets closed", n, d)
}

// parseMemStats reads the runtime.MemStats that a debug=1 heap profile ends
// with ("# HeapInuse = 123", "# Stack = 456 / 789", "# Sys = 1011").
func parseMemStats(text string) (ServerMemory, error) {
	var m ServerMemory
	found := 0
	for line := range strings.Lines(text) {
		name, value, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(line), "# "), " = ")
		if !ok {
			continue
		}
		var dst *int64
		switch name {
		case "HeapInuse":
			dst = &m.HeapInuseBytes
		case "Stack":
			dst = &m.StackInuseBytes
			value, _, _ = strings.Cut(value, " / ") // in use / from the OS
		case "Sys":
			dst = &m.GoSysBytes
		default:
			continue
		}
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return m, fmt.Errorf("heap profile: %s: %w", name, err)
		}
		*dst = n
		found++
	}
	if found != 3 {
		return m, fmt.Errorf("heap profile: no runtime.MemStats")
	}
	return m, nil
}

// fetch returns what GET url answers (pprof, on loopback).
func fetch(ctx context.Context, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := pprofClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("pprof: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("pprof: %s: %s", url, resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// socketsChecks judges the phase against the targets — the server's
// resident memory per idle socket under 20 KiB, me beside the sockets at
// least 0.9 of me alone — and that the measurement holds: every socket asked
// for stayed open, and no me request failed.
func socketsChecks(s *SocketsResult) []Ratio {
	mem := Ratio{Name: "memory per idle socket (server RSS)", Display: "no sockets",
		Target: fmt.Sprintf("< %d KiB", socketTargetBytes>>10)}
	if s.Opening.Requests > 0 {
		mem.Value = s.PerSocket.RSSBytes / 1024
		mem.Display, mem.Met = fmt.Sprintf("%.1f KiB", mem.Value), s.PerSocket.RSSBytes < socketTargetBytes
	}
	me := Ratio{Name: "me, sockets open / no sockets", Display: "no me", Target: fmt.Sprintf("≥ %.2f", socketsMeTarget)}
	if s.MeAlone.RPS > 0 {
		me.Value = s.MeOpen.RPS / s.MeAlone.RPS
		me.Display, me.Met = fmt.Sprintf("%.2f", me.Value), me.Value >= socketsMeTarget
	}
	errs := s.MeOpen.Errors + s.MeAlone.Errors
	return []Ratio{mem, me,
		{Name: "sockets open after me", Value: float64(s.OpenAtEnd), Display: strconv.Itoa(s.OpenAtEnd),
			Target: "= " + strconv.Itoa(s.Sockets), Met: s.OpenAtEnd == s.Sockets},
		{Name: "me errors (both phases)", Value: float64(errs), Display: strconv.Itoa(errs), Target: "= 0", Met: errs == 0},
	}
}

// print writes the phase's table.
func (s *SocketsResult) print(w io.Writer) {
	o := s.Opening
	fmt.Fprintf(w, "\nsockets: %d idle authenticated WebSockets (graphql-transport-ws, connection_init with a Bearer token),\n", s.Sockets)
	fmt.Fprintf(w, "         %d opened in %.1fs (%.0f/s, %d at a time; p50 %s, p99 %s), then idle %gs (server CPU %.2f cores)\n\n",
		o.Requests, o.ElapsedS, o.RPS, o.Concurrency, duration(o.LatencyMS.P50), duration(o.LatencyMS.P99), s.IdleS, s.IdleServerCores)
	fmt.Fprintf(w, "%-20s %10s %10s %10s %10s %10s\n", "server", "rss", "go heap", "go stacks", "go sys", "goroutines")
	for _, row := range []struct {
		name string
		m    ServerMemory
	}{{"before", s.Before}, {"sockets open", s.Open}, {"after, closed", s.Closed}} {
		fmt.Fprintf(w, "%-20s %10s %10s %10s %10s %10d\n", row.name, megabytes(row.m.RSSBytes), megabytes(row.m.HeapInuseBytes),
			megabytes(row.m.StackInuseBytes), megabytes(row.m.GoSysBytes), row.m.Goroutines)
	}
	p := s.PerSocket
	fmt.Fprintf(w, "%-20s %10s %10s %10s %10s %10.2f\n", "per socket", kibibytes(p.RSSBytes), kibibytes(p.HeapBytes),
		kibibytes(p.StackBytes), "", p.Goroutines)
	fmt.Fprintf(w, "%-20s %s\n\n", "", "(go heap and stacks in use after a GC, from the server's pprof; per socket: the difference / sockets opened)")
	fmt.Fprintf(w, "%-20s %4s %9s %9s %9s %9s %9s %7s %8s %8s %9s %9s\n",
		"phase", "conc", "req/s", "p50", "p90", "p99", "max", "errors", "srv cpu", "bench", "cpu/req", "srv rss")
	printPhase(w, s.MeOpen)
	printPhase(w, s.MeAlone)
	fmt.Fprintf(w, "%-20s sockets open after me %d of %d, %d pings answered, %d dropped\n", "", s.OpenAtEnd, s.Sockets, s.Pongs, s.Dropped)
	printChecks(w, "sockets check", s.Checks)
}

// errorRows are the phase's failures, for the run's error list.
func (s *SocketsResult) errorRows() []PhaseResult {
	return []PhaseResult{s.Opening, {Name: "sockets: dropped", ErrorKinds: s.DropKinds, ErrorSamples: s.DropSamples},
		s.MeOpen, s.MeAlone}
}

func kibibytes(b float64) string { return fmt.Sprintf("%.1f KiB", b/1024) }
