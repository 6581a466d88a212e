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
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/authgql/server/graph"
	"github.com/authgql/server/internal/api"
	"github.com/authgql/server/internal/auth"
	"github.com/authgql/server/internal/config"
	"github.com/authgql/server/internal/keys"
	"github.com/authgql/server/internal/mail"
	"github.com/authgql/server/internal/metrics"
	"github.com/authgql/server/internal/mongodb"
	"github.com/authgql/server/internal/outbox"
	"github.com/authgql/server/internal/playground"
	"github.com/authgql/server/internal/token"
	"github.com/authgql/server/internal/tracing"
	"github.com/authgql/server/internal/ws"
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
	// Mail holds what tests change about mail delivery.
	Mail MailDeps
	// ObserveKeys builds the server to look at its signing keys only (the
	// keys command): no key is created by starting it.
	ObserveKeys bool
	// Metrics, when not nil, is instrumented by every part of the server
	// (METRICS_ADDR); the database client's monitors are the caller's.
	Metrics *metrics.Metrics
	// Tracing adds the request, GraphQL operation and resolver spans
	// (OpenTelemetry is set up; the database client's monitor is the
	// caller's).
	Tracing bool
}

// MailDeps adjust mail delivery (tests).
type MailDeps struct {
	SMTPOptions []mail.SMTPOption // e.g. the test server's certificate
	Lease, Poll time.Duration     // zero: the outbox worker's defaults
}

