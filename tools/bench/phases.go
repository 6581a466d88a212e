package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"
)

// Phase names, also the keys the ratios look phases up by.
const (
	phaseMe       = "me"
	phaseMeFloor  = "me (floor)"
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

// account is a user the bench registered, with the session registering it
// began.
type account struct {
	name     string
	password string
	user     user
	session  session
}

// runner drives the running server through the phases.
type runner struct {
	c        *client
	srv      *serverProc
	floorBin string
	env      map[string]string // the server's settings; the floor shares its JWT ones
	perf     *perfRecorder     // nil: no perf profiles
	pprofDir string            // empty: no Go profiles
	logf     func(string, ...any)
	prefix   string // makes this run's usernames unique: "b" + a random run id
	password string

	accounts   []account // registered at setup: the me and login phases, and the soak, use them
	refreshers []account // one per refresh worker, whose sessions nothing else uses
}

func newRunner(srv *serverProc, floorBin string, env map[string]string, pprofDir, runID string, logf func(string, ...any)) *runner {
	return &runner{c: newClient(srv.baseURL, 4*meConcurrency), srv: srv, floorBin: floorBin, env: env,
		pprofDir: pprofDir, logf: logf, prefix: "b" + runID, password: "bench-" + randomText(12)}
}

func (r *runner) close() { r.c.close() }

// phases runs every phase in order and returns their results.
func (r *runner) phases(ctx context.Context, cfg Config) ([]PhaseResult, error) {
	r.logf("registering %d accounts", setupAccounts+authConcurrency)
	if err := r.setUp(ctx); err != nil {
		return nil, err
	}
	r.logf("warming up for %s", cfg.Warmup)
	runPhase(ctx, r.mePhase(r.c, "warmup", meConcurrency, cfg.Warmup))

	var out []PhaseResult
	step := func(proc *serverProc, specs ...phaseSpec) {
		if ctx.Err() == nil {
			r.logf("phase %s (%s)", specs[0].name, specs[0].duration)
			out = append(out, r.step(ctx, proc, specs...)...)
		}
	}
	step(r.srv, r.mePhase(r.c, phaseMe, meConcurrency, cfg.PhaseDuration))
	if err := r.floorStep(ctx, cfg, step); err != nil {
		return nil, err
	}
	step(r.srv, r.loginPhase(phaseLogin, authConcurrency, cfg.PhaseDuration))
	step(r.srv, r.registerPhase(phaseRegister, authConcurrency, cfg.PhaseDuration))
	step(r.srv, r.refreshPhase(phaseRefresh, authConcurrency, cfg.PhaseDuration))
	step(r.srv, r.mePhase(r.c, phaseMeAlone, authConcurrency, cfg.MixedDuration))
	// Four logins in flight per core: four times what the server can hash.
	step(r.srv, r.loginPhase(phaseFlood, 4*runtime.NumCPU(), cfg.MixedDuration),
		r.mePhase(r.c, phaseMeFlood, authConcurrency, cfg.MixedDuration))
	return out, ctx.Err()
}

// floorStep starts the floor (cmd/floor), which knows the setup accounts,
// runs the me phase against it exactly as against the server, and stops it.
func (r *runner) floorStep(ctx context.Context, cfg Config, step func(*serverProc, ...phaseSpec)) error {
	users := make(map[string]string, len(r.accounts))
	for _, a := range r.accounts {
		users[a.user.ID] = a.user.Username
	}
	b, err := json.Marshal(users)
	if err != nil {
		return err
	}
	file := filepath.Join(filepath.Dir(r.floorBin), "floor-users.json")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		return err
	}
	env := map[string]string{"FLOOR_USERS": file}
	for _, k := range []string{"JWT_SECRET", "JWT_ISSUER", "JWT_AUDIENCE"} {
		env[k] = r.env[k]
	}
	floor, err := startServer(ctx, r.floorBin, env, false)
	if err != nil {
		return fmt.Errorf("the floor: %w", err)
	}
	defer floor.stop()
	c := newClient(floor.baseURL, 4*meConcurrency)
	defer c.close()
	runPhase(ctx, r.mePhase(c, "warmup", meConcurrency, cfg.Warmup))
	step(floor, r.mePhase(c, phaseMeFloor, meConcurrency, cfg.PhaseDuration))
	if err := floor.stop(); err != nil {
		return fmt.Errorf("the floor: %w", err)
	}
	return nil
}

// setUp registers the accounts the me and login phases use and one more
// account per refresh worker, whose sessions nothing else touches.
func (r *runner) setUp(ctx context.Context) error {
	accounts, err := r.registerAll(ctx, append(r.names("u", setupAccounts), r.names("s", authConcurrency)...))
	if err != nil {
		return err
	}
	r.accounts, r.refreshers = accounts[:setupAccounts], accounts[setupAccounts:]
	return nil
}

func (r *runner) names(kind string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%s%d", r.prefix, kind, i)
	}
	return out
}

