package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// Refresh tokens are opaque to clients: "<session id>.<base64url(body || tag)>".
//
//   - body is 32 bytes: from crypto/rand for the first token of a session, and
//     HMAC-SHA256(childKey, parent token) for each rotation. Deriving the child
//     from the parent lets a concurrent duplicate refresh (two tabs) receive
//     the very same new token without the server storing it.
//   - tag is 16 bytes of HMAC-SHA256(tagKey, session id "." body): it proves
//     the server issued the token, so a made-up token for a known session id
//     is "unknown" and can never trigger reuse detection against its owner.
//
// Only SHA-256 hashes of refresh tokens are stored.
const (
	sessionIDBytes = 16
	bodyBytes      = 32
	tagBytes       = 16
)

var b64 = base64.RawURLEncoding

type refreshKeys struct {
	derive, tag []byte
}

func newRefreshKeys(key []byte) refreshKeys {
	return refreshKeys{derive: mac(key, []byte("refresh-token/child")), tag: mac(key, []byte("refresh-token/tag"))}
}

func mac(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

func newSessionID() string {
	b := make([]byte, sessionIDBytes)
	_, _ = rand.Read(b)
	return b64.EncodeToString(b)
}

func (k refreshKeys) token(sessionID string, body []byte) string {
	tag := mac(k.tag, []byte(sessionID+"."+b64.EncodeToString(body)))[:tagBytes]
	return sessionID + "." + b64.EncodeToString(append(append([]byte{}, body...), tag...))
}

// root returns the first refresh token of a session.
func (k refreshKeys) root(sessionID string) string {
	body := make([]byte, bodyBytes)
	_, _ = rand.Read(body)
	return k.token(sessionID, body)
}

// child returns the token that replaces parent at rotation.
func (k refreshKeys) child(sessionID, parent string) string {
	return k.token(sessionID, mac(k.derive, []byte(parent)))
}

// parse returns the session of a refresh token the server issued.
func (k refreshKeys) parse(raw string) (sessionID string, ok bool) {
	if len(raw) > 256 {
		return "", false
	}
	sid, rest, found := strings.Cut(raw, ".")
	if !found || len(sid) != b64.EncodedLen(sessionIDBytes) || len(rest) != b64.EncodedLen(bodyBytes+tagBytes) {
		return "", false
	}
	if _, err := b64.DecodeString(sid); err != nil {
		return "", false
	}
	b, err := b64.DecodeString(rest)
	if err != nil {
		return "", false
	}
	want := mac(k.tag, []byte(sid+"."+b64.EncodeToString(b[:bodyBytes])))[:tagBytes]
	if subtle.ConstantTimeCompare(b[bodyBytes:], want) != 1 {
		return "", false
	}
	// Re-encode to refuse non-canonical spellings of the same bytes.
	if k.token(sid, b[:bodyBytes]) != raw {
		return "", false
	}
	return sid, true
}

// hashToken is what is stored of a refresh token.
func hashToken(raw string) string {
	h := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(h[:])
}
