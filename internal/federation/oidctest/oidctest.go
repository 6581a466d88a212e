// Package oidctest is a local OpenID Connect provider for trying federation
// on a developer's machine and for end-to-end tests: mockoidc
// (github.com/oauth2-proxy/mockoidc: discovery, JWKS, a token endpoint with
// PKCE, signed ID tokens with the nonce) with a consent page in front of its
// authorization endpoint and users of its own (subject, email,
// email_verified, name, preferred_username).
//
// Its issuer is URL + "/oidc": set OIDC_NAME_ISSUER to Server.Issuer and
// OIDC_NAME_CLIENT_ID / OIDC_NAME_CLIENT_SECRET to its client.
//
// Go tests use New; a separate process (an end-to-end test) uses Start.
package oidctest

import (
	"cmp"
	"encoding/json"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"
)

// The client credentials when Options names none.
const (
	DefaultClientID     = "oidctest-client"
	DefaultClientSecret = "oidctest-secret"
)

// User is an account at the provider. Its claims go into the ID token and
// the userinfo answer as the requested scopes allow: email and
// email_verified with "email", name and preferred_username with "profile".
type User struct {
	Subject           string `json:"subject"`
	Email             string `json:"email"`
	EmailVerified     bool   `json:"email_verified"`
	Name              string `json:"name"`
	PreferredUsername string `json:"preferred_username"`
}

// DefaultUser signs in when Options names no users.
func DefaultUser() User {
	return User{
		Subject: "248289761001", Email: "jane.doe@example.com", EmailVerified: true,
		Name: "Jane Doe", PreferredUsername: "jane.doe",
	}
}

// Options configure a Server.
type Options struct {
	ClientID, ClientSecret string // DefaultClientID, DefaultClientSecret when empty
	// CallbackURL, when set, is the only redirect_uri accepted; any http or
	// https URL is accepted when empty.
	CallbackURL string
	// Users can sign in, chosen on the consent page; the first is selected.
	// DefaultUser when empty.
	Users []User
}

// Server is a running provider.
type Server struct {
	URL          string // http://127.0.0.1:PORT
	Issuer       string // URL + "/oidc"
	ClientID     string
	ClientSecret string

	m        *mockoidc.MockOIDC
	callback string
	users    []User
	// authorizing makes queueing the chosen user and mockoidc's popping it
	// one step: mockoidc hands the next authorization its queue's head.
	authorizing sync.Mutex
}

