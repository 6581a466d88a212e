// Package githubtest is a local stand-in for the parts of GitHub that
// federation uses: the OAuth 2.0 web flow (/login/oauth/authorize with a
// consent page, /login/oauth/access_token with PKCE S256) and the API's
// GET /user and GET /user/emails. One server plays both hosts: point
// OIDC_GITHUB_URL and OIDC_GITHUB_API_URL (federation.Provider's GitHubURL and
// GitHubAPIURL) at its URL.
//
// Go tests use New; a separate process (an end-to-end test) uses Start.
package githubtest

import (
	"cmp"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The client credentials when Options names none.
const (
	DefaultClientID     = "githubtest-client"
	DefaultClientSecret = "githubtest-secret"
)

// codeTTL is how long an authorization code can be exchanged (GitHub's
// ten minutes).
const codeTTL = 10 * time.Minute

// Email is one entry of GET /user/emails.
type Email struct {
	Email    string `json:"email"`
	Primary  bool   `json:"primary"`
	Verified bool   `json:"verified"`
}

// User is an account of the stand-in.
type User struct {
	ID    int64  `json:"id"` // the stable numeric id
	Login string `json:"login"`
	Name  string `json:"name"` // "" is served as null, as for a user who set none
	// PublicEmail is GET /user's "email", the profile's public address,
	// which GitHub does not promise is verified; "" is served as null.
	PublicEmail string  `json:"public_email"`
	Emails      []Email `json:"emails"`
}

// DefaultUser signs in when Options names no users.
func DefaultUser() User {
	return User{
		ID: 583231, Login: "octocat", Name: "The Octocat",
		Emails: []Email{
			{Email: "octocat@example.com", Primary: true, Verified: true},
			{Email: "octo@example.org", Verified: true},
		},
	}
}

// Options configure a Server.
type Options struct {
	ClientID, ClientSecret string // DefaultClientID, DefaultClientSecret when empty
	// CallbackURL, when set, is the only redirect_uri accepted (GitHub's
	// "Authorization callback URL"); any is accepted when empty.
	CallbackURL string
	// Users can sign in; the first does unless the consent page picks
	// another or SetUser changes it. DefaultUser when empty.
	Users []User
	// AutoApprove skips the consent page: /login/oauth/authorize redirects
	// straight back with a code for the current user (for Go tests).
	AutoApprove bool
}

// Server is a running stand-in.
type Server struct {
	URL          string // http://127.0.0.1:PORT, GitHub's web host and API at once
	ClientID     string
	ClientSecret string

	callback    string
	autoApprove bool
	srv         *http.Server
	ln          net.Listener

	mu      sync.Mutex
	users   []User
	current int64
	codes   map[string]grant
	tokens  map[string]grant
}

// grant is what a code, then its access token, stands for.
type grant struct {
	clientID, redirectURI string
	challenge             string // the PKCE S256 code challenge, or ""
	scopes                []string
	user                  int64
	expires               time.Time
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
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{
		URL:          "http://" + ln.Addr().String(),
		ClientID:     cmp.Or(o.ClientID, DefaultClientID),
		ClientSecret: cmp.Or(o.ClientSecret, DefaultClientSecret),
		callback:     o.CallbackURL,
		autoApprove:  o.AutoApprove,
		ln:           ln,
		users:        slices.Clone(o.Users),
		codes:        map[string]grant{},
		tokens:       map[string]grant{},
	}
	if len(s.users) == 0 {
		s.users = []User{DefaultUser()}
	}
	s.current = s.users[0].ID
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Close stops the server at once.
func (s *Server) Close() { _ = s.srv.Close() }

// Handler serves the stand-in's endpoints.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login/oauth/authorize", s.authorize)
	mux.HandleFunc("POST /login/oauth/authorize", s.decide)
	mux.HandleFunc("POST /login/oauth/access_token", s.accessToken)
	mux.HandleFunc("GET /user", s.user)
	mux.HandleFunc("GET /user/emails", s.emails)
	return mux
}

// SetUser adds u, or replaces the user with its ID, and makes it the one who
// signs in next.
func (s *Server) SetUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := slices.IndexFunc(s.users, func(x User) bool { return x.ID == u.ID }); i >= 0 {
		s.users[i] = u
	} else {
		s.users = append(s.users, u)
	}
	s.current = u.ID
}

