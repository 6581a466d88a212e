// Package app is the composition root: it builds the whole server — stores,
// token issuer, auth service, GraphQL handler, HTTP handler and background
// loops — from a configuration, a logger, a database and a clock. The process
// (server.go) and the tests both call it, so they cannot drift.
package app

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/authgql/server/graph"
	"github.com/authgql/server/internal/api"
	"github.com/authgql/server/internal/auth"
	"github.com/authgql/server/internal/config"
	"github.com/authgql/server/internal/mongodb"
	"github.com/authgql/server/internal/playground"
	"github.com/authgql/server/internal/token"
)

// Deps are what the server is built from.
type Deps struct {
	// Config is the whole configuration; JWTSecret must be set (the process
	// supplies the development key when the environment has none).
	Config config.Config
	Logger *slog.Logger
	DB     *mongo.Database
	Now    func() time.Time
	// WrapStores, when set, wraps the stores before the service uses them
	// (tests hold or fail chosen writes with it).
	WrapStores func(auth.Stores) auth.Stores
}

// App is a built server.
type App struct {
	Handler http.Handler
	Auth    *auth.Service
	Tokens  *token.Issuer
	cfg     config.Config
	logger  *slog.Logger
}

// New builds the server and reads the revocations made before it started.
func New(ctx context.Context, d Deps) (*App, error) {
	cfg := d.Config
	if d.Logger == nil || d.DB == nil || d.Now == nil {
		return nil, errors.New("app: a logger, a database and a clock are required")
	}
	backend := mongodb.MongoDB
	if cfg.MongoURI == "" {
		backend = mongodb.Embedded // no URI: the embedded database (development and tests)
	}
	stores, err := newStores(ctx, d.DB, backend)
	if err != nil {
		return nil, err
	}
	if d.WrapStores != nil {
		stores = d.WrapStores(stores)
	}
	issuer, err := token.NewIssuer(cfg.JWTSecret, cfg.JWTIssuer, cfg.JWTAudience, cfg.AccessTokenTTL, cfg.JWTClockSkew, d.Now)
	if err != nil {
		return nil, err
	}
	svc, err := auth.NewService(stores, issuer, auth.Settings{
		BcryptCost:    cfg.BcryptCost,
		RefreshTTL:    cfg.RefreshTokenTTL,
		ReuseInterval: cfg.RefreshReuseInterval,
		Key:           deriveKey(cfg.JWTSecret, "refresh-tokens"),
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
		Audit: d.Logger.With("log", "audit"),
		Now:   d.Now,
	})
	if err != nil {
		return nil, err
	}
	// Revocations made by other instances before this one started count too.
	if err := svc.Sync(ctx); err != nil {
		return nil, err
	}
	gql := graph.NewHandler(svc, d.Logger, graph.Limits{
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
	handler := api.NewServer(api.Deps{
		Logger:     d.Logger,
		Tokens:     svc,
		GraphQL:    gql,
		Playground: pg,
		DB:         mongodb.NewPinger(d.DB.Client()),
		Options: api.Options{
			CORSOrigins:    cfg.CORSAllowedOrigins,
			MaxBody:        cfg.MaxBodyBytes,
			TrustedProxies: cfg.TrustedProxies,
			HSTS:           cfg.TLSCertFile != "",
		},
	})
	return &App{Handler: handler, Auth: svc, Tokens: issuer, cfg: cfg, logger: d.Logger}, nil
}

// Run runs the background loops (revocation sync, sweeps) until ctx ends.
func (a *App) Run(ctx context.Context) {
	a.Auth.Run(ctx, a.logger, a.cfg.RevocationSync)
}

func newStores(ctx context.Context, db *mongo.Database, backend mongodb.Backend) (auth.Stores, error) {
	users, err := mongodb.NewUserStore(ctx, db)
	if err != nil {
		return auth.Stores{}, err
	}
	sessions, err := mongodb.NewSessionStore(ctx, db, backend)
	if err != nil {
		return auth.Stores{}, err
	}
	throttles, err := mongodb.NewThrottleStore(ctx, db)
	if err != nil {
		return auth.Stores{}, err
	}
	revocations, err := mongodb.NewRevocationLog(ctx, db)
	if err != nil {
		return auth.Stores{}, err
	}
	return auth.Stores{Users: users, Sessions: sessions, Throttles: throttles, Revocations: revocations}, nil
}

// deriveKey gives each use of the one configured secret a key of its own.
func deriveKey(secret []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("authgql/" + purpose))
	return m.Sum(nil)
}
