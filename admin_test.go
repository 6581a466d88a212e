package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// The first admin is made without a database shell: "admin grant" on the
// server binary, or BOOTSTRAP_ADMINS at start. Both are idempotent.
func TestAdminBootstrap(t *testing.T) {
	dataDir := t.TempDir()
	env := map[string]string{"PORT": "0", "HOST": "127.0.0.1", "DATA_DIR": dataDir, "BCRYPT_COST": "10"}
	base, _, stop := start(t, env)
	gql(t, base, "", `mutation { register(input: {username: "founder", email: "founder@example.com", password: "`+fixturePassword+`"}) { accessToken } }`, nil)
	gql(t, base, "", `mutation { register(input: {username: "second", email: "second@example.com", password: "`+fixturePassword+`"}) { accessToken } }`, nil)
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	admin := func(args ...string) (string, error) {
		var out bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := run(ctx, append([]string{"server", "admin"}, args...), fakeEnv(env), &out, &out)
		return out.String(), err
	}
	for i := range 2 {
		out, err := admin("grant", "Founder")
		if err != nil || !strings.Contains(out, "founder (") || !strings.Contains(out, "holds ADMIN") {
			t.Fatalf("admin grant: %v\n%s", err, out)
		}
		// The first grant is an audit event; the second changes nothing.
		if logged := strings.Contains(out, "event=grant_role"); logged != (i == 0) {
			t.Errorf("grant %d: audit event logged = %v:\n%s", i+1, logged, out)
		}
	}
	if _, err := admin("grant", "nobody"); err == nil || !strings.Contains(err.Error(), "register it first") {
		t.Errorf("grant of an unknown user: %v", err)
	}
	if _, err := admin("promote"); err == nil || !strings.Contains(err.Error(), "usage") {
		t.Errorf("bad subcommand: %v", err)
	}

	// An enabled ADMIN exists: BOOTSTRAP_ADMINS grants nothing, and says why.
	env["BOOTSTRAP_ADMINS"] = "second, ghost"
	base, logs, stop := start(t, env)
	if !strings.Contains(logs.String(), "username=second reason=admin_exists") || !strings.Contains(logs.String(), "username=ghost reason=admin_exists") {
		t.Errorf("skipped BOOTSTRAP_ADMINS not logged:\n%s", logs.String())
	}
	isAdmin := func(base, name string) bool {
		t.Helper()
		tok := field(t, gql(t, base, "", `mutation { login(input: {username: "`+name+`", password: "`+fixturePassword+`"}) { accessToken } }`, nil), "login", "accessToken")
		return gql(t, base, tok, `{ users { edges { node { username roles } } } }`, nil)["errors"] == nil
	}
	if !isAdmin(base, "founder") || isAdmin(base, "second") {
		t.Errorf("with an admin present: founder admin %v (want true), second admin %v (want false)", isAdmin(base, "founder"), isAdmin(base, "second"))
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// A new database with no admin: the listed users that exist get ADMIN.
	env["DATA_DIR"] = t.TempDir()
	delete(env, "BOOTSTRAP_ADMINS")
	base, _, stop = start(t, env)
	gql(t, base, "", `mutation { register(input: {username: "second", email: "second@example.com", password: "`+fixturePassword+`"}) { accessToken } }`, nil)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	env["BOOTSTRAP_ADMINS"] = "second, ghost"
	base, logs, stop = start(t, env)
	if !strings.Contains(logs.String(), "granted ADMIN") || !strings.Contains(logs.String(), "username=ghost reason=no_such_user") {
		t.Errorf("bootstrap not logged:\n%s", logs.String())
	}
	if !isAdmin(base, "second") {
		t.Error("second is not an admin after the bootstrap")
	}
	// The attack: register a listed name that did not exist, wait for a
	// restart. An admin exists now, so nothing is granted.
	gql(t, base, "", `mutation { register(input: {username: "ghost", email: "ghost@example.com", password: "`+fixturePassword+`"}) { accessToken } }`, nil)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	base, _, stop = start(t, env)
	defer func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	}()
	if isAdmin(base, "ghost") {
		t.Error("a listed name registered later became ADMIN at restart")
	}
}
