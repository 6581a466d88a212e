package keys

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/go-jose/go-jose/v4"
)

// rsaBits is the size of generated RSA keys; loaded keys may be larger.
const rsaBits = 2048

// sealLabel separates the key that seals private keys from any other use of
// the master secret (JWT_SECRET also signs HS256 tokens).
const sealLabel = "authgql/signing-keys"

// Generate makes a new private key for alg.
func Generate(alg Algorithm) (crypto.Signer, error) {
	switch alg {
	case ES256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case EdDSA:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	case RS256:
		return rsa.GenerateKey(rand.Reader, rsaBits)
	default:
		return nil, fmt.Errorf("keys: cannot generate a key for %q", alg)
	}
}

// algOf returns the algorithm a public key is used with here, and checks
// that the key is one the server may use (P-256, Ed25519, RSA of rsaBits or
// more).
func algOf(pub crypto.PublicKey) (Algorithm, error) {
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		if p.Curve != elliptic.P256() {
			return "", errors.New("keys: an ECDSA key must be on P-256")
		}
		return ES256, nil
	case ed25519.PublicKey:
		if len(p) != ed25519.PublicKeySize {
			return "", errors.New("keys: malformed Ed25519 key")
		}
		return EdDSA, nil
	case *rsa.PublicKey:
		if p.N.BitLen() < rsaBits {
			return "", fmt.Errorf("keys: an RSA key must have at least %d bits", rsaBits)
		}
		return RS256, nil
	default:
		return "", fmt.Errorf("keys: %T is not a public key the server uses", pub)
	}
}

// Thumbprint is the RFC 7638 JWK thumbprint of pub (SHA-256, base64url
// without padding): the key's kid.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	if _, err := algOf(pub); err != nil {
		return "", err
	}
	sum, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("keys: thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}

// PublicJWK is pub as a JWK (JSON) with kid, alg and use "sig". It takes only
// public keys: go-jose marshals whatever it is given, private members
// included.
func PublicJWK(pub crypto.PublicKey, kid string, alg Algorithm) ([]byte, error) {
	got, err := algOf(pub)
	if err != nil {
		return nil, err
	}
	if got != alg {
		return nil, fmt.Errorf("keys: a %s key cannot be published as %s", got, alg)
	}
	jwk := jose.JSONWebKey{Key: pub, KeyID: kid, Algorithm: string(alg), Use: "sig"}
	if !jwk.IsPublic() {
		return nil, errors.New("keys: not a public key")
	}
	b, err := jwk.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("keys: marshal JWK: %w", err)
	}
	return b, nil
}

// sealer is the AEAD that seals private keys: AES-256-GCM under
// HMAC-SHA256(master, sealLabel).
func sealer(master []byte) (cipher.AEAD, error) {
	mac := hmac.New(sha256.New, master)
	mac.Write([]byte(sealLabel))
	block, err := aes.NewCipher(mac.Sum(nil))
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// seal encrypts a PKCS#8 private key for the record of kid: a random 12-byte
// nonce, then the ciphertext. kid is the additional data, so a ciphertext
// moved to another key's record does not open.
func seal(master []byte, kid string, pkcs8 []byte) []byte {
	aead, err := sealer(master)
	if err != nil {
		panic("keys: seal: " + err.Error()) // AES-256 and GCM take any 32-byte key
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(pkcs8)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic("keys: seal: " + err.Error()) // crypto/rand never fails
	}
	return aead.Seal(nonce, nonce, pkcs8, []byte(kid))
}

// errOpen is the one answer for a sealed key that does not open: a wrong
// master secret, another kid, or tampering look the same.
var errOpen = errors.New("keys: the private key does not decrypt (wrong JWT_SECRET, or not this key's record)")

// open decrypts what seal made for kid.
func open(master []byte, kid string, sealed []byte) ([]byte, error) {
	aead, err := sealer(master)
	if err != nil {
		return nil, err
	}
	if len(sealed) < aead.NonceSize()+aead.Overhead() {
		return nil, errOpen
	}
	n := aead.NonceSize()
	pkcs8, err := aead.Open(nil, sealed[:n], sealed[n:], []byte(kid))
	if err != nil {
		return nil, errOpen
	}
	return pkcs8, nil
}
