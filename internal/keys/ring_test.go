package keys_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgql/server/internal/api"
	"github.com/authgql/server/internal/auth"
	"github.com/authgql/server/internal/keys"
	"github.com/authgql/server/internal/token"
)

// The ring is what the token issuer and the JWKS endpoint consume.
var (
	_ token.KeySource = (*keys.Ring)(nil)
	_ api.KeySet      = (*keys.Ring)(nil)
)

const (
	rotation     = 720 * time.Hour
	publishAhead = time.Hour
	lifetime     = 16 * time.Minute // a 15-minute token and a minute of skew
)

var (
	t0     = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	master = bytes.Repeat([]byte("master-secret-"), 3)
)

// clock is a fake clock shared by the rings of a test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: t0} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// memStore is an in-memory keys.Store.
type memStore struct {
	mu   sync.Mutex
	keys []keys.Stored
}

func (s *memStore) All(context.Context) ([]keys.Stored, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.keys)
	slices.SortFunc(out, func(a, b keys.Stored) int { return int(a.Gen - b.Gen) })
	return out, nil
}

func (s *memStore) Insert(_ context.Context, k keys.Stored) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.keys {
		if o.Gen == k.Gen || o.KID == k.KID {
			return auth.ErrDuplicate
		}
	}
	s.keys = append(s.keys, k)
	return nil
}

func (s *memStore) Revoke(_ context.Context, kid string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.keys {
		if s.keys[i].KID == kid {
			if s.keys[i].RevokedAt.IsZero() {
				s.keys[i].RevokedAt = at
			}
			return nil
		}
	}
	return auth.ErrNotFound
}

func (s *memStore) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.keys)
}

func config(alg keys.Algorithm, c *clock) keys.Config {
	return keys.Config{
		Algorithm: alg, Rotation: rotation, PublishAhead: publishAhead, TokenLifetime: lifetime,
		Master: master, Now: c.Now,
	}
}

