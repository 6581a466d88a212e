// Command server is a GraphQL authentication API: register, login and a
// protected me query, with JWT access tokens and MongoDB storage.
package main

//go:generate go run github.com/99designs/gqlgen generate

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/authgql/server/graph"
	"github.com/authgql/server/internal/api"
	"github.com/authgql/server/internal/auth"
	"github.com/authgql/server/internal/config"
	"github.com/authgql/server/internal/devdb"
	"github.com/authgql/server/internal/mongodb"
	"github.com/authgql/server/internal/playground"
	"github.com/authgql/server/internal/token"
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
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	logger := newLogger(cfg, stdout)
	if getenv("GOMAXPROCS") == "" && !testing.Testing() {
		// One Go processor per hashing slot on top of the CPUs: bcrypt runs on
		// low-priority threads (see auth), and requests must not wait for a
		// processor while it does. GOMAXPROCS(0) already respects a container's
		// CPU limit; a test leaves its process alone.
		runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) + cfg.HashConcurrency)
	}

	mongoURI := cfg.MongoURI
	if mongoURI == "" {
		db, err := devdb.Start(filepath.Join(cfg.DataDir, "db"), ferretLogger(cfg, logger))
		if err != nil {
			return err
		}
		defer db.Stop()
		mongoURI = db.URI()
		logger.Warn("using the embedded database (development only); set MONGODB_URI for production",
			"dir", filepath.Join(cfg.DataDir, "db"))
	}
	client, err := mongodb.Connect(ctx, mongoURI)
	if err != nil {
		return err
	}
	defer func() { _ = client.Disconnect(context.Background()) }()
	db := client.Database(cfg.MongoDatabase)
	users, err := mongodb.NewUserStore(ctx, db)
	if err != nil {
		return err
	}
	sessions, err := mongodb.NewSessionStore(ctx, db)
	if err != nil {
		return err
	}
	throttles, err := mongodb.NewThrottleStore(ctx, db)
	if err != nil {
		return err
	}
	revocations, err := mongodb.NewRevocationLog(ctx, db)
	if err != nil {
		return err
	}

	secret := cfg.JWTSecret
	if len(secret) == 0 {
		if secret, err = devSecret(cfg.DataDir); err != nil {
			return err
		}
		logger.Warn("JWT_SECRET is not set: using a generated development key kept in DATA_DIR; set JWT_SECRET in production")
	}
	issuer, err := token.NewIssuer(secret, cfg.JWTIssuer, cfg.JWTAudience, cfg.AccessTokenTTL, cfg.JWTClockSkew, time.Now)
	if err != nil {
		return err
	}
	svc, err := auth.NewService(auth.Stores{Users: users, Sessions: sessions, Throttles: throttles, Revocations: revocations}, issuer, auth.Settings{
		BcryptCost:    cfg.BcryptCost,
		RefreshTTL:    cfg.RefreshTokenTTL,
		ReuseInterval: cfg.RefreshReuseInterval,
		Key:           deriveKey(secret, "refresh-tokens"),
		UserCacheTTL:  cfg.UserCacheTTL,
		Limits: auth.Limits{
			LoginPerIP:       cfg.LoginRate,
			RegisterPerIP:    cfg.RegisterRate,
			RefreshPerIP:     cfg.RefreshRate,
			ThrottleAfter:    cfg.ThrottleAfter,
			ThrottleBase:     cfg.ThrottleBase,
			ThrottleMax:      cfg.ThrottleMax,
			HashConcurrency:  cfg.HashConcurrency,
			HashQueueTimeout: cfg.HashQueueTimeout,
		},
		Audit: logger.With("log", "audit"),
		Now:   time.Now,
	})
	if err != nil {
		return err
	}
	if len(args) > 1 && args[1] == "admin" {
		return runAdmin(ctx, svc, args[2:], stdout)
	}
	outcomes, err := svc.BootstrapAdmins(ctx, cfg.BootstrapAdmins)
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
	// Revocations made by other instances before this one started count too.
	if err := svc.Sync(ctx); err != nil {
		return err
	}
	syncCtx, stopSync := context.WithCancel(context.Background())
	defer stopSync()
	go svc.Run(syncCtx, logger, cfg.RevocationSync)
	gql := graph.NewHandler(svc, logger, graph.Limits{
		ParserTokens:  cfg.ParserTokenLimit,
		Complexity:    cfg.ComplexityLimit,
		Depth:         cfg.DepthLimit,
		Aliases:       cfg.AliasLimit,
		Introspection: cfg.Introspection,
		Suggestions:   !cfg.Production(),
	})
	var pg http.Handler
	if cfg.Playground {
		pg = playground.New("authgql", "/query")
	}
	useTLS := cfg.TLSCertFile != ""
	handler := api.NewServer(logger, svc, gql, mongodb.NewPinger(client), pg, api.Options{
		CORSOrigins:    cfg.CORSAllowedOrigins,
		MaxBody:        cfg.MaxBodyBytes,
		TrustedProxies: cfg.TrustedProxies,
		HSTS:           useTLS,
	})

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
	if cfg.PprofAddr != "" {
		stopPprof, err := servePprof(cfg.PprofAddr, logger)
		if err != nil {
			return err
		}
		defer stopPprof()
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	logger.Info("listening", "addr", ln.Addr().String(), "tls", useTLS, "env", cfg.Env,
		"playground", cfg.Playground, "introspection", cfg.Introspection)
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
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

const adminUsage = `usage: server admin grant <username>
  Gives <username> the ADMIN role (idempotent). Uses the same environment as
  the server (MONGODB_URI, or the embedded database in DATA_DIR: stop a
  development server on the same DATA_DIR first).`

// runAdmin runs an admin subcommand: bootstrapping the first admin without a
// database shell.
func runAdmin(ctx context.Context, svc *auth.Service, args []string, stdout io.Writer) error {
	if len(args) != 2 || args[0] != "grant" {
		return errors.New(adminUsage)
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
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// ferretLogger keeps the embedded database's chatty logs (it logs every failed
// command, duplicate keys included) out of the server's log unless debugging.
func ferretLogger(cfg config.Config, logger *slog.Logger) *slog.Logger {
	if cfg.LogLevel <= slog.LevelDebug {
		return logger.With("component", "ferretdb")
	}
	return slog.New(slog.DiscardHandler)
}

// servePprof serves Go's profiler on its own listener (never the public
// port), for PPROF_ADDR such as 127.0.0.1:6060.
func servePprof(addr string, logger *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("pprof listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	logger.Warn("pprof is served", "addr", ln.Addr().String())
	return func() { _ = srv.Close() }, nil
}

// deriveKey gives each use of the one configured secret a key of its own.
func deriveKey(secret []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("authgql/" + purpose))
	return m.Sum(nil)
}

// devSecret returns the development signing key kept in dataDir, creating a
// random 256-bit one (mode 0600) the first time.
func devSecret(dataDir string) ([]byte, error) {
	path := filepath.Join(dataDir, "jwt-secret")
	b, err := os.ReadFile(path)
	if err == nil {
		s := strings.TrimSpace(string(b))
		if len(s) < token.MinSecretBytes {
			return nil, fmt.Errorf("%s holds a key shorter than %d bytes: delete it to generate a new one", path, token.MinSecretBytes)
		}
		return []byte(s), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read development key: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create DATA_DIR: %w", err)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	s := hex.EncodeToString(key)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create development key: %w", err)
	}
	if _, err := f.WriteString(s + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("write development key: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("write development key: %w", err)
	}
	return []byte(s), nil
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
