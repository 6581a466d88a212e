// Package federation signs users in with an identity provider: OpenID Connect
// discovery, the authorization-code flow with PKCE, state and nonce, and the
// validation of the ID token (by go-oidc, never by hand). It yields a
// verified Identity; what an identity means for accounts is auth's business.
package federation

import (
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

// Provider configures one OpenID Connect provider.
type Provider struct {
	Name         string // in the paths: /auth/NAME, /auth/NAME/callback
	Issuer       string // discovery at Issuer/.well-known/openid-configuration
	ClientID     string
	ClientSecret string
	Scopes       []string // DefaultScopes when empty
	DisplayName  string
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
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier
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
		if c.Name == "" || c.Issuer == "" || c.ClientID == "" {
			return nil, fmt.Errorf("federation: provider %q needs a name, an issuer and a client id", c.Name)
		}
		if _, dup := r.providers[c.Name]; dup {
			return nil, fmt.Errorf("federation: provider %q configured twice", c.Name)
		}
		if len(c.Scopes) == 0 {
			c.Scopes = DefaultScopes
		}
		r.providers[c.Name] = &provider{cfg: c, redirect: base + "/auth/" + c.Name + "/callback"}
	}

	var wg sync.WaitGroup
	for _, p := range r.providers {
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
	op, err := oidc.NewProvider(dctx, p.cfg.Issuer)
	if err != nil {
		return err
	}
	var meta struct {
		AuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	}
	if err := op.Claims(&meta); err != nil {
		return err
	}
	endpoint := op.Endpoint()
	endpoint.AuthStyle = authStyle(meta.AuthMethods)
	p.ready.Store(&discovered{
		oauth: oauth2.Config{
			ClientID: p.cfg.ClientID, ClientSecret: p.cfg.ClientSecret,
			Endpoint: endpoint, RedirectURL: p.redirect, Scopes: p.cfg.Scopes,
		},
		verifier: op.Verifier(&oidc.Config{ClientID: p.cfg.ClientID, Now: r.now}),
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
