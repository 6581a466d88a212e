// Command githubtest runs the GitHub stand-in of package githubtest as its
// own process, for end-to-end tests:
//
//	go run ./internal/federation/githubtest/cmd/githubtest -addr 127.0.0.1:0 -addr-file /tmp/gh.addr \
//	    -callback http://127.0.0.1:8080/auth/github/callback
//
// Point OIDC_GITHUB_URL and OIDC_GITHUB_API_URL at the URL it prints, with
// OIDC_GITHUB_CLIENT_ID and OIDC_GITHUB_CLIENT_SECRET set to -client-id and
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

	"github.com/authgql/server/internal/federation/githubtest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "githubtest:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("githubtest", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "address to listen on (port 0 picks one)")
	addrFile := fs.String("addr-file", "", "write the server's URL to this file once it listens")
	o := githubtest.Options{}
	fs.StringVar(&o.ClientID, "client-id", githubtest.DefaultClientID, "the OAuth app's client ID")
	fs.StringVar(&o.ClientSecret, "client-secret", githubtest.DefaultClientSecret, "the OAuth app's client secret")
	fs.StringVar(&o.CallbackURL, "callback", "", "the only redirect_uri accepted (any when empty)")
	fs.BoolVar(&o.AutoApprove, "auto-approve", false, "skip the consent page")
	users := fs.String("users", "", `the users as JSON, e.g. [{"id":1,"login":"jane","name":"Jane",`+
		`"emails":[{"email":"jane@example.com","primary":true,"verified":true}]}]; the first signs in by default `+
		`(githubtest.DefaultUser when empty)`)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *users != "" {
		if err := json.Unmarshal([]byte(*users), &o.Users); err != nil {
			return fmt.Errorf("-users: %w", err)
		}
	}
	s, err := githubtest.Start(*addr, o)
	if err != nil {
		return err
	}
	defer s.Close()
	if *addrFile != "" {
		if err := os.WriteFile(*addrFile, []byte(s.URL), 0o600); err != nil {
			return err
		}
		defer os.Remove(*addrFile)
	}
	fmt.Fprintln(stdout, "githubtest listening on", s.URL)
	<-ctx.Done()
	return nil
}
