package verify

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// maxDocumentBytes bounds what is read of the discovery document and of the
// key set.
const maxDocumentBytes = 1 << 20

// discovery is what this package reads of the OpenID discovery document.
type discovery struct {
	Issuer     string   `json:"issuer"`
	JWKSURI    string   `json:"jwks_uri"`
	Algorithms []string `json:"id_token_signing_alg_values_supported"`
}

// discover fetches issuerURL/.well-known/openid-configuration and checks it:
// the issuer it names is exactly issuerURL, the key set is at an absolute URL
// (https when the issuer is), and the algorithms, when listed, include one
// this package verifies.
func discover(ctx context.Context, client *http.Client, issuerURL string) (discovery, error) {
	u := strings.TrimSuffix(issuerURL, "/") + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return discovery{}, fmt.Errorf("verify: discovery: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return discovery{}, fmt.Errorf("verify: discovery: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return discovery{}, fmt.Errorf("verify: discovery: GET %s: %s", u, resp.Status)
	}
	var d discovery
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxDocumentBytes)).Decode(&d); err != nil {
		return discovery{}, fmt.Errorf("verify: discovery: GET %s: %w", u, err)
	}
	if d.Issuer != issuerURL {
		return discovery{}, fmt.Errorf("verify: discovery: the document at %s names the issuer %q, not %q", u, d.Issuer, issuerURL)
	}
	jwks, err := url.Parse(d.JWKSURI)
	if err != nil || !jwks.IsAbs() || jwks.Host == "" || jwks.Scheme != "https" && jwks.Scheme != "http" {
		return discovery{}, fmt.Errorf("verify: discovery: jwks_uri %q is not an absolute http(s) URL", d.JWKSURI)
	}
	if strings.HasPrefix(issuerURL, "https:") && jwks.Scheme != "https" {
		return discovery{}, fmt.Errorf("verify: discovery: jwks_uri %q is not https, but the issuer is", d.JWKSURI)
	}
	if len(d.Algorithms) > 0 && !slices.ContainsFunc(d.Algorithms, func(a string) bool { return slices.Contains(algorithms, a) }) {
		return discovery{}, fmt.Errorf("verify: discovery: the issuer signs with %v; this package verifies %v only "+
			"(an HS256 server shares its secret and publishes no keys)", d.Algorithms, algorithms)
	}
	return d, nil
}

// checkIssuerURL refuses what cannot be an issuer: not http(s), no host, a
// query or a fragment.
func checkIssuerURL(issuerURL string) error {
	u, err := url.Parse(issuerURL)
	if err != nil || u.Scheme != "https" && u.Scheme != "http" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("verify: issuer %q is not an http(s) URL without query or fragment", issuerURL)
	}
	return nil
}

// limitBodies bounds every response body the key set client reads: jwkset
// decodes the key set with no limit of its own.
type limitBodies struct{ next http.RoundTripper }

func (l limitBodies) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := l.next.RoundTrip(r)
	if err == nil {
		resp.Body = http.MaxBytesReader(nil, resp.Body, maxDocumentBytes)
	}
	return resp, err
}
