// Package verify checks the access tokens of an authgql server in your other
// Go services: an HTTP middleware that puts the verified claims in the request
// context, and Verify for everything else (gRPC, queues).
//
//	v, err := verify.New(ctx, "https://auth.example.com", "authgql")
//	http.Handle("/", v.Handler(mux))
//	claims, ok := verify.ClaimsFrom(r.Context())
//
// New reads the server's discovery document and its key set (JWKS); the keys
// are refreshed in the background and, rate limited, when a token names a key
// not yet known. A token is accepted only when its header says typ at+jwt and
// names by kid a published key whose own alg (ES256, EdDSA or RS256) is the
// token's alg, its signature holds, iss is the issuer, aud contains your
// audience and exp has not passed (with a leeway, 30 s by default).
//
// Revocation: this package cannot see a logout, a password change or a
// disabled account, which only the server knows. A token it accepts stays
// valid until its exp; access tokens are short-lived (15 minutes by default,
// the server's ACCESS_TOKEN_TTL). Where that matters, ask the server (the
// GraphQL query me). A signing key the server revokes stops verifying here at
// the next background refresh of the key set (WithRefreshInterval).
package verify

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

const (
	// MaxTokenBytes bounds the work spent on a presented token (the server's
	// own limit).
	MaxTokenBytes = 4096
	// DefaultLeeway is how long past exp (and before nbf and iat) a token is
	// accepted, for clock skew between the server and this service.
	DefaultLeeway = 30 * time.Second
	// DefaultRefreshInterval is how often the key set is fetched in the
	// background: the server's Cache-Control max-age for it.
	DefaultRefreshInterval = 5 * time.Minute
	// DefaultUnknownKIDInterval is the least time between two fetches of the
	// key set caused by tokens naming an unknown kid. The server publishes a
	// new key an hour before it signs with it, so a fetch on an unknown kid is
	// rare for real tokens; the limit is what a stream of made-up kids costs.
	DefaultUnknownKIDInterval = time.Minute
	// DefaultHTTPTimeout bounds each request for discovery or the key set.
	DefaultHTTPTimeout = 10 * time.Second
)

// algorithms are the only algorithms accepted, whatever a key or a token says:
// never none, never HMAC (whose "secret" would be a published public key).
var algorithms = []string{"ES256", "EdDSA", "RS256"}

// typ marks access tokens (RFC 9068), so that no other token of the issuer
// (an ID token, say) stands in for one.
const typ = "at+jwt"

// Verifier checks access tokens of one issuer for one audience. It is safe
// for concurrent use.
type Verifier struct {
	keys   jwkset.Storage
	parser *jwt.Parser
	now    func() time.Time
	// unknownKID limits fetches of the key set for unknown kids; refreshing
	// lets one such fetch run at a time, so that requests waiting for it find
	// the new key instead of being refused by the limit.
	unknownKID *rate.Limiter
	refreshing chan struct{}
}

// Option changes a default of New.
type Option func(*options)

type options struct {
	leeway     time.Duration
	client     *http.Client
	refresh    time.Duration
	unknownKID time.Duration
	logger     *slog.Logger
}

// WithLeeway sets how long past exp (and before nbf and iat) a token is still
// accepted (DefaultLeeway).
func WithLeeway(d time.Duration) Option { return func(o *options) { o.leeway = d } }

// WithHTTPClient sets the client for discovery and the key set (by default
// one with DefaultHTTPTimeout). Response bodies are limited to 1 MiB either way.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.client = c } }

// WithRefreshInterval sets how often the key set is fetched in the background
// (DefaultRefreshInterval): the longest a key the server revoked keeps
// verifying here.
func WithRefreshInterval(d time.Duration) Option { return func(o *options) { o.refresh = d } }

// WithUnknownKIDInterval sets the least time between two fetches of the key
// set caused by unknown kids (DefaultUnknownKIDInterval). In between, a token
// with an unknown kid is refused at once.
func WithUnknownKIDInterval(d time.Duration) Option { return func(o *options) { o.unknownKID = d } }