func newRing(t *testing.T, store keys.Store, c keys.Config) *keys.Ring {
	t.Helper()
	r, err := keys.NewRing(store, c)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustSync(t *testing.T, r *keys.Ring) {
	t.Helper()
	if err := r.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func signing(t *testing.T, r *keys.Ring) keys.Key {
	t.Helper()
	k, err := r.Signing()
	if err != nil {
		t.Fatalf("Signing: %v", err)
	}
	return k
}

// jwksKIDs returns the kids of the published keys, and checks that no
// private member is published.
func jwksKIDs(t *testing.T, r *keys.Ring) []string {
	t.Helper()
	body, etag := r.JWKS()
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatalf("JWKS %s: %v", body, err)
	}
	if set.Keys == nil {
		t.Fatalf("JWKS %s has no keys array", body)
	}
	if len(etag) < 3 || etag[0] != '"' || etag[len(etag)-1] != '"' || strings.HasPrefix(etag, "W/") {
		t.Fatalf("ETag %s is not a strong, quoted tag", etag)
	}
	kids := []string{}
	for _, k := range set.Keys {
		for _, p := range privateMembers {
			if _, ok := k[p]; ok {
				t.Fatalf("JWKS publishes private member %q: %s", p, body)
			}
		}
		kids = append(kids, k["kid"].(string))
	}
	slices.Sort(kids)
	return kids
}

func sorted(kids ...string) []string {
	out := slices.Clone(kids)
	slices.Sort(out)
	return out
}

func state(t *testing.T, r *keys.Ring, kid string) keys.State {
	t.Helper()
	for _, i := range r.List() {
		if i.KID == kid {
			return i.State
		}
	}
	t.Fatalf("kid %s not listed", kid)
	return ""
}

func verifies(r *keys.Ring, kid string) bool {
	_, ok := r.Verifying(kid)
	return ok
}

func TestNewRingRefusesABadConfig(t *testing.T) {
	c := newClock()
	good := config(keys.ES256, c)
	for name, mut := range map[string]func(*keys.Config){
		"short master":              func(k *keys.Config) { k.Master = master[:31] },
		"unknown algorithm":         func(k *keys.Config) { k.Algorithm = "none" },
		"zero rotation":             func(k *keys.Config) { k.Rotation = 0 },
		"publish ahead >= rotation": func(k *keys.Config) { k.PublishAhead = k.Rotation },
		"negative publish ahead":    func(k *keys.Config) { k.PublishAhead = -time.Second },
		"zero token lifetime":       func(k *keys.Config) { k.TokenLifetime = 0 },
	} {
		k := good
		mut(&k)
		if _, err := keys.NewRing(&memStore{}, k); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := keys.NewRing(nil, good); err == nil {
		t.Error("nil store: accepted")
	}
}

// The life of a key by a fake clock: first key; no successor before
// Rotation-PublishAhead; the successor is published (next) PublishAhead
// before it signs; Signing switches at its SignFrom; the old key verifies
// until then plus the token lifetime, then leaves the JWKS and Verifying.
func TestRotationTimeline(t *testing.T) {
	c := newClock()
	store := &memStore{}
	r := newRing(t, store, config(keys.ES256, c))

	if _, err := r.Signing(); !errors.Is(err, keys.ErrNoSigningKey) {
		t.Fatalf("Signing before Sync = %v, want ErrNoSigningKey", err)
	}
	mustSync(t, r)
	k1 := signing(t, r)
	if k1.Gen != 1 || k1.Alg != keys.ES256 || !k1.SignFrom.Equal(t0) || !k1.CreatedAt.Equal(t0) {
		t.Fatalf("first key = gen %d %s from %v", k1.Gen, k1.Alg, k1.SignFrom)
	}
	if !r.FirstCreated().Equal(t0) {
		t.Fatalf("FirstCreated = %v, want %v", r.FirstCreated(), t0)
	}
	if got := jwksKIDs(t, r); !slices.Equal(got, []string{k1.KID}) {
		t.Fatalf("JWKS = %v", got)
	}
	if state(t, r, k1.KID) != keys.Current {
		t.Fatalf("state = %s", state(t, r, k1.KID))
	}

	due := t0.Add(rotation - publishAhead)
	c.Set(due.Add(-time.Millisecond))
	mustSync(t, r)
	if store.len() != 1 {
		t.Fatalf("%d keys before the successor is due", store.len())
	}

	c.Set(due)
	mustSync(t, r)
	mustSync(t, r) // and only one
	if store.len() != 2 {
		t.Fatalf("%d keys when the successor is due, want 2", store.len())
	}
	list := r.List()
	k2 := list[1]
	if k2.Gen != 2 || k2.State != keys.Next || !k2.SignFrom.Equal(t0.Add(rotation)) {
		t.Fatalf("successor = %+v", k2)
	}
	if i := list[0]; i.State != keys.Current || !i.RetiredAt.Equal(k2.SignFrom) || !i.ExpiresAt.Equal(k2.SignFrom.Add(lifetime)) {
		t.Fatalf("the current key = %+v", i)
	}
	if got := jwksKIDs(t, r); !slices.Equal(got, sorted(k1.KID, k2.KID)) {
		t.Fatalf("JWKS = %v, want both", got)
	}
	if !verifies(r, k2.KID) {
		t.Fatal("the next key is not accepted")
	}
	if signing(t, r).KID != k1.KID {
		t.Fatal("the next key signs early")
	}

	c.Set(k2.SignFrom.Add(-time.Millisecond))
	if signing(t, r).KID != k1.KID {
		t.Fatal("the next key signs early")
	}
	c.Set(k2.SignFrom)
	if signing(t, r).KID != k2.KID {
		t.Fatal("the successor does not sign at its SignFrom")
	}
	if state(t, r, k1.KID) != keys.Retired || state(t, r, k2.KID) != keys.Current {
		t.Fatalf("states = %s, %s", state(t, r, k1.KID), state(t, r, k2.KID))
	}
	mustSync(t, r)
	if store.len() != 2 {
		t.Fatalf("%d keys right after the switch", store.len())
	}

	expiry := k2.SignFrom.Add(lifetime)
	c.Set(expiry.Add(-time.Millisecond))
	if !verifies(r, k1.KID) || !slices.Equal(jwksKIDs(t, r), sorted(k1.KID, k2.KID)) {
		t.Fatal("the retired key left before its tokens expired")
	}
	c.Set(expiry)
	if verifies(r, k1.KID) {
		t.Fatal("the expired key still verifies")
	}
	if got := jwksKIDs(t, r); !slices.Equal(got, []string{k2.KID}) {
		t.Fatalf("JWKS after expiry = %v", got)
	}
	if state(t, r, k1.KID) != keys.Expired {
		t.Fatalf("state = %s, want expired", state(t, r, k1.KID))
	}
	if !r.FirstCreated().Equal(t0) {
		t.Fatal("FirstCreated moved")
	}
}

// When no instance ran at the moment a successor was due, the successor is
// still published ahead: the old key signs PublishAhead longer.
func TestLateRotationIsStillPublishedAhead(t *testing.T) {
	c := newClock()
	r := newRing(t, &memStore{}, config(keys.EdDSA, c))
	mustSync(t, r)
	k1 := signing(t, r)
	late := t0.Add(rotation + 5*time.Hour)
	c.Set(late)
	mustSync(t, r)
	l := r.List()
	if len(l) != 2 || !l[1].SignFrom.Equal(late.Add(publishAhead)) || l[1].State != keys.Next {
		t.Fatalf("keys = %+v", l)
	}
	if signing(t, r).KID != k1.KID {
		t.Fatal("the late successor signs at once")
	}
}

// ES256 → EdDSA: an EdDSA successor that signs only after PublishAhead; the
// ES256 key keeps verifying until its tokens have expired.
func TestAlgorithmChange(t *testing.T) {
	c := newClock()
	store := &memStore{}
	es := newRing(t, store, config(keys.ES256, c))
	mustSync(t, es)
	k1 := signing(t, es)

	t1 := t0.Add(48 * time.Hour)
	c.Set(t1)
	ed := newRing(t, store, config(keys.EdDSA, c))
	mustSync(t, ed)
	l := ed.List()
	if len(l) != 2 || l[1].Alg != keys.EdDSA || l[1].State != keys.Next || !l[1].SignFrom.Equal(t1.Add(publishAhead)) {
		t.Fatalf("after the switch: %+v", l)
	}
	if k := signing(t, ed); k.KID != k1.KID || k.Alg != keys.ES256 {
		t.Fatalf("signing during publish-ahead = %s %s, want the ES256 key", k.Alg, k.KID)
	}
	mustSync(t, ed)
	if store.len() != 2 {
		t.Fatalf("%d keys after a second sync", store.len())
	}
	c.Set(t1.Add(publishAhead))
	k2 := signing(t, ed)
	if k2.Alg != keys.EdDSA || k2.Gen != 2 {
		t.Fatalf("signing after publish-ahead = %s gen %d", k2.Alg, k2.Gen)
	}
	if k, ok := ed.Verifying(k1.KID); !ok || k.Alg != keys.ES256 {
		t.Fatal("the ES256 key no longer verifies")
	}
	if got := jwksKIDs(t, ed); !slices.Equal(got, sorted(k1.KID, k2.KID)) {
		t.Fatalf("JWKS = %v", got)
	}
	c.Set(t1.Add(publishAhead + lifetime))
	if verifies(ed, k1.KID) {
		t.Fatal("the ES256 key verifies after its tokens expired")
	}
	// The next rotation is of the new algorithm's key, by the usual rule.
	c.Set(k2.SignFrom.Add(rotation - publishAhead))
	mustSync(t, ed)
	if l := ed.List(); len(l) != 3 || l[2].Alg != keys.EdDSA || !l[2].SignFrom.Equal(k2.SignFrom.Add(rotation)) {
		t.Fatalf("next rotation: %+v", l)
	}
}

func TestRotate(t *testing.T) {
	c := newClock()
	store := &memStore{}
	r := newRing(t, store, config(keys.ES256, c))
	mustSync(t, r)
	k1 := signing(t, r)

	t1 := t0.Add(time.Hour)
	c.Set(t1)
	k2, err := r.Rotate(t.Context(), false)
	if err != nil {
		t.Fatal(err)
	}
	if k2.Gen != 2 || !k2.SignFrom.Equal(t1.Add(publishAhead)) || state(t, r, k2.KID) != keys.Next {
		t.Fatalf("Rotate(false) = gen %d from %v (%s)", k2.Gen, k2.SignFrom, state(t, r, k2.KID))
	}
	if signing(t, r).KID != k1.KID || !slices.Equal(jwksKIDs(t, r), sorted(k1.KID, k2.KID)) {
		t.Fatal("Rotate(false): the successor must be published, not signing")
	}

	k3, err := r.Rotate(t.Context(), true)
	if err != nil {
		t.Fatal(err)
	}
	if k3.Gen != 3 || !k3.SignFrom.Equal(t1) || signing(t, r).KID != k3.KID {
		t.Fatalf("Rotate(true) = gen %d from %v; signing %s", k3.Gen, k3.SignFrom, signing(t, r).KID)
	}
	// k1 retired now, k2 (overtaken before it signed) never signs; both are
	// accepted until t1 + lifetime.
	c.Set(t1.Add(2 * publishAhead))
	if signing(t, r).KID != k3.KID {
		t.Fatal("an overtaken successor took over")
	}
	if state(t, r, k1.KID) != keys.Expired || state(t, r, k2.KID) != keys.Expired || state(t, r, k3.KID) != keys.Current {
		t.Fatalf("states: %+v", r.List())
	}
	// Rotation continues from the current key.
	c.Set(t1.Add(rotation - publishAhead))
	mustSync(t, r)
	if l := r.List(); len(l) != 4 || !l[3].SignFrom.Equal(t1.Add(rotation)) {
		t.Fatalf("rotation after Rotate: %+v", l)
	}
}

func TestRevokeCurrent(t *testing.T) {
	c := newClock()
	store := &memStore{}
	a := newRing(t, store, config(keys.ES256, c))
	b := newRing(t, store, config(keys.ES256, c))
	mustSync(t, a)
	mustSync(t, b)
	k1 := signing(t, a)
	// A retired key, to see that revoking its successor does not bring it back.
	c.Set(t0.Add(rotation - publishAhead))
	mustSync(t, a)
	c.Set(t0.Add(rotation))
	mustSync(t, b)
	k2 := signing(t, a)
	if k2.Gen != 2 {
		t.Fatal("no rotation")
	}
	_, etag := a.JWKS()

	if err := a.Revoke(t.Context(), k2.KID); err != nil {
		t.Fatal(err)
	}
	k3 := signing(t, a)
	if k3.KID == k2.KID || k3.KID == k1.KID || k3.Gen != 3 || !k3.SignFrom.Equal(t0.Add(rotation)) {
		t.Fatalf("after revoking the current key, signing = gen %d", k3.Gen)
	}
	if verifies(a, k2.KID) || slices.Contains(jwksKIDs(t, a), k2.KID) {
		t.Fatal("the revoked key is still accepted or published")
	}
	if _, e := a.JWKS(); e == etag {
		t.Fatal("the ETag did not change with the revocation")
	}
	if state(t, a, k2.KID) != keys.Revoked {
		t.Fatalf("state = %s", state(t, a, k2.KID))
	}
	if !verifies(a, k1.KID) || state(t, a, k1.KID) != keys.Retired {
		t.Fatal("the retired key changed with its successor's revocation")
	}
	// Another instance learns it at its next sync.
	if !verifies(b, k2.KID) {
		t.Fatal("b knew before syncing")
	}
	mustSync(t, b)
	if verifies(b, k2.KID) || slices.Contains(jwksKIDs(t, b), k2.KID) {
		t.Fatal("b accepts the revoked key after Sync")
	}
	if signing(t, b).KID != k3.KID {
		t.Fatal("b does not sign with the new key")
	}
	if store.len() != 3 {
		t.Fatalf("%d keys, want 3", store.len())
	}

	// Again: no error, nothing new. An unknown kid: ErrNotFound.
	if err := a.Revoke(t.Context(), k2.KID); err != nil {
		t.Fatal(err)
	}
	if err := a.Revoke(t.Context(), "no-such-kid"); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("Revoke(unknown) = %v", err)
	}
	if store.len() != 3 {
		t.Fatalf("%d keys, want 3", store.len())
	}
}

// Revoking a successor before it signs keeps the current key signing; the
// next Sync makes another successor by the usual rule.
func TestRevokeNext(t *testing.T) {
	c := newClock()
	store := &memStore{}
	r := newRing(t, store, config(keys.ES256, c))
	mustSync(t, r)
	k1 := signing(t, r)
	due := t0.Add(rotation - publishAhead)
	c.Set(due)
	mustSync(t, r)
	k2 := r.List()[1]
	if err := r.Revoke(t.Context(), k2.KID); err != nil {
		t.Fatal(err)
	}
	if store.len() != 2 || signing(t, r).KID != k1.KID {
		t.Fatal("revoking the next key changed the signing key")
	}
	c.Set(k2.SignFrom.Add(time.Minute))
	if signing(t, r).KID != k1.KID {
		t.Fatal("the current key stopped at the revoked successor's SignFrom")
	}
	mustSync(t, r)
	l := r.List()
	if len(l) != 3 || l[2].State != keys.Next || !l[2].SignFrom.Equal(k2.SignFrom.Add(time.Minute+publishAhead)) {
		t.Fatalf("after revoking the next key: %+v", l)
	}
}

// A key revoked without a successor (a crashed revoke, or a revocation
// written by hand) is followed by one that signs at once, never by the
// older key signing again.
func TestRevokedWithoutSuccessor(t *testing.T) {
	c := newClock()
	store := &memStore{}
	r := newRing(t, store, config(keys.ES256, c))
	mustSync(t, r)
	k1 := signing(t, r)
	if _, err := r.Rotate(t.Context(), true); err != nil {
		t.Fatal(err)
	}
	k2 := signing(t, r)
	if err := store.Revoke(t.Context(), k2.KID, t0); err != nil {
		t.Fatal(err)
	}
	other := newRing(t, &readOnly{store}, config(keys.ES256, c))
	if err := other.Sync(t.Context()); err == nil {
		t.Fatal("a store that cannot insert: Sync made no key and said nothing")
	}
	if k, err := other.Signing(); err == nil {
		t.Fatalf("the older key %s signs again", k.KID)
	}
	mustSync(t, r)
	if k := signing(t, r); k.Gen != 3 || k.KID == k1.KID {
		t.Fatalf("signing = gen %d", k.Gen)
	}
}

// readOnly is a store that refuses inserts.
type readOnly struct{ keys.Store }

func (readOnly) Insert(context.Context, keys.Stored) error { return errors.New("read-only") }

func TestJWKSETag(t *testing.T) {
	c := newClock()
	store := &memStore{}
	r := newRing(t, store, config(keys.EdDSA, c))
	body0, etag0 := r.JWKS()
	if string(body0) != `{"keys":[]}` {
		t.Fatalf("JWKS before Sync = %s", body0)
	}
	mustSync(t, r)
	body1, etag1 := r.JWKS()
	if etag1 == etag0 {
		t.Fatal("ETag did not change with the first key")
	}
	mustSync(t, r)
	c.Set(t0.Add(time.Hour))
	if body, etag := r.JWKS(); etag != etag1 || !bytes.Equal(body, body1) {
		t.Fatal("the JWKS changed with nothing changed")
	}
	other := newRing(t, store, config(keys.EdDSA, c))
	mustSync(t, other)
	if _, etag := other.JWKS(); etag != etag1 {
		t.Fatal("two instances publish one set under two ETags")
	}
	c.Set(t0.Add(rotation - publishAhead))
	mustSync(t, r)
	_, etag2 := r.JWKS()
	if etag2 == etag1 {
		t.Fatal("ETag did not change with the successor")
	}
	c.Set(t0.Add(rotation))
	if _, etag := r.JWKS(); etag != etag2 {
		t.Fatal("ETag changed at the switch, when the set did not")
	}
	c.Set(t0.Add(rotation + lifetime))
	if _, etag := r.JWKS(); etag == etag2 {
		t.Fatal("ETag did not change when a key expired")
	}
}

func TestHS256(t *testing.T) {
	c := newClock()
	t.Run("nothing created", func(t *testing.T) {
		store := &memStore{}
		r := newRing(t, store, config(keys.HS256, c))
		mustSync(t, r)
		if store.len() != 0 {
			t.Fatalf("Sync made %d keys in HS256 mode", store.len())
		}
		if _, err := r.Signing(); !errors.Is(err, keys.ErrNoSigningKey) {
			t.Fatalf("Signing = %v", err)
		}
		if body, _ := r.JWKS(); string(body) != `{"keys":[]}` {
			t.Fatalf("JWKS = %s", body)
		}
		if !r.FirstCreated().IsZero() || len(r.List()) != 0 {
			t.Fatal("keys listed in HS256 mode")
		}
		if _, err := r.Rotate(t.Context(), true); err == nil || store.len() != 0 {
			t.Fatal("Rotate made a key in HS256 mode")
		}
	})
	t.Run("switched from ES256", func(t *testing.T) {
		c.Set(t0)
		store := &memStore{}
		es := newRing(t, store, config(keys.ES256, c))
		mustSync(t, es)
		k1 := signing(t, es)
		c.Set(t0.Add(24 * time.Hour))
		hs := newRing(t, store, config(keys.HS256, c))
		mustSync(t, hs)
		if store.len() != 1 {
			t.Fatal("HS256 mode made a key")
		}
		if _, err := hs.Signing(); err == nil {
			t.Fatal("HS256 mode signs with a key")
		}
		if !verifies(hs, k1.KID) || state(t, hs, k1.KID) != keys.Retired {
			t.Fatalf("the ES256 key: verifies %v, state %s", verifies(hs, k1.KID), state(t, hs, k1.KID))
		}
		if !hs.FirstCreated().Equal(t0) {
			t.Fatalf("FirstCreated = %v", hs.FirstCreated())
		}
		// Accepted (and published) until it would have been retired plus
		// the token lifetime; no successor is ever made.
		end := t0.Add(rotation + lifetime)
		c.Set(end.Add(-time.Second))
		mustSync(t, hs)
		if !verifies(hs, k1.KID) || !slices.Equal(jwksKIDs(t, hs), []string{k1.KID}) || store.len() != 1 {
			t.Fatal("the ES256 key left early")
		}
		c.Set(end)
		if verifies(hs, k1.KID) || len(jwksKIDs(t, hs)) != 0 {
			t.Fatal("the ES256 key is still accepted after its tokens expired")
		}
		// Revoking needs no successor in HS256 mode.
		if err := hs.Revoke(t.Context(), k1.KID); err != nil || store.len() != 1 {
			t.Fatalf("Revoke in HS256 mode: %v, %d keys", err, store.len())
		}
	})
}

func TestWrongMasterIsAnError(t *testing.T) {
	c := newClock()
	store := &memStore{}
	r := newRing(t, store, config(keys.ES256, c))
	mustSync(t, r)
	k1 := signing(t, r)

	cfg := config(keys.ES256, c)
	cfg.Master = bytes.Repeat([]byte("another-secret-"), 3)
	wrong := newRing(t, store, cfg)
	err := wrong.Sync(t.Context())
	if err == nil || !strings.Contains(err.Error(), k1.KID) {
		t.Fatalf("Sync with a wrong master = %v; want an error naming %s", err, k1.KID)
	}
	if store.len() != 1 {
		t.Fatal("a ring that cannot read the keys made one")
	}
	if _, err := wrong.Signing(); err == nil {
		t.Fatal("a ring that cannot read the keys signs")
	}

	// A sealed key moved onto another key's record does not open either.
	mustSync(t, r)
	if _, err := r.Rotate(t.Context(), false); err != nil {
		t.Fatal(err)
	}
	store.mu.Lock()
	store.keys[1].Private = store.keys[0].Private
	kid2 := store.keys[1].KID
	store.mu.Unlock()
	fresh := newRing(t, store, config(keys.ES256, c))
	if err := fresh.Sync(t.Context()); err == nil || !strings.Contains(err.Error(), kid2) {
		t.Fatalf("Sync with a moved ciphertext = %v", err)
	}
	// A ring that had the keys keeps them when a reload fails.
	if err := r.Sync(t.Context()); err == nil {
		t.Fatal("reload of a tampered record succeeded")
	}
	if signing(t, r).KID != k1.KID {
		t.Fatal("a failed reload dropped the keys")
	}
}

// Signing, Verifying and a cached JWKS allocate nothing: they run on every
// request.
func TestHotPathAllocatesNothing(t *testing.T) {
	c := newClock()
	r := newRing(t, &memStore{}, config(keys.EdDSA, c))
	mustSync(t, r)
	kid := signing(t, r).KID
	r.JWKS()
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := r.Signing(); err != nil {
			t.Fatal(err)
		}
		if _, ok := r.Verifying(kid); !ok {
			t.Fatal("not verifying")
		}
		if _, ok := r.Verifying("unknown"); ok {
			t.Fatal("unknown kid verifies")
		}
		r.JWKS()
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per call", allocs)
	}
}

