// Package bench is the load generator of `make bench` (issue 7). It builds
// the server, runs it as a child process on loopback with a fresh database,
// drives it through fixed-duration, fixed-concurrency phases checking every
// response, and measures in the same run the limits the phases are judged
// against: the bcrypt hash rate and the database's own point-read rate.
package bench

import (
	"context"
	"crypto/rand"
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
	RepoDir string // the module whose server is built
	GoCmd   string // the go command that builds it
	Short   bool

	PhaseDuration   time.Duration // me, login, register, refreshToken
	MixedDuration   time.Duration // me alone, and the login flood with me
	Warmup          time.Duration
	CeilingDuration time.Duration // database point reads
	// Users is how many user documents are seeded into the server's database
	// before it starts; point reads are measured on them.
	Users         int
	BcryptCost    int
	BcryptSamples int

	MongoURI string // empty: the server's embedded database, fresh
	Out      string // JSON results; empty: none
	PerfDir  string // where perf(1) profiles of the server go, one per phase; empty: none
}

// Defaults returns the full run, or with short the one that ends within a
// minute.
func Defaults(short bool) Config {
	c := Config{
		RepoDir: ".", GoCmd: "go", Short: short,
		PhaseDuration: 15 * time.Second, MixedDuration: 10 * time.Second, Warmup: 3 * time.Second,
		// 200 users: a development database. The embedded FerretDB scans its
		// whole table for every lookup (even by _id), so its point-read rate
		// falls with size (about 4,100/s at 20 documents, 2,400/s at 200, 365/s
		// at 2,000): -users 5000 measures FerretDB more than this server.
		CeilingDuration: 10 * time.Second, Users: 200, BcryptCost: 12, BcryptSamples: 7,
		Out: "bench-results.json",
	}
	if short {
		// Users stays as in the full run: me and login depend on it (see serverDB).
		c.PhaseDuration, c.MixedDuration, c.Warmup = 3*time.Second, 3*time.Second, time.Second
		c.CeilingDuration, c.BcryptSamples = 2*time.Second, 3
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
	runID := strings.ToLower(rand.Text()[:8])

	if cfg.PerfDir != "" {
		if err := os.MkdirAll(cfg.PerfDir, 0o755); err != nil {
			return err
		}
	}
	logf("building the server")
	bin := filepath.Join(tmp, "server")
	if err := buildServer(ctx, cfg.GoCmd, cfg.RepoDir, bin); err != nil {
		return err
	}
	env := serverSettings(cfg, filepath.Join(tmp, "data"), runID)
	if cfg.MongoURI != "" {
		defer dropDatabase(cfg.MongoURI, env["MONGODB_DATABASE"])
	}
	// Before the server starts, so that nothing else competes for the CPU.
	limits, err := measureLimits(ctx, cfg, env["DATA_DIR"], env["MONGODB_DATABASE"], logf)
	if err != nil {
		return err
	}

	logf("starting the server")
	srv, err := startServer(ctx, bin, serverEnv(os.Environ(), env))
	if err != nil {
		return err
	}
	defer srv.stop()

	phases, server, err := measureServer(ctx, srv, cfg, runID, logf)
	if stopErr := srv.stop(); err == nil && stopErr != nil {
		logf("warning: %v", stopErr)
	}
	if err != nil {
		return err
	}
	rep := newReport(cfg, startedAt, loadAvg, limits, phases, server)
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
// mode (introspection tells whether refreshToken exists), no request log, a
// fresh data directory and, with MONGODB_URI, a database of this run's own.
// The per-IP rate limits are off: they exist to turn away one client sending
// too much, which is what a load generator on one address does; the
// capacity under test is the server's. Every other setting is the default,
// the bound on concurrent password hashing included.
func serverSettings(cfg Config, dataDir, runID string) map[string]string {
	env := map[string]string{
		"APP_ENV": "development", "DATA_DIR": dataDir, "LOG_LEVEL": "warn", "GRAPHQL_INTROSPECTION": "true",
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

// measureServer runs the phases against srv and reads its resource use
// before it is stopped (VmHWM disappears with the process).
func measureServer(ctx context.Context, srv *serverProc, cfg Config, runID string, logf func(string, ...any)) ([]PhaseResult, ServerUsage, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-srv.exited:
			cancel(errServerExited)
		case <-ctx.Done():
		}
	}()
	sampler := &rssSampler{pid: srv.pid()}
	go sampler.run(ctx, 100*time.Millisecond)

	c := newClient(srv.baseURL, 4*meConcurrency)
	defer c.close()
	var perf *perfRecorder
	if cfg.PerfDir != "" {
		perf = &perfRecorder{dir: cfg.PerfDir, pid: srv.pid()}
	}
	phases, err := newRunner(c, srv, sampler, perf, runID, logf).phases(ctx, cfg)
	if err != nil {
		if errors.Is(context.Cause(ctx), errServerExited) {
			return nil, ServerUsage{}, fmt.Errorf("%w (%v):\n%s", errServerExited, srv.waitErr, srv.logs)
		}
		return nil, ServerUsage{}, err
	}
	u, err := readProc(srv.pid())
	if err != nil {
		return nil, ServerUsage{}, fmt.Errorf("read the server's resource use: %w", err)
	}
	return phases, ServerUsage{PeakRSSBytes: u.HWM, CPUSeconds: u.cpu().Seconds(),
		UserSeconds: u.User.Seconds(), SystemSeconds: u.System.Seconds()}, nil
}

// measureLimits times bcrypt, then seeds the server's database and measures
// its point reads.
func measureLimits(ctx context.Context, cfg Config, dataDir, dbName string, logf func(string, ...any)) (Limits, error) {
	logf("timing %d bcrypt hashes at cost %d", cfg.BcryptSamples, cfg.BcryptCost)
	samples, err := measureBcrypt(ctx, cfg.BcryptCost, cfg.BcryptSamples)
	if err != nil {
		return Limits{}, err
	}
	limits := bcryptLimits(samples, cfg.BcryptCost)

	db, err := openServerDB(cfg.MongoURI, dataDir, dbName)
	if err != nil {
		return Limits{}, err
	}
	defer db.close()
	logf("seeding %d users and measuring the database's point reads (%s)", cfg.Users, cfg.CeilingDuration)
	limits.PointRead, err = measurePointReads(ctx, db.uri, db.name, cfg.Users, meConcurrency, cfg.CeilingDuration)
	if err != nil {
		return Limits{}, err
	}
	limits.PointReadDocs = cfg.Users
	return limits, ctx.Err()
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
