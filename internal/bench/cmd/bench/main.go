// Command bench is `make bench` (issue 7): it builds the server, starts it on
// a free loopback port with a fresh embedded database (or the database of
// MONGODB_URI, in a scratch database it drops afterwards), and drives it
// through these phases, each for a fixed duration at a fixed concurrency,
// checking every response:
//
//	me            32  { me { id username } } with a valid access token
//	login          8  the accounts registered at setup
//	register       8  a new username per request
//	refreshToken   8  each worker rotates its own session (skipped while the schema lacks it)
//	me (alone)     8  the baseline for the next phase
//	mixed            a login flood at 4 × cores with me at 8 alongside
//
// It measures, in the same run, one bcrypt hash at the configured cost and the
// database's own point-read rate (on the server's database, seeded with -users
// user documents before the server starts), prints a table with the ratios to
// those limits, and writes the same as JSON.
//
// Usage, from the repository root:
//
//	go run ./internal/bench/cmd/bench [-short] [-cost 12] [-out bench-results.json] [...]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/authgql/server/internal/bench"
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
	full, short := bench.Defaults(false), bench.Defaults(true)
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	isShort := fs.Bool("short", false, "short phases: the whole run within a minute")
	phase := fs.Duration("duration", full.PhaseDuration, fmt.Sprintf("each of the me, login, register and refreshToken phases (-short: %s)", short.PhaseDuration))
	mixed := fs.Duration("mixed-duration", full.MixedDuration, fmt.Sprintf("the me-alone phase and the mixed phase (-short: %s)", short.MixedDuration))
	warmup := fs.Duration("warmup", full.Warmup, fmt.Sprintf("warm-up before the phases (-short: %s)", short.Warmup))
	ceiling := fs.Duration("ceiling-duration", full.CeilingDuration, fmt.Sprintf("the database point-read measurement (-short: %s)", short.CeilingDuration))
	users := fs.Int("users", full.Users, "user documents seeded into the server's database before it starts; point reads are measured on them")
	cost := fs.Int("cost", full.BcryptCost, "bcrypt cost: the server's BCRYPT_COST and the reference hash")
	out := fs.String("out", full.Out, `JSON results file ("" for none)`)
	perf := fs.String("perf", "", "record the server with perf(1) during each phase into this directory (NAME.perf.data; see perf report)")
	dir := fs.String("dir", full.RepoDir, "the repository whose server is built")
	goCmd := fs.String("go", full.GoCmd, "the go command that builds the server")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}

	cfg := bench.Defaults(*isShort)
	// Flags given explicitly win over the mode's defaults.
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "duration":
			cfg.PhaseDuration = *phase
		case "mixed-duration":
			cfg.MixedDuration = *mixed
		case "warmup":
			cfg.Warmup = *warmup
		case "ceiling-duration":
			cfg.CeilingDuration = *ceiling
		}
	})
	cfg.Users, cfg.BcryptCost, cfg.Out, cfg.PerfDir, cfg.RepoDir, cfg.GoCmd = *users, *cost, *out, *perf, *dir, *goCmd
	cfg.MongoURI = getenv("MONGODB_URI")
	if err := validate(cfg); err != nil {
		return err
	}
	return bench.Run(ctx, cfg, stdout, stderr)
}

func validate(c bench.Config) error {
	for _, d := range []time.Duration{c.PhaseDuration, c.MixedDuration, c.CeilingDuration} {
		if d <= 0 {
			return fmt.Errorf("durations must be positive")
		}
	}
	if c.Warmup < 0 {
		return fmt.Errorf("-warmup must not be negative")
	}
	if c.Users < 1 {
		return fmt.Errorf("-users must be at least 1: point reads need a document to read")
	}
	if c.BcryptCost < 10 || c.BcryptCost > 15 {
		return fmt.Errorf("-cost must be from 10 to 15, as the server's BCRYPT_COST")
	}
	return nil
}