// Readers run while the ring changes (go test -race).
func TestConcurrentUse(t *testing.T) {
	c := newClock()
	store := &memStore{}
	r := newRing(t, store, config(keys.EdDSA, c))
	mustSync(t, r)
	kid := signing(t, r).KID
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				if _, err := r.Signing(); err != nil {
					t.Error(err)
					return
				}
				r.Verifying(kid)
				r.JWKS()
				r.List()
				r.FirstCreated()
			}
		})
	}
	for i := range 20 {
		c.Set(t0.Add(time.Duration(i) * time.Minute))
		if i%5 == 0 {
			if _, err := r.Rotate(ctx, i%2 == 0); err != nil {
				t.Error(err)
			}
		}
		if err := r.Sync(ctx); err != nil {
			t.Error(err)
		}
	}
	cancel()
	wg.Wait()
}

// A key made to sign "now" by an instance whose clock is ahead is waited
// for, not answered with a second key; a ring with no signing key and none
// about to start makes one that signs at once.
func TestNoSigningKey(t *testing.T) {
	c := newClock()
	store := &memStore{}
	ahead := newClock()
	ahead.Set(t0.Add(30 * time.Second))
	mustSync(t, newRing(t, store, config(keys.ES256, ahead)))

	r := newRing(t, store, config(keys.ES256, c))
	mustSync(t, r)
	if store.len() != 1 {
		t.Fatalf("%d keys: a clock 30 s behind made its own", store.len())
	}
	if _, err := r.Signing(); err == nil {
		t.Fatal("signs before the key's SignFrom")
	}
	c.Set(ahead.Now())
	k1 := signing(t, r)

	// Far ahead is not clock skew.
	if _, err := r.Rotate(t.Context(), false); err != nil {
		t.Fatal(err)
	}
	if err := store.Revoke(t.Context(), k1.KID, c.Now()); err != nil {
		t.Fatal(err)
	}
	mustSync(t, r)
	if k := signing(t, r); k.Gen != 3 || !k.SignFrom.Equal(c.Now()) {
		t.Fatalf("signing = gen %d from %v; want a new key from now", k.Gen, k.SignFrom)
	}
}
