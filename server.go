// Command server is a GraphQL authentication API: register, login and a
// protected me query, with JWT access tokens and MongoDB storage.
package main

//go:generate go run github.com/99designs/gqlgen generate

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/authgql/server/internal/app"
	"github.com/authgql/server/internal/auth"
	"github.com/authgql/server/internal/config"
	"github.com/authgql/server/internal/devdb"
	"github.com/authgql/server/internal/metrics"
	"github.com/authgql/server/internal/mongodb"
	"github.com/authgql/server/internal/tracing"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// run starts the server and serves until ctx ends, then shuts down gracefully.
// It does only what belongs to a process: environment, signals, listeners and
// shutdown; internal/app builds the server itself.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 1 && args[1] == "healthcheck" {
		return healthcheck(ctx, getenv, stdout)
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	logger := newLogger(cfg, stdout)
	var ln net.Listener
	if len(args) < 2 { // serving (not a subcommand): listen first, so that PORT=0 has its port in PUBLIC_URL
		if ln, err = net.Listen("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))); err != nil {
			return fmt.Errorf("listen: %w", err)
		}
		defer ln.Close()
		if cfg.Port == 0 && strings.TrimSpace(getenv("PUBLIC_URL")) == "" {
			// The address it really has, for the JWKS and, unless JWT_ISSUER
			// is set, as the issuer: discovery starts from it.
			cfg.PublicURL = "http://" + ln.Addr().String()
			if strings.TrimSpace(getenv("JWT_ISSUER")) == "" {
				cfg.JWTIssuer = cfg.PublicURL
			}
		}
	}
	if getenv("GOMAXPROCS") == "" && !testing.Testing() {
		// One Go processor per hashing slot on top of the CPUs: bcrypt runs on
		// low-priority threads (see auth), and requests must not wait for a
		// processor while it does. GOMAXPROCS(0) already respects a container's
		// CPU limit; a test leaves its process alone.
		runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) + cfg.HashConcurrency)
	}
	mongoURI := cfg.MongoURI
	var embedded *devdb.DB
	if mongoURI == "" {
		if embedded, err = devdb.Start(filepath.Join(cfg.DataDir, "db"), ferretLogger(cfg, logger)); err != nil {
			return err
		}
		defer embedded.Stop()
		mongoURI = embedded.URI()
		logger.Warn("using the embedded database (development only); set MONGODB_URI for production",
			"dir", filepath.Join(cfg.DataDir, "db"))
	}
	var m *metrics.Metrics
	if cfg.MetricsAddr != "" && ln != nil {
		m = metrics.New()
		stopMetrics, err := serveMetrics(cfg.MetricsAddr, m.Handler(), logger)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}
	traced := ln != nil && tracing.Enabled(getenv)
	monitors := []mongodb.Monitors{{}}
	monitors[0].Command, monitors[0].Pool = m.MongoMonitors()
	if traced {
		// The SDK reads the rest of its settings (endpoint, headers,
		// sampler, service name) from the standard OTEL_* variables.
		shutdownTracing, err := tracing.Setup(ctx, buildVersion())
		if err != nil {
			return err
		}
		defer func() {
			flush, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := shutdownTracing(flush); err != nil {
				logger.Warn("tracing: flushing spans at shutdown failed", "err", err)
			}
		}()
		monitors = append(monitors, mongodb.Monitors{Command: tracing.MongoMonitor()})
		logger.Info("traces are exported over OTLP/HTTP (OTEL_EXPORTER_OTLP_*)")
	}
	client, err := mongodb.Connect(ctx, mongoURI, monitors...)
	if err != nil {
		return err
	}
	defer func() { _ = client.Disconnect(context.Background()) }()
	if len(cfg.JWTSecret) == 0 {
		if cfg.JWTSecret, err = devSecret(cfg.DataDir); err != nil {
			return err
		}
		logger.Warn("JWT_SECRET is not set: using a generated development key kept in DATA_DIR; set JWT_SECRET in production")
	}
	keysCommand := len(args) > 1 && args[1] == "keys"
	a, err := app.New(ctx, app.Deps{Config: cfg, Logger: logger, DB: client.Database(cfg.MongoDatabase), Now: time.Now,
		ObserveKeys: keysCommand, Metrics: m, Tracing: traced})
	if err != nil {
		return err
	}
	if embedded != nil {
		// The stores have created their collections: index them by _id the
		// way the embedded database queries (it would scan otherwise).
		if err := embedded.IndexIDs(ctx); err != nil {
			logger.Warn("embedded database: indexing _id failed; lookups will scan", "err", err)
		}
	}
	if len(args) > 1 && args[1] == "admin" {
		return runAdmin(ctx, a.Auth, args[2:], stdout)
	}
	if keysCommand {
		return runKeys(ctx, a.Keys, args[2:], stdout)
	}
	if err := bootstrapAdmins(ctx, a.Auth, cfg.BootstrapAdmins, logger); err != nil {
		return err
	}
	loops, stopLoops := context.WithCancel(context.Background())
	defer stopLoops()
	go a.Run(loops)
	if cfg.PprofAddr != "" {
		stopPprof, err := servePprof(cfg.PprofAddr, logger)
		if err != nil {
			return err
		}
		defer stopPprof()
	}
	if ln == nil {
		return fmt.Errorf("unknown command %q (admin, keys, healthcheck, or none to serve)", args[1])
	}
	return serve(ctx, cfg, ln, a.Handler, a.Sockets.Shutdown, logger)
}

