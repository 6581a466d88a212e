package federation

import "slices"

// The presets' fixed addresses.
const (
	GoogleIssuer = "https://accounts.google.com"
	// MicrosoftIssuer is the common tenant: work, school and personal
	// Microsoft accounts.
	MicrosoftIssuer = "https://login.microsoftonline.com/common/v2.0"
	// MicrosoftTenantIssuer is what the common tenant's discovery document
	// names as its issuer; each token's iss has its tenant (tid) in place of
	// TenantPlaceholder.
	MicrosoftTenantIssuer = "https://login.microsoftonline.com/" + TenantPlaceholder + "/v2.0"
	DefaultGitHubURL      = "https://github.com"
	DefaultGitHubAPIURL   = "https://api.github.com"
)

// TenantPlaceholder stands for the tenant in a Provider's TenantIssuer.
const TenantPlaceholder = "{tenantid}"

// GitHubScopes are requested from GitHub when a provider names none: the
// profile, and the addresses with their verified flags.
var GitHubScopes = []string{"read:user", "user:email"}

// Preset returns the preset provider called name ("google", "microsoft",
// "github") with everything but its client credentials filled in; false when
// name is no preset.
func Preset(name string) (Provider, bool) {
	switch name {
	case "google":
		return Google(), true
	case "microsoft":
		return Microsoft(), true
	case "github":
		return GitHub(), true
	}
	return Provider{}, false
}

// Google is Sign in with Google (OpenID Connect, issuer
// https://accounts.google.com).
//
// At Google: in the Google Cloud console, APIs & Services → Credentials,
// create an OAuth client ID of type "Web application"; add
// PUBLIC_URL/auth/google/callback as an authorized redirect URI (https, or
// http://localhost for development). The scopes are openid, email and profile
// (the consent screen needs nothing more: they are non-sensitive). Set
// OIDC_GOOGLE_CLIENT_ID and OIDC_GOOGLE_CLIENT_SECRET to the client's ID and
// secret. Google asserts email_verified for its accounts.
func Google() Provider {
	return Provider{
		Name: "google", Kind: KindOIDC, Issuer: GoogleIssuer,
		Scopes: slices.Clone(DefaultScopes), DisplayName: "Google",
	}
}

// Microsoft is Sign in with Microsoft through the common tenant (work or
// school accounts of any Microsoft Entra tenant, and personal Microsoft
// accounts), OpenID Connect at https://login.microsoftonline.com/common/v2.0.
// The common tenant's discovery names the issuer
// https://login.microsoftonline.com/{tenantid}/v2.0: every ID token's iss
// is checked to be that with the token's own tid.
//
// At Microsoft: in the Microsoft Entra admin center, App registrations → New
// registration, supported account types "Accounts in any organizational
// directory and personal Microsoft accounts"; add a "Web" platform redirect
// URI PUBLIC_URL/auth/microsoft/callback; under Certificates & secrets create
// a client secret. The scopes are openid, email and profile. Set
// OIDC_MICROSOFT_CLIENT_ID to the Application (client) ID and
// OIDC_MICROSOFT_CLIENT_SECRET to the secret's value.
//
// Microsoft does not assert email_verified: an email counts as verified only
// when the token carries the optional claim xms_edov (email domain owner
// verified) as true, so add the optional claims email and xms_edov to the ID
// token under Token configuration. Without them a Microsoft identity has no
// verified email, which can neither create nor link an account. For one
// tenant only, configure a provider under another name with
// OIDC_NAME_ISSUER=https://login.microsoftonline.com/TENANT-ID/v2.0 instead.
func Microsoft() Provider {
	return Provider{
		Name: "microsoft", Kind: KindOIDC, Issuer: MicrosoftIssuer, TenantIssuer: MicrosoftTenantIssuer,
		Scopes: slices.Clone(DefaultScopes), DisplayName: "Microsoft",
	}
}

// GitHub is Sign in with GitHub: OAuth 2.0 (not OpenID Connect) with PKCE
// and state, then GitHub's API: GET /user (the subject is the numeric user
// id, never the login, which the user can change) and GET /user/emails (the
// primary address, verified only when GitHub says so).
//
// At GitHub: Settings → Developer settings → OAuth Apps → New OAuth App (or
// an organization's); the "Authorization callback URL" is
// PUBLIC_URL/auth/github/callback; generate a client secret. The scopes are
// read:user and user:email. Set OIDC_GITHUB_CLIENT_ID and
// OIDC_GITHUB_CLIENT_SECRET. For GitHub Enterprise Server set
// OIDC_GITHUB_URL=https://HOST and OIDC_GITHUB_API_URL=https://HOST/api/v3.
func GitHub() Provider {
	return Provider{
		Name: "github", Kind: KindGitHub, GitHubURL: DefaultGitHubURL, GitHubAPIURL: DefaultGitHubAPIURL,
		Scopes: slices.Clone(GitHubScopes), DisplayName: "GitHub",
	}
}
