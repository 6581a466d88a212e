package keys_test

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"golang.org/x/crypto/cryptobyte"
	cryptobyte_asn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/authgql/server/internal/auth"
	"github.com/authgql/server/internal/keys"
	"github.com/authgql/server/internal/mongodb"
)

// instance is one simulated server instance: a client of its own, a store
// and a ring on the shared database.
type instance struct {
	ring  *keys.Ring
	store *mongodb.SigningKeyStore
}

func newInstance(t *testing.T, dbName string, c keys.Config) instance {
	t.Helper()
	return newCountedInstance(t, dbName, c, nil)
}

// counting counts the inserts a store refused as duplicates: the races an
// instance lost.
type counting struct {
	keys.Store
	dups *atomic.Int64
}

func (s counting) Insert(ctx context.Context, k keys.Stored) error {
	err := s.Store.Insert(ctx, k)
	if errors.Is(err, auth.ErrDuplicate) {
		s.dups.Add(1)
	}
	return err
}

func newCountedInstance(t *testing.T, dbName string, c keys.Config, dups *atomic.Int64) instance {
	t.Helper()
	client, err := mongodb.Connect(t.Context(), testDB.URI)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	store, err := mongodb.NewSigningKeyStore(t.Context(), client.Database(dbName))
	if err != nil {
		t.Fatal(err)
	}
	if dups != nil {
		return instance{ring: newRing(t, counting{store, dups}, c), store: store}
	}
	return instance{ring: newRing(t, store, c), store: store}
}