// serve serves until ctx ends, then shuts down: the listener closes, requests
// in flight finish, and every WebSocket is closed with 1001 and drained
// (drainSockets; http.Server.Shutdown does not wait for hijacked connections).
func serve(ctx context.Context, cfg config.Config, ln net.Listener, handler http.Handler,
	drainSockets func(context.Context) error, logger *slog.Logger) error {
	useTLS := cfg.TLSCertFile != ""
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12},
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	logger.Info("listening", "addr", ln.Addr().String(), "tls", useTLS, "env", cfg.Env,
		"playground", cfg.Playground, "introspection", cfg.Introspection, "auth_cookie", cfg.AuthCookie)
	if cfg.AddrFile != "" {
		if err := writeAddrFile(cfg.AddrFile, ln.Addr().String()); err != nil {
			ln.Close()
			return err
		}
		defer os.Remove(cfg.AddrFile)
	}
	serveErr := make(chan error, 1)
	go func() {
		if useTLS {
			serveErr <- srv.ServeTLS(ln, cfg.TLSCertFile, cfg.TLSKeyFile)
			return
		}
		serveErr <- srv.Serve(ln)
	}()
	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := srv.Shutdown(shutdownCtx)
	if derr := drainSockets(shutdownCtx); err == nil && derr != nil {
		err = derr
	}
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// bootstrapAdmins applies BOOTSTRAP_ADMINS (only while no enabled ADMIN
// exists) and logs what it did with each name.
func bootstrapAdmins(ctx context.Context, svc *auth.Service, names []string, logger *slog.Logger) error {
	outcomes, err := svc.BootstrapAdmins(ctx, names)
	if err != nil {
		return err
	}
	for _, o := range outcomes {
		if o.Granted {
			logger.Info("BOOTSTRAP_ADMINS: granted ADMIN (no enabled ADMIN existed)", "username", o.Username)
		} else {
			logger.Warn("BOOTSTRAP_ADMINS: skipped", "username", o.Username, "reason", o.Reason)
		}
	}
	return nil
}

// errAdminUsage explains the admin subcommand.
var errAdminUsage = errors.New(`usage: server admin grant <username>

Gives <username> the ADMIN role (idempotent). Uses the same environment as
the server (MONGODB_URI, or the embedded database in DATA_DIR: stop a
development server on the same DATA_DIR first)`)

// runAdmin runs an admin subcommand: bootstrapping the first admin without a
// database shell.
func runAdmin(ctx context.Context, svc *auth.Service, args []string, stdout io.Writer) error {
	if len(args) != 2 || args[0] != "grant" {
		return errAdminUsage
	}
	u, err := svc.GrantRole(ctx, args[1], auth.RoleAdmin)
	if err != nil {
		return fmt.Errorf("admin grant: %w", err)
	}
	fmt.Fprintf(stdout, "%s (%s) holds ADMIN\n", u.Username, u.ID)
	return nil
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.Production() {
		return slog.New(tracing.LogHandler(slog.NewJSONHandler(w, opts)))
	}
	return slog.New(tracing.LogHandler(slog.NewTextHandler(w, opts)))
}

// ferretLogger keeps the embedded database's chatty logs (it logs every failed
// command, duplicate keys included) out of the server's log unless debugging.
func ferretLogger(cfg config.Config, logger *slog.Logger) *slog.Logger {
	if cfg.LogLevel <= slog.LevelDebug {
		return logger.With("component", "ferretdb")
	}
	return slog.New(slog.DiscardHandler)
}

// writeAddrFile writes the address the server listens on (host:port and a
// newline) to path, for whoever started it with PORT=0. The file appears
// whole (written aside, then renamed), so a reader never sees half of it.
func writeAddrFile(path, addr string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(addr+"\n"), 0o644); err != nil {
		return fmt.Errorf("ADDR_FILE: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("ADDR_FILE: %w", err)
	}
	return nil
}

// buildVersion is the module version the binary was built from, for the
// traces' service.version.
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "devel"
}
