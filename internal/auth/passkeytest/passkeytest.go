// Package passkeytest is a software WebAuthn authenticator for tests: one
// ES256 passkey, written from the WebAuthn spec (§6.1 authenticator data,
// §6.5.4 "none" attestation, §7 client data). Its answers are what a browser
// and a platform authenticator give a page for navigator.credentials.create
// and get, as PublicKeyCredential.toJSON() puts them.
package passkeytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"testing"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
)

// Authenticator holds one passkey for an RP ID, answering as a page on
// Origin.
type Authenticator struct {
	RPID, Origin string
	// ID is the credential id; UserHandle the user.id of the options it
	// was created for.
	ID, UserHandle []byte
	// Count is the signature counter; UV whether the user is verified (PIN,
	// biometrics).
	Count uint32
	UV    bool
	key   *ecdsa.PrivateKey
}

var b64 = base64.RawURLEncoding

// New returns an authenticator with a fresh key that verifies its user.
func New(t testing.TB, rpID, origin string) *Authenticator {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	return &Authenticator{RPID: rpID, Origin: origin, ID: id, UV: true, key: key}
}

// CredentialID is ID as the server shows it (base64url).
func (a *Authenticator) CredentialID() string { return b64.EncodeToString(a.ID) }

const (
	flagUP = 0x01
	flagUV = 0x04
	flagAT = 0x40
)

func (a *Authenticator) authData(extra byte, attested []byte) []byte {
	rp := sha256.Sum256([]byte(a.RPID))
	flags := byte(flagUP) | extra
	if a.UV {
		flags |= flagUV
	}
	out := binary.BigEndian.AppendUint32(append(rp[:], flags), a.Count)
	return append(out, attested...)
}

func (a *Authenticator) clientData(t testing.TB, typ string, options map[string]any) []byte {
	t.Helper()
	challenge, _ := options["challenge"].(string)
	if challenge == "" {
		t.Fatalf("options without a challenge: %v", options)
	}
	raw, err := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": a.Origin, "crossOrigin": false})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// Create answers PublicKeyCredentialCreationOptions (as JSON) with the
// passkey ("none" attestation).
func (a *Authenticator) Create(t testing.TB, options map[string]any) map[string]any {
	t.Helper()
	user, _ := options["user"].(map[string]any)
	handle, err := b64.DecodeString(user["id"].(string))
	if err != nil {
		t.Fatalf("user.id: %v", err)
	}
	a.UserHandle = handle
	point, err := a.key.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	cose, err := webauthncbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: point[1:33], -3: point[33:65]})
	if err != nil {
		t.Fatal(err)
	}
	attested := binary.BigEndian.AppendUint16(make([]byte, 16), uint16(len(a.ID))) // AAGUID zero, id length
	attested = append(append(attested, a.ID...), cose...)
	obj, err := webauthncbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{},
		"authData": a.authData(flagAT, attested)})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]any{
		"id": b64.EncodeToString(a.ID), "rawId": b64.EncodeToString(a.ID), "type": "public-key",
		"authenticatorAttachment": "platform", "clientExtensionResults": map[string]any{},
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(a.clientData(t, "webauthn.create", options)),
			"attestationObject": b64.EncodeToString(obj),
			"transports":        []string{"internal"},
		},
	}
}

// Get answers PublicKeyCredentialRequestOptions with an assertion; the
// counter goes up by one first.
func (a *Authenticator) Get(t testing.TB, options map[string]any) map[string]any {
	t.Helper()
	a.Count++
	return a.Assert(t, options)
}

// Assert signs an assertion with the current counter (a replayed or
// regressed counter when the test sets Count).
func (a *Authenticator) Assert(t testing.TB, options map[string]any) map[string]any {
	t.Helper()
	cd := a.clientData(t, "webauthn.get", options)
	ad := a.authData(0, nil)
	hash := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte{}, ad...), hash[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, a.key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return map[string]any{
		"id": b64.EncodeToString(a.ID), "rawId": b64.EncodeToString(a.ID), "type": "public-key",
		"authenticatorAttachment": "platform", "clientExtensionResults": map[string]any{},
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(cd),
			"authenticatorData": b64.EncodeToString(ad),
			"signature":         b64.EncodeToString(sig),
			"userHandle":        b64.EncodeToString(a.UserHandle),
		},
	}
}
