package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"
)

// Phase names, also the keys the ratios look phases up by.
const (
	phaseMe       = "me"
	phaseLogin    = "login"
	phaseRegister = "register"
	phaseRefresh  = "refreshToken"
	phaseMeAlone  = "me (alone)"
	phaseFlood    = "mixed: login flood"
	phaseMeFlood  = "mixed: me"
)

const (
	meConcurrency   = 32
	authConcurrency = 8 // login, register, refreshToken, and me next to the flood
	setupAccounts   = 16
	setupAttempts   = 10
)

// runner drives the running server through the phases.
type runner struct {
	c        *client
	srv      *serverProc
	sampler  *rssSampler
	perf     *perfRecorder // nil: no profiles
	logf     func(string, ...any)
	prefix   string // makes this run's usernames unique: "b" + a random run id
	password string

	users       []string // registered at setup, logged in by the login phases
	accessToken []string // one per user, for the me phases
	sessions    []string // refresh tokens, one per refresh worker; nil when not in the schema
}

func newRunner(c *client, srv *serverProc, sampler *rssSampler, perf *perfRecorder, runID string, logf func(string, ...any)) *runner {
	return &runner{c: c, srv: srv, sampler: sampler, perf: perf, logf: logf,
		prefix: "b" + runID, password: "bench-" + rand.Text()[:16]}
}

// phases runs every phase in order and returns their results.
func (r *runner) phases(ctx context.Context, cfg Config) ([]PhaseResult, error) {
	refresh, skipReason, err := r.c.schema(ctx)
	if err != nil {
		return nil, err
	}
	r.logf("registering %d accounts", setupAccounts)
	if err := r.setUp(ctx, refresh); err != nil {
		return nil, err
	}
	r.logf("warming up for %s", cfg.Warmup)
	runPhase(ctx, r.mePhase("warmup", meConcurrency, cfg.Warmup))

	var out []PhaseResult
	step := func(specs ...phaseSpec) {
		if ctx.Err() == nil {
			r.logf("phase %s (%s)", specs[0].name, specs[0].duration)
			out = append(out, r.step(ctx, specs...)...)
		}
	}
	step(r.mePhase(phaseMe, meConcurrency, cfg.PhaseDuration))
	step(r.loginPhase(phaseLogin, authConcurrency, cfg.PhaseDuration))
	step(r.registerPhase(phaseRegister, authConcurrency, cfg.PhaseDuration))
	if refresh {
		step(r.refreshPhase(phaseRefresh, authConcurrency, cfg.PhaseDuration))
	} else {
		out = append(out, PhaseResult{Name: phaseRefresh, Concurrency: authConcurrency, Skipped: skipReason})
	}
	step(r.mePhase(phaseMeAlone, authConcurrency, cfg.MixedDuration))
	// Four logins in flight per core: four times what the server can hash.
	step(r.loginPhase(phaseFlood, 4*runtime.NumCPU(), cfg.MixedDuration),
		r.mePhase(phaseMeFlood, authConcurrency, cfg.MixedDuration))
	return out, ctx.Err()
}

// setUp registers the accounts the me and login phases use and, when the
// schema has refresh tokens, one more account per refresh worker, whose
// sessions nothing else touches.
func (r *runner) setUp(ctx context.Context, refresh bool) error {
	r.users = r.names("u", setupAccounts)
	toks, err := r.registerAll(ctx, r.users, false)
	if err != nil {
		return err
	}
	for _, t := range toks {
		r.accessToken = append(r.accessToken, t.AccessToken)
	}
	if !refresh {
		return nil
	}
	toks, err = r.registerAll(ctx, r.names("s", authConcurrency), true)
	if err != nil {
		return err
	}
	for _, t := range toks {
		r.sessions = append(r.sessions, t.RefreshToken)
	}
	return nil
}

func (r *runner) names(kind string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%s%d", r.prefix, kind, i)
	}
	return out
}

// registerAll registers the setup accounts one per core at a time: the
// server hashes at most that many passwords at once and turns away what
// waits too long for a turn.
func (r *runner) registerAll(ctx context.Context, names []string, withRefresh bool) ([]tokens, error) {
	out := make([]tokens, len(names))
	errs := make([]error, len(names))
	sem := make(chan struct{}, runtime.NumCPU())
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i], errs[i] = r.registerSetup(ctx, name, withRefresh)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("register the bench accounts: %w", err)
	}
	return out, nil
}

