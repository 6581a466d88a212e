// Package keys keeps the server's asymmetric signing keys: generated, stored
// encrypted in MongoDB (shared by every instance), rotated without signing
// anyone out, published as a JWKS, and revoked in an emergency.
package keys

import (
	"context"
	"crypto"
	"time"
)

// Algorithm is a JWS algorithm the server signs access tokens with.
type Algorithm string

const (
	ES256 Algorithm = "ES256" // ECDSA P-256 with SHA-256 (the default)
	EdDSA Algorithm = "EdDSA" // Ed25519
	RS256 Algorithm = "RS256" // RSA PKCS#1 v1.5 with SHA-256, 2048-bit keys or larger
	HS256 Algorithm = "HS256" // HMAC with JWT_SECRET: no key here, nothing published
)

// Key is one signing key as an instance holds it.
type Key struct {
	// KID is the RFC 7638 thumbprint (SHA-256, base64url) of the public key.
	KID string
	Alg Algorithm
	// Gen orders the keys: each successor has the next number, taken by an
	// insert against a unique key, so two instances never create two
	// successors.
	Gen    int64
	Signer crypto.Signer    // the private key (ecdsa, ed25519 or rsa)
	Public crypto.PublicKey // Signer.Public()
	// CreatedAt is when it was made, and published in the JWKS.
	CreatedAt time.Time
	// SignFrom is when it starts signing; it signs until its successor's
	// SignFrom.
	SignFrom  time.Time
	RevokedAt time.Time // zero unless revoked
}

// Stored is a key as the database keeps it: the private part encrypted.
type Stored struct {
	Gen       int64
	KID       string
	Alg       Algorithm
	PublicJWK []byte // the public key as a JWK (JSON)
	// Private is the PKCS#8 private key sealed with AES-256-GCM under a key
	// derived from the master secret, with the KID as additional data.
	Private   []byte
	CreatedAt time.Time
	SignFrom  time.Time
	RevokedAt time.Time
}

// Store keeps keys (collection signing_keys).
type Store interface {
	// All returns every key, by Gen.
	All(ctx context.Context) ([]Stored, error)
	// Insert adds k; auth.ErrDuplicate when its Gen (or KID) is taken.
	Insert(ctx context.Context, k Stored) error
	// Revoke marks the key kid revoked at at (no error when it already is).
	Revoke(ctx context.Context, kid string, at time.Time) error
}
