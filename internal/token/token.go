// Package token issues and verifies the server's JWT access tokens.
package token

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authgql/server/internal/auth"
	"github.com/authgql/server/internal/keys"
)

const (
	// MinSecretBytes is the shortest HMAC key accepted: golang-jwt signs and
	// verifies with any key, even an empty one.
	MinSecretBytes = 32
	// MaxTokenBytes bounds the work spent on a presented token.
	MaxTokenBytes = 4096
	// typ marks access tokens (RFC 9068) so no other token can stand in for one.
	typ = "at+jwt"
)

var method = jwt.SigningMethodHS256

// methods are the signing methods of the algorithms the server may use.
var methods = map[keys.Algorithm]jwt.SigningMethod{
	keys.HS256: jwt.SigningMethodHS256,
	keys.ES256: jwt.SigningMethodES256,
	keys.EdDSA: jwt.SigningMethodEdDSA,
	keys.RS256: jwt.SigningMethodRS256,
}

// KeySource holds the asymmetric signing keys (keys.Ring).
type KeySource interface {
	// Signing is the key that signs now.
	Signing() (keys.Key, error)
	// Verifying is the key kid if its tokens are accepted now.
	Verifying(kid string) (keys.Key, bool)
	// FirstCreated is when the first asymmetric key was made (zero: none):
	// HS256 tokens issued before it are accepted until they expire, so that
	// a switch from HS256 signs nobody out.
	FirstCreated() time.Time
}

// Issuer signs and verifies access tokens: HS256 with one secret, or with
// the asymmetric keys of a KeySource, chosen by kid.
type Issuer struct {
	secret   []byte
	issuer   string
	audience string
	ttl      time.Duration
	skew     time.Duration
	now      func() time.Time
	parser   *jwt.Parser
	verified verified
	alg      keys.Algorithm // what Issue signs with
	keys     KeySource      // nil in HS256 mode with no asymmetric keys
}

// NewIssuer returns an Issuer. It refuses a secret shorter than MinSecretBytes.
// skew is the leeway allowed for exp, nbf and iat (clock skew between the
// instances that issue and verify).
func NewIssuer(secret []byte, issuer, audience string, ttl, skew time.Duration, now func() time.Time) (*Issuer, error) {
	if len(secret) < MinSecretBytes {
		return nil, fmt.Errorf("token: secret must be at least %d bytes", MinSecretBytes)
	}
	if issuer == "" || audience == "" || ttl <= 0 || skew < 0 {
		return nil, errors.New("token: issuer, audience, a positive ttl and a skew of zero or more are required")
	}
	return &Issuer{
		secret:   secret,
		issuer:   issuer,
		audience: audience,
		ttl:      ttl,
		skew:     skew,
		now:      now,
		alg:      keys.HS256,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{"HS256", "ES256", "EdDSA", "RS256"}),
			jwt.WithIssuer(issuer),
			jwt.WithAudience(audience),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(skew),
			jwt.WithTimeFunc(now),
			jwt.WithStrictDecoding(),
		),
	}, nil
}

// UseKeys makes the issuer sign with alg: HS256 with the secret, or the
// current key of ks. Tokens of ks's keys are verified in either case, by
// kid, so that switching the algorithm signs nobody out. Call it before the
// issuer is used.
func (i *Issuer) UseKeys(alg keys.Algorithm, ks KeySource) error {
	if _, ok := methods[alg]; !ok {
		return fmt.Errorf("token: unknown algorithm %q", alg)
	}
	if alg != keys.HS256 && ks == nil {
		return fmt.Errorf("token: %s needs signing keys", alg)
	}
	i.alg, i.keys = alg, ks
	return nil
}

// TTL is how long an issued token is valid.
func (i *Issuer) TTL() time.Duration { return i.ttl }

// Leeway is how long past its expiry a token is still accepted.
func (i *Issuer) Leeway() time.Duration { return i.skew }

// accessClaims are the claims of an access token: the registered ones and the
// session the token belongs to, so that revoking the session cuts the token.
type accessClaims struct {
	SessionID string `json:"sid"`
	// Roles let other services authorize without calling this server; they
	// are as of issuance (refresh to see a change).
	Roles []string `json:"roles,omitempty"`
	// EmailVerified is the standard OpenID Connect claim, as of issuance.
	EmailVerified bool `json:"email_verified"`
	// AAL is the assurance level (1 or 2) and AMR the methods (RFC 8176).
	AAL int      `json:"aal"`
	AMR []string `json:"amr"`
	// MFA: the account has a second factor (a level-1 session is confined).
	MFA bool `json:"mfa,omitempty"`
	jwt.RegisteredClaims
}

// Issue signs an access token for s.UserID within s.SessionID.
func (i *Issuer) Issue(s auth.Subject) (auth.AccessToken, error) {
	now := i.now().Truncate(time.Second)
	exp := now.Add(i.ttl)
	aal, amr := s.AAL, s.AMR
	if aal == 0 {
		aal, amr = 1, []string{auth.AMRPassword}
	}
	claims := accessClaims{SessionID: s.SessionID, Roles: s.Roles, EmailVerified: s.EmailVerified, AAL: aal, AMR: amr, MFA: s.MFA, RegisteredClaims: jwt.RegisteredClaims{
		Subject:   s.UserID,
		Issuer:    i.issuer,
		Audience:  jwt.ClaimStrings{i.audience},
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(exp),
		ID:        newID(),
	}}
	var signed string
	var err error
	if i.alg == keys.HS256 {
		t := jwt.NewWithClaims(method, claims)
		t.Header["typ"] = typ
		signed, err = t.SignedString(i.secret)
	} else {
		var k keys.Key
		if k, err = i.keys.Signing(); err != nil {
			return auth.AccessToken{}, fmt.Errorf("token: no signing key: %w", err)
		}
		t := jwt.NewWithClaims(methods[k.Alg], claims)
		t.Header["typ"], t.Header["kid"] = typ, k.KID
		signed, err = t.SignedString(k.Signer)
	}
	if err != nil {
		return auth.AccessToken{}, fmt.Errorf("token: sign: %w", err)
	}
	return auth.AccessToken{Value: signed, ExpiresAt: exp, TTL: i.ttl}, nil
}

