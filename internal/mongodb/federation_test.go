package mongodb_test

import (
	"errors"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/oauth2-proxy/mockoidc"

	"github.com/authgql/server/internal/auth"
	"github.com/authgql/server/internal/federation"
	"github.com/authgql/server/internal/mongodb"
)

func newFlowStore(t *testing.T) *mongodb.FlowStore {
	t.Helper()
	s, err := mongodb.NewFlowStore(t.Context(), testDB.Fresh(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestFederationFlowStore(t *testing.T) {
	s := newFlowStore(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	f := federation.Flow{
		Provider: "google", Verifier: "verifier", Nonce: "nonce", Redirect: "/settings",
		ExpiresAt: now.Add(10*time.Minute + 987654*time.Nanosecond).In(time.FixedZone("X", 3600)),
	}
	if err := s.Save(t.Context(), "key1", f); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load(t.Context(), "key1")
	if err != nil {
		t.Fatal(err)
	}
	want := f
	want.ExpiresAt = f.ExpiresAt.Truncate(time.Millisecond).UTC()
	if got != want {
		t.Errorf("Load = %+v, want %+v", got, want)
	}
	if err := s.Save(t.Context(), "key1", federation.Flow{Provider: "other"}); !errors.Is(err, auth.ErrDuplicate) {
		t.Errorf("second Save: err = %v, want ErrDuplicate", err)
	}
	if got, _ := s.Load(t.Context(), "key1"); got.Provider != "google" {
		t.Errorf("after a duplicate Save: provider = %q, want google", got.Provider)
	}
	for name, key := range map[string]string{"unknown": "key2", "empty": "", "prefix": "key"} {
		if _, err := s.Load(t.Context(), key); !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("%s key: err = %v, want ErrNotFound", name, err)
		}
	}

	if err := s.Save(t.Context(), "old", federation.Flow{Provider: "google", ExpiresAt: now.Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	n, err := s.DeleteBefore(t.Context(), now)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("DeleteBefore removed %d, want 1", n)
	}
	if _, err := s.Load(t.Context(), "old"); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("expired flow after DeleteBefore: err = %v, want ErrNotFound", err)
	}
	if _, err := s.Load(t.Context(), "key1"); err != nil {
		t.Errorf("live flow after DeleteBefore: %v", err)
	}
}

// TestFederationReplayOnEmbeddedDatabase: concurrent callbacks with one
// state finish once; the others are invalid_state. Single use rests on the
// marker insert, the one write that is atomic on FerretDB too.
func TestFederationReplayOnEmbeddedDatabase(t *testing.T) {
	db := testDB.Fresh(t)
	flows, err := mongodb.NewFlowStore(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	markers, err := mongodb.NewMarkerStore(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ln, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
		_ = m.Shutdown()
	})
	const public = "http://authgql.test"
	reg, err := federation.NewRegistry(t.Context(), federation.Options{
		PublicURL: public,
		Providers: []federation.Provider{{Name: "mock", Issuer: m.Issuer(), ClientID: m.ClientID, ClientSecret: m.ClientSecret}},
		Flows:     flows, Claims: federation.MarkerClaimer{Markers: markers},
	})
	if err != nil {
		t.Fatal(err)
	}

	for trial := range 5 {
		st, err := reg.Begin(t.Context(), "mock", federation.BeginOptions{Redirect: "/home"})
		if err != nil {
			t.Fatal(err)
		}
		authURL := st.URL
		jar, _ := cookiejar.New(nil)
		var query url.Values
		c := &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
			if req.URL.Host == "authgql.test" {
				query = req.URL.Query()
				return http.ErrUseLastResponse
			}
			return nil
		}}
		res, err := c.Get(authURL)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if query == nil {
			t.Fatalf("no callback: %s", res.Status)
		}

		const n = 10
		var wg sync.WaitGroup
		codes := make([]federation.Code, n)
		for i := range n {
			wg.Go(func() {
				if _, err := reg.Finish(t.Context(), "mock", query, st.Binding); err != nil {
					codes[i] = federation.CodeOf(err)
				}
			})
		}
		wg.Wait()
		won := 0
		for _, c := range codes {
			switch c {
			case "":
				won++
			case federation.InvalidState:
			default:
				t.Errorf("trial %d: code %s, want invalid_state for the losers", trial, c)
			}
		}
		if won != 1 {
			t.Errorf("trial %d: %d callbacks finished, want exactly 1", trial, won)
		}
	}
}
