package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	secret = "0123456789abcdef0123456789abcdef"
	userID = "6b0e01f40efc77fd887cd27e"
)

var now = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// token signs an access token as internal/token issues them, changed by edit.
func token(t *testing.T, edit func(c *claims, tok *jwt.Token)) string {
	t.Helper()
	c := claims{SessionID: "c2Vzc2lvbi1pZC0xMjM0NQ", RegisteredClaims: jwt.RegisteredClaims{
		Subject: userID, Issuer: "authgql", Audience: jwt.ClaimStrings{"authgql"}, ID: "jti",
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(15 * time.Minute)),
	}}
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, &c)
	tok.Header["typ"] = accessType
	if edit != nil {
		edit(&c, tok)
	}
	s, err := tok.SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestFloorAnswersMe(t *testing.T) {
	h, err := newHandler([]byte(secret), "authgql", "authgql", map[string]string{userID: "alice"}, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	const (
		answer  = `{"data":{"me":{"id":"6b0e01f40efc77fd887cd27e","username":"alice"}}}`
		refusal = `{"errors":[{"message":"not authenticated","path":["me"],"extensions":{"code":"UNAUTHENTICATED"}}],"data":null}`
	)
	tests := []struct {
		name       string
		body       string
		auth       string
		wantStatus int
		wantBody   string
	}{
		{"valid", `{"query":"{ me { id username } }"}`, "Bearer " + token(t, nil), 200, answer},
		{"valid, scheme in lower case", `{"query":"{ me { id username } }"}`, "bearer " + token(t, nil), 200, answer},
		{"no token", `{"query":"{ me { id username } }"}`, "", 200, refusal},
		{"expired", `{"query":"{ me { id username } }"}`, "Bearer " + token(t, func(c *claims, _ *jwt.Token) {
			c.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Minute))
		}), 200, refusal},
		{"expired within the leeway", `{"query":"{ me { id username } }"}`, "Bearer " + token(t, func(c *claims, _ *jwt.Token) {
			c.ExpiresAt = jwt.NewNumericDate(now.Add(-10 * time.Second))
		}), 200, answer},
		{"no exp", `{"query":"{ me { id username } }"}`, "Bearer " + token(t, func(c *claims, _ *jwt.Token) { c.ExpiresAt = nil }), 200, refusal},
		{"another audience", `{"query":"{ me { id username } }"}`, "Bearer " + token(t, func(c *claims, _ *jwt.Token) {
			c.Audience = jwt.ClaimStrings{"other"}
		}), 200, refusal},
		{"another issuer", `{"query":"{ me { id username } }"}`, "Bearer " + token(t, func(c *claims, _ *jwt.Token) { c.Issuer = "other" }), 200, refusal},
		{"not an access token", `{"query":"{ me { id username } }"}`, "Bearer " + token(t, func(_ *claims, tok *jwt.Token) { tok.Header["typ"] = "JWT" }), 200, refusal},
		{"no session", `{"query":"{ me { id username } }"}`, "Bearer " + token(t, func(c *claims, _ *jwt.Token) { c.SessionID = "" }), 200, refusal},
		{"unknown user", `{"query":"{ me { id username } }"}`, "Bearer " + token(t, func(c *claims, _ *jwt.Token) { c.Subject = "someone" }), 200, refusal},
		{"bad signature", `{"query":"{ me { id username } }"}`, "Bearer " + token(t, nil) + "x", 200, refusal},
		{"another query", `{"query":"{ me { id } }"}`, "Bearer " + token(t, nil), 400, ""},
		{"not json", `query=me`, "Bearer " + token(t, nil), 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/query", strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/json")
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if got := rec.Code; got != tt.wantStatus {
				t.Fatalf("status: got %d, want %d", got, tt.wantStatus)
			}
			if tt.wantBody == "" {
				return
			}
			body, _ := io.ReadAll(rec.Body)
			if got := string(body); got != tt.wantBody {
				t.Errorf("body:\ngot  %s\nwant %s", got, tt.wantBody)
			}
			if got, want := rec.Header().Get("Content-Type"), "application/json"; got != want {
				t.Errorf("Content-Type: got %q, want %q", got, want)
			}
		})
	}
}

func TestFloorRefusesAWeakSetup(t *testing.T) {
	if _, err := newHandler([]byte("short"), "authgql", "authgql", nil, time.Now); err == nil {
		t.Error("a secret shorter than 32 bytes: got a handler, want an error")
	}
	if _, err := newHandler([]byte(secret), "", "authgql", nil, time.Now); err == nil {
		t.Error("no issuer: got a handler, want an error")
	}
}
