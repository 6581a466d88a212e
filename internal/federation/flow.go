package federation

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/authgql/server/internal/auth"
)

// FlowTTL is how long a started flow can be finished.
const FlowTTL = 10 * time.Minute

// Flow is what Begin keeps for Finish, stored under the hash of its state so
// that any instance can finish it and the database never holds the state.
type Flow struct {
	Provider string
	Verifier string // the PKCE code verifier
	Nonce    string // "" for GitHub, which has no ID token
	Redirect string // sanitized, app-relative, or ""
	// Binding is the SHA-256 (hex) of the secret that Begin handed the
	// browser (a short-lived cookie): the callback must come from the same
	// browser, so a victim cannot be made to finish an attacker's flow
	// (login CSRF).
	Binding string
	// LinkUserID and LinkSessionID are set for a link flow: the signed-in
	// account the identity is to join, and the session that asked.
	LinkUserID    string
	LinkSessionID string
	ExpiresAt     time.Time
}

// FlowStore keeps started flows by key, the SHA-256 of their state.
type FlowStore interface {
	// Save inserts f under key.
	Save(ctx context.Context, key string, f Flow) error
	// Load returns the flow under key, expired or not; auth.ErrNotFound when
	// there is none. Single use is the Claimer's job, not the store's.
	Load(ctx context.Context, key string) (Flow, error)
}

// Claimer consumes single-use keys. Claim must rest on an insert against a
// unique key (the one write that is atomic on the embedded database too):
// false when key was claimed before.
type Claimer interface {
	Claim(ctx context.Context, key string, until time.Time) (bool, error)
}

// MarkerClaimer claims keys as markers of an auth.MarkerStore.
type MarkerClaimer struct{ Markers auth.MarkerStore }

// Claim puts key as a marker; a duplicate means claimed before.
func (c MarkerClaimer) Claim(ctx context.Context, key string, until time.Time) (bool, error) {
	err := c.Markers.Put(ctx, key, until)
	if errors.Is(err, auth.ErrDuplicate) {
		return false, nil
	}
	return err == nil, err
}

// Identity is a provider's verified assertion about a user.
type Identity struct {
	Provider          string
	Subject           string
	Email             string
	EmailVerified     bool
	Name              string
	PreferredUsername string
}

// Result is a finished flow: who signed in, where the app wanted to go, and
// for a link flow the account the identity joins.
type Result struct {
	Identity      Identity
	Redirect      string
	LinkUserID    string
	LinkSessionID string
}

// BeginOptions are what a flow carries to its end.
type BeginOptions struct {
	Redirect      string // kept only if it is an app-relative path
	LinkUserID    string // a link flow for this signed-in account
	LinkSessionID string // and this session of it
}

// Started is a begun flow: send the browser to URL, and give it Binding
// (as a short-lived cookie) to hand back to Finish.
type Started struct {
	URL     string
	Binding string
}

// Begin starts a flow with provider.
func (r *Registry) Begin(ctx context.Context, provider string, o BeginOptions) (Started, error) {
	p, ok := r.providers[provider]
	if !ok {
		return Started{}, ErrUnknownProvider
	}
	d := p.ready.Load()
	if d == nil {
		return Started{}, fail(ProviderError, errors.New("provider not discovered yet"))
	}
	state, binding := random(), random()
	verifier := oauth2.GenerateVerifier()
	f := Flow{
		Provider: provider, Verifier: verifier, Binding: stateKey(binding),
		Redirect: SanitizeRedirect(o.Redirect), LinkUserID: o.LinkUserID, LinkSessionID: o.LinkSessionID,
		ExpiresAt: r.now().Add(FlowTTL),
	}
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}
	if p.cfg.Kind != KindGitHub {
		f.Nonce = random()
		opts = append(opts, oidc.Nonce(f.Nonce))
	}
	if err := r.flows.Save(ctx, stateKey(state), f); err != nil {
		return Started{}, fmt.Errorf("federation: save flow: %w", err)
	}
	return Started{URL: d.oauth.AuthCodeURL(state, opts...), Binding: binding}, nil
}