// WithLogger sets where failed background refreshes of the key set are logged
// (slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// New reads the discovery document of issuerURL (which must name exactly
// issuerURL as its issuer) and the key set it points at, and returns a
// Verifier of tokens for audience. The key set is refreshed in the background
// until ctx is done: pass the context of the service's lifetime, not one with
// a short timeout.
func New(ctx context.Context, issuerURL, audience string, opts ...Option) (*Verifier, error) {
	o := options{leeway: DefaultLeeway, refresh: DefaultRefreshInterval, unknownKID: DefaultUnknownKIDInterval}
	for _, opt := range opts {
		opt(&o)
	}
	if err := checkIssuerURL(issuerURL); err != nil {
		return nil, err
	}
	if audience == "" {
		return nil, errors.New("verify: the audience must not be empty")
	}
	if o.leeway < 0 || o.refresh <= 0 || o.unknownKID <= 0 {
		return nil, errors.New("verify: the leeway must not be negative, the intervals must be positive")
	}
	client := &http.Client{Timeout: DefaultHTTPTimeout}
	if o.client != nil {
		c := *o.client
		client = &c
	}
	if client.Transport == nil {
		client.Transport = http.DefaultTransport
	}
	client.Transport = limitBodies{next: client.Transport}
	logger := o.logger
	if logger == nil {
		logger = slog.Default()
	}

	d, err := discover(ctx, client, issuerURL)
	if err != nil {
		return nil, err
	}
	noStartWithoutKeys := false
	kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{d.JWKSURI}, keyfunc.Override{
		Client:                    client,
		HTTPTimeout:               DefaultHTTPTimeout,
		NoErrorReturnFirstHTTPReq: &noStartWithoutKeys,
		RefreshInterval:           o.refresh,
		RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
			return func(ctx context.Context, err error) {
				logger.WarnContext(ctx, "verify: fetching the key set failed; the keys fetched before stay in use", "url", u, "error", err)
			}
		},
		// The rate limit is applied by Verifier.key, which refuses at once
		// where jwkset would make the request wait for the limiter (up to
		// RateLimitWaitMax). RateLimitWaitMax still bounds the fetch itself.
		RefreshUnknownKID: rate.NewLimiter(rate.Inf, 1),
		RateLimitWaitMax:  DefaultHTTPTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("verify: key set %s: %w", d.JWKSURI, err)
	}
	v := &Verifier{
		keys:       kf.Storage(),
		now:        time.Now,
		unknownKID: rate.NewLimiter(rate.Every(o.unknownKID), 1),
		refreshing: make(chan struct{}, 1),
	}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods(algorithms),
		jwt.WithIssuer(issuerURL),
		jwt.WithAudience(audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(o.leeway),
		jwt.WithTimeFunc(func() time.Time { return v.now() }),
		jwt.WithStrictDecoding(),
	)
	return v, nil
}

// accessClaims are the claims of the server's access tokens.
type accessClaims struct {
	SessionID     string   `json:"sid"`
	Roles         []string `json:"roles,omitempty"`
	EmailVerified bool     `json:"email_verified"`
	AAL           int      `json:"aal"`
	AMR           []string `json:"amr"`
	MFA           bool     `json:"mfa"`
	jwt.RegisteredClaims
}

// Verify checks raw, a compact JWS access token, and returns its claims. The
// error wraps ErrTokenMissing (raw is empty), ErrTokenExpired (a genuine token
// past its exp and the leeway) or ErrTokenInvalid (anything else); ctx bounds
// a fetch of the key set for an unknown kid.
func (v *Verifier) Verify(ctx context.Context, raw string) (Claims, error) {
	if raw == "" {
		return Claims{}, ErrTokenMissing
	}
	if len(raw) > MaxTokenBytes || !compact(raw) {
		return Claims{}, fmt.Errorf("%w: %w", ErrTokenInvalid, errMalformed)
	}
	var claims accessClaims
	_, err := v.parser.ParseWithClaims(raw, &claims, func(t *jwt.Token) (any, error) { return v.key(ctx, t) })
	// ParseWithClaims fills claims even when it fails (CVE-2024-51744): they
	// are read only when the signature held, that is when err is nil or
	// expiry is its only complaint (claims are checked after the signature).
	expired := err != nil && errors.Is(err, jwt.ErrTokenExpired) && onlyExpired(err)
	if err != nil && !expired {
		return Claims{}, fmt.Errorf("%w: %w", ErrTokenInvalid, err)
	}
	if claims.Subject == "" || claims.SessionID == "" || claims.ID == "" || claims.ExpiresAt == nil {
		return Claims{}, fmt.Errorf("%w: %w", ErrTokenInvalid, errMissingClaims)
	}
	if expired {
		return Claims{}, fmt.Errorf("%w: %w", ErrTokenExpired, err)
	}
	if claims.AAL == 0 { // issued before assurance levels: a password session
		claims.AAL, claims.AMR = 1, []string{"pwd"}
	}
	c := Claims{
		UserID:        claims.Subject,
		SessionID:     claims.SessionID,
		Roles:         claims.Roles,
		EmailVerified: claims.EmailVerified,
		AAL:           claims.AAL,
		AMR:           claims.AMR,
		MFA:           claims.MFA,
		TokenID:       claims.ID,
		ExpiresAt:     claims.ExpiresAt.Time,
	}
	if claims.IssuedAt != nil {
		c.IssuedAt = claims.IssuedAt.Time
	}
	return c, nil
}

