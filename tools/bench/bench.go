// Package bench is the load generator of `make bench` (issue 7). It builds
// the server, runs it as a child process on loopback with a fresh database,
// drives it through fixed-duration, fixed-concurrency phases checking every
// response, and measures in the same run what the phases are judged against:
// the bcrypt hash rate, the database's own point-read rate, and a bare
// net/http handler answering `me` (cmd/floor). The main run signs with HS256,
// as the floor verifies; `me` is then measured against a fresh server per
// JWT_ALGORITHM, each asymmetric one compared with HS256 (issue 13). The
// sockets phase holds thousands of idle authenticated WebSockets open and
// measures what each costs the server and whether me keeps its rate beside
// them (issue 15). A soak phase then runs login, me, refresh and logout loops
// against a database of many sessions.
//
// It is a module of its own (tools/bench): the server's module does not
// depend on it, and it reaches the server only over HTTP and the database
// only through the driver.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Config is one bench run.
type Config struct {
	RepoDir string // the repository: its root is the server's module, tools/bench this one
	GoCmd   string // the go command that builds the server and the floor
	Short   bool

	PhaseDuration   time.Duration // me, the floor's me, login, register, refreshToken
	MixedDuration   time.Duration // me alone, and the login flood with me
	AlgDuration     time.Duration // me per JWT_ALGORITHM, each on a fresh server (0: none)
	Warmup          time.Duration
	CeilingDuration time.Duration // database point reads
	// Users is how many user documents are seeded into the server's database
	// before it starts; point reads are measured on them.
	Users         int
	BcryptCost    int
	BcryptSamples int

	// Soak is how long the soak phase runs (0: none), reported per
	// SoakInterval, against a database of SoakSessions sessions.
	Soak         time.Duration
	SoakInterval time.Duration
	SoakSessions int

	// Sockets is how many idle authenticated WebSockets the sockets phase
	// opens (0: no sockets phase), each sitting idle for SocketsIdle before
	// the server's memory is read; SocketsOnly runs that phase alone.
	Sockets     int
	SocketsIdle time.Duration
	SocketsOnly bool

	MongoURI string // empty: the server's embedded database, fresh
	Out      string // JSON results; empty: none
	PerfDir  string // where perf(1) profiles of the server go, one per phase; empty: none
	PprofDir string // where Go CPU and allocation profiles of the server go, per phase; empty: none
}

// Defaults returns the full run, or with short the one that ends in about two
// minutes.
func Defaults(short bool) Config {
	c := Config{
		RepoDir: "../..", GoCmd: "go", Short: short,
		PhaseDuration: 15 * time.Second, MixedDuration: 10 * time.Second, Warmup: 3 * time.Second,
		AlgDuration: 15 * time.Second, // as me's, which it is compared with
		// 200 users: a development database. The embedded FerretDB answers a
		// find by _id from an index (the one the server adds when it starts)
		// but scans its whole table for any other filter; -users 5000 shows
		// how the size weighs.
		CeilingDuration: 10 * time.Second, Users: 200, BcryptCost: 12, BcryptSamples: 7,
		Soak: 3 * time.Minute, SoakInterval: 20 * time.Second, SoakSessions: 10000,
		Sockets: 5000, SocketsIdle: 5 * time.Second,
		Out: "bench-results.json",
	}
	if short {
		// Users stays as in the full run: me and login depend on it (see serverDB).
		c.PhaseDuration, c.MixedDuration, c.Warmup, c.AlgDuration = 3*time.Second, 3*time.Second, time.Second, 3*time.Second
		c.CeilingDuration, c.BcryptSamples = 2*time.Second, 3
		c.Soak, c.SoakInterval = 0, 5*time.Second
		c.Sockets, c.SocketsIdle = 500, 3*time.Second
	}
	return c
}

