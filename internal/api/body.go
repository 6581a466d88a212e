package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
)

// graphqlBody admits only what the GraphQL transports should see: a JSON POST
// body within maxBody bytes that is one GraphQL request object. gqlgen reads
// bodies without a limit and echoes undecodable ones back to the client, so
// this is checked before it sees them.
func graphqlBody(maxBody int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			methodNotAllowed(w, r)
			return
		}
		if r.Method == http.MethodGet {
			if getRunsMutation(r) {
				w.Header().Set("Allow", "POST")
				writeError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED",
					"mutations must be sent with POST")
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		if r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "application/json" {
			// Forms, multipart and text/plain are what a browser sends cross-site
			// without a preflight: they never reach an operation.
			writeError(w, http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE",
				"send the GraphQL request as application/json")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				writeError(w, http.StatusRequestEntityTooLarge, "PAYLOAD_TOO_LARGE",
					fmt.Sprintf("request body is larger than %d bytes", maxBody))
				return
			}
			writeError(w, http.StatusBadRequest, "BAD_REQUEST", "could not read the request body")
			return
		}
		if !wellFormed(body) {
			writeError(w, http.StatusBadRequest, "BAD_REQUEST",
				`request body must be a JSON object like {"query": "...", "variables": {...}}`)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

// getRunsMutation reports whether a GET request selects a mutation or
// subscription. gqlgen refuses those too, but with no error code; this answers
// with one. Only documents that contain the keyword are parsed.
func getRunsMutation(r *http.Request) bool {
	q := r.URL.Query()
	doc := q.Get("query")
	if !strings.Contains(doc, "mutation") && !strings.Contains(doc, "subscription") {
		return false
	}
	parsed, err := parser.ParseQuery(&ast.Source{Input: doc})
	if err != nil {
		return false // gqlgen reports the syntax error
	}
	op := parsed.Operations.ForName(q.Get("operationName"))
	return op != nil && op.Operation != ast.Query
}

// wellFormed reports whether body decodes as gqlgen will decode it: one
// object with a string query and operationName and object variables and
// extensions.
func wellFormed(body []byte) bool {
	var req struct {
		Query         string          `json:"query"`
		OperationName string          `json:"operationName"`
		Variables     json.RawMessage `json:"variables"`
		Extensions    json.RawMessage `json:"extensions"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return false
	}
	return objectOrNull(req.Variables) && objectOrNull(req.Extensions)
}

func objectOrNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || raw[0] == '{' || string(raw) == "null"
}
