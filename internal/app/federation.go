package app

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/authgql/server/internal/api"
	"github.com/authgql/server/internal/auth"
	"github.com/authgql/server/internal/federation"
	"github.com/authgql/server/internal/mongodb"
)

// newFederation builds the registry of the configured identity providers
// (nil when there are none) and its flow store: each provider is discovered
// now, or retried in the background until ctx ends.
func newFederation(ctx context.Context, d Deps, providers []federation.Provider, markers auth.MarkerStore) (*federation.Registry, *mongodb.FlowStore, error) {
	if len(providers) == 0 {
		return nil, nil, nil
	}
	flows, err := mongodb.NewFlowStore(ctx, d.DB)
	if err != nil {
		return nil, nil, err
	}
	reg, err := federation.NewRegistry(ctx, federation.Options{
		PublicURL: d.Config.PublicURL, Providers: providers, Flows: flows,
		Claims: federation.MarkerClaimer{Markers: markers}, Logger: d.Logger, Now: d.Now,
		// Every call to a provider (discovery, its keys, the token
		// endpoint, GitHub's API) is bounded, whatever its caller's context.
		Client: &http.Client{Timeout: providerClientTimeout},
	})
	return reg, flows, err
}

// providerClientTimeout bounds one request to an identity provider.
const providerClientTimeout = 15 * time.Second

// flowRetention keeps ended flows a while, as the markers of used states are.
const flowRetention = time.Hour

// sweepFlows removes long-expired flows until ctx ends, for databases
// without TTL indexes (the embedded one); a no-op without providers.
func sweepFlows(ctx context.Context, flows *mongodb.FlowStore, logger *slog.Logger, every time.Duration) {
	if flows == nil {
		return
	}
	t := time.NewTicker(max(every, time.Minute))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := flows.DeleteBefore(ctx, time.Now().Add(-flowRetention)); err != nil && ctx.Err() == nil {
			logger.WarnContext(ctx, "federation: sweeping expired flows failed", "err", err)
		}
	}
}

// providerList is what login pages learn of the registry's providers.
func providerList(reg *federation.Registry) func() []auth.ProviderInfo {
	if reg == nil {
		return nil
	}
	return func() []auth.ProviderInfo {
		var out []auth.ProviderInfo
		for _, p := range reg.Providers() {
			out = append(out, auth.ProviderInfo{Name: p.Name, DisplayName: p.DisplayName})
		}
		return out
	}
}

// federationRoutes are the /auth/{name} routes (nil without providers).
func federationRoutes(reg *federation.Registry, svc *auth.Service, appURL string) *api.Federation {
	if reg == nil {
		return nil
	}
	return &api.Federation{Flows: reg, Accounts: svc, AppURL: appURL}
}

// newIdentityStores adds the stores of federated identities to st.
func newIdentityStores(ctx context.Context, db *mongo.Database, st *auth.Stores) error {
	identities, err := mongodb.NewIdentityStore(ctx, db)
	if err != nil {
		return err
	}
	codes, err := mongodb.NewOneTimeCodeStore(ctx, db)
	if err != nil {
		return err
	}
	st.Identities, st.OneTimeCodes = identities, codes
	return nil
}
