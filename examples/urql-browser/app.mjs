// urql 6 in the browser against authgql in cookie mode (AUTH_COOKIE=on), with the documented @urql/exchange-auth
// recipe. The access token lives only in this module's memory; the refresh token lives in an HttpOnly cookie that
// no script on the page can read.
//
//   - login answers { accessToken, refreshToken: null } and sets the cookie (the request needs credentials);
//   - on page load, refreshToken with no argument turns the cookie into a new access token, so the session
//     survives a reload with nothing stored in localStorage or sessionStorage;
//   - on UNAUTHENTICATED, authExchange's refreshAuth calls refreshToken (no argument) and retries once;
//   - logout ends the session on the server, which clears the cookie; then the token is forgotten;
//   - "Sign in with …" buttons, one per identity provider the server lists (providers), send the browser to
//     GET /auth/NAME on the API; the server brings it back to APP_URL/auth/callback?code=… (this page again), and
//     exchangeAuthCode turns the one-time code into a session like login's (docs/federation.md).
//
// The API URL comes from ?api=…, else from <meta name="authgql-api"> in index.html (a provider sends the browser
// back to /auth/callback without the ?api of the page it left). The page and the API must be the same site
// (localhost:5173 and localhost:8080, or app.example.com and auth.example.com) and the page's origin must be in
// the server's CORS_ALLOWED_ORIGINS. Queries go by GET, mutations by POST. Bundle with esbuild (README.md).
// Tested in Chromium by e2e/tests/browser-cookie.test.mjs.
import { Client, CombinedError, cacheExchange, fetchExchange, gql } from "@urql/core";
import { authExchange } from "@urql/exchange-auth";

const API_URL = new URLSearchParams(location.search).get("api")
  ?? document.querySelector('meta[name="authgql-api"]')?.content ?? "http://localhost:8080/query";

// The only copy of the access token: never localStorage, sessionStorage or document.cookie.
let accessToken = null;

// refreshToken is asked for only to notice a server that is not in cookie mode (it would not be null).
const LOGIN = gql`mutation Login($input: LoginInput!) {
  login(input: $input) { accessToken expiresAt refreshToken user { id username } } }`;
const ME = gql`query Me { me { id username } }`;
const LOGOUT = gql`mutation Logout { logout }`;
const PROVIDERS = gql`query Providers { providers { name displayName } }`;
const EXCHANGE = gql`mutation ExchangeAuthCode($code: String!) {
  exchangeAuthCode(code: $code) { accessToken expiresAt refreshToken user { id username } } }`;
// No argument: the server reads the cookie, rotates it (a new Set-Cookie) and answers with a new access token.
const REFRESH = gql`mutation Refresh { refreshToken { accessToken expiresAt user { id username } } }`;

const auth = authExchange(async (utils) => ({
  // Every operation carries the current access token, if any.
  addAuthToOperation(operation) {
    return accessToken ? utils.appendHeaders(operation, { Authorization: `Bearer ${accessToken}` }) : operation;
  },
  // Only UNAUTHENTICATED means "refresh": a failed login or refresh has its own code, so this never loops.
  didAuthError: (error) => error.graphQLErrors.some((e) => e.extensions?.code === "UNAUTHENTICATED"),
  // Called once for all operations that failed; they are retried once afterwards. utils.mutate bypasses this
  // exchange and goes through fetchExchange, so it carries the cookie (fetchOptions below).
  async refreshAuth() {
    const result = await utils.mutate(REFRESH, {});
    // INVALID_REFRESH_TOKEN (missing, expired, revoked): signed out; the retried operation fails for good.
    accessToken = result.data?.refreshToken?.accessToken ?? null;
  },
}));

const client = new Client({
  url: API_URL,
  // Cross-origin requests carry and accept cookies only with credentials: "include".
  fetchOptions: { credentials: "include" },
  exchanges: [cacheExchange, auth, fetchExchange],
});

async function mutate(mutation, variables = {}) {
  const result = await client.mutation(mutation, variables).toPromise();
  if (result.error) throw result.error;
  return result.data;
}

// Resolves the user, or null when the cookie holds no live session.
async function restore() {
  const result = await client.mutation(REFRESH, {}).toPromise();
  accessToken = result.data?.refreshToken?.accessToken ?? null;
  if (!accessToken && result.error?.networkError) throw result.error;
  return result.data?.refreshToken?.user ?? null;
}

// Keeps the access token of a login or exchangeAuthCode answer (the refresh token is in the cookie).
function signedIn(payload) {
  if (payload.refreshToken) {
    // Never keep it: a token in JavaScript is what cookie mode exists to avoid.
    console.warn("authgql answered with the refresh token in the body: AUTH_COOKIE is off or this origin is not "
      + "in CORS_ALLOWED_ORIGINS, so the sign-in will not survive a reload");
  }
  accessToken = payload.accessToken;
}

async function login(username, password) {
  const data = await mutate(LOGIN, { input: { username, password } });
  signedIn(data.login);
}