// registerAll registers the setup accounts.
func (r *runner) registerAll(ctx context.Context, names []string) ([]account, error) {
	out := make([]account, len(names))
	err := onePerCore(len(names), func(i int) error {
		s, err := untilAdmitted(ctx, func() (session, error) { return r.c.register(ctx, names[i], r.password) })
		out[i] = account{name: names[i], password: r.password, user: s.User, session: s}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("register the bench accounts: %w", err)
	}
	return out, nil
}

// onePerCore calls f(0) … f(n-1), one per core at a time: the server hashes
// at most that many passwords at once and turns away what waits too long for
// a turn. It returns every error.
func onePerCore(n int, f func(i int) error) error {
	errs := make([]error, n)
	sem := make(chan struct{}, runtime.NumCPU())
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = f(i)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// untilAdmitted calls signIn (a register or a login of the setup) until the
// server does not answer RATE_LIMITED (a busy machine makes hashes slower),
// at most setupAttempts times: setup is not measured, it only has to succeed.
func untilAdmitted(ctx context.Context, signIn func() (session, error)) (session, error) {
	for attempt := 1; ; attempt++ {
		s, err := signIn()
		if err == nil || attempt == setupAttempts || !rateLimited(err) {
			return s, err
		}
		select {
		case <-ctx.Done():
			return session{}, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func rateLimited(err error) bool {
	var oe *opError
	return errors.As(err, &oe) && oe.code == "RATE_LIMITED"
}

// mePhase asks `me` through c, each worker with the token of one account,
// and checks that the answer names that account.
func (r *runner) mePhase(c *client, name string, concurrency int, d time.Duration) phaseSpec {
	body := operation(meQuery, nil)
	return phaseSpec{name: name, concurrency: concurrency, duration: d, newWorker: func(i int) workFunc {
		a := r.accounts[i%len(r.accounts)]
		return func(ctx context.Context) error { return c.me(ctx, body, a.session.AccessToken, a.user) }
	}}
}

func (r *runner) loginPhase(name string, concurrency int, d time.Duration) phaseSpec {
	return phaseSpec{name: name, concurrency: concurrency, duration: d, newWorker: func(i int) workFunc {
		a := r.accounts[i%len(r.accounts)]
		return func(ctx context.Context) error {
			_, err := r.c.login(ctx, a.name, r.password)
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
			_, err := r.c.register(ctx, fmt.Sprintf("%sr%d_%d", r.prefix, i, n), r.password)
			return err
		}
	}}
}

// refreshPhase rotates each worker's own session: every call spends the
// refresh token the previous call returned.
func (r *runner) refreshPhase(name string, concurrency int, d time.Duration) phaseSpec {
	return phaseSpec{name: name, concurrency: concurrency, duration: d, newWorker: func(i int) workFunc {
		a := r.refreshers[i%len(r.refreshers)]
		current := a.session.RefreshToken
		return func(ctx context.Context) error {
			s, err := r.c.refresh(ctx, current, a.name)
			if err != nil {
				return err
			}
			current = s.RefreshToken
			return nil
		}
	}}
}

// Usage is what the process under test and the bench itself consumed during
// a step (one phase, or the two phases of the mixed step, which then share
// it).
type Usage struct {
	ServerCores float64 `json:"server_cores"` // CPU seconds per wall second
	BenchCores  float64 `json:"bench_cores"`
	// ServerCPUPerRequestMS is only set for a step of one phase.
	ServerCPUPerRequestMS float64 `json:"server_cpu_per_request_ms,omitempty"`
	ServerRSSMaxBytes     int64   `json:"server_rss_max_bytes"`
}

// step runs specs side by side against proc (the server or the floor) and
// measures the CPU and memory they cost.
func (r *runner) step(ctx context.Context, proc *serverProc, specs ...phaseSpec) []PhaseResult {
	name := specs[0].name
	stopProfiles := r.startProfiles(ctx, proc, name, specs[0].duration)
	defer stopProfiles()
	sampleCtx, stopSampling := context.WithCancel(ctx)
	sampler := &rssSampler{pid: proc.pid()}
	sampled := make(chan struct{})
	go func() { defer close(sampled); sampler.run(sampleCtx, 100*time.Millisecond) }()

	proc0, _ := readProc(proc.pid())
	self0, _ := readProc(os.Getpid())
	start := time.Now()
	results := make([]PhaseResult, len(specs))
	var wg sync.WaitGroup
	for i, s := range specs {
		wg.Go(func() { results[i] = runPhase(ctx, s) })
	}
	wg.Wait()
	wall := time.Since(start).Seconds()
	proc1, _ := readProc(proc.pid())
	self1, _ := readProc(os.Getpid())
	stopSampling()
	<-sampled
	cpu := proc1.cpu() - proc0.cpu()
	u := &Usage{
		ServerCores:       cpu.Seconds() / wall,
		BenchCores:        (self1.cpu() - self0.cpu()).Seconds() / wall,
		ServerRSSMaxBytes: sampler.reset(),
	}
	if n := results[0].Requests + results[0].Errors; len(results) == 1 && n > 0 {
		u.ServerCPUPerRequestMS = ms(cpu) / float64(n)
	}
	for i := range results {
		results[i].Usage = u
	}
	return results
}

// startProfiles starts recording proc during the step named name, with
// perf(1) and, for a process that serves pprof, Go's CPU and allocation
// profiles, as asked to; a profiler that fails costs a warning, not the run.
func (r *runner) startProfiles(ctx context.Context, proc *serverProc, name string, d time.Duration) (stop func()) {
	var stops []func() error
	if r.perf != nil {
		if end, err := r.perf.start(name, proc.pid()); err != nil {
			r.logf("warning: %v", err)
		} else {
			stops = append(stops, end)
		}
	}
	if r.pprofDir != "" && proc.pprofURL != "" {
		stops = append(stops, startPprof(ctx, proc.pprofURL, r.pprofDir, name, d))
	}
	return func() {
		for _, end := range stops {
			if err := end(); err != nil {
				r.logf("warning: %v", err)
			}
		}
	}
}
