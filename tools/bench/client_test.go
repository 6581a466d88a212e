package bench

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// answering returns a client of a server that answers every request with
// status and body.
func answering(t *testing.T, status int, body string) *client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	c := newClient(srv.URL, 1)
	t.Cleanup(c.close)
	return c
}

func TestMeChecksTheAnswer(t *testing.T) {
	alice := user{ID: "6b0e01f40efc77fd887cd27e", Username: "alice"}
	tests := []struct {
		name     string
		status   int
		body     string
		wantKind string // "" for success
	}{
		{"right", 200, `{"data":{"me":{"id":"6b0e01f40efc77fd887cd27e","username":"alice"}}}`, ""},
		{"someone else", 200, `{"data":{"me":{"id":"6b0e01f40efc77fd887cd27f","username":"bob"}}}`, "wrong answer"},
		{"no username", 200, `{"data":{"me":{"id":"6b0e01f40efc77fd887cd27e"}}}`, "wrong answer"},
		{"null data", 200, `{"data":null}`, "no data"},
		{"graphql error", 200, `{"errors":[{"message":"no","extensions":{"code":"UNAUTHENTICATED","reason":"token_expired"}}],"data":null}`,
			"graphql UNAUTHENTICATED (token_expired)"},
		{"http error", 503, `busy`, "http 503"},
		{"not json", 200, `<html>`, "bad json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := answering(t, tt.status, tt.body).me(context.Background(), operation(meQuery, nil), "token", alice)
			if tt.wantKind == "" {
				if err != nil {
					t.Fatalf("got %v, want success", err)
				}
				return
			}
			var oe *opError
			if !errors.As(err, &oe) || oe.kind != tt.wantKind {
				t.Errorf("got %v, want an error of kind %q", err, tt.wantKind)
			}
		})
	}
}

func TestSessionCheck(t *testing.T) {
	ok := session{AccessToken: "a", RefreshToken: "r", User: user{ID: "1", Username: "alice"}}
	tests := []struct {
		name    string
		s       session
		wantErr bool
	}{
		{"complete", ok, false},
		{"no access token", session{RefreshToken: "r", User: ok.User}, true},
		{"no refresh token", session{AccessToken: "a", User: ok.User}, true},
		{"another user", session{AccessToken: "a", RefreshToken: "r", User: user{ID: "2", Username: "bob"}}, true},
		{"no user id", session{AccessToken: "a", RefreshToken: "r", User: user{Username: "alice"}}, true},
	}
	for _, tt := range tests {
		if err := tt.s.check("alice"); (err != nil) != tt.wantErr {
			t.Errorf("%s: got %v, want error %v", tt.name, err, tt.wantErr)
		}
	}
}

func TestRefreshRefusesTheSameToken(t *testing.T) {
	c := answering(t, 200, `{"data":{"refreshToken":{"accessToken":"a","refreshToken":"old","user":{"id":"1","username":"alice"}}}}`)
	_, err := c.refresh(context.Background(), "old", "alice")
	if err == nil || !strings.Contains(err.Error(), "presented token") {
		t.Errorf("got %v, want a wrong answer: the presented token came back", err)
	}
}

func TestLogoutWantsTrue(t *testing.T) {
	if err := answering(t, 200, `{"data":{"logout":true}}`).logout(context.Background(), "a"); err != nil {
		t.Errorf("logout true: got %v, want success", err)
	}
	if err := answering(t, 200, `{"data":{"logout":false}}`).logout(context.Background(), "a"); err == nil {
		t.Errorf("logout false: got success, want an error")
	}
}