// The one-time code of APP_URL/auth/callback?code=… (60 seconds, single use) for a session. A link code
// (…&link=NAME, after beginLinkIdentity) is accepted only with this session's access token: restore it first.
async function exchangeAuthCode(code, link) {
  if (link && !accessToken) await restore();
  const data = await mutate(EXCHANGE, { code });
  signedIn(data.exchangeAuthCode);
}

// Where GET /auth/NAME starts a provider's sign-in; the server hands `redirect` (this page's path) back.
function signInUrl(provider) {
  const url = new URL(`auth/${encodeURIComponent(provider)}`, API_URL); // next to /query: PUBLIC_URL/auth/NAME
  url.searchParams.set("redirect", location.pathname + location.search);
  return url.href;
}

async function me() {
  const result = await client.query(ME, {}, { requestPolicy: "network-only" }).toPromise();
  if (result.error) throw result.error;
  return result.data.me;
}

async function logout() {
  try {
    await mutate(LOGOUT); // the answer clears the cookie
  } finally {
    accessToken = null;
  }
}

// --- the page ---

const $ = (id) => document.getElementById(id);

function show(user) {
  document.body.dataset.state = user ? "signed-in" : "signed-out";
  $("status").textContent = user ? "" : "Signed out.";
  $("login-form").hidden = Boolean(user);
  $("providers").hidden = Boolean(user);
  $("account").hidden = !user;
  $("username").textContent = user?.username ?? "";
  $("user-id").textContent = user?.id ?? "";
}

const unauthenticated = (err) => err instanceof CombinedError
  && err.graphQLErrors.some((e) => e.extensions?.code === "UNAUTHENTICATED");

// Runs a UI action; an UNAUTHENTICATED that survived the refresh means the session is over.
async function act(action) {
  $("error").textContent = "";
  try {
    await action();
  } catch (err) {
    $("error").textContent = err instanceof CombinedError
      ? err.graphQLErrors.map((e) => `${e.extensions?.code ?? "ERROR"}: ${e.message}`).join("; ") || err.message
      : String(err?.message ?? err);
    if (unauthenticated(err)) {
      accessToken = null;
      show(null);
    }
  }
}

// One button per provider; a top-level navigation, not fetch: the provider's pages need the whole window.
async function showProviders() {
  const result = await client.query(PROVIDERS, {}).toPromise();
  if (result.error) throw result.error;
  $("providers").replaceChildren(...result.data.providers.map(({ name, displayName }) => {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = `Sign in with ${displayName}`;
    button.addEventListener("click", () => location.assign(signInUrl(name)));
    return button;
  }));
}

// The error of APP_URL/auth/callback?error=… (docs/federation.md), for people.
const SIGN_IN_ERRORS = {
  access_denied: "you cancelled at the provider",
  invalid_state: "the sign-in was already used, or began in another browser; try again",
  expired: "the sign-in took too long; try again",
  provider_error: "the provider could not be reached or its answer was refused; try again later",
  email_not_verified: "the provider did not confirm your email address",
  account_exists: "an account has this email address: sign in to it, then link the provider from there",
};

// An app-relative path ("/…", never "//host" or "/\host": browsers read both as another host), or null. The
// server sends only those, but anyone can craft a link to /auth/callback.
function appPath(path) {
  if (!path?.startsWith("/") || path.startsWith("//") || /[\\\u0000-\u001f]/.test(path)) return null;
  const url = new URL(path, location.origin);
  return url.origin === location.origin ? url.pathname + url.search + url.hash : null;
}

$("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  act(async () => {
    await login(form.get("username"), form.get("password"));
    event.target.reset();
    show(await me());
  });
});
$("me-button").addEventListener("click", () => act(async () => show(await me())));
$("logout-button").addEventListener("click", () => act(async () => {
  try {
    await logout();
  } finally {
    show(null);
  }
}));

// Test hook for e2e/tests/browser-cookie.test.mjs: plants a stale access token, as if the tab had been left open
// past ACCESS_TOKEN_TTL. It can replace the token, never read it. Leave it out of your app.
window.__example = { setAccessToken: (token) => { accessToken = token; } };

// A provider's return: APP_URL/auth/callback?code=… or ?error=…, then &redirect=<the path the sign-in began on>.
// Take the code out of the address bar (and the history) at once, and go on at that path.
const callback = location.pathname.endsWith("/auth/callback") ? new URLSearchParams(location.search) : null;
if (callback) {
  const home = location.pathname.slice(0, -"auth/callback".length);
  history.replaceState(null, "", appPath(callback.get("redirect")) ?? home);
}

showProviders().catch((err) => console.warn("providers:", err));

// A reload: restore the session from the cookie, silently; after a provider, exchange its code instead.
act(async () => {
  if (callback?.get("code")) {
    await exchangeAuthCode(callback.get("code"), callback.get("link"));
    show(await me());
    return;
  }
  const user = await restore();
  show(user ? await me() : null);
  if (callback?.get("error")) {
    const code = callback.get("error");
    $("error").textContent = `Sign-in failed (${code}): ${SIGN_IN_ERRORS[code] ?? "try again"}`;
  }
}).finally(() => {
  if (document.body.dataset.state === "loading") show(null);
});