// authRequest is a checked authorization request.
type authRequest struct {
	ClientID, RedirectURI, State, Scope, Challenge, Method string
}

func (a authRequest) hidden() [][2]string {
	return [][2]string{
		{"client_id", a.ClientID}, {"redirect_uri", a.RedirectURI}, {"state", a.State}, {"scope", a.Scope},
		{"code_challenge", a.Challenge}, {"code_challenge_method", a.Method},
	}
}

// parseAuth checks an authorization request. A bad client or redirect_uri is
// answered here (GitHub shows an error page: never redirect to an unchecked
// URI); a bad PKCE method goes back to the client.
func (s *Server) parseAuth(w http.ResponseWriter, r *http.Request, v url.Values) (authRequest, bool) {
	a := authRequest{
		ClientID: v.Get("client_id"), RedirectURI: cmp.Or(v.Get("redirect_uri"), s.callback), State: v.Get("state"),
		Scope: v.Get("scope"), Challenge: v.Get("code_challenge"), Method: v.Get("code_challenge_method"),
	}
	if a.ClientID != s.ClientID {
		http.Error(w, "githubtest: unknown client_id", http.StatusNotFound)
		return a, false
	}
	u, err := url.Parse(a.RedirectURI)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		s.callback != "" && a.RedirectURI != s.callback {
		http.Error(w, "githubtest: the redirect_uri is not this application's callback URL", http.StatusBadRequest)
		return a, false
	}
	if a.Challenge != "" && a.Method != "S256" || a.Challenge == "" && a.Method != "" {
		back(w, r, a.RedirectURI, url.Values{
			"error": {"invalid_request"}, "error_description": {"code_challenge_method must be S256"}, "state": {a.State},
		})
		return a, false
	}
	return a, true
}

func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	a, ok := s.parseAuth(w, r, r.URL.Query())
	if !ok {
		return
	}
	s.mu.Lock()
	users, current := slices.Clone(s.users), s.current
	s.mu.Unlock()
	if s.autoApprove {
		s.approve(w, r, a, current)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = consentPage.Execute(w, map[string]any{"Request": a, "Hidden": a.hidden(), "Users": users, "Current": current})
}

// decide is the consent page's form: Authorize or Cancel.
func (s *Server) decide(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "githubtest: bad form", http.StatusBadRequest)
		return
	}
	a, ok := s.parseAuth(w, r, r.PostForm)
	if !ok {
		return
	}
	switch r.PostForm.Get("decision") {
	case "authorize":
		s.mu.Lock()
		user := s.current
		s.mu.Unlock()
		if v := r.PostForm.Get("user"); v != "" {
			user, _ = strconv.ParseInt(v, 10, 64)
		}
		s.approve(w, r, a, user)
	case "cancel":
		back(w, r, a.RedirectURI, url.Values{
			"error": {"access_denied"}, "error_description": {"The user has denied your application access."},
			"state": {a.State},
		})
	default:
		http.Error(w, "githubtest: no decision", http.StatusBadRequest)
	}
}

func (s *Server) approve(w http.ResponseWriter, r *http.Request, a authRequest, user int64) {
	s.mu.Lock()
	known := slices.ContainsFunc(s.users, func(u User) bool { return u.ID == user })
	code := random(10)
	if known {
		s.codes[code] = grant{
			clientID: a.ClientID, redirectURI: a.RedirectURI, challenge: a.Challenge,
			scopes: strings.FieldsFunc(a.Scope, func(r rune) bool { return r == ' ' || r == ',' }),
			user:   user, expires: time.Now().Add(codeTTL),
		}
	}
	s.mu.Unlock()
	if !known {
		http.Error(w, "githubtest: unknown user", http.StatusBadRequest)
		return
	}
	back(w, r, a.RedirectURI, url.Values{"code": {code}, "state": {a.State}})
}