// Verify checks a presented access token and returns its claims, or
// auth.ErrTokenExpired / auth.ErrTokenInvalid.
func (i *Issuer) Verify(raw string) (auth.Claims, error) {
	if raw == "" || len(raw) > MaxTokenBytes || !compact(raw) {
		return auth.Claims{}, auth.ErrTokenInvalid
	}
	now := i.now()
	if c, kid, ok := i.verified.get(raw, now); ok && i.stillTrusted(kid) {
		return c, nil
	}
	var claims accessClaims
	t, err := i.parser.ParseWithClaims(raw, &claims, i.key)
	// ParseWithClaims fills claims even when it fails (CVE-2024-51744). Claims
	// are only read when the signature was good: err is nil, or expiry is the
	// only complaint (signatures are checked before claims).
	if err != nil && !(errors.Is(err, jwt.ErrTokenExpired) && onlyExpired(err)) {
		return auth.Claims{}, auth.ErrTokenInvalid
	}
	if t == nil || t.Header["typ"] != typ || claims.Subject == "" || claims.ID == "" ||
		claims.SessionID == "" || claims.ExpiresAt == nil {
		return auth.Claims{}, auth.ErrTokenInvalid
	}
	if err != nil {
		return auth.Claims{}, auth.ErrTokenExpired
	}
	if claims.AAL == 0 { // issued before levels existed: a password session
		claims.AAL, claims.AMR = 1, []string{auth.AMRPassword}
	}
	if claims.AAL != 1 && claims.AAL != 2 {
		return auth.Claims{}, auth.ErrTokenInvalid
	}
	c := auth.Claims{UserID: claims.Subject, SessionID: claims.SessionID, Roles: claims.Roles, EmailVerified: claims.EmailVerified,
		AAL: claims.AAL, AMR: claims.AMR, MFA: claims.MFA, TokenID: claims.ID, ExpiresAt: claims.ExpiresAt.Time}
	from := time.Time{}
	if claims.IssuedAt != nil {
		c.IssuedAt = claims.IssuedAt.Time
		from = claims.IssuedAt.Time
	}
	if claims.NotBefore != nil && claims.NotBefore.After(from) {
		from = claims.NotBefore.Time
	}
	kid, _ := t.Header["kid"].(string)
	i.verified.put(raw, verifiedEntry{claims: c, kid: kid, validFrom: from.Add(-i.skew), validBefore: claims.ExpiresAt.Add(i.skew)}, now)
	return c, nil
}

// stillTrusted reports whether the key kid (empty: the HMAC secret) of a
// remembered token is still accepted: a revoked key's tokens are refused
// from the moment this instance learns of the revocation.
func (i *Issuer) stillTrusted(kid string) bool {
	if kid == "" {
		return true
	}
	_, ok := i.keys.Verifying(kid)
	return ok
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

// key chooses the key that verifies t. A token with a kid is verified with
// that key of the KeySource, and only with the algorithm of that key (an
// HS256 token "signed" with a published public key names a key whose
// algorithm is not HS256). A token without a kid is HS256 with the secret:
// in HS256 mode, or, after a switch to asymmetric keys, when issued before
// the first of them. Headers that carry or point at key material (jwk, jku,
// x5u, x5c) are refused: no token selects its own key; so is crit, whose
// extensions this server does not understand (RFC 7515, 4.1.11).
func (i *Issuer) key(t *jwt.Token) (any, error) {
	for _, h := range []string{"jwk", "jku", "x5u", "x5c", "crit"} {
		if _, ok := t.Header[h]; ok {
			return nil, jwt.ErrTokenUnverifiable
		}
	}
	rawKID, hasKID := t.Header["kid"]
	if !hasKID {
		if t.Method != method {
			return nil, jwt.ErrTokenSignatureInvalid
		}
		if i.alg == keys.HS256 {
			return i.secret, nil
		}
		first := time.Time{}
		if i.keys != nil {
			first = i.keys.FirstCreated()
		}
		// Only a token that was issued before the first key and dies within
		// one token lifetime of it: after that, no HS256 token is accepted,
		// whatever a holder of the old shared secret writes into it.
		c, ok := t.Claims.(*accessClaims)
		if first.IsZero() || !ok || c.IssuedAt == nil || !c.IssuedAt.Before(first) ||
			c.ExpiresAt == nil || c.ExpiresAt.After(first.Add(i.ttl)) {
			return nil, jwt.ErrTokenSignatureInvalid
		}
		return i.secret, nil // checked by the signature before the claims are trusted
	}
	kid, ok := rawKID.(string)
	if !ok || kid == "" || i.keys == nil {
		return nil, jwt.ErrTokenUnverifiable
	}
	k, ok := i.keys.Verifying(kid)
	if !ok || methods[k.Alg] != t.Method {
		return nil, jwt.ErrTokenUnverifiable
	}
	return k.Public, nil
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
