package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/authgql/server/internal/keys"
)

// errKeysUsage explains the keys subcommand.
var errKeysUsage = errors.New(`usage: server keys list
       server keys rotate [--now]   a successor key, published ahead (--now: it signs at once)
       server keys revoke <kid>     emergency: the key leaves the JWKS and its tokens are refused everywhere`)

// runKeys is the operators' view of the signing keys, with the server's
// environment (the same database and JWT_SECRET).
func runKeys(ctx context.Context, ring *keys.Ring, args []string, stdout io.Writer) error {
	switch {
	case len(args) == 1 && args[0] == "list":
		return listKeys(ring, stdout)
	case len(args) >= 1 && len(args) <= 2 && args[0] == "rotate":
		now := len(args) == 2
		if now && args[1] != "--now" {
			return errKeysUsage
		}
		k, err := ring.Rotate(ctx, now)
		if err != nil {
			return fmt.Errorf("keys rotate: %w", err)
		}
		fmt.Fprintf(stdout, "created %s (%s), signing from %s\n", k.KID, k.Alg, k.SignFrom.UTC().Format(time.RFC3339))
		return listKeys(ring, stdout)
	case len(args) == 2 && args[0] == "revoke":
		if err := ring.Revoke(ctx, args[1]); err != nil {
			return fmt.Errorf("keys revoke: %w", err)
		}
		fmt.Fprintf(stdout, "revoked %s: every instance refuses its tokens within REVOCATION_SYNC_INTERVAL\n", args[1])
		return listKeys(ring, stdout)
	}
	return errKeysUsage
}

func listKeys(ring *keys.Ring, stdout io.Writer) error {
	if len(ring.List()) == 0 {
		fmt.Fprintln(stdout, "no signing keys yet: the first server to start makes one (or run: keys rotate)")
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALG\tSTATE\tCREATED\tSIGNS FROM\tRETIRED\tEXPIRES")
	for _, k := range ring.List() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.KID, k.Alg, k.State,
			stamp(k.CreatedAt), stamp(k.SignFrom), stamp(k.RetiredAt), stamp(k.ExpiresAt))
	}
	return tw.Flush()
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