// registerSetup registers one setup account, waiting out a RATE_LIMITED
// answer (a busy machine makes hashes slower): setup is not measured, it only
// has to succeed.
func (r *runner) registerSetup(ctx context.Context, name string, withRefresh bool) (tokens, error) {
	for attempt := 1; ; attempt++ {
		t, err := r.c.register(ctx, name, r.password, withRefresh)
		var oe *opError
		if err == nil || attempt == setupAttempts || !errors.As(err, &oe) || oe.code != "RATE_LIMITED" {
			return t, err
		}
		select {
		case <-ctx.Done():
			return tokens{}, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func (r *runner) mePhase(name string, concurrency int, d time.Duration) phaseSpec {
	body := operation(meQuery, nil)
	return phaseSpec{name: name, concurrency: concurrency, duration: d, newWorker: func(i int) workFunc {
		token := r.accessToken[i%len(r.accessToken)]
		return func(ctx context.Context) error { return r.c.me(ctx, body, token) }
	}}
}

func (r *runner) loginPhase(name string, concurrency int, d time.Duration) phaseSpec {
	return phaseSpec{name: name, concurrency: concurrency, duration: d, newWorker: func(i int) workFunc {
		user := r.users[i%len(r.users)]
		return func(ctx context.Context) error {
			_, err := r.c.login(ctx, user, r.password)
			return err
		}
	}}
}

// registerPhase registers a new account per request; usernames are
// prefix, "r", worker, "_", counter, so no two requests collide.
func (r *runner) registerPhase(name string, concurrency int, d time.Duration) phaseSpec {
	return phaseSpec{name: name, concurrency: concurrency, duration: d, newWorker: func(i int) workFunc {
		n := 0
		return func(ctx context.Context) error {
			n++
			_, err := r.c.register(ctx, fmt.Sprintf("%sr%d_%d", r.prefix, i, n), r.password, false)
			return err
		}
	}}
}

// refreshPhase rotates each worker's own session: every call spends the
// refresh token the previous call returned.
func (r *runner) refreshPhase(name string, concurrency int, d time.Duration) phaseSpec {
	return phaseSpec{name: name, concurrency: concurrency, duration: d, newWorker: func(i int) workFunc {
		current := r.sessions[i%len(r.sessions)]
		return func(ctx context.Context) error {
			t, err := r.c.refresh(ctx, current)
			if err != nil {
				return err
			}
			current = t.RefreshToken
			return nil
		}
	}}
}

// Usage is what the server and the bench itself consumed during a step (one
// phase, or the two phases of the mixed step, which then share it).
type Usage struct {
	ServerCores float64 `json:"server_cores"` // CPU seconds per wall second
	BenchCores  float64 `json:"bench_cores"`
	// ServerCPUPerRequestMS is only set for a step of one phase.
	ServerCPUPerRequestMS float64 `json:"server_cpu_per_request_ms,omitempty"`
	ServerRSSMaxBytes     int64   `json:"server_rss_max_bytes"`
}

// step runs specs side by side and measures the CPU and memory they cost.
func (r *runner) step(ctx context.Context, specs ...phaseSpec) []PhaseResult {
	stopPerf := r.startPerf(specs[0].name)
	defer stopPerf()
	r.sampler.reset()
	srv0, _ := readProc(r.srv.pid())
	self0, _ := readProc(os.Getpid())
	start := time.Now()
	results := make([]PhaseResult, len(specs))
	var wg sync.WaitGroup
	for i, s := range specs {
		wg.Go(func() { results[i] = runPhase(ctx, s) })
	}
	wg.Wait()
	wall := time.Since(start).Seconds()
	srv1, _ := readProc(r.srv.pid())
	self1, _ := readProc(os.Getpid())
	srvCPU := srv1.cpu() - srv0.cpu()
	u := &Usage{
		ServerCores:       srvCPU.Seconds() / wall,
		BenchCores:        (self1.cpu() - self0.cpu()).Seconds() / wall,
		ServerRSSMaxBytes: r.sampler.reset(),
	}
	if n := results[0].Requests + results[0].Errors; len(results) == 1 && n > 0 {
		u.ServerCPUPerRequestMS = ms(srvCPU) / float64(n)
	}
	for i := range results {
		results[i].Usage = u
	}
	return results
}

// startPerf starts recording the server for the step named name, if asked
// to; a profiler that fails costs a warning, not the run.
func (r *runner) startPerf(name string) (stop func()) {
	if r.perf == nil {
		return func() {}
	}
	end, err := r.perf.start(name)
	if err != nil {
		r.logf("warning: %v", err)
		return func() {}
	}
	return func() {
		if err := end(); err != nil {
			r.logf("warning: %v", err)
		}
	}
}
