package api

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/authgql/server/internal/auth"
	"github.com/authgql/server/internal/federation"
	"github.com/authgql/server/internal/requestid"
)

// FederationFlows runs the flows with identity providers (a
// federation.Registry).
type FederationFlows interface {
	Providers() []federation.ProviderInfo
	Begin(ctx context.Context, provider string, o federation.BeginOptions) (federation.Started, error)
	Finish(ctx context.Context, provider string, query url.Values, binding string) (*federation.Result, error)
}

// FederatedAccounts applies a finished flow to accounts (the auth.Service).
type FederatedAccounts interface {
	AllowFederation(ctx context.Context) error
	TakeLinkTicket(ctx context.Context, ticket string) (auth.LinkTarget, error)
	SignInFederated(ctx context.Context, fi auth.FederatedIdentity, link auth.LinkTarget) (*auth.FederatedSignIn, error)
}

// Federation is what the sign-in routes of identity providers serve.
type Federation struct {
	Flows    FederationFlows
	Accounts FederatedAccounts
	// AppURL is where the browser returns: AppURL/auth/callback?code=… (a
	// link: &link=NAME; or ?error=…), never anywhere else.
	AppURL string
}

// Errors a flow ends with, as the app reads them (error=…).
const (
	errorInvalidState     = string(federation.InvalidState)
	errorExpired          = string(federation.Expired)
	errorProviderError    = string(federation.ProviderError)
	errorEmailNotVerified = auth.ReasonEmailNotVerified
	errorAccountExists    = auth.ReasonAccountExists
)

// bindingMaxAge is the life of the cookie that binds a flow to the browser
// that began it: the flow's own.
const bindingMaxAge = int(federation.FlowTTL / time.Second)

// federationRoutes serves GET /auth/{name} and GET /auth/{name}/callback.
type federationRoutes struct {
	f       *Federation
	public  *url.URL // PUBLIC_URL, parsed (nil if unset)
	log     *slog.Logger
	trusted []netip.Prefix
	cookie  string // the binding cookie's name
	secure  bool
}

func addFederation(mux *http.ServeMux, d Deps) {
	if d.Federation == nil {
		return
	}
	secure := strings.HasPrefix(strings.ToLower(d.Options.PublicURL), "https://")
	fr := &federationRoutes{f: d.Federation, log: d.Logger, trusted: d.Options.TrustedProxies,
		cookie: "authgql_federation", secure: secure}
	if u, err := url.Parse(d.Options.PublicURL); err == nil && u.Host != "" {
		fr.public = u
	}
	if secure {
		// Host-only, Path=/, Secure: no subdomain can set or shadow it.
		fr.cookie = "__Host-authgql_federation"
	}
	mux.Handle("GET /auth/{name}", noStore(http.HandlerFunc(fr.begin)))
	mux.Handle("GET /auth/{name}/callback", noStore(http.HandlerFunc(fr.callback)))
}

// begin starts a flow: ?redirect=<app path> is handed back to the app at
// the end; ?link=<ticket> (or ?link=1&ticket=<ticket>) makes it a link flow
// for the ticket's session instead of a sign-in.
func (fr *federationRoutes) begin(w http.ResponseWriter, r *http.Request) {
	ctx := auth.WithClient(r.Context(), client(r, fr.trusted))
	provider := r.PathValue("name")
	if !fr.known(provider) {
		writeError(w, http.StatusNotFound, string(auth.CodeNotFound), "no such identity provider")
		return
	}
	if to, ok := loopbackAlias(fr.public, r); ok {
		// The binding cookie must be set on the host the provider calls
		// back (PUBLIC_URL's): start over there.
		http.Redirect(w, r, to, http.StatusFound)
		return
	}
	if err := fr.f.Accounts.AllowFederation(ctx); err != nil {
		fr.refuse(w, r, err)
		return
	}
	q := r.URL.Query()
	var linkTo auth.LinkTarget
	if link := q.Get("link"); link != "" {
		ticket := link
		if link == "1" || link == "true" {
			ticket = q.Get("ticket")
		}
		to, err := fr.f.Accounts.TakeLinkTicket(ctx, ticket)
		if err != nil {
			code := errorInvalidState
			switch {
			case auth.ErrorCode(err) != auth.CodeInvalidAuthCode:
				fr.log.ErrorContext(ctx, "federation: link ticket check failed", "provider", provider, "err", err,
					"request_id", requestid.From(ctx))
				code = errorProviderError
			case auth.ErrorReason(err) == auth.ReasonExpired:
				code = errorExpired
			}
			fr.log.InfoContext(ctx, "federation: link refused", "provider", provider, "error", code,
				"request_id", requestid.From(ctx))
			fr.toApp(w, r, url.Values{"error": {code}})
			return
		}
		linkTo = to
	}
	st, err := fr.f.Flows.Begin(ctx, provider, federation.BeginOptions{Redirect: q.Get("redirect"),
		LinkUserID: linkTo.UserID, LinkSessionID: linkTo.SessionID})
	if errors.Is(err, federation.ErrUnknownProvider) {
		writeError(w, http.StatusNotFound, string(auth.CodeNotFound), "no such identity provider")
		return
	}
	if err != nil {
		fr.log.WarnContext(ctx, "federation: cannot begin", "provider", provider, "err", err,
			"request_id", requestid.From(ctx))
		fr.toApp(w, r, url.Values{"error": {string(federation.CodeOf(err))}})
		return
	}
	fr.setBinding(w, st.Binding)
	http.Redirect(w, r, st.URL, http.StatusFound)
}

