// Package federation signs users in with an identity provider: OpenID Connect
// discovery, the authorization-code flow with PKCE, state and nonce, and the
// validation of the ID token (by go-oidc, never by hand); and GitHub, which
// speaks plain OAuth 2.0, through the same flow (without nonce or ID token)
// and its user API. It yields a verified Identity; what an identity means for
// accounts is auth's business.
package federation

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Kind is the protocol a provider speaks.
type Kind string

const (
	KindOIDC   Kind = "oidc"   // OpenID Connect, with discovery (the default)
	KindGitHub Kind = "github" // GitHub's OAuth 2.0 and its user API
)

// Provider configures one identity provider.
type Provider struct {
	Name         string // in the paths: /auth/NAME, /auth/NAME/callback
	Kind         Kind   // KindOIDC when empty
	Issuer       string // KindOIDC: discovery at Issuer/.well-known/openid-configuration
	ClientID     string
	ClientSecret string
	Scopes       []string // DefaultScopes (GitHubScopes for KindGitHub) when empty
	DisplayName  string
	// TenantIssuer is for a multi-tenant issuer such as Microsoft's common
	// endpoint, whose discovery document names a template instead of
	// Issuer: the template, with TenantPlaceholder where each token's tenant
	// goes. Discovery must name exactly this template, and every ID token's
	// iss must be the template with the token's own tid claim in place.
	TenantIssuer string
	// KindGitHub: the web host (DefaultGitHubURL when empty) and the API
	// (DefaultGitHubAPIURL when empty; https://HOST/api/v3 on GitHub
	// Enterprise Server).
	GitHubURL    string
	GitHubAPIURL string
}

// DefaultScopes are requested when a Provider names none.
var DefaultScopes = []string{oidc.ScopeOpenID, "email", "profile"}

// Options are a Registry's dependencies.
type Options struct {
	PublicURL string // the server's own base URL: callbacks are PublicURL/auth/NAME/callback
	Providers []Provider
	Flows     FlowStore
	Claims    Claimer
	Logger    *slog.Logger
	Now       func() time.Time // time.Now when nil
	Client    *http.Client     // for discovery, keys and the token endpoint; http.DefaultClient when nil
	// Retry is the first pause before discovering an unreachable provider
	// again; it doubles up to MaxRetry. 5 s when zero.
	Retry time.Duration
}

// MaxRetry caps the pause between discovery attempts.
const MaxRetry = 5 * time.Minute

// discoveryTimeout bounds one discovery attempt.
const discoveryTimeout = 10 * time.Second

// providerTimeout bounds a callback's calls to the provider: the token
// exchange, and GitHub's user API.
const providerTimeout = 10 * time.Second

// Registry holds the configured providers and runs their flows.
type Registry struct {
	flows     FlowStore
	claims    Claimer
	log       *slog.Logger
	now       func() time.Time
	client    *http.Client
	providers map[string]*provider
}

type provider struct {
	cfg      Provider
	redirect string
	ready    atomic.Pointer[discovered] // nil until discovery succeeds
}

type discovered struct {
	oauth oauth2.Config
	// verifier checks ID tokens; nil for GitHub, which has none. It skips
	// the issuer check when tenantIssuer is set: Finish checks the issuer
	// against the token's tenant instead.
	verifier     *oidc.IDTokenVerifier
	tenantIssuer string
}

