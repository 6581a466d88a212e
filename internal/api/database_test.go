package api_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/authgql/server/internal/devdb"
	"github.com/authgql/server/internal/mongodb"
)

// With the database gone, requests fail as INTERNAL_SERVER_ERROR with no
// driver text, nothing is issued, readiness reports it, and the log has the
// cause with the request id.
func TestDatabaseDown(t *testing.T) {
	client, err := mongodb.Connect(context.Background(), testDB.URI)
	if err != nil {
		t.Fatal(err)
	}
	o := defaultOptions()
	o.client = client
	e := newEnvWith(t, o)
	p := e.mustRegister(t, "leo", "leo@example.com")
	if err := client.Disconnect(context.Background()); err != nil {
		t.Fatal(err)
	}

	checks := map[string]gqlResponse{
		"register": e.register(t, "mia", "mia@example.com", testPassword),
		"login":    e.login(t, "", "leo", testPassword),
		"me":       e.post(t, p.AccessToken, meQuery, nil),
	}
	for name, res := range checks {
		if res.Status != http.StatusOK {
			t.Errorf("%s: status = %d", name, res.Status)
		}
		if got := res.code(t); got != "INTERNAL_SERVER_ERROR" {
			t.Errorf("%s: code = %q, want INTERNAL_SERVER_ERROR: %s", name, got, res.Raw)
		}
		if res.Errors[0].Message != "internal error" {
			t.Errorf("%s: message = %q", name, res.Errors[0].Message)
		}
		for _, leak := range []string{"mongo", "client", "disconnect", "connection", ".go", "goroutine"} {
			if strings.Contains(strings.ToLower(res.Raw), leak) {
				t.Errorf("%s: response leaks %q: %s", name, leak, res.Raw)
			}
		}
		if strings.Contains(res.Raw, "accessToken") {
			t.Errorf("%s: a token was issued: %s", name, res.Raw)
		}
		if id := res.Header.Get("X-Request-ID"); !strings.Contains(e.logs.String(), id) {
			t.Errorf("%s: log has no line with request id %s", name, id)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/readyz", nil)
	if got := e.send(t, req).Status; got != http.StatusServiceUnavailable {
		t.Errorf("readyz = %d, want 503", got)
	}
	if n := e.countUsers(t); n != 1 {
		t.Errorf("%d users stored, want 1", n)
	}
}

// The database goes away and comes back: requests fail as internal errors in
// the meantime (nothing is issued, nothing is counted against the account),
// readiness says so, and the server recovers by itself.
func TestDatabaseComesBack(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	db, err := devdb.StartOn(addr, dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	// A short server selection timeout (set through the URI, as users can) keeps
	// the failing requests quick.
	client, err := mongodb.Connect(context.Background(), db.URI()+"?serverSelectionTimeoutMS=300&heartbeatFrequencyMS=500")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	o := defaultOptions()
	o.client = client
	o.db = client.Database("comeback")
	e := newEnvWith(t, o)
	e.mustRegister(t, "olga", "olga@example.com")

	db.Stop()
	for range 6 { // more than the 5 failures that would lock the account, were they counted
		res := e.login(t, "", "olga", testPassword)
		if got := res.code(t); got != "INTERNAL_SERVER_ERROR" {
			t.Fatalf("login with the database down: %s", res.Raw)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/readyz", nil)
	if got := e.send(t, req).Status; got != http.StatusServiceUnavailable {
		t.Errorf("readyz with the database down = %d", got)
	}

	db, err = devdb.StartOn(addr, dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Stop)
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/readyz", nil)
		if e.send(t, req).Status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("readyz never recovered")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if p := payload(t, e.login(t, "", "olga", testPassword), "login"); p.User.Username != "olga" {
		t.Errorf("login after recovery: %+v", p.User)
	}
}