// callback finishes a flow and sends the browser to the app with a one-time
// code (a link flow's with link=<provider>: the app's exchange, from the
// session that asked, links the identity) or error=<code>.
func (fr *federationRoutes) callback(w http.ResponseWriter, r *http.Request) {
	ctx := auth.WithClient(r.Context(), client(r, fr.trusted))
	provider := r.PathValue("name")
	if !fr.known(provider) {
		writeError(w, http.StatusNotFound, string(auth.CodeNotFound), "no such identity provider")
		return
	}
	if err := fr.f.Accounts.AllowFederation(ctx); err != nil {
		fr.refuse(w, r, err) // the state is not spent: the browser may retry
		return
	}
	binding := cookieValue(r, fr.cookie)
	fr.setBinding(w, "") // one flow per binding, whatever the outcome
	res, err := fr.f.Flows.Finish(ctx, provider, r.URL.Query(), binding)
	if errors.Is(err, federation.ErrUnknownProvider) {
		writeError(w, http.StatusNotFound, string(auth.CodeNotFound), "no such identity provider")
		return
	}
	if err != nil {
		code := federation.CodeOf(err)
		// err never holds a code, token or ID token (package federation).
		fr.log.InfoContext(ctx, "federation: sign-in refused", "provider", provider, "error", string(code), "err", err,
			"request_id", requestid.From(ctx))
		fr.toApp(w, r, url.Values{"error": {string(code)}})
		return
	}
	id := res.Identity
	out, err := fr.f.Accounts.SignInFederated(ctx, auth.FederatedIdentity{
		Provider: id.Provider, Subject: id.Subject, Email: id.Email, EmailVerified: id.EmailVerified,
		Name: id.Name, PreferredUsername: id.PreferredUsername,
	}, auth.LinkTarget{UserID: res.LinkUserID, SessionID: res.LinkSessionID})
	if err != nil {
		code := errorProviderError
		switch reason := auth.ErrorReason(err); reason {
		case errorEmailNotVerified, errorAccountExists, errorInvalidState:
			code = reason
		default:
			fr.log.ErrorContext(ctx, "federation: sign-in failed", "provider", provider, "err", err,
				"request_id", requestid.From(ctx))
		}
		fr.toApp(w, r, url.Values{"error": {code}})
		return
	}
	back := url.Values{"code": {out.Code}}
	if out.Link {
		back.Set("link", provider)
	}
	if res.Redirect != "" {
		back.Set("redirect", res.Redirect)
	}
	fr.toApp(w, r, back)
}

// loopbackAlias returns the same request on PUBLIC_URL's host when r came
// to another name of the loopback interface (a page on localhost, with
// PUBLIC_URL on 127.0.0.1, as in development): the flow's binding cookie is
// host-only, and the provider calls back on PUBLIC_URL's host. Only loopback
// names are rewritten, so a proxy that sends another Host never loops.
func loopbackAlias(public *url.URL, r *http.Request) (string, bool) {
	if public == nil || strings.EqualFold(r.Host, public.Host) || !isLoopback(r.Host) || !isLoopback(public.Host) {
		return "", false
	}
	to := *public
	to.Path, to.RawPath = r.URL.Path, ""
	to.RawQuery = r.URL.RawQuery
	return to.String(), true
}

// isLoopback reports whether hostport names this machine's loopback
// interface (localhost, 127.0.0.0/8, ::1).
func isLoopback(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

func (fr *federationRoutes) known(provider string) bool {
	for _, p := range fr.f.Flows.Providers() {
		if p.Name == provider {
			return true
		}
	}
	return false
}

// toApp redirects to the app's callback page: the only place this server
// sends a browser to, whatever the request said.
func (fr *federationRoutes) toApp(w http.ResponseWriter, r *http.Request, q url.Values) {
	http.Redirect(w, r, strings.TrimRight(fr.f.AppURL, "/")+"/auth/callback?"+q.Encode(), http.StatusFound)
}

// setBinding sets the binding cookie, or clears it when value is empty.
// SameSite=Lax: the provider's redirect back is a cross-site top-level
// navigation, which Strict would send without it.
func (fr *federationRoutes) setBinding(w http.ResponseWriter, value string) {
	c := &http.Cookie{Name: fr.cookie, Value: value, Path: "/", HttpOnly: true, Secure: fr.secure,
		SameSite: http.SameSiteLaxMode, MaxAge: bindingMaxAge}
	if value == "" {
		c.MaxAge = -1
	}
	http.SetCookie(w, c)
}

// refuse answers a rate-limited request (or another failure before the
// flow) with a GraphQL-shaped JSON error.
func (fr *federationRoutes) refuse(w http.ResponseWriter, r *http.Request, err error) {
	e, ok := errors.AsType[*auth.Error](err)
	if !ok || e.Code != auth.CodeRateLimited {
		fr.log.ErrorContext(r.Context(), "federation: refused", "err", err, "request_id", requestid.From(r.Context()))
		writeError(w, http.StatusInternalServerError, string(auth.CodeInternal), "internal error")
		return
	}
	w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	writeJSON(w, http.StatusTooManyRequests, map[string]any{
		"errors": []map[string]any{{"message": e.Message, "extensions": map[string]any{
			"code": string(e.Code), "reason": e.Reason, "retryAfter": e.RetryAfter}}},
	})
}
