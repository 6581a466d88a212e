// Command bench is `make bench` (issue 7): it builds the server, starts it on
// a free loopback port with a fresh embedded database (or the database of
// MONGODB_URI, in a scratch database it drops afterwards), and drives it
// through these phases, each for a fixed duration at a fixed concurrency,
// checking every response:
//
//	me            32  { me { id username } } with a valid access token
//	me (floor)    32  the same against a bare net/http handler (cmd/floor)
//	login          8  the accounts registered at setup
//	register       8  a new username per request
//	refreshToken   8  each worker rotates its own session
//	me (alone)     8  the baseline for the next phase
//	mixed            a login flood at 4 × cores with me at 8 alongside
//	me HS256      32  me against a fresh server signing with HS256 (-alg-duration)
//	me ES256      32  … with ES256, after `keys rotate --now` with that algorithm
//	me EdDSA      32  … with EdDSA
//	me RS256      32  … with RS256
//	sockets           -sockets idle authenticated WebSockets (5,000) against a
//	              32  fresh server: its memory per socket, and me beside them
//	                  and after they closed
//	soak          16  login → 60 × me → 3 × refreshToken → logout, in a loop,
//	                  against a fresh server on a database of many sessions
//
// It measures, in the same run, one bcrypt hash at the configured cost and the
// database's own point-read rate (on the server's database, seeded with -users
// user documents before the server starts), prints a table with the ratios to
// those limits and to the floor, and writes the same as JSON. The server signs
// with HS256 up to the mixed phase, as the floor verifies; me of each
// asymmetric algorithm is compared with me HS256 (issue 13: 0.9 of it or more).
//
// Usage, from tools/bench (make bench does this):
//
//	go run ./cmd/bench [-repo ../..] [-short] [-cost 12] [-soak 3m] [-sockets 5000] [-out FILE] [...]
//	go run ./cmd/bench -sockets-only [-sockets N]   # the sockets phase alone
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/authgql/server/tools/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if ctx.Err() != nil {
			err = errors.New("interrupted; the server is stopped and the temporary files are removed")
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parse(args, getenv, stderr)
	if err != nil {
		return err
	}
	return bench.Run(ctx, cfg, stdout, stderr)
}

