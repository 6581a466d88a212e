package oidctest_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/authgql/server/internal/federation/oidctest"
)

const callback = "http://app.test/auth/local/callback"

var noFollow = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

var users = []oidctest.User{
	{Subject: "s-1", Email: "ana@example.com", EmailVerified: true, Name: "Ana", PreferredUsername: "ana"},
	{Subject: "s-2", Email: "bo@example.com", Name: "Bo", PreferredUsername: "bo"},
}

func setup(t *testing.T) (*oidctest.Server, oauth2.Config, *oidc.IDTokenVerifier) {
	t.Helper()
	s := oidctest.New(t, oidctest.Options{CallbackURL: callback, Users: users})
	t.Cleanup(http.DefaultTransport.(*http.Transport).CloseIdleConnections)
	p, err := oidc.NewProvider(t.Context(), s.Issuer)
	if err != nil {
		t.Fatal(err)
	}
	ep := p.Endpoint()
	ep.AuthStyle = oauth2.AuthStyleInHeader // client_secret_basic, the OIDC default
	c := oauth2.Config{ClientID: s.ClientID, ClientSecret: s.ClientSecret, Endpoint: ep, RedirectURL: callback,
		Scopes: []string{oidc.ScopeOpenID, "email", "profile"}}
	return s, c, p.Verifier(&oidc.Config{ClientID: s.ClientID})
}

// consent asks for authURL's consent page and posts its form with decision
// and user, the way a browser does; it returns where the provider redirects.
func consent(t *testing.T, authURL, decision, user string) *url.URL {
	t.Helper()
	res, err := http.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(page), `id="authorize"`) ||
		!strings.Contains(string(page), `id="cancel"`) {
		t.Fatalf("consent page: %s %s", res.Status, page)
	}
	u, _ := url.Parse(authURL)
	form := u.Query()
	form.Set("decision", decision)
	form.Set("user", user)
	res, err = noFollow.PostForm(u.Scheme+"://"+u.Host+u.Path, form)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusFound {
		t.Fatalf("consent answered %s, want a redirect", res.Status)
	}
	loc, err := url.Parse(res.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), callback+"?") {
		t.Fatalf("redirect to %q, want the callback", res.Header.Get("Location"))
	}
	return loc
}

func TestAuthorizeSignsInTheChosenUser(t *testing.T) {
	for _, u := range users {
		t.Run(u.Subject, func(t *testing.T) {
			_, c, verifier := setup(t)
			pkce := oauth2.GenerateVerifier()
			back := consent(t, c.AuthCodeURL("the-state", oidc.Nonce("the-nonce"), oauth2.S256ChallengeOption(pkce)),
				"authorize", u.Subject)
			if got := back.Query().Get("state"); got != "the-state" {
				t.Errorf("state %q, want the-state", got)
			}
			tok, err := c.Exchange(t.Context(), back.Query().Get("code"), oauth2.VerifierOption(pkce))
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := tok.Extra("id_token").(string)
			id, err := verifier.Verify(t.Context(), raw)
			if err != nil {
				t.Fatal(err)
			}
			var got struct {
				Nonce, Email, Name string
				EmailVerified      *bool  `json:"email_verified"`
				PreferredUsername  string `json:"preferred_username"`
			}
			if err := id.Claims(&got); err != nil {
				t.Fatal(err)
			}
			if id.Subject != u.Subject || got.Nonce != "the-nonce" || got.Email != u.Email || got.Name != u.Name ||
				got.PreferredUsername != u.PreferredUsername || got.EmailVerified == nil ||
				*got.EmailVerified != u.EmailVerified {
				t.Errorf("ID token sub %q %+v, want %+v with the nonce", id.Subject, got, u)
			}

			// The code is single use.
			if _, err := c.Exchange(t.Context(), back.Query().Get("code"), oauth2.VerifierOption(pkce)); err == nil {
				t.Error("a second exchange of the code succeeded")
			}
		})
	}
}

func TestAuthorizeRefusals(t *testing.T) {
	s, c, _ := setup(t)
	pkce := oauth2.GenerateVerifier()

	t.Run("cancel", func(t *testing.T) {
		back := consent(t, c.AuthCodeURL("st", oauth2.S256ChallengeOption(pkce)), "cancel", "")
		if got, want := back.Query(), (url.Values{"error": {"access_denied"}, "state": {"st"},
			"error_description": {"The user refused the request."}}); got.Encode() != want.Encode() {
			t.Errorf("cancel redirects with %v, want %v", got, want)
		}
	})

	t.Run("wrong verifier", func(t *testing.T) {
		back := consent(t, c.AuthCodeURL("st", oauth2.S256ChallengeOption(pkce)), "authorize", "s-1")
		if _, err := c.Exchange(t.Context(), back.Query().Get("code"),
			oauth2.VerifierOption(oauth2.GenerateVerifier())); err == nil {
			t.Error("an exchange with another verifier succeeded")
		}
	})

	t.Run("wrong secret", func(t *testing.T) {
		back := consent(t, c.AuthCodeURL("st", oauth2.S256ChallengeOption(pkce)), "authorize", "s-1")
		bad := c
		bad.ClientSecret = "not-it"
		if _, err := bad.Exchange(t.Context(), back.Query().Get("code"), oauth2.VerifierOption(pkce)); err == nil {
			t.Error("an exchange with a wrong secret succeeded")
		}
	})

	// Answered by the provider, never redirected: the URI is not the client's.
	for name, change := range map[string]func(url.Values){
		"unknown client":      func(q url.Values) { q.Set("client_id", "someone-else") },
		"another redirect":    func(q url.Values) { q.Set("redirect_uri", "http://evil.test/cb") },
		"no redirect":         func(q url.Values) { q.Del("redirect_uri") },
		"javascript redirect": func(q url.Values) { q.Set("redirect_uri", "javascript:alert(1)") },
	} {
		t.Run(name, func(t *testing.T) {
			u, _ := url.Parse(c.AuthCodeURL("st", oauth2.S256ChallengeOption(pkce)))
			q := u.Query()
			change(q)
			u.RawQuery = q.Encode()
			for _, post := range []bool{false, true} {
				var res *http.Response
				var err error
				if post {
					q.Set("decision", "cancel")
					res, err = noFollow.PostForm(s.URL+"/oidc/authorize", q)
				} else {
					res, err = noFollow.Get(u.String())
				}
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				if res.StatusCode != http.StatusBadRequest {
					t.Errorf("post %v: %s (Location %q), want 400", post, res.Status, res.Header.Get("Location"))
				}
			}
		})
	}

	t.Run("unknown user", func(t *testing.T) {
		u, _ := url.Parse(c.AuthCodeURL("st", oauth2.S256ChallengeOption(pkce)))
		q := u.Query()
		q.Set("decision", "authorize")
		q.Set("user", "nobody")
		res, err := noFollow.PostForm(s.URL+"/oidc/authorize", q)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("%s, want 400", res.Status)
		}
	})
}