// key chooses the public key that verifies t: the published key its kid
// names, only if that key's own alg is t's alg (so an HS256 or RS256 token
// cannot borrow an ES256 key), only for signatures, and only of the type and
// size its alg needs. Headers that carry or point at key material (jwk, jku,
// x5u, x5c) are refused: no token chooses its own key. So is crit, as no
// extension is understood here.
func (v *Verifier) key(ctx context.Context, t *jwt.Token) (any, error) {
	for _, h := range []string{"jwk", "jku", "x5u", "x5c"} {
		if _, ok := t.Header[h]; ok {
			return nil, fmt.Errorf("%w: %s", errKeyHeader, h)
		}
	}
	if _, ok := t.Header["crit"]; ok {
		return nil, errCritHeader
	}
	// RFC 9068: "at+jwt" or "application/at+jwt", media types compared
	// without regard to case.
	if h, _ := t.Header["typ"].(string); !strings.EqualFold(h, typ) && !strings.EqualFold(h, "application/"+typ) {
		return nil, errType
	}
	kid, _ := t.Header["kid"].(string)
	if kid == "" {
		return nil, errNoKID
	}
	jwk, err := v.jwk(ctx, kid)
	if err != nil {
		return nil, err
	}
	m := jwk.Marshal()
	alg := t.Method.Alg()
	// keyfunc's own Keyfunc accepts any alg for a key that names none; here a
	// key without alg verifies nothing.
	if string(m.ALG) != alg {
		return nil, fmt.Errorf("%w: key %q is %q, token says %q", errAlgMismatch, kid, m.ALG, alg)
	}
	if m.USE != "" && m.USE != jwkset.UseSig {
		return nil, errKeyUse
	}
	key := jwk.Key()
	if private, ok := key.(interface{ Public() crypto.PublicKey }); ok {
		key = private.Public() // a key set should hold no private part, but use only the public one
	}
	if !fits(alg, key) {
		return nil, errKeyType
	}
	return key, nil
}

// fits reports whether key is of the type (and size) alg needs.
func fits(alg string, key any) bool {
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		return alg == "ES256" && k.Curve == elliptic.P256()
	case ed25519.PublicKey:
		return alg == "EdDSA" && len(k) == ed25519.PublicKeySize
	case *rsa.PublicKey:
		return alg == "RS256" && k.N.BitLen() >= 2048
	}
	return false
}

// jwk returns the published key kid. An unknown kid fetches the key set again
// at most once per unknown-kid interval; past the limit it is refused at once.
func (v *Verifier) jwk(ctx context.Context, kid string) (jwkset.JWK, error) {
	if k, ok := v.cached(ctx, kid); ok {
		return k, nil
	}
	select {
	case v.refreshing <- struct{}{}:
	case <-ctx.Done():
		return jwkset.JWK{}, fmt.Errorf("%w %q: %w", errUnknownKID, kid, ctx.Err())
	}
	defer func() { <-v.refreshing }()
	if k, ok := v.cached(ctx, kid); ok { // fetched while this request waited
		return k, nil
	}
	if !v.unknownKID.AllowN(v.now(), 1) {
		return jwkset.JWK{}, fmt.Errorf("%w %q (the key set was fetched less than the unknown-kid interval ago)", errUnknownKID, kid)
	}
	// The storage fetches the key set again when kid is not in it.
	k, err := v.keys.KeyRead(ctx, kid)
	if err != nil {
		return jwkset.JWK{}, fmt.Errorf("%w %q: %w", errUnknownKID, kid, err)
	}
	return k, nil
}

// cached returns the key kid if the key set last fetched holds it, without
// fetching (jwkset's KeyRead fetches on a miss).
func (v *Verifier) cached(ctx context.Context, kid string) (jwkset.JWK, bool) {
	all, err := v.keys.KeyReadAll(ctx)
	if err != nil {
		return jwkset.JWK{}, false
	}
	for _, k := range all {
		if k.Marshal().KID == kid {
			return k, true
		}
	}
	return jwkset.JWK{}, false
}

// compact reports whether s uses only the JWS compact alphabet: base64url
// and dots. Go's base64 decoders skip line breaks, which would let several
// strings stand for one token.
func compact(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// onlyExpired reports whether expiry is the only thing wrong with a token: a
// token that is also foreign (wrong iss or aud, say) is invalid, not expired.
// golang-jwt reports claim problems as a tree of wrapped sentinel errors.
func onlyExpired(err error) bool {
	switch e := err.(type) {
	case interface{ Unwrap() []error }:
		for _, inner := range e.Unwrap() {
			if !onlyExpired(inner) {
				return false
			}
		}
		return true
	case interface{ Unwrap() error }:
		if inner := e.Unwrap(); inner != nil {
			return onlyExpired(inner)
		}
	}
	return err == jwt.ErrTokenExpired || err == jwt.ErrTokenInvalidClaims
}