// Finish completes a flow of provider from the callback's query and the
// binding that Begin gave the browser. A failure is an *Error with its Code,
// except for a database failure (any other error) or ErrUnknownProvider.
func (r *Registry) Finish(ctx context.Context, provider string, query url.Values, binding string) (*Result, error) {
	p, ok := r.providers[provider]
	if !ok {
		return nil, ErrUnknownProvider
	}
	if e := query.Get("error"); e != "" {
		if e == "access_denied" {
			return nil, fail(AccessDenied, nil)
		}
		// The provider's own error code is a short registered token, safe to log.
		return nil, fail(ProviderError, fmt.Errorf("provider answered error=%.64q", e))
	}
	state := query.Get("state")
	if state == "" {
		return nil, fail(InvalidState, errors.New("no state"))
	}
	key := stateKey(state)
	f, err := r.flows.Load(ctx, key)
	if errors.Is(err, auth.ErrNotFound) {
		return nil, fail(InvalidState, errors.New("unknown state"))
	}
	if err != nil {
		return nil, fmt.Errorf("federation: load flow: %w", err)
	}
	if f.Provider != provider {
		return nil, fail(InvalidState, errors.New("state of another provider"))
	}
	if !r.now().Before(f.ExpiresAt) {
		return nil, fail(Expired, nil)
	}
	// Checked before the state is spent: a callback from another browser
	// (login CSRF) leaves the real one able to finish.
	if binding == "" || subtle.ConstantTimeCompare([]byte(stateKey(binding)), []byte(f.Binding)) != 1 {
		return nil, fail(InvalidState, errors.New("state not bound to this browser"))
	}
	claimed, err := r.claims.Claim(ctx, "federation/"+key, f.ExpiresAt)
	if err != nil {
		return nil, fmt.Errorf("federation: claim state: %w", err)
	}
	if !claimed {
		return nil, fail(InvalidState, errors.New("state already used"))
	}
	d := p.ready.Load()
	if d == nil {
		return nil, fail(ProviderError, errors.New("provider not discovered yet"))
	}
	// Begin always stores a verifier, and a nonce for OpenID Connect; a flow
	// without them would downgrade PKCE or accept a token without a nonce.
	// The flow's provider is this one (checked above), so a GitHub flow,
	// which has no nonce, cannot finish at an OpenID Connect provider.
	if f.Verifier == "" || (p.cfg.Kind != KindGitHub && f.Nonce == "") {
		return nil, fail(ProviderError, errors.New("flow without PKCE verifier or nonce"))
	}
	code := query.Get("code")
	if code == "" {
		return nil, fail(ProviderError, errors.New("no code"))
	}

	pctx, cancel := context.WithTimeout(ctx, providerTimeout)
	defer cancel()
	var id Identity
	if p.cfg.Kind == KindGitHub {
		id, err = r.gitHubIdentity(pctx, p, d, code, f)
	} else {
		id, err = r.oidcIdentity(pctx, p, d, code, f)
	}
	if err != nil {
		return nil, err
	}
	return &Result{Identity: id, Redirect: f.Redirect, LinkUserID: f.LinkUserID, LinkSessionID: f.LinkSessionID}, nil
}

// oidcIdentity exchanges the code (with the PKCE verifier) and validates the
// ID token: signature, issuer, audience, expiry (go-oidc), then the nonce.
func (r *Registry) oidcIdentity(ctx context.Context, p *provider, d *discovered, code string, f Flow) (Identity, error) {
	hctx := context.WithValue(ctx, oauth2.HTTPClient, r.client)
	tok, err := d.oauth.Exchange(hctx, code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		return Identity{}, fail(ProviderError, exchangeError(err))
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Identity{}, fail(ProviderError, errors.New("no id_token in the token response"))
	}
	idt, err := d.verifier.Verify(oidc.ClientContext(ctx, r.client), raw)
	if err != nil {
		return Identity{}, fail(ProviderError, fmt.Errorf("id token: %w", err))
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(f.Nonce)) != 1 {
		return Identity{}, fail(ProviderError, errors.New("id token: nonce does not match"))
	}
	var c struct {
		Email             string          `json:"email"`
		EmailVerified     json.RawMessage `json:"email_verified"`
		Name              string          `json:"name"`
		PreferredUsername string          `json:"preferred_username"`
		Tenant            string          `json:"tid"`
		// Microsoft's optional claim "email domain owner verified".
		DomainOwnerVerified json.RawMessage `json:"xms_edov"`
	}
	if err := idt.Claims(&c); err != nil {
		return Identity{}, fail(ProviderError, fmt.Errorf("id token claims: %w", err))
	}
	verified := truthy(c.EmailVerified)
	if d.tenantIssuer != "" {
		// The verifier skipped the issuer check (see discover): the token
		// must come from its own tenant's issuer.
		if !validTenant(c.Tenant) {
			return Identity{}, fail(ProviderError, errors.New("id token: no valid tid claim"))
		}
		if want := strings.ReplaceAll(d.tenantIssuer, TenantPlaceholder, c.Tenant); idt.Issuer != want {
			return Identity{}, fail(ProviderError,
				fmt.Errorf("id token issued by %.200q, not by its tenant's issuer %.200q", idt.Issuer, want))
		}
		verified = verified || truthy(c.DomainOwnerVerified)
	}
	if idt.Subject == "" {
		return Identity{}, fail(ProviderError, errors.New("id token: no subject"))
	}
	return Identity{
		Provider: p.cfg.Name, Subject: idt.Subject, Email: c.Email, EmailVerified: verified,
		Name: c.Name, PreferredUsername: c.PreferredUsername,
	}, nil
}

// validTenant reports whether tid can be a tenant in an issuer URL: a
// Microsoft tenant is a GUID; anything with a URL's punctuation is refused.
func validTenant(tid string) bool {
	if tid == "" || len(tid) > 64 {
		return false
	}
	for _, c := range tid {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// exchangeError keeps what is safe to log of a failed exchange: the token
// endpoint's error body might echo what was sent.
func exchangeError(err error) error {
	if re, ok := errors.AsType[*oauth2.RetrieveError](err); ok {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		return fmt.Errorf("token endpoint: status %d, error=%.64q", status, re.ErrorCode)
	}
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return fmt.Errorf("token endpoint: %s: %w", ue.Op, ue.Err)
	}
	return errors.New("token exchange failed")
}

// truthy reads email_verified as a boolean or, as some providers send it, the
// string "true".
func truthy(raw json.RawMessage) bool {
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		return b
	}
	var s string
	return json.Unmarshal(raw, &s) == nil && s == "true"
}

// stateKey is what stores see of a state: its SHA-256, base64url.
func stateKey(state string) string {
	sum := sha256.Sum256([]byte(state))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// random returns 256 bits from crypto/rand, base64url.
func random() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
