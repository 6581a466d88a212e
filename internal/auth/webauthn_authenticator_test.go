package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"testing"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
)

// softKey is a software authenticator holding one ES256 passkey, written
// from the WebAuthn spec (§6.1 authenticator data, §6.5.4 "none"
// attestation, §7 client data): what a browser and a platform
// authenticator hand to the page.
type softKey struct {
	rpID, origin string
	id           []byte
	key          *ecdsa.PrivateKey
	userHandle   []byte
	count        uint32
	// uv says whether the user is verified (PIN, biometrics): UV flag.
	uv bool
}

func newSoftKey(t *testing.T, rpID, origin string) *softKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 16)
	rand.Read(id)
	return &softKey{rpID: rpID, origin: origin, id: id, key: key, uv: true}
}

const (
	flagUP = 0x01
	flagUV = 0x04
	flagAT = 0x40
)

func (k *softKey) authData(extra byte, attested []byte) []byte {
	rp := sha256.Sum256([]byte(k.rpID))
	flags := byte(flagUP) | extra
	if k.uv {
		flags |= flagUV
	}
	out := append(rp[:], flags)
	out = binary.BigEndian.AppendUint32(out, k.count)
	return append(out, attested...)
}

func (k *softKey) clientData(t *testing.T, typ string, options map[string]any) []byte {
	t.Helper()
	challenge, _ := options["challenge"].(string)
	if challenge == "" {
		t.Fatalf("options without a challenge: %v", options)
	}
	raw, err := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": k.origin, "crossOrigin": false})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// create answers PublicKeyCredentialCreationOptions (as JSON) with a new
// credential, as PublicKeyCredential.toJSON() gives it.
func (k *softKey) create(t *testing.T, options map[string]any) map[string]any {
	t.Helper()
	user, _ := options["user"].(map[string]any)
	handle, err := b64.DecodeString(user["id"].(string))
	if err != nil {
		t.Fatalf("user.id: %v", err)
	}
	k.userHandle = handle
	point, err := k.key.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	cose, err := webauthncbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: point[1:33], -3: point[33:65]})
	if err != nil {
		t.Fatal(err)
	}
	attested := make([]byte, 16) // AAGUID: zero
	attested = binary.BigEndian.AppendUint16(attested, uint16(len(k.id)))
	attested = append(append(attested, k.id...), cose...)
	obj, err := webauthncbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{},
		"authData": k.authData(flagAT, attested)})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]any{
		"id": b64.EncodeToString(k.id), "rawId": b64.EncodeToString(k.id), "type": "public-key",
		"authenticatorAttachment": "platform", "clientExtensionResults": map[string]any{},
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(k.clientData(t, "webauthn.create", options)),
			"attestationObject": b64.EncodeToString(obj),
			"transports":        []string{"internal"},
		},
	}
}

// get answers PublicKeyCredentialRequestOptions with an assertion; the
// counter goes up by one first.
func (k *softKey) get(t *testing.T, options map[string]any) map[string]any {
	t.Helper()
	k.count++
	return k.assert(t, options)
}

// assert signs an assertion with the current counter.
func (k *softKey) assert(t *testing.T, options map[string]any) map[string]any {
	t.Helper()
	cd := k.clientData(t, "webauthn.get", options)
	ad := k.authData(0, nil)
	hash := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte{}, ad...), hash[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, k.key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return map[string]any{
		"id": b64.EncodeToString(k.id), "rawId": b64.EncodeToString(k.id), "type": "public-key",
		"authenticatorAttachment": "platform", "clientExtensionResults": map[string]any{},
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(cd),
			"authenticatorData": b64.EncodeToString(ad),
			"signature":         b64.EncodeToString(sig),
			"userHandle":        b64.EncodeToString(k.userHandle),
		},
	}
}