// App is a built server.
type App struct {
	Handler http.Handler
	Auth    *auth.Service
	Tokens  *token.Issuer
	// Keys are the signing keys (keys list/rotate/revoke).
	Keys *keys.Ring
	// Outbox delivers mails; nil when MAIL_DISABLED.
	Outbox *outbox.Worker
	// Sockets are the WebSocket connections (subscriptions); shutdown drains them.
	Sockets *ws.Hub
	cfg     config.Config
	logger  *slog.Logger
	trail   *auth.AuditTrail
	flows   *mongodb.FlowStore // nil without identity providers
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
	stores, outboxStore, err := newStores(ctx, d.DB, backend)
	if err != nil {
		return nil, err
	}
	trail := auth.NewAuditTrail(d.Logger.Handler(), stores.Audit)
	stores.Audit = trail // deleting an account's events goes through the trail's queue
	audit := slog.New(trail).With("log", "audit")
	var svc *auth.Service
	var worker *outbox.Worker
	if cfg.MailDisabled {
		stores.Outbox = discardOutbox{d.Logger}
	} else {
		worker, err = newWorker(cfg, d, outboxStore, stores.Markers, audit, func(ctx context.Context, m *auth.Mail) (*auth.Mail, error) {
			return svc.PrepareMail(ctx, m)
		})
		if err != nil {
			return nil, err
		}
		stores.Outbox = worker.Outbox(outboxStore)
	}
	if d.WrapStores != nil {
		stores = d.WrapStores(stores)
	}
	issuer, err := token.NewIssuer(cfg.JWTSecret, cfg.JWTIssuer, cfg.JWTAudience, cfg.AccessTokenTTL, cfg.JWTClockSkew, d.Now)
	if err != nil {
		return nil, err
	}
	keyStore, err := mongodb.NewSigningKeyStore(ctx, d.DB)
	if err != nil {
		return nil, err
	}
	ring, err := keys.NewRing(keyStore, keys.Config{
		Algorithm:    cfg.JWTAlgorithm,
		Rotation:     cfg.JWTKeyRotation,
		PublishAhead: cfg.JWTKeyPublishAhead,
		// A retired key's tokens live their lifetime and the leeway; the
		// sync interval covers instances that learn of a successor late.
		TokenLifetime: cfg.AccessTokenTTL + cfg.JWTClockSkew + cfg.RevocationSync,
		Master:        cfg.JWTSecret,
		Now:           d.Now,
		Observe:       d.ObserveKeys,
	})
	if err != nil {
		return nil, err
	}
	// The keys made by other instances (and, unless HS256, the first key or
	// a due successor) before the first token is signed.
	if err := ring.Sync(ctx); err != nil {
		return nil, err
	}
	if err := issuer.UseKeys(cfg.JWTAlgorithm, ring); err != nil {
		return nil, err
	}
	var published api.KeySet = ring
	if cfg.JWTAlgorithm == keys.HS256 {
		published = nil // nothing to publish: verifiers share the secret
	}
	fed, flows, err := newFederation(ctx, d, cfg.OIDCProviders, stores.Markers)
	if err != nil {
		return nil, err
	}
	svc, err = auth.NewService(stores, issuer, auth.Settings{
		BcryptCost:    cfg.BcryptCost,
		RefreshTTL:    cfg.RefreshTokenTTL,
		ReuseInterval: cfg.RefreshReuseInterval,
		Key:           deriveKey(cfg.JWTSecret, "refresh-tokens"),
		UserCacheTTL:  cfg.UserCacheTTL,
		Limits: auth.Limits{
			LoginPerIP:       cfg.LoginRate,
			RegisterPerIP:    cfg.RegisterRate,
			RefreshPerIP:     cfg.RefreshRate,
			MailPerIP:        cfg.MailRate,
			ThrottleAfter:    cfg.ThrottleAfter,
			ThrottleBase:     cfg.ThrottleBase,
			ThrottleMax:      cfg.ThrottleMax,
			HashConcurrency:  cfg.HashConcurrency,
			HashQueueTimeout: cfg.HashQueueTimeout,
		},
		Audit: audit,
		Now:   d.Now,
		Mail: auth.MailSettings{
			AppURL:          cfg.AppURL,
			VerificationTTL: cfg.EmailVerifyTTL,
			ResetTTL:        cfg.PasswordResetTTL,
			ChangeTTL:       cfg.EmailChangeTTL,
			AddressInterval: cfg.MailAddressInterval,
		},
		WebAuthn: auth.WebAuthnSettings{
			RPID:            cfg.WebAuthnRPID,
			RPName:          cfg.WebAuthnRPName,
			Origins:         cfg.WebAuthnOrigins,
			AnyLoopbackPort: cfg.WebAuthnAnyLoopback,
		},
		Providers: providerList(fed),
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
	sockets := ws.New(ws.Config{
		Verifier:      svc,
		Leeway:        cfg.JWTClockSkew,
		MaxPerUser:    cfg.WSMaxPerUser,
		MaxOperations: cfg.WSMaxSubscriptions,
		PingInterval:  cfg.WSPingInterval,
		Logger:        d.Logger,
		Now:           d.Now,
	})
	// The sync closes the sockets of sessions that ended on any instance, after
	// handing the entry's events to their subscribers.
	svc.OnSessionsEnded(sockets.SessionsEnded)
	gql.AddTransport(sockets.Transport())
	gql.Use(sockets.Operations())
	if d.Tracing {
		gql.Use(tracing.GraphQL())
	}
	if m := d.Metrics; m != nil {
		pending, _ := outboxStore.(pendingCounter)
		observe(m, svc, sockets, pending)
		observeReadiness(m, d.DB)
		graph.Observe(gql, d.Logger, m)
	}
	var pg http.Handler
	if cfg.Playground {
		pg = playground.New("authgql", "/query")
	}
	handler := api.NewServer(api.Deps{
		Logger: d.Logger,
		Tokens: svc,
		GraphQL: sockets.Handler(ws.Limits{
			CheckOrigin: api.OriginChecker(cfg.PublicURL, cfg.CORSAllowedOrigins),
			MaxPerIP:    cfg.WSMaxPerIP,
		}, gql),
		Playground: pg,
		DB:         mongodb.NewPinger(d.DB.Client()),
		Keys:       published,
		Discovery: api.Discovery{
			Issuer:     cfg.JWTIssuer,
			JWKSURI:    cfg.PublicURL + "/.well-known/jwks.json",
			Algorithms: []string{string(cfg.JWTAlgorithm)},
		},
		Options: api.Options{
			CORSOrigins:    cfg.CORSAllowedOrigins,
			MaxBody:        cfg.MaxBodyBytes,
			TrustedProxies: cfg.TrustedProxies,
			HSTS:           cfg.TLSCertFile != "",
			PublicURL:      cfg.PublicURL,
			Tracing:        d.Tracing,
			Cookie: api.CookieOptions{
				Enabled:  cfg.AuthCookie,
				Domain:   cfg.AuthCookieDomain,
				SameSite: sameSite(cfg.AuthCookieSameSite),
			},
		},
		Now:        d.Now,
		Metrics:    d.Metrics,
		Federation: federationRoutes(fed, svc, cfg.AppURL),
	})
	return &App{Handler: handler, Auth: svc, Tokens: issuer, Keys: ring, Outbox: worker, Sockets: sockets,
		cfg: cfg, logger: d.Logger, trail: trail, flows: flows}, nil
}

// auditRetention is how long audit events about an account are kept for
// its owner to see.
const auditRetention = 90 * 24 * time.Hour

// Run runs the background loops (revocation sync, sweeps, mail delivery,
// the audit trail) until ctx ends.
func (a *App) Run(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.trail.Run(ctx, a.logger, auditRetention)
	}()
	if a.Outbox != nil {
		go a.Outbox.Run(ctx)
	}
	go a.syncKeys(ctx)
	go a.Sockets.KeepAlive(ctx)
	go sweepFlows(ctx, a.flows, a.logger, a.cfg.RevocationSync)
	a.Auth.Run(ctx, a.logger, a.cfg.RevocationSync)
	<-done
}

// syncKeys reloads the signing keys (and makes a due successor) on the
// revocation sync's cadence, so that a rotation or a revocation made on any
// instance is seen here within REVOCATION_SYNC_INTERVAL.
func (a *App) syncKeys(ctx context.Context) {
	t := time.NewTicker(a.cfg.RevocationSync)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := a.Keys.Sync(ctx); err != nil && ctx.Err() == nil {
			a.logger.WarnContext(ctx, "keys: sync failed", "err", err)
		}
	}
}