// back redirects to the client's redirect_uri with params added to its query.
func back(w http.ResponseWriter, r *http.Request, redirectURI string, params url.Values) {
	u, _ := url.Parse(redirectURI)
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// accessToken exchanges a code, once, like GitHub: client credentials as
// form parameters (or HTTP Basic), the code, the redirect_uri it was issued
// for, and the PKCE verifier when the authorization carried a challenge.
// Errors are answered with status 200 and an error field, as GitHub does.
func (s *Server) accessToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "githubtest: bad form", http.StatusBadRequest)
		return
	}
	id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok {
		id, secret = u, p
	}
	if id != s.ClientID || subtle.ConstantTimeCompare([]byte(secret), []byte(s.ClientSecret)) != 1 {
		tokenAnswer(w, r, url.Values{"error": {"incorrect_client_credentials"}})
		return
	}
	code := r.PostForm.Get("code")
	s.mu.Lock()
	g, ok := s.codes[code]
	delete(s.codes, code) // single use, whatever follows
	s.mu.Unlock()
	verifier := r.PostForm.Get("code_verifier")
	switch {
	case !ok || g.clientID != id || time.Now().After(g.expires):
		tokenAnswer(w, r, url.Values{"error": {"bad_verification_code"}})
	case r.PostForm.Has("redirect_uri") && r.PostForm.Get("redirect_uri") != g.redirectURI:
		tokenAnswer(w, r, url.Values{"error": {"redirect_uri_mismatch"}})
	case g.challenge != "" && subtle.ConstantTimeCompare([]byte(s256(verifier)), []byte(g.challenge)) != 1:
		tokenAnswer(w, r, url.Values{"error": {"bad_verification_code"},
			"error_description": {"The code_verifier does not match the code_challenge."}})
	default:
		token := "gho_" + random(18)
		s.mu.Lock()
		s.tokens[token] = g
		s.mu.Unlock()
		tokenAnswer(w, r, url.Values{"access_token": {token}, "token_type": {"bearer"},
			"scope": {strings.Join(g.scopes, ",")}})
	}
}

// tokenAnswer answers in JSON when asked, else form-encoded (GitHub's default).
func tokenAnswer(w http.ResponseWriter, r *http.Request, v url.Values) {
	w.Header().Set("Cache-Control", "no-store")
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		m := map[string]string{}
		for k := range v {
			m[k] = v.Get(k)
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_ = json.NewEncoder(w).Encode(m)
		return
	}
	w.Header().Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	_, _ = w.Write([]byte(v.Encode()))
}

// bearer returns the grant of the request's access token (Bearer or GitHub's
// "token" scheme) and its user.
func (s *Server) bearer(w http.ResponseWriter, r *http.Request) (grant, User, bool) {
	h := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		token, _ = strings.CutPrefix(h, "token ")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.tokens[token]
	if i := slices.IndexFunc(s.users, func(x User) bool { return x.ID == g.user }); ok && i >= 0 {
		return g, s.users[i], true
	}
	apiError(w, http.StatusUnauthorized, "Bad credentials")
	return grant{}, User{}, false
}

func (s *Server) user(w http.ResponseWriter, r *http.Request) {
	_, u, ok := s.bearer(w, r)
	if !ok {
		return
	}
	writeJSON(w, map[string]any{
		"id": u.ID, "login": u.Login, "name": nullable(u.Name), "email": nullable(u.PublicEmail),
		"node_id": base64.StdEncoding.EncodeToString([]byte("04:User" + strconv.FormatInt(u.ID, 10))),
		"type":    "User",
	})
}

func (s *Server) emails(w http.ResponseWriter, r *http.Request) {
	g, u, ok := s.bearer(w, r)
	if !ok {
		return
	}
	if !slices.Contains(g.scopes, "user:email") && !slices.Contains(g.scopes, "user") {
		apiError(w, http.StatusNotFound, "Not Found")
		return
	}
	emails := u.Emails
	if emails == nil {
		emails = []Email{}
	}
	writeJSON(w, emails)
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(v)
}

func apiError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

var consentPage = template.Must(template.New("consent").Parse(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Authorize application · GitHub stand-in</title></head>
<body>
<main>
<h1>Authorize application</h1>
<p>The application <code id="client">{{.Request.ClientID}}</code> wants to access your account.</p>
<p>Scopes: <code id="scopes">{{.Request.Scope}}</code></p>
<form method="post" action="/login/oauth/authorize">
{{range .Hidden}}<input type="hidden" name="{{index . 0}}" value="{{index . 1}}">
{{end}}<p><label>Sign in as
<select name="user" id="user">{{range .Users}}
<option value="{{.ID}}"{{if eq .ID $.Current}} selected{{end}}>{{.Login}}</option>{{end}}
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