func countKeys(t *testing.T, db *mongo.Database) int64 {
	t.Helper()
	n, err := db.Collection("signing_keys").CountDocuments(t.Context(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// syncAll calls Sync on every instance at once.
func syncAll(t *testing.T, insts []instance) {
	t.Helper()
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, len(insts))
	for i, in := range insts {
		wg.Go(func() {
			<-start
			errs[i] = in.ring.Sync(t.Context())
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// Instances that sync at the same moment on one database create exactly one
// first key, and exactly one successor when it is due, and agree on them.
func TestConcurrentSyncCreatesOneKey(t *testing.T) {
	for _, n := range []int{2, 5} {
		t.Run(fmt.Sprintf("%d instances", n), func(t *testing.T) {
			var lost atomic.Int64
			t.Cleanup(func() { t.Logf("%d inserts lost a race", lost.Load()) })
			for trial := range 10 {
				db := testDB.Fresh(t)
				c := newClock()
				insts := make([]instance, n)
				for i := range insts {
					insts[i] = newCountedInstance(t, db.Name(), config(keys.ES256, c), &lost)
				}
				syncAll(t, insts)
				if got := countKeys(t, db); got != 1 {
					t.Fatalf("trial %d: %d first keys", trial, got)
				}
				c.Set(t0.Add(rotation - publishAhead))
				syncAll(t, insts)
				if got := countKeys(t, db); got != 2 {
					t.Fatalf("trial %d: %d keys after the successor was due, want 2", trial, got)
				}
				first := insts[0].ring.List()
				for _, in := range insts {
					l := in.ring.List()
					if len(l) != 2 || l[0].KID != first[0].KID || l[1].KID != first[1].KID || l[1].State != keys.Next {
						t.Fatalf("trial %d: instances disagree: %+v vs %+v", trial, l, first)
					}
				}
			}
		})
	}
}

// Two instances through a rotation: the JWKS shows both keys, then only the
// new one; an old key verifies until its tokens have expired; a revocation
// on one instance reaches the other at its next Sync.
func TestTwoInstances(t *testing.T) {
	db := testDB.Fresh(t)
	c := newClock()
	a := newInstance(t, db.Name(), config(keys.RS256, c)).ring
	b := newInstance(t, db.Name(), config(keys.RS256, c)).ring
	mustSync(t, a)
	mustSync(t, b)
	k1 := signing(t, b)
	if signing(t, a).KID != k1.KID || k1.Alg != keys.RS256 {
		t.Fatal("the instances sign with different keys")
	}
	c.Set(t0.Add(rotation - publishAhead))
	mustSync(t, b)
	mustSync(t, a)
	c.Set(t0.Add(rotation))
	k2 := signing(t, a)
	if signing(t, b).KID != k2.KID || k2.Gen != 2 {
		t.Fatal("the instances switched to different keys")
	}
	ab, aTag := a.JWKS()
	bb, bTag := b.JWKS()
	if !bytes.Equal(ab, bb) || aTag != bTag || !slices.Equal(jwksKIDs(t, a), sorted(k1.KID, k2.KID)) {
		t.Fatalf("JWKS differ or lack a key:\n%s\n%s", ab, bb)
	}
	c.Set(t0.Add(rotation + lifetime))
	if verifies(a, k1.KID) || !slices.Equal(jwksKIDs(t, b), []string{k2.KID}) {
		t.Fatal("the old key outlived its tokens")
	}

	if err := a.Revoke(t.Context(), k2.KID); err != nil {
		t.Fatal(err)
	}
	k3 := signing(t, a)
	if k3.Gen != 3 || verifies(a, k2.KID) {
		t.Fatal("revoke: no new signing key, or the revoked key verifies")
	}
	if !verifies(b, k2.KID) {
		t.Fatal("b learnt of the revocation before syncing")
	}
	mustSync(t, b)
	if verifies(b, k2.KID) || signing(t, b).KID != k3.KID || slices.Contains(jwksKIDs(t, b), k2.KID) {
		t.Fatal("b still uses the revoked key after Sync")
	}
	if got := countKeys(t, db); got != 3 {
		t.Fatalf("%d keys, want 3", got)
	}

	// An instance with another JWT_SECRET refuses to start, naming the key.
	cfg := config(keys.RS256, c)
	cfg.Master = bytes.Repeat([]byte("x"), 40)
	wrong := newInstance(t, db.Name(), cfg).ring
	if err := wrong.Sync(t.Context()); err == nil || !strings.Contains(err.Error(), k1.KID) {
		t.Fatalf("Sync with a wrong master = %v", err)
	}
	if got := countKeys(t, db); got != 3 {
		t.Fatalf("%d keys after the failed sync, want 3", got)
	}
}

// A dump of signing_keys holds no usable private key: no field, decoded in
// any usual way, parses as a PKCS#8, PKCS#1 or SEC 1 private key or holds an
// Ed25519 seed or a P-256 scalar of a stored key, and no JWK private member
// appears.
func TestDumpHoldsNoPrivateKey(t *testing.T) {
	db := testDB.Fresh(t)
	c := newClock()
	long := func(alg keys.Algorithm) keys.Config { // every key still verifies at the end
		cfg := config(alg, c)
		cfg.TokenLifetime = 24 * time.Hour
		return cfg
	}
	for _, alg := range algorithms { // each switch of algorithm makes a key, signing PublishAhead later
		mustSync(t, newInstance(t, db.Name(), long(alg)).ring)
		c.Set(c.Now().Add(publishAhead + time.Minute))
	}
	ring := newInstance(t, db.Name(), long(keys.RS256)).ring
	mustSync(t, ring)
	if _, err := ring.Rotate(t.Context(), true); err != nil {
		t.Fatal(err)
	}
	list := ring.List()
	if len(list) != 4 {
		t.Fatalf("%d keys", len(list))
	}
	var publics []any
	for _, i := range list {
		k, ok := ring.Verifying(i.KID)
		if !ok {
			t.Fatalf("key %s not loaded", i.KID)
		}
		publics = append(publics, k.Public)
	}

	// The detector finds a key that is not sealed.
	priv, _ := keys.Generate(keys.ES256)
	plain, _ := x509.MarshalPKCS8PrivateKey(priv)
	if !holdsPrivateKey(plain, []any{priv.Public()}) ||
		!holdsPrivateKey([]byte(base64.StdEncoding.EncodeToString(plain)), nil) {
		t.Fatal("the detector misses a plain PKCS#8 key")
	}
	ed, _ := keys.Generate(keys.EdDSA)
	if !holdsPrivateKey(append([]byte("xx"), ed.(ed25519.PrivateKey).Seed()...), []any{ed.Public()}) {
		t.Fatal("the detector misses an Ed25519 seed")
	}

	cur, err := db.Collection("signing_keys").Find(t.Context(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var docs []bson.Raw
	if err := cur.All(t.Context(), &docs); err != nil {
		t.Fatal(err)
	}
	if len(docs) != 4 {
		t.Fatalf("%d documents", len(docs))
	}
	for _, doc := range docs {
		var fields int
		walk(t, doc, "", func(path string, data []byte) {
			fields++
			if holdsPrivateKey(data, publics) {
				t.Errorf("field %s holds a private key", path)
			}
			var jwk map[string]any
			if json.Unmarshal(data, &jwk) == nil {
				for _, p := range privateMembers {
					if _, ok := jwk[p]; ok {
						t.Errorf("field %s is a JWK with private member %q", path, p)
					}
				}
			}
		})
		if fields < 4 {
			t.Fatalf("only %d string or binary fields in %s", fields, doc)
		}
		if _, err := doc.LookupErr("revoked_at"); err == nil {
			t.Errorf("revoked_at present on a key that is not revoked: %s", doc)
		}
	}
}

// walk calls f with every string and binary value in doc, at any depth.
func walk(t *testing.T, doc bson.Raw, prefix string, f func(path string, data []byte)) {
	t.Helper()
	elems, err := doc.Elements()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range elems {
		path := prefix + e.Key()
		v := e.Value()
		switch v.Type {
		case bson.TypeString:
			f(path, []byte(v.StringValue()))
		case bson.TypeBinary:
			_, data := v.Binary()
			f(path, data)
		case bson.TypeEmbeddedDocument:
			walk(t, v.Document(), path+".", f)
		case bson.TypeArray:
			walk(t, bson.Raw(v.Array()), path+".", f)
		}
	}
}

// holdsPrivateKey says whether data, raw or decoded from base64 or PEM,
// contains a DER private key at any offset, or the private scalar of one of
// pubs (Ed25519 seed, P-256 scalar) in any 32-byte window.
func holdsPrivateKey(data []byte, pubs []any) bool {
	candidates := [][]byte{data}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(strings.TrimSpace(string(data))); err == nil {
			candidates = append(candidates, b)
		}
	}
	for rest := data; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		candidates = append(candidates, block.Bytes)
	}
	for _, b := range candidates {
		for i := range b {
			if b[i] != 0x30 {
				continue
			}
			s := cryptobyte.String(b[i:])
			var der cryptobyte.String
			if !s.ReadASN1Element(&der, cryptobyte_asn1.SEQUENCE) {
				continue
			}
			if _, err := x509.ParsePKCS8PrivateKey(der); err == nil {
				return true
			}
			if _, err := x509.ParsePKCS1PrivateKey(der); err == nil {
				return true
			}
			if _, err := x509.ParseECPrivateKey(der); err == nil {
				return true
			}
		}
		for i := 0; i+32 <= len(b); i++ {
			w := b[i : i+32]
			for _, pub := range pubs {
				switch p := pub.(type) {
				case ed25519.PublicKey:
					if ed25519.NewKeyFromSeed(w).Public().(ed25519.PublicKey).Equal(p) {
						return true
					}
				case *ecdsa.PublicKey:
					k, err := ecdh.P256().NewPrivateKey(w)
					if err != nil {
						continue
					}
					if want, err := p.ECDH(); err == nil && k.PublicKey().Equal(want) {
						return true
					}
				}
			}
		}
	}
	return false
}