// NewRegistry discovers every provider once, concurrently, and returns. A
// provider that cannot be reached is logged and discovered again in the
// background until ctx ends; until then its flows fail with ProviderError.
func NewRegistry(ctx context.Context, o Options) (*Registry, error) {
	r := &Registry{
		flows: o.Flows, claims: o.Claims, log: o.Logger, now: o.Now, client: o.Client,
		providers: make(map[string]*provider, len(o.Providers)),
	}
	if r.flows == nil || r.claims == nil {
		return nil, fmt.Errorf("federation: a flow store and a claimer are required")
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.client == nil {
		r.client = http.DefaultClient
	}
	retry := o.Retry
	if retry <= 0 {
		retry = 5 * time.Second
	}
	base := strings.TrimSuffix(o.PublicURL, "/")
	for _, c := range o.Providers {
		if c.Kind == "" {
			c.Kind = KindOIDC
		}
		switch c.Kind {
		case KindOIDC:
			if c.Name == "" || c.Issuer == "" || c.ClientID == "" {
				return nil, fmt.Errorf("federation: provider %q needs a name, an issuer and a client id", c.Name)
			}
			if c.TenantIssuer != "" && !strings.Contains(c.TenantIssuer, TenantPlaceholder) {
				return nil, fmt.Errorf("federation: provider %q: the tenant issuer %q has no %s", c.Name, c.TenantIssuer,
					TenantPlaceholder)
			}
			if len(c.Scopes) == 0 {
				c.Scopes = DefaultScopes
			}
		case KindGitHub:
			if c.Name == "" || c.ClientID == "" {
				return nil, fmt.Errorf("federation: provider %q needs a name and a client id", c.Name)
			}
			c.GitHubURL = strings.TrimSuffix(cmp.Or(c.GitHubURL, DefaultGitHubURL), "/")
			c.GitHubAPIURL = strings.TrimSuffix(cmp.Or(c.GitHubAPIURL, DefaultGitHubAPIURL), "/")
			if len(c.Scopes) == 0 {
				c.Scopes = GitHubScopes
			}
		default:
			return nil, fmt.Errorf("federation: provider %q: unknown kind %q", c.Name, c.Kind)
		}
		if _, dup := r.providers[c.Name]; dup {
			return nil, fmt.Errorf("federation: provider %q configured twice", c.Name)
		}
		r.providers[c.Name] = &provider{cfg: c, redirect: base + "/auth/" + c.Name + "/callback"}
	}

	var wg sync.WaitGroup
	for _, p := range r.providers {
		if p.cfg.Kind == KindGitHub {
			p.ready.Store(gitHubEndpoints(p))
			continue
		}
		wg.Go(func() {
			if err := r.discover(ctx, p); err != nil {
				r.log.WarnContext(ctx, "federation: provider unreachable, retrying in the background",
					"provider", p.cfg.Name, "issuer", p.cfg.Issuer, "err", err)
				go r.retry(ctx, p, retry)
			}
		})
	}
	wg.Wait()
	return r, nil
}

func (r *Registry) retry(ctx context.Context, p *provider, pause time.Duration) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		err := r.discover(ctx, p)
		if err == nil {
			r.log.InfoContext(ctx, "federation: provider discovered", "provider", p.cfg.Name)
			return
		}
		pause = min(2*pause, MaxRetry)
		r.log.WarnContext(ctx, "federation: provider still unreachable",
			"provider", p.cfg.Name, "err", err, "retry_in", pause)
	}
}

// discover fetches the provider's discovery document and sets it ready. The
// keys are fetched, and cached, by go-oidc when a token needs them.
func (r *Registry) discover(ctx context.Context, p *provider) error {
	// go-oidc keeps the client from this context, not its deadline, for
	// later key fetches.
	dctx, cancel := context.WithTimeout(oidc.ClientContext(context.WithoutCancel(ctx), r.client), discoveryTimeout)
	defer cancel()
	tenant := p.cfg.TenantIssuer
	if tenant != "" {
		// go-oidc's documented way for a discovery document that names
		// another issuer than its URL (Microsoft's common endpoint names
		// its template): the issuer check of discovery and of the
		// verifier is off, and the document and every token are checked
		// here and in Finish instead.
		dctx = oidc.InsecureIssuerURLContext(dctx, tenant)
	}
	op, err := oidc.NewProvider(dctx, p.cfg.Issuer)
	if err != nil {
		return err
	}
	var meta struct {
		Issuer      string   `json:"issuer"`
		AuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	}
	if err := op.Claims(&meta); err != nil {
		return err
	}
	if tenant != "" && meta.Issuer != tenant {
		return fmt.Errorf("discovery names the issuer %q, want the tenant template %q", meta.Issuer, tenant)
	}
	endpoint := op.Endpoint()
	endpoint.AuthStyle = authStyle(meta.AuthMethods)
	p.ready.Store(&discovered{
		oauth: oauth2.Config{
			ClientID: p.cfg.ClientID, ClientSecret: p.cfg.ClientSecret,
			Endpoint: endpoint, RedirectURL: p.redirect, Scopes: p.cfg.Scopes,
		},
		verifier:     op.Verifier(&oidc.Config{ClientID: p.cfg.ClientID, Now: r.now, SkipIssuerCheck: tenant != ""}),
		tenantIssuer: tenant,
	})
	return nil
}

// authStyle follows the provider's token_endpoint_auth_methods_supported,
// client_secret_basic when absent (the OIDC default). With both listed,
// oauth2 tries basic and falls back to post: some servers list basic but
// accept only post.
func authStyle(methods []string) oauth2.AuthStyle {
	basic := len(methods) == 0 || slices.Contains(methods, "client_secret_basic")
	post := slices.Contains(methods, "client_secret_post")
	switch {
	case basic && post:
		return oauth2.AuthStyleAutoDetect
	case post:
		return oauth2.AuthStyleInParams
	default:
		return oauth2.AuthStyleInHeader
	}
}

// ProviderInfo is what the app may show for a provider.
type ProviderInfo struct {
	Name        string
	DisplayName string
	Ready       bool // discovered; false while it is unreachable
}

// Providers lists the configured providers by name.
func (r *Registry) Providers() []ProviderInfo {
	out := make([]ProviderInfo, 0, len(r.providers))
	for _, p := range r.providers {
		name := p.cfg.DisplayName
		if name == "" {
			name = p.cfg.Name
		}
		out = append(out, ProviderInfo{Name: p.cfg.Name, DisplayName: name, Ready: p.ready.Load() != nil})
	}
	slices.SortFunc(out, func(a, b ProviderInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}
