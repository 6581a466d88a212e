// Apollo Client 4 in the browser against authgql in cookie mode (AUTH_COOKIE=on). The access token lives only in
// this module's memory; the refresh token lives in an HttpOnly cookie that no script on the page can read.
//
//   - login answers { accessToken, refreshToken: null } and sets the cookie (the request needs credentials);
//   - on page load, refreshToken with no argument turns the cookie into a new access token, so the session
//     survives a reload with nothing stored in localStorage or sessionStorage;
//   - on UNAUTHENTICATED the error link refreshes once and retries the operation;
//   - logout ends the session on the server, which clears the cookie; then the token is forgotten;
//   - "Sign in with …" buttons, one per identity provider the server lists (providers), send the browser to
//     GET /auth/NAME on the API; the server brings it back to APP_URL/auth/callback?code=… (this page again), and
//     exchangeAuthCode turns the one-time code into a session like login's (docs/federation.md).
//
// The API URL comes from ?api=…, else from <meta name="authgql-api"> in index.html (a provider sends the browser
// back to /auth/callback without the ?api of the page it left). The page and the API must be the same site
// (localhost:5173 and localhost:8080, or app.example.com and auth.example.com) and the page's origin must be in
// the server's CORS_ALLOWED_ORIGINS. Bundle with esbuild (README.md). Tested in Chromium by
// e2e/tests/browser-cookie.test.mjs.
import { ApolloClient, ApolloLink, CombinedGraphQLErrors, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { SetContextLink } from "@apollo/client/link/context";
import { ErrorLink } from "@apollo/client/link/error";
import { from, of, switchMap } from "rxjs";

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
const REFRESH = "mutation Refresh { refreshToken { accessToken expiresAt user { id username } } }";

// refreshToken without an argument: the server reads the cookie, rotates it (a new Set-Cookie) and answers with
// a new access token. Plain fetch, outside the link chain, so it never triggers the error link itself; concurrent
// callers share one request. Resolves the user, or null when there is no session (INVALID_REFRESH_TOKEN:
// missing, expired, revoked — sign in again, never retry).
let refreshing = null;
function refresh() {
  refreshing ??= (async () => {
    const res = await fetch(API_URL, {
      method: "POST",
      credentials: "include", // send the cookie and accept the rotated one
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: REFRESH }),
    });
    const payload = (await res.json()).data?.refreshToken;
    accessToken = payload?.accessToken ?? null;
    return payload?.user ?? null;
  })().finally(() => { refreshing = null; });
  return refreshing;
}

// Every request carries the current access token; an empty header means anonymous.
const authLink = new SetContextLink(({ headers }) => ({
  headers: { ...headers, authorization: accessToken ? `Bearer ${accessToken}` : "" },
}));

// On UNAUTHENTICATED: refresh through the cookie, then retry once (forward() does not pass through this link
// again). If the refresh fails, the original error goes to the caller: show the login form.
const errorLink = new ErrorLink(({ error, result, operation, forward }) => {
  if (CombinedGraphQLErrors.is(error) && error.errors.some((e) => e.extensions?.code === "UNAUTHENTICATED")) {
    if (accessToken && operation.getContext().headers?.authorization !== `Bearer ${accessToken}`) {
      return forward(operation); // refreshed meanwhile by another request: just retry
    }
    return from(refresh()).pipe(switchMap((user) => (user ? forward(operation) : of(result))));
  }
});

const client = new ApolloClient({
  link: ApolloLink.from([errorLink, authLink, new HttpLink({ uri: API_URL, credentials: "include" })]),
  cache: new InMemoryCache(),
});

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
  const { data } = await client.mutate({ mutation: LOGIN, variables: { input: { username, password } } });
  signedIn(data.login);
}

// The one-time code of APP_URL/auth/callback?code=… (60 seconds, single use) for a session. A link code
// (…&link=NAME, after beginLinkIdentity) is accepted only with this session's access token: restore it first.
async function exchangeAuthCode(code, link) {
  if (link && !accessToken) await refresh();
  const { data } = await client.mutate({ mutation: EXCHANGE, variables: { code } });
  signedIn(data.exchangeAuthCode);
}

// Where GET /auth/NAME starts a provider's sign-in; the server hands `redirect` (this page's path) back.
function signInUrl(provider) {
  const url = new URL(`auth/${encodeURIComponent(provider)}`, API_URL); // next to /query: PUBLIC_URL/auth/NAME
  url.searchParams.set("redirect", location.pathname + location.search);
  return url.href;
}

async function me() {
  const { data } = await client.query({ query: ME, fetchPolicy: "network-only" });
  return data.me;
}

async function logout() {
  try {
    await client.mutate({ mutation: LOGOUT }); // the answer clears the cookie
  } finally {
    accessToken = null;
    await client.clearStore();
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

const describe = (err) => (CombinedGraphQLErrors.is(err)
  ? err.errors.map((e) => `${e.extensions?.code ?? "ERROR"}: ${e.message}`).join("; ")
  : String(err?.message ?? err));

// Runs a UI action; an UNAUTHENTICATED that survived the refresh means the session is over.
async function act(action) {
  $("error").textContent = "";
  try {
    await action();
  } catch (err) {
    $("error").textContent = describe(err);
    if (CombinedGraphQLErrors.is(err) && err.errors.some((e) => e.extensions?.code === "UNAUTHENTICATED")) {
      accessToken = null;
      show(null);
    }
  }
}

// One button per provider; a top-level navigation, not fetch: the provider's pages need the whole window.
async function showProviders() {
  const { data } = await client.query({ query: PROVIDERS });
  $("providers").replaceChildren(...data.providers.map(({ name, displayName }) => {
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
  const user = await refresh();
  show(user ? await me() : null);
  if (callback?.get("error")) {
    const code = callback.get("error");
    $("error").textContent = `Sign-in failed (${code}): ${SIGN_IN_ERRORS[code] ?? "try again"}`;
  }
}).finally(() => {
  if (document.body.dataset.state === "loading") show(null);
});
