package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"golang.org/x/oauth2"
)

// maxGitHubBody bounds what is read of one GitHub API answer.
const maxGitHubBody = 1 << 20

// gitHubEndpoints is GitHub's counterpart of discovery: fixed endpoints under
// GitHubURL. GitHub takes the client's credentials as form parameters (x/oauth2's
// own GitHub endpoint leaves the style to auto-detection, which would send
// the code a second time after a failure).
func gitHubEndpoints(p *provider) *discovered {
	return &discovered{oauth: oauth2.Config{
		ClientID: p.cfg.ClientID, ClientSecret: p.cfg.ClientSecret,
		Endpoint: oauth2.Endpoint{
			AuthURL:   p.cfg.GitHubURL + "/login/oauth/authorize",
			TokenURL:  p.cfg.GitHubURL + "/login/oauth/access_token",
			AuthStyle: oauth2.AuthStyleInParams,
		},
		RedirectURL: p.redirect, Scopes: p.cfg.Scopes,
	}}
}

// gitHubIdentity exchanges the code (with the PKCE verifier) for an access
// token and reads the user and their addresses with it. There is no ID
// token: the identity is what GitHub's API answers over TLS to this token.
func (r *Registry) gitHubIdentity(ctx context.Context, p *provider, d *discovered, code string, f Flow) (Identity, error) {
	// GitHub answers the token request form-encoded unless asked for JSON.
	client := *r.client
	client.Transport = acceptJSON{base: r.client.Transport}
	tok, err := d.oauth.Exchange(context.WithValue(ctx, oauth2.HTTPClient, &client), code,
		oauth2.VerifierOption(f.Verifier))
	if err != nil {
		return Identity{}, fail(ProviderError, exchangeError(err))
	}
	var user struct {
		ID    int64  `json:"id"`
		Login string `json:"login"`
		Name  string `json:"name"` // null when unset
	}
	if err := r.gitHubGet(ctx, p.cfg.GitHubAPIURL, "/user", tok.AccessToken, &user); err != nil {
		return Identity{}, fail(ProviderError, err)
	}
	if user.ID <= 0 {
		return Identity{}, fail(ProviderError, errors.New("github /user: no id"))
	}
	// /user's own "email" is the public profile address, which GitHub does
	// not promise is verified: only /user/emails says.
	var emails []struct {
		Email    string `json:"email"`
		Primary  bool   `json:"primary"`
		Verified bool   `json:"verified"`
	}
	if err := r.gitHubGet(ctx, p.cfg.GitHubAPIURL, "/user/emails", tok.AccessToken, &emails); err != nil {
		return Identity{}, fail(ProviderError, err)
	}
	id := Identity{
		Provider: p.cfg.Name, Subject: strconv.FormatInt(user.ID, 10),
		Name: user.Name, PreferredUsername: user.Login,
	}
	for _, e := range emails {
		if e.Primary && e.Email != "" {
			id.Email, id.EmailVerified = e.Email, e.Verified
			break
		}
	}
	return id, nil
}

// gitHubGet reads api+path with the access token into v. Its errors name the
// path and the status, never the token or the body.
func (r *Registry) gitHubGet(ctx context.Context, api, path, accessToken string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, api+path, nil)
	if err != nil {
		return fmt.Errorf("github %s: %w", path, err)
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("Accept", "application/vnd.github+json")
	res, err := r.client.Do(req)
	if err != nil {
		if ue, ok := errors.AsType[*url.Error](err); ok {
			return fmt.Errorf("github %s: %w", path, ue.Err)
		}
		return fmt.Errorf("github %s: request failed", path)
	}
	defer res.Body.Close()
	body := io.LimitReader(res.Body, maxGitHubBody)
	if res.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, body)
		return fmt.Errorf("github %s: status %d", path, res.StatusCode)
	}
	if err := json.NewDecoder(body).Decode(v); err != nil {
		return fmt.Errorf("github %s: malformed answer", path)
	}
	return nil
}

// acceptJSON asks for a JSON answer.
type acceptJSON struct{ base http.RoundTripper }

func (t acceptJSON) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Accept", "application/json")
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(req)
}