// parse reads the flags over the defaults of the mode (-short or not).
func parse(args []string, getenv func(string) string, stderr io.Writer) (bench.Config, error) {
	full, short := bench.Defaults(false), bench.Defaults(true)
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	isShort := fs.Bool("short", false, "short phases, 500 sockets and no soak: the whole run in about two minutes")
	phase := fs.Duration("duration", full.PhaseDuration, fmt.Sprintf("each of the me, floor, login, register and refreshToken phases (-short: %s)", short.PhaseDuration))
	mixed := fs.Duration("mixed-duration", full.MixedDuration, fmt.Sprintf("the me-alone phase and the mixed phase (-short: %s)", short.MixedDuration))
	alg := fs.Duration("alg-duration", full.AlgDuration, fmt.Sprintf("me against a fresh server signing with HS256, ES256, EdDSA and RS256, each; 0 for none (-short: %s)", short.AlgDuration))
	warmup := fs.Duration("warmup", full.Warmup, fmt.Sprintf("warm-up before the phases (-short: %s)", short.Warmup))
	ceiling := fs.Duration("ceiling-duration", full.CeilingDuration, fmt.Sprintf("the database point-read measurement (-short: %s)", short.CeilingDuration))
	soak := fs.Duration("soak", full.Soak, fmt.Sprintf("the soak phase, in whole intervals; 0 for none (-short: %s)", short.Soak))
	interval := fs.Duration("soak-interval", full.SoakInterval, fmt.Sprintf("the soak's reporting interval (-short: %s)", short.SoakInterval))
	sessions := fs.Int("soak-sessions", full.SoakSessions, "sessions in the database when the soak starts (seeded up to this many)")
	sockets := fs.Int("sockets", full.Sockets, fmt.Sprintf("idle authenticated WebSockets the sockets phase holds open; 0 for no sockets phase (-short: %d)", short.Sockets))
	socketsIdle := fs.Duration("sockets-idle", full.SocketsIdle, fmt.Sprintf("how long the sockets sit idle before the server's memory is read (-short: %s)", short.SocketsIdle))
	socketsOnly := fs.Bool("sockets-only", false, "run the sockets phase alone (with its own me phases), nothing else")
	users := fs.Int("users", full.Users, "user documents seeded into the server's database before it starts; point reads are measured on them")
	cost := fs.Int("cost", full.BcryptCost, "bcrypt cost: the server's BCRYPT_COST and the reference hash")
	out := fs.String("out", "", `JSON results file (default: bench-results.json in -repo; "-" for none)`)
	perf := fs.String("perf", "", "record the server with perf(1) during each phase into this directory (NAME.perf.data; see perf report)")
	pprof := fs.String("pprof", "", "save the server's Go CPU and allocation profiles of each phase into this directory (NAME.cpu.pb.gz, NAME.allocs*.pb.gz)")
	repo := fs.String("repo", full.RepoDir, "the repository: the server is built from its root, the floor from its tools/bench")
	goCmd := fs.String("go", full.GoCmd, "the go command that builds the server")
	if err := fs.Parse(args); err != nil {
		return bench.Config{}, err
	}
	if fs.NArg() > 0 {
		return bench.Config{}, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}

	cfg := bench.Defaults(*isShort)
	// Flags given explicitly win over the mode's defaults.
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "duration":
			cfg.PhaseDuration = *phase
		case "mixed-duration":
			cfg.MixedDuration = *mixed
		case "alg-duration":
			cfg.AlgDuration = *alg
		case "warmup":
			cfg.Warmup = *warmup
		case "ceiling-duration":
			cfg.CeilingDuration = *ceiling
		case "soak":
			cfg.Soak = *soak
		case "soak-interval":
			cfg.SoakInterval = *interval
		case "sockets":
			cfg.Sockets = *sockets
		case "sockets-idle":
			cfg.SocketsIdle = *socketsIdle
		}
	})
	cfg.SocketsOnly = *socketsOnly
	cfg.SoakSessions, cfg.Users, cfg.BcryptCost, cfg.PerfDir, cfg.PprofDir, cfg.RepoDir, cfg.GoCmd =
		*sessions, *users, *cost, *perf, *pprof, *repo, *goCmd
	switch *out {
	case "":
		cfg.Out = filepath.Join(*repo, "bench-results.json")
	case "-":
		cfg.Out = ""
	default:
		cfg.Out = *out
	}
	cfg.MongoURI = getenv("MONGODB_URI")
	return cfg, validate(cfg)
}

func validate(c bench.Config) error {
	for _, d := range []time.Duration{c.PhaseDuration, c.MixedDuration, c.CeilingDuration, c.SoakInterval} {
		if d <= 0 {
			return fmt.Errorf("durations must be positive")
		}
	}
	if c.Warmup < 0 || c.Soak < 0 || c.AlgDuration < 0 {
		return fmt.Errorf("-warmup, -soak and -alg-duration must not be negative")
	}
	if c.Users < 1 {
		return fmt.Errorf("-users must be at least 1: point reads need a document to read")
	}
	if c.Sockets < 0 || c.SocketsIdle <= 0 {
		return fmt.Errorf("-sockets must not be negative and -sockets-idle must be positive")
	}
	if c.SocketsOnly && c.Sockets == 0 {
		return fmt.Errorf("-sockets-only needs sockets: -sockets must be positive")
	}
	if c.SoakSessions < 0 {
		return fmt.Errorf("-soak-sessions must not be negative")
	}
	if c.BcryptCost < 10 || c.BcryptCost > 15 {
		return fmt.Errorf("-cost must be from 10 to 15, as the server's BCRYPT_COST")
	}
	return nil
}
