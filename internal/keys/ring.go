package keys

import (
	"bytes"
	"cmp"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/authgql/server/internal/auth"
)

// Config is how a Ring makes and schedules keys.
type Config struct {
	// Algorithm is what new keys use (JWT_ALGORITHM). HS256: nothing is
	// created and nothing signs here; existing keys verify until they expire.
	Algorithm Algorithm
	// Observe makes Sync only read the keys, never create one (the
	// operators' `keys` command: looking must not change anything; Rotate
	// and Revoke still act).
	Observe bool
	// Rotation is how long a key signs (JWT_KEY_ROTATION).
	Rotation time.Duration
	// PublishAhead is how long a successor is in the JWKS before it signs
	// (JWT_KEY_PUBLISH_AHEAD); shorter than Rotation.
	PublishAhead time.Duration
	// TokenLifetime is how long a token stays valid after it is signed (the
	// access token TTL plus the clock skew allowed): how long a retired key's
	// tokens are accepted.
	TokenLifetime time.Duration
	// Master is the secret the private keys are sealed under (JWT_SECRET, at
	// least 32 bytes).
	Master []byte
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// MinMasterBytes is the shortest master secret accepted.
const MinMasterBytes = 32

// clockSkew is how far ahead another instance's clock may be: a key it made
// to sign "now" that starts within this much of our now is waited for rather
// than answered by a key of our own.
const clockSkew = time.Minute

// changeTries bounds the inserts one Sync, Rotate or Revoke makes: each
// failed one means another instance changed the keys meanwhile.
const changeTries = 5

// State is where a key is in its life, by the ring's clock.
type State string

const (
	// Next keys are published and accepted, and sign from SignFrom.
	Next State = "next"
	// Current is the key that signs now.
	Current State = "current"
	// Retired keys no longer sign; they are published and accepted until
	// every token they signed has expired.
	Retired State = "retired"
	// Expired keys are neither published nor accepted.
	Expired State = "expired"
	// Revoked keys are neither published nor accepted, from the moment they
	// are revoked.
	Revoked State = "revoked"
)

// Info describes a key for operators (keys list).
type Info struct {
	KID       string
	Alg       Algorithm
	Gen       int64
	State     State
	CreatedAt time.Time
	SignFrom  time.Time
	// RetiredAt is when its successor started (or starts) signing; zero
	// while it has none. In HS256 mode a key without a successor retires
	// when its rotation period ends.
	RetiredAt time.Time
	// ExpiresAt is RetiredAt + the token lifetime: when it leaves the JWKS
	// and its tokens are refused. Zero while it has no successor.
	ExpiresAt time.Time
	RevokedAt time.Time
}

// ErrNoSigningKey is Signing's answer when no asymmetric key signs: in HS256
// mode, before the first Sync, or when the signing key was revoked and no
// successor has been seen yet.
var ErrNoSigningKey = errors.New("keys: no signing key")

// entry is a key with its place in the schedule.
type entry struct {
	Key
	sealed []byte // as stored: a reload that finds the same bytes reuses the key
	jwk    []byte // the public JWK
	// retiredAt is when a later key took (or takes) over; zero: none has.
	retiredAt time.Time
	// expiresAt is retiredAt + TokenLifetime; zero: none.
	expiresAt time.Time
}

// Ring is the keys as one instance holds them. Signing, Verifying and JWKS
// are safe for concurrent use with each other and with Sync, Rotate and
// Revoke.
type Ring struct {
	store Store
	c     Config

	// op serializes Sync, Rotate and Revoke, so that an older snapshot of
	// the store never replaces a newer one.
	op sync.Mutex

	mu           sync.RWMutex
	keys         []*entry // by Gen
	byKID        map[string]*entry
	firstCreated time.Time
	// The JWKS as last built, valid until the set changes: at a reload, or
	// at jwksUntil (the next expiry; zero: none).
	jwksBody  []byte
	jwksETag  string
	jwksUntil time.Time
	jwksOK    bool
}

// NewRing returns an empty ring on store; Sync loads it.
func NewRing(store Store, c Config) (*Ring, error) {
	var errs []error
	if store == nil {
		errs = append(errs, errors.New("keys: a store is required"))
	}
	switch c.Algorithm {
	case ES256, EdDSA, RS256, HS256:
	default:
		errs = append(errs, fmt.Errorf("keys: unknown algorithm %q", c.Algorithm))
	}
	if len(c.Master) < MinMasterBytes {
		errs = append(errs, fmt.Errorf("keys: the master secret must be at least %d bytes", MinMasterBytes))
	}
	if c.Rotation <= 0 || c.PublishAhead < 0 || c.PublishAhead >= c.Rotation {
		errs = append(errs, errors.New("keys: the rotation period must be positive and longer than the publish-ahead time"))
	}
	if c.TokenLifetime <= 0 {
		errs = append(errs, errors.New("keys: the token lifetime must be positive"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.Master = bytes.Clone(c.Master)
	return &Ring{store: store, c: c, byKID: map[string]*entry{}}, nil
}

func (r *Ring) hs256() bool { return r.c.Algorithm == HS256 }

// Signing returns the key that signs now: the newest non-revoked key whose
// SignFrom has come. ErrNoSigningKey when there is none.
func (r *Ring) Signing() (Key, error) {
	if r.hs256() {
		return Key{}, ErrNoSigningKey
	}
	now := r.c.Now()
	r.mu.RLock()
	defer r.mu.RUnlock()
	if e := signer(r.keys, now); e != nil {
		return e.Key, nil
	}
	return Key{}, ErrNoSigningKey
}

// Verifying returns the key kid if its tokens are accepted now: known, not
// revoked and not expired.
func (r *Ring) Verifying(kid string) (Key, bool) {
	now := r.c.Now()
	r.mu.RLock()
	defer r.mu.RUnlock()
	e, ok := r.byKID[kid]
	if !ok || !e.accepted(now) {
		return Key{}, false
	}
	return e.Key, true
}

// FirstCreated is when the oldest asymmetric key was made (zero: there is
// none). Tokens without a kid (HS256) issued before it were issued before
// the switch from HS256.
func (r *Ring) FirstCreated() time.Time {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.firstCreated
}

// JWKS returns the published keys, {"keys":[...]} with the public parts
// only, and a strong ETag of that body. Published are the keys accepted
// now: next, current and retired ones. The body is shared: do not modify it.
func (r *Ring) JWKS() (body []byte, etag string) {
	now := r.c.Now()
	r.mu.RLock()
	if r.jwksOK && (r.jwksUntil.IsZero() || now.Before(r.jwksUntil)) {
		body, etag = r.jwksBody, r.jwksETag
		r.mu.RUnlock()
		return body, etag
	}
	r.mu.RUnlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.jwksOK || (!r.jwksUntil.IsZero() && !now.Before(r.jwksUntil)) {
		r.buildJWKS(now)
	}
	return r.jwksBody, r.jwksETag
}

// buildJWKS renders the key set; r.mu is held for writing.
func (r *Ring) buildJWKS(now time.Time) {
	var b bytes.Buffer
	b.WriteString(`{"keys":[`)
	var until time.Time
	first := true
	for _, e := range slices.Backward(r.keys) { // newest first
		if !e.accepted(now) {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.Write(e.jwk)
		if !e.expiresAt.IsZero() && (until.IsZero() || e.expiresAt.Before(until)) {
			until = e.expiresAt
		}
	}
	b.WriteString(`]}`)
	sum := sha256.Sum256(b.Bytes())
	r.jwksBody = b.Bytes()
	r.jwksETag = `"` + base64.RawURLEncoding.EncodeToString(sum[:]) + `"`
	r.jwksUntil = until
	r.jwksOK = true
}

// List describes every key, oldest first.
func (r *Ring) List() []Info {
	now := r.c.Now()
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Info, len(r.keys))
	for i, e := range r.keys {
		out[i] = Info{
			KID: e.KID, Alg: e.Alg, Gen: e.Gen, State: e.state(now, r.hs256()),
			CreatedAt: e.CreatedAt, SignFrom: e.SignFrom, RetiredAt: e.retiredAt, ExpiresAt: e.expiresAt, RevokedAt: e.RevokedAt,
		}
	}
	return out
}

// Sync reloads every key from the store. Then, unless the algorithm is
// HS256, it creates what is due: the first key; a key that signs at once
// when none signs (the signing key was revoked); a key of the configured
// algorithm, published ahead, when JWT_ALGORITHM changed; a successor of the
// signing key, published ahead, PublishAhead before the key's rotation
// period ends. Each new key takes the next Gen by an insert against a unique
// key, so of instances that sync at once one creates it and the others load
// it. A key that does not decrypt (a wrong master secret) is an error naming
// it, and the ring keeps what it had.
func (r *Ring) Sync(ctx context.Context) error {
	r.op.Lock()
	defer r.op.Unlock()
	if err := r.reload(ctx); err != nil {
		return err
	}
	if r.hs256() || r.c.Observe {
		return nil
	}
	for range changeTries {
		now := r.c.Now()
		r.mu.RLock()
		gen, alg, signFrom, due := r.due(now)
		r.mu.RUnlock()
		if !due {
			return nil
		}
		if _, err := r.create(ctx, gen, alg, now, signFrom); err != nil && !errors.Is(err, auth.ErrDuplicate) {
			return err
		}
		// Created, or another instance took gen first: either way, load it
		// and look again.
		if err := r.reload(ctx); err != nil {
			return err
		}
	}
	return errors.New("keys: sync: the keys kept changing under us")
}

// due says which key Sync must create now, if any; r.mu is held.
func (r *Ring) due(now time.Time) (gen int64, alg Algorithm, signFrom time.Time, ok bool) {
	gen = r.nextGen()
	cur := signer(r.keys, now)
	var last *entry
	for _, e := range slices.Backward(r.keys) {
		if e.RevokedAt.IsZero() {
			last = e
			break
		}
	}
	switch {
	case cur == nil:
		for _, e := range r.keys {
			if e.RevokedAt.IsZero() && e.SignFrom.After(now) && !e.SignFrom.After(now.Add(clockSkew)) {
				// Made to sign "now" by an instance whose clock is ahead.
				return 0, "", time.Time{}, false
			}
		}
		return gen, r.c.Algorithm, now, true
	case last.Alg != r.c.Algorithm && cur == last:
		// A change of JWT_ALGORITHM, made only from a key that signs now:
		// while a successor waits to sign, nobody adds another. During a
		// rolling change, instances on the old and the new value then take
		// turns at most once per PublishAhead (every key stays valid) until
		// the last old instance is restarted — never in a loop.
		return gen, r.c.Algorithm, now.Add(r.c.PublishAhead), true
	case cur == last && !now.Before(cur.SignFrom.Add(r.c.Rotation-r.c.PublishAhead)):
		signFrom = cur.SignFrom.Add(r.c.Rotation)
		if ahead := now.Add(r.c.PublishAhead); ahead.After(signFrom) {
			signFrom = ahead
		}
		return gen, r.c.Algorithm, signFrom, true
	}
	return 0, "", time.Time{}, false
}

// Rotate creates a successor of the configured algorithm now, which signs
// from PublishAhead from now, or at once when now is true (verifiers that
// cached the JWKS then meet an unknown kid and must refetch). It returns the
// new key.
func (r *Ring) Rotate(ctx context.Context, now bool) (Key, error) {
	if r.hs256() {
		return Key{}, errors.New("keys: rotate: JWT_ALGORITHM is HS256; there are no signing keys to rotate")
	}
	r.op.Lock()
	defer r.op.Unlock()
	for range changeTries {
		t := r.c.Now()
		signFrom := t
		if !now {
			signFrom = t.Add(r.c.PublishAhead)
		}
		r.mu.RLock()
		gen := r.nextGen()
		r.mu.RUnlock()
		kid, createErr := r.create(ctx, gen, r.c.Algorithm, t, signFrom)
		if createErr != nil && !errors.Is(createErr, auth.ErrDuplicate) {
			return Key{}, createErr
		}
		if err := r.reload(ctx); err != nil {
			return Key{}, err
		}
		if createErr == nil {
			r.mu.RLock()
			defer r.mu.RUnlock()
			if e, ok := r.byKID[kid]; ok {
				return e.Key, nil
			}
			return Key{}, fmt.Errorf("keys: rotate: key %s vanished", kid)
		}
	}
	return Key{}, errors.New("keys: rotate: the keys kept changing under us")
}

// Revoke revokes the key kid at once: it leaves the JWKS and its tokens are
// refused (here now, elsewhere at their next Sync). If it was the signing
// key, or no key signs, a successor that signs at once is created first, so
// that there is no moment without a signing key. auth.ErrNotFound when kid
// is unknown; no error when it already was revoked.
func (r *Ring) Revoke(ctx context.Context, kid string) error {
	r.op.Lock()
	defer r.op.Unlock()
	if err := r.reload(ctx); err != nil {
		return err
	}
	for try := 0; ; try++ {
		now := r.c.Now()
		r.mu.RLock()
		e, ok := r.byKID[kid]
		cur := signer(r.keys, now)
		gen := r.nextGen()
		r.mu.RUnlock()
		if !ok {
			return fmt.Errorf("keys: revoke %s: %w", kid, auth.ErrNotFound)
		}
		if r.hs256() || !e.RevokedAt.IsZero() || (cur != nil && cur != e) {
			break
		}
		if try == changeTries {
			return errors.New("keys: revoke: the keys kept changing under us")
		}
		if _, err := r.create(ctx, gen, r.c.Algorithm, now, now); err != nil && !errors.Is(err, auth.ErrDuplicate) {
			return err
		}
		if err := r.reload(ctx); err != nil {
			return err
		}
	}
	if err := r.store.Revoke(ctx, kid, r.c.Now().UTC().Truncate(time.Millisecond)); err != nil {
		return fmt.Errorf("keys: revoke %s: %w", kid, err)
	}
	return r.reload(ctx)
}

// nextGen is the Gen a new key takes; r.mu is held.
func (r *Ring) nextGen() int64 {
	if len(r.keys) == 0 {
		return 1
	}
	return r.keys[len(r.keys)-1].Gen + 1
}

// create generates a key of alg and inserts it as gen; auth.ErrDuplicate
// when another instance took gen first.
func (r *Ring) create(ctx context.Context, gen int64, alg Algorithm, now, signFrom time.Time) (kid string, err error) {
	priv, err := Generate(alg)
	if err != nil {
		return "", err
	}
	pub := priv.Public()
	if kid, err = Thumbprint(pub); err != nil {
		return "", err
	}
	jwk, err := PublicJWK(pub, kid, alg)
	if err != nil {
		return "", err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", fmt.Errorf("keys: marshal private key: %w", err)
	}
	sealed := seal(r.c.Master, kid, pkcs8)
	clear(pkcs8)
	// Millisecond precision is what the database keeps.
	err = r.store.Insert(ctx, Stored{
		Gen: gen, KID: kid, Alg: alg, PublicJWK: jwk, Private: sealed,
		CreatedAt: now.UTC().Truncate(time.Millisecond), SignFrom: signFrom.UTC().Truncate(time.Millisecond),
	})
	if err != nil {
		return "", fmt.Errorf("keys: insert key %d: %w", gen, err)
	}
	return kid, nil
}

// reload replaces the ring's keys with the store's. Keys already held are
// reused when their sealed bytes are unchanged; any other is decrypted and
// checked (its algorithm and thumbprint must match its record).
func (r *Ring) reload(ctx context.Context) error {
	stored, err := r.store.All(ctx)
	if err != nil {
		return fmt.Errorf("keys: load: %w", err)
	}
	r.mu.RLock()
	old := r.byKID
	r.mu.RUnlock()
	keys := make([]*entry, 0, len(stored))
	byKID := make(map[string]*entry, len(stored))
	var first time.Time
	for _, s := range stored {
		var e *entry
		if o, ok := old[s.KID]; ok && o.Gen == s.Gen && o.Alg == s.Alg && bytes.Equal(o.sealed, s.Private) {
			e = &entry{Key: o.Key, sealed: o.sealed, jwk: o.jwk}
			e.CreatedAt, e.SignFrom, e.RevokedAt = s.CreatedAt, s.SignFrom, s.RevokedAt
		} else if e, err = r.decode(s); err != nil {
			return err
		}
		if _, dup := byKID[e.KID]; dup {
			return fmt.Errorf("keys: key %s is stored twice", e.KID)
		}
		keys = append(keys, e)
		byKID[e.KID] = e
		if first.IsZero() || e.CreatedAt.Before(first) {
			first = e.CreatedAt
		}
	}
	slices.SortFunc(keys, func(a, b *entry) int { return cmp.Compare(a.Gen, b.Gen) })
	r.schedule(keys)
	r.mu.Lock()
	r.keys, r.byKID, r.firstCreated = keys, byKID, first
	r.jwksOK = false
	r.mu.Unlock()
	return nil
}

// decode opens a stored key and checks it against its record.
func (r *Ring) decode(s Stored) (*entry, error) {
	fail := func(err error) (*entry, error) {
		return nil, fmt.Errorf("keys: key %s (gen %d): %w", s.KID, s.Gen, err)
	}
	pkcs8, err := open(r.c.Master, s.KID, s.Private)
	if err != nil {
		return fail(err)
	}
	priv, err := x509.ParsePKCS8PrivateKey(pkcs8)
	clear(pkcs8)
	if err != nil {
		return fail(fmt.Errorf("parse private key: %w", err))
	}
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return fail(fmt.Errorf("%T cannot sign", priv))
	}
	pub := signer.Public()
	alg, err := algOf(pub)
	if err != nil {
		return fail(err)
	}
	if alg != s.Alg {
		return fail(fmt.Errorf("a %s key recorded as %s", alg, s.Alg))
	}
	kid, err := Thumbprint(pub)
	if err != nil {
		return fail(err)
	}
	if kid != s.KID {
		return fail(fmt.Errorf("its thumbprint is %s", kid))
	}
	jwk, err := PublicJWK(pub, kid, alg)
	if err != nil {
		return fail(err)
	}
	return &entry{
		Key: Key{
			KID: s.KID, Alg: s.Alg, Gen: s.Gen, Signer: signer, Public: pub,
			CreatedAt: s.CreatedAt, SignFrom: s.SignFrom, RevokedAt: s.RevokedAt,
		},
		sealed: s.Private,
		jwk:    jwk,
	}, nil
}

// schedule sets when each key retires and expires. A key retires when a
// later key starts signing: a later key that is not revoked, or one that was
// revoked after it had started (a revocation never brings an older key
// back). In HS256 mode nothing signs, and a key with no such successor is
// taken to retire when its rotation period ends.
func (r *Ring) schedule(keys []*entry) {
	var next time.Time // the earliest start of a later key; zero: none
	for _, e := range slices.Backward(keys) {
		e.retiredAt = next
		if next.IsZero() && r.hs256() && e.RevokedAt.IsZero() {
			e.retiredAt = e.SignFrom.Add(r.c.Rotation)
		}
		e.expiresAt = time.Time{}
		if !e.retiredAt.IsZero() {
			e.expiresAt = e.retiredAt.Add(r.c.TokenLifetime)
		}
		started := e.RevokedAt.IsZero() || !e.RevokedAt.Before(e.SignFrom)
		if started && (next.IsZero() || e.SignFrom.Before(next)) {
			next = e.SignFrom
		}
	}
}

// signer is the key of keys (by Gen) that signs at now, or nil.
func signer(keys []*entry, now time.Time) *entry {
	for _, e := range slices.Backward(keys) {
		if e.RevokedAt.IsZero() && !e.SignFrom.After(now) && (e.retiredAt.IsZero() || now.Before(e.retiredAt)) {
			return e
		}
	}
	return nil
}

// accepted says whether tokens of e are accepted (and e published) at now.
func (e *entry) accepted(now time.Time) bool {
	return e.RevokedAt.IsZero() && (e.expiresAt.IsZero() || now.Before(e.expiresAt))
}

func (e *entry) state(now time.Time, hs256 bool) State {
	switch {
	case !e.RevokedAt.IsZero():
		return Revoked
	case !e.expiresAt.IsZero() && !now.Before(e.expiresAt):
		return Expired
	case !e.retiredAt.IsZero() && !now.Before(e.retiredAt):
		return Retired
	case e.SignFrom.After(now):
		return Next
	case hs256:
		return Retired // nothing signs in HS256 mode
	}
	return Current
}
