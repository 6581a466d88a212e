// Command oidctest runs the local OpenID Connect provider of package oidctest
// as its own process, for end-to-end tests and for trying sign-in with an
// identity provider on a developer's machine:
//
//	go run ./internal/federation/oidctest/cmd/oidctest -addr 127.0.0.1:9000 \
//	    -callback http://localhost:8080/auth/local/callback
//
// then run the server with OIDC_PROVIDERS=local,
// OIDC_LOCAL_ISSUER=http://127.0.0.1:9000/oidc (the issuer it prints),
// OIDC_LOCAL_CLIENT_ID and OIDC_LOCAL_CLIENT_SECRET set to -client-id and
// -client-secret. It stops on SIGINT or SIGTERM.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/authgql/server/internal/federation/oidctest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "oidctest:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("oidctest", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "address to listen on (port 0 picks one)")
	addrFile := fs.String("addr-file", "", "write the issuer URL to this file once it listens")
	o := oidctest.Options{}
	fs.StringVar(&o.ClientID, "client-id", oidctest.DefaultClientID, "the client's ID")
	fs.StringVar(&o.ClientSecret, "client-secret", oidctest.DefaultClientSecret, "the client's secret")
	fs.StringVar(&o.CallbackURL, "callback", "", "the only redirect_uri accepted (any when empty)")
	users := fs.String("users", "", `the users as JSON, e.g. [{"subject":"1","email":"jane@example.com",`+
		`"email_verified":true,"name":"Jane","preferred_username":"jane"}]; the first is selected on the consent `+
		`page (oidctest.DefaultUser when empty)`)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *users != "" {
		if err := json.Unmarshal([]byte(*users), &o.Users); err != nil {
			return fmt.Errorf("-users: %w", err)
		}
	}
	s, err := oidctest.Start(*addr, o)
	if err != nil {
		return err
	}
	defer s.Close()
	if *addrFile != "" {
		// Written whole, by rename: a reader never sees half a URL.
		tmp := *addrFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(s.Issuer), 0o600); err != nil {
			return err
		}
		if err := os.Rename(tmp, *addrFile); err != nil {
			return err
		}
		defer os.Remove(*addrFile)
	}
	fmt.Fprintln(stdout, "oidctest issuer", s.Issuer)
	<-ctx.Done()
	return nil
}