// newWorker builds the outbox worker with the configured sender: SMTP, or
// .eml files under DATA_DIR/mail (development) with each link logged.
func newWorker(cfg config.Config, d Deps, store outbox.Store, markers auth.MarkerStore, audit *slog.Logger,
	prepare func(context.Context, *auth.Mail) (*auth.Mail, error)) (*outbox.Worker, error) {
	templates, err := mail.LoadTemplates(cfg.MailTemplatesDir)
	if err != nil {
		return nil, fmt.Errorf("MAIL_TEMPLATES_DIR: %w", err)
	}
	var sender mail.Sender
	if cfg.SMTPURL != "" {
		sender, err = mail.NewSMTP(cfg.SMTPURL, cfg.MailFrom, d.Mail.SMTPOptions...)
	} else {
		sender, err = mail.NewFileSender(filepath.Join(cfg.DataDir, "mail"), cfg.MailFrom)
	}
	if err != nil {
		return nil, err
	}
	return outbox.NewWorker(outbox.Config{
		Store: store, Markers: markers, Prepare: prepare, Templates: templates, Sender: sender,
		Logger: d.Logger, Audit: audit, LogLinks: cfg.SMTPURL == "",
		MaxAttempts: cfg.MailMaxAttempts, RetryBase: cfg.MailRetryBase,
		Lease: d.Mail.Lease, Poll: d.Mail.Poll, Now: d.Now,
		Observe: d.Metrics.MailDelivery,
	}), nil
}

// discardOutbox is the outbox of MAIL_DISABLED=true: nothing is sent.
type discardOutbox struct{ logger *slog.Logger }

func (o discardOutbox) Enqueue(ctx context.Context, m *auth.Mail) error {
	o.logger.InfoContext(ctx, "mail: not sent (MAIL_DISABLED=true)", "kind", string(m.Kind))
	return nil
}

func (discardOutbox) DeleteForUser(context.Context, string) (int64, error) { return 0, nil }