// New starts a Server on a free port of 127.0.0.1 and closes it when t ends.
func New(t testing.TB, o Options) *Server {
	t.Helper()
	s, err := Start("127.0.0.1:0", o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// Start starts a Server listening on addr (host:port; port 0 picks one).
func Start(addr string, o Options) (*Server, error) {
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		return nil, err
	}
	s := &Server{
		ClientID: cmp.Or(o.ClientID, DefaultClientID), ClientSecret: cmp.Or(o.ClientSecret, DefaultClientSecret),
		m: m, callback: o.CallbackURL, users: slices.Clone(o.Users),
	}
	if len(s.users) == 0 {
		s.users = []User{DefaultUser()}
	}
	m.ClientID, m.ClientSecret = s.ClientID, s.ClientSecret
	m.CodeChallengeMethodsSupported = []string{"S256"}
	if err := m.AddMiddleware(s.middleware); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if err := m.Start(ln, nil); err != nil {
		ln.Close()
		return nil, err
	}
	s.URL, s.Issuer = m.Addr(), m.Issuer()
	return s, nil
}

// Close stops the server at once (mockoidc's Shutdown waits for idle
// connections).
func (s *Server) Close() { _ = s.m.Server.Close() }

// middleware puts the consent page in front of mockoidc's authorization
// endpoint and lets its token endpoint take client_secret_basic, the default
// client authentication its discovery lists first (mockoidc itself reads
// the credentials from the form only).
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case mockoidc.AuthorizationEndpoint:
			s.authorize(w, r, next)
		case mockoidc.TokenEndpoint:
			if id, secret, ok := r.BasicAuth(); ok && r.ParseForm() == nil {
				// RFC 6749 2.3.1: both are form-encoded before going into the header.
				id, _ = url.QueryUnescape(id)
				secret, _ = url.QueryUnescape(secret)
				r.Form.Set("client_id", id)
				r.Form.Set("client_secret", secret)
			}
			next.ServeHTTP(w, r)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// authorize shows the consent page (GET) and acts on its form (POST):
// Authorize hands the request to mockoidc for the chosen user, Cancel sends
// the browser back with error=access_denied. A bad client or redirect_uri is
// answered here: never redirect to an unchecked URI.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, next http.Handler) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "oidctest: bad request", http.StatusBadRequest)
		return
	}
	if r.Form.Get("client_id") != s.ClientID {
		http.Error(w, "oidctest: unknown client_id", http.StatusBadRequest)
		return
	}
	redirectURI := r.Form.Get("redirect_uri")
	if u, err := url.Parse(redirectURI); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		s.callback != "" && redirectURI != s.callback {
		http.Error(w, "oidctest: the redirect_uri is not this client's callback URL", http.StatusBadRequest)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodPost {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = consentPage.Execute(w, map[string]any{"Action": mockoidc.AuthorizationEndpoint, "Query": r.URL.Query(), "Users": s.users,
			"ClientID": s.ClientID, "Scope": r.Form.Get("scope")})
		return
	}
	switch r.PostForm.Get("decision") {
	case "authorize":
		i := slices.IndexFunc(s.users, func(u User) bool { return u.Subject == r.PostForm.Get("user") })
		if i < 0 {
			http.Error(w, "oidctest: unknown user", http.StatusBadRequest)
			return
		}
		s.authorizing.Lock()
		defer s.authorizing.Unlock()
		s.m.QueueUser(user(s.users[i]))
		next.ServeHTTP(w, r)
	case "cancel":
		u, _ := url.Parse(redirectURI)
		q := u.Query()
		q.Set("error", "access_denied")
		q.Set("error_description", "The user refused the request.")
		q.Set("state", r.Form.Get("state"))
		u.RawQuery = q.Encode()
		http.Redirect(w, r, u.String(), http.StatusFound)
	default:
		http.Error(w, "oidctest: no decision", http.StatusBadRequest)
	}
}

// user is a User as mockoidc's: its claims, scoped.
type user User

var _ mockoidc.User = user{}

func (u user) ID() string { return u.Subject }

// scoped returns the claims the scopes grant, subject always.
func (u user) scoped(scopes []string) map[string]any {
	c := map[string]any{"sub": u.Subject}
	if slices.Contains(scopes, "email") && u.Email != "" {
		c["email"], c["email_verified"] = u.Email, u.EmailVerified
	}
	if slices.Contains(scopes, "profile") {
		for k, v := range map[string]string{"name": u.Name, "preferred_username": u.PreferredUsername} {
			if v != "" {
				c[k] = v
			}
		}
	}
	return c
}

func (u user) Userinfo(scopes []string) ([]byte, error) { return json.Marshal(u.scoped(scopes)) }

func (u user) Claims(scopes []string, base *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	c := jwt.MapClaims(u.scoped(scopes))
	// The registered claims (iss, aud, exp, iat, sub) and the nonce, as mockoidc built them.
	b, err := json.Marshal(base)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, err
	}
	return c, nil
}

var consentPage = template.Must(template.New("consent").Parse(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Sign in · local OpenID Connect provider</title></head>
<body>
<main>
<h1>Sign in</h1>
<p>The application <code id="client">{{.ClientID}}</code> asks for your identity.</p>
<p>Scopes: <code id="scopes">{{.Scope}}</code></p>
<form method="post" action="{{.Action}}">
{{range $k, $vs := .Query}}{{range $vs}}<input type="hidden" name="{{$k}}" value="{{.}}">
{{end}}{{end}}<p><label>Sign in as
<select name="user" id="user">{{range .Users}}
<option value="{{.Subject}}">{{.Name}} &lt;{{.Email}}&gt;{{if not .EmailVerified}} (unverified){{end}}</option>{{end}}
</select></label></p>
<p>
<button type="submit" id="authorize" name="decision" value="authorize">Authorize</button>
<button type="submit" id="cancel" name="decision" value="cancel">Cancel</button>
</p>
</form>
</main>
</body>
</html>
`))
