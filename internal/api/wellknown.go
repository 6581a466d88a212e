package api

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
)

// KeySet publishes the public signing keys (keys.Ring).
type KeySet interface {
	// JWKS is the key set as JSON, and a strong ETag of it.
	JWKS() (body []byte, etag string)
}

// Discovery is what the discovery document says.
type Discovery struct {
	Issuer     string   // exactly the tokens' iss
	JWKSURI    string   // PUBLIC_URL/.well-known/jwks.json
	Algorithms []string // the algorithms tokens are signed with
}

// jwksMaxAge is how long verifiers may cache the key set; a successor key is
// published JWT_KEY_PUBLISH_AHEAD (1 h by default) before it signs, far
// longer than this.
const jwksMaxAge = "public, max-age=300"

// addWellKnown serves the public key set and the discovery document, with
// CORS for GET from any origin: they are public, and browsers verifying
// tokens (or fetching the keys for a gateway's admin page) may ask.
func addWellKnown(mux *http.ServeMux, keys KeySet, d Discovery) {
	mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		var body []byte
		etag := `"empty"`
		if keys != nil {
			body, etag = keys.JWKS()
		}
		if body == nil {
			body = []byte(`{"keys":[]}`)
		}
		publicJSON(w, r, body, etag)
	})
	doc, _ := json.Marshal(map[string]any{
		"issuer":                                d.Issuer,
		"jwks_uri":                              d.JWKSURI,
		"id_token_signing_alg_values_supported": d.Algorithms,
		"subject_types_supported":               []string{"public"},
		"response_types_supported":              []string{"token"},
		"claims_supported":                      []string{"sub", "sid", "roles", "email_verified", "iss", "aud", "iat", "nbf", "exp", "jti"},
	})
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		publicJSON(w, r, doc, etagOf(doc))
	})
	// A preflight, for browsers that revalidate with If-None-Match.
	mux.HandleFunc("OPTIONS /.well-known/", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Access-Control-Allow-Methods", "GET")
		h.Set("Access-Control-Allow-Headers", "If-None-Match")
		h.Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
	})
}

// publicJSON answers a public, cacheable JSON document; If-None-Match with
// its ETag gets 304.
func publicJSON(w http.ResponseWriter, r *http.Request, body []byte, etag string) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Cache-Control", jwksMaxAge)
	h.Set("ETag", etag)
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// etagOf is a strong ETag of body.
func etagOf(body []byte) string {
	sum := sha256.Sum256(body)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`
}