func newStores(ctx context.Context, db *mongo.Database, backend mongodb.Backend) (auth.Stores, outbox.Store, error) {
	users, err := mongodb.NewUserStore(ctx, db)
	if err != nil {
		return auth.Stores{}, nil, err
	}
	sessions, err := mongodb.NewSessionStore(ctx, db, backend)
	if err != nil {
		return auth.Stores{}, nil, err
	}
	throttles, err := mongodb.NewThrottleStore(ctx, db)
	if err != nil {
		return auth.Stores{}, nil, err
	}
	revocations, err := mongodb.NewRevocationLog(ctx, db)
	if err != nil {
		return auth.Stores{}, nil, err
	}
	tokens, err := mongodb.NewEmailTokenStore(ctx, db)
	if err != nil {
		return auth.Stores{}, nil, err
	}
	markers, err := mongodb.NewMarkerStore(ctx, db)
	if err != nil {
		return auth.Stores{}, nil, err
	}
	mails, err := mongodb.NewOutboxStore(ctx, db)
	if err != nil {
		return auth.Stores{}, nil, err
	}
	audit, err := mongodb.NewAuditStore(ctx, db)
	if err != nil {
		return auth.Stores{}, nil, err
	}
	passkeys, err := mongodb.NewPasskeyStore(ctx, db)
	if err != nil {
		return auth.Stores{}, nil, err
	}
	challenges, err := mongodb.NewChallengeStore(ctx, db)
	if err != nil {
		return auth.Stores{}, nil, err
	}
	st := auth.Stores{Users: users, Sessions: sessions, Throttles: throttles, Revocations: revocations,
		EmailTokens: tokens, Markers: markers, Outbox: mails, Audit: audit, MFA: mongodb.NewMFAStore(db)}
	st.Passkeys, st.Challenges = passkeys, challenges
	if err := newIdentityStores(ctx, db, &st); err != nil {
		return auth.Stores{}, nil, err
	}
	return st, mails, nil
}

// deriveKey gives each use of the one configured secret a key of its own.
func deriveKey(secret []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("authgql/" + purpose))
	return m.Sum(nil)
}

func sameSite(v string) http.SameSite {
	if v == "Lax" {
		return http.SameSiteLaxMode
	}
	return http.SameSiteStrictMode
}

// observe instruments the service and registers the gauges read at scrape
// time.
func observe(m *metrics.Metrics, svc *auth.Service, sockets *ws.Hub, outboxStore pendingCounter) {
	svc.Observe(m)
	m.GaugeFunc("hash_slots", "Password-hashing admissions allowed at once (twice HASH_CONCURRENCY: see docs/performance.md).",
		func() float64 { _, c := svc.HashSlots(); return float64(c) })
	m.GaugeFunc("hash_slots_in_use", "Password-hashing admissions in use.",
		func() float64 { n, _ := svc.HashSlots(); return float64(n) })
	m.GaugeFunc("revoked_sessions", "Sessions in the in-memory revoked set (their access tokens may be unexpired).",
		func() float64 { return float64(svc.RevokedSessions()) })
	m.GaugeFunc("websocket_connections", "Open WebSockets.", func() float64 { return float64(sockets.Open()) })
	m.GaugeFunc("websocket_subscriptions", "Operations running on WebSockets.",
		func() float64 { return float64(sockets.RunningOperations()) })
	if outboxStore == nil {
		return
	}
	m.GaugeFunc("mail_outbox_depth", "Mails waiting for delivery (not given up).", func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		n, err := outboxStore.Pending(ctx)
		if err != nil {
			return -1
		}
		return float64(n)
	})
}

// pendingCounter counts the outbox's undelivered mails.
type pendingCounter interface {
	Pending(ctx context.Context) (int64, error)
}

func observeReadiness(m *metrics.Metrics, db *mongo.Database) {
	pinger := mongodb.NewPinger(db.Client())
	m.GaugeFunc("readiness", "1 when the database answers a ping within 1 s at scrape time, else 0.", func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if pinger.Ping(ctx) != nil {
			return 0
		}
		return 1
	})
}