// Run performs the whole bench, prints the table to stdout and progress to
// stderr, and writes the JSON results. The server and every temporary file
// are gone when it returns, also when ctx is cancelled (Ctrl-C).
func Run(ctx context.Context, cfg Config, stdout, stderr io.Writer) error {
	logf := func(format string, args ...any) { fmt.Fprintf(stderr, "bench: "+format+"\n", args...) }
	startedAt := time.Now()
	loadAvg := loadAverage()
	tmp, err := os.MkdirTemp("", "authgql-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	runID := strings.ToLower(randomText(6))

	for _, dir := range []string{cfg.PerfDir, cfg.PprofDir} {
		if dir == "" {
			continue
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	logf("building the server and the floor")
	bins, err := build(ctx, cfg.GoCmd, cfg.RepoDir, tmp)
	if err != nil {
		return err
	}
	env := serverSettings(cfg, filepath.Join(tmp, "data"), runID, randomText(32))
	if cfg.MongoURI != "" {
		defer dropDatabase(cfg.MongoURI, env["MONGODB_DATABASE"])
	}
	if cfg.SocketsOnly {
		sockets, err := runSockets(ctx, cfg, bins.server, env, runID, logf)
		if err != nil {
			return err
		}
		return finish(cfg, newReport(cfg, startedAt, loadAvg, Limits{}, nil, nil, ServerUsage{}, sockets, nil), stdout)
	}
	// The server creates its collections and indexes when it starts (on the
	// embedded database, an index that its lookups by _id use): start it once,
	// so that the users are seeded, and point reads measured, in collections
	// the way the server queries them.
	logf("starting the server once to create its collections and indexes")
	if err := withServer(ctx, bins.server, env, logf, func(context.Context, *serverProc) error { return nil }); err != nil {
		return err
	}
	// While the server is stopped, so that nothing else competes for the CPU.
	limits, seeded, err := measureLimits(ctx, cfg, env, logf)
	if err != nil {
		return err
	}

	var phases []PhaseResult
	var server ServerUsage
	var accounts []account
	logf("starting the server")
	err = withServer(ctx, bins.server, env, logf, func(ctx context.Context, srv *serverProc) error {
		r := newRunner(srv, bins.floor, env, cfg.PprofDir, runID, logf)
		if cfg.PerfDir != "" {
			r.perf = &perfRecorder{dir: cfg.PerfDir}
		}
		defer r.close()
		if phases, err = r.phases(ctx, cfg); err != nil {
			return err
		}
		accounts = r.accounts
		// Before the server stops: VmHWM disappears with the process.
		u, err := readProc(srv.pid())
		if err != nil {
			return fmt.Errorf("read the server's resource use: %w", err)
		}
		server = ServerUsage{PeakRSSBytes: u.HWM, CPUSeconds: u.cpu().Seconds(),
			UserSeconds: u.User.Seconds(), SystemSeconds: u.System.Seconds()}
		return nil
	})
	if err != nil {
		return err
	}

	var algs []AlgorithmResult
	if cfg.AlgDuration > 0 {
		if algs, err = runAlgorithms(ctx, cfg, bins.server, env, runID, accounts, logf); err != nil {
			return err
		}
	}

	var sockets *SocketsResult
	if cfg.Sockets > 0 {
		if sockets, err = runSockets(ctx, cfg, bins.server, env, runID, logf); err != nil {
			return err
		}
	}

	var soak *SoakResult
	if cfg.Soak > 0 {
		if soak, err = runSoak(ctx, cfg, bins.server, env, seeded, accounts, logf); err != nil {
			return err
		}
	}

	return finish(cfg, newReport(cfg, startedAt, loadAvg, limits, phases, algs, server, sockets, soak), stdout)
}

// finish prints the report and writes it to cfg.Out.
func finish(cfg Config, rep *Report, stdout io.Writer) error {
	rep.print(stdout)
	if cfg.Out == "" {
		return nil
	}
	if err := rep.write(cfg.Out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nresults: %s\n", cfg.Out)
	return nil
}

// serverSettings is the server's configuration for the bench: development
// mode, no request log, a fresh data directory, HS256 with a secret the floor
// shares (so that the floor verifies the same JWT; runAlgorithms changes
// JWT_ALGORITHM) and, with MONGODB_URI, a database of this run's own. The
// per-IP rate limits are off: they exist to turn away one client sending too
// much, which is what a load generator on one address does; the capacity
// under test is the server's. Every other setting is the default, the bound
// on concurrent password hashing included.
func serverSettings(cfg Config, dataDir, runID, secret string) map[string]string {
	env := map[string]string{
		"APP_ENV": "development", "DATA_DIR": dataDir, "LOG_LEVEL": "warn",
		"JWT_ALGORITHM": "HS256", "JWT_SECRET": secret, "JWT_ISSUER": "authgql", "JWT_AUDIENCE": "authgql",
		"BCRYPT_COST": strconv.Itoa(cfg.BcryptCost), "MONGODB_URI": cfg.MongoURI, "MONGODB_DATABASE": "authgql",
		"RATE_LIMIT_LOGIN": "off", "RATE_LIMIT_REGISTER": "off", "RATE_LIMIT_REFRESH": "off",
	}
	if cfg.MongoURI != "" {
		env["MONGODB_DATABASE"] = "authgql_bench_" + runID
	}
	return env
}

// errServerExited cancels the phases when the server dies under load.
var errServerExited = errors.New("the server exited during the bench")

// withServer starts the server with env, runs f against it and stops it. A
// server that dies while f runs cancels f's context and is the error, with
// the end of its log.
func withServer(ctx context.Context, bin string, env map[string]string, logf func(string, ...any),
	f func(context.Context, *serverProc) error) error {
	srv, err := startServer(ctx, bin, env, true)
	if err != nil {
		return err
	}
	defer srv.stop()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-srv.exited:
			cancel(errServerExited)
		case <-ctx.Done():
		}
	}()
	err = f(ctx, srv)
	if errors.Is(context.Cause(ctx), errServerExited) {
		return fmt.Errorf("%w (%v):\n%s", errServerExited, srv.waitErr, srv.logs)
	}
	if err != nil {
		return err
	}
	if err := srv.stop(); err != nil {
		logf("warning: %v", err)
	}
	return nil
}

// measureLimits times bcrypt, then seeds the server's database with users
// and measures its point reads. It returns the seeded users.
func measureLimits(ctx context.Context, cfg Config, env map[string]string, logf func(string, ...any)) (Limits, []userDoc, error) {
	logf("timing %d bcrypt hashes at cost %d", cfg.BcryptSamples, cfg.BcryptCost)
	samples, err := measureBcrypt(ctx, cfg.BcryptCost, cfg.BcryptSamples)
	if err != nil {
		return Limits{}, nil, err
	}
	limits := bcryptLimits(samples, cfg.BcryptCost)

	db, err := openServerDB(ctx, cfg.MongoURI, env["DATA_DIR"], env["MONGODB_DATABASE"])
	if err != nil {
		return Limits{}, nil, err
	}
	defer db.close()
	logf("seeding %d users and measuring the database's point reads (%s)", cfg.Users, cfg.CeilingDuration)
	users, err := seedUsers(ctx, db.db, cfg.Users)
	if err != nil {
		return Limits{}, nil, err
	}
	limits.PointRead = measurePointReads(ctx, db.db, users, meConcurrency, cfg.CeilingDuration)
	limits.PointReadDocs = cfg.Users
	return limits, users, ctx.Err()
}

func databaseKind(mongoURI string) string {
	if mongoURI != "" {
		return "the MONGODB_URI server"
	}
	return "a fresh embedded FerretDB (SQLite)"
}

// loadAverage is /proc/loadavg's first three fields: a busy machine at the
// start explains noisy numbers.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}
