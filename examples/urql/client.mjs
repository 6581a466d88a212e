// urql for authgql: the documented @urql/exchange-auth recipe, and subscriptions over a WebSocket (urql's
// subscriptionExchange with graphql-ws) whose connectionParams refresh the token on each (re)connect. Copy this
// file into your app.
//
//   npm install @urql/core @urql/exchange-auth graphql-ws       (Node 20: also ws, passed as webSocketImpl)
//   const { client, login, logout } = createClient({ url: "http://localhost:8080/query", storage: localStorage });
//   await login("alice", "correct horse battery");
//   const { data } = await client.query(gql`{ me { username } }`, {}).toPromise();
//   client.subscription(SECURITY_EVENTS, {}).subscribe(({ data, error }) => …);   // or securityEvents()
//
// Account recovery: requestPasswordReset(email) mails a link APP_URL/reset-password?token=…; the page behind it
// calls resetPassword(token, newPassword), which signs this client in. verifyEmail(token) serves the
// APP_URL/verify-email?token=… link. Failures throw urql's CombinedError (e.g. INVALID_EMAIL_TOKEN).
//
// Queries go by GET (urql's default preferGetMethod: "within-url-limit"), mutations by POST; the server
// serves both. Tested end to end against the real server by e2e/tests/urql.test.mjs,
// e2e/tests/recovery-urql.test.mjs and e2e/tests/subscriptions*.test.mjs.
import { Client, cacheExchange, fetchExchange, gql, subscriptionExchange } from "@urql/core";
import { authExchange } from "@urql/exchange-auth";
import { createClient as createWsClient } from "graphql-ws";

export { gql };

/** The account's live security events (a sign-in elsewhere, a session ended, …); needs a signed-in client. */
export const SECURITY_EVENTS = gql`subscription SecurityEvents {
  securityEvents { type at sessionId current userAgent ip } }`;

/** What a subscription ends with when the session is over and the refresh failed: show the login screen. */
export class SessionEndedError extends Error {
  name = "SessionEndedError";
  constructor() { super("the session has ended: log in again"); }
}

// True when a JWT has under a tenth of its lifetime (at most 5 s) left. Read, not verified: the server verifies.
function expiresSoon(token) {
  try {
    const { iat, exp } = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
    return exp - Date.now() / 1000 < Math.min(5, (exp - iat) / 10);
  } catch {
    return true;
  }
}

/** Where the tokens live: anything with getItem/setItem/removeItem (localStorage in a browser). */
export function memoryStorage() {
  const map = new Map();
  return {
    getItem: (key) => map.get(key) ?? null,
    setItem: (key, value) => void map.set(key, String(value)),
    removeItem: (key) => void map.delete(key),
  };
}

const AUTH_FIELDS = "accessToken refreshToken user { id username email }";
const LOGIN = gql`mutation Login($input: LoginInput!) { login(input: $input) { ${AUTH_FIELDS} } }`;
const REGISTER = gql`mutation Register($input: RegisterInput!) { register(input: $input) { ${AUTH_FIELDS} } }`;
const REFRESH = gql`mutation Refresh($t: String!) { refreshToken(token: $t) { accessToken refreshToken } }`;
const LOGOUT = gql`mutation Logout { logout }`;
const REQUEST_PASSWORD_RESET = gql`mutation RequestPasswordReset($email: String!) {
  requestPasswordReset(email: $email) }`;
const RESET_PASSWORD = gql`mutation ResetPassword($token: String!, $newPassword: String!) {
  resetPassword(token: $token, newPassword: $newPassword) { ${AUTH_FIELDS} } }`;
const VERIFY_EMAIL = gql`mutation VerifyEmail($token: String!) {
  verifyEmail(token: $token) { id username email emailVerified } }`;

/**
 * url: the GraphQL endpoint (http[s]://…/query); wsUrl: the same path as ws[s]:// (derived from url).
 * webSocketImpl: the WebSocket class; a browser's (and Node 22's) global one by default. Node 20 has none: pass
 * the `ws` package's. Without one the client is HTTP-only (no subscriptions).
 */
export function createClient({
  url, wsUrl = url.replace(/^http/, "ws"), storage = memoryStorage(), fetch = globalThis.fetch,
  webSocketImpl = globalThis.WebSocket,
}) {
  const saveTokens = ({ accessToken, refreshToken }) => {
    storage.setItem("accessToken", accessToken);
    storage.setItem("refreshToken", refreshToken);
  };
  const clearTokens = () => {
    storage.removeItem("accessToken");
    storage.removeItem("refreshToken");
  };

  // One refresh at a time, shared by authExchange (HTTP) and the socket: two concurrent refreshes would both
  // spend the same refresh token. `send` runs the mutation; resolves false when the session is over.
  let refreshing = null;
  function refresh(send) {
    refreshing ??= (async () => {
      const refreshToken = storage.getItem("refreshToken");
      const result = refreshToken ? await send(REFRESH, { t: refreshToken }) : null;
      if (result?.data?.refreshToken) {
        saveTokens(result.data.refreshToken);
        return true;
      }
      clearTokens(); // INVALID_REFRESH_TOKEN (or never logged in): log out instead of looping
      return false;
    })().finally(() => { refreshing = null; });
    return refreshing;
  }

  const auth = authExchange(async (utils) => ({
    // Every operation carries the current access token, if any.
    addAuthToOperation(operation) {
      const token = storage.getItem("accessToken");
      return token ? utils.appendHeaders(operation, { Authorization: `Bearer ${token}` }) : operation;
    },
    // Only UNAUTHENTICATED means "refresh": a failed login or refresh has its own code, so this never loops.
    didAuthError: (error) => error.graphQLErrors.some((e) => e.extensions?.code === "UNAUTHENTICATED"),
    // Called once for all operations that failed; they are retried once afterwards.
    // utils.mutate bypasses this exchange's queue (a refresh must not wait for itself).
    async refreshAuth() {
      await refresh((query, variables) => utils.mutate(query, variables));
    },
  }));

  // Subscriptions: graphql-ws authenticates the socket in connection_init, never by header or URL. It calls
  // connectionParams on every (re)connect, so that is where the token is refreshed: when it (almost) expired, or
  // when the server closed the last socket with 4403 (token_expired, session_revoked, token_invalid: "come back
  // with a fresh token"; graphql-ws retries 4403). If the refresh fails (INVALID_REFRESH_TOKEN), connectionParams
  // throws SessionEndedError and shouldRetry returns false for it: the client gives up and every subscription
  // ends with that error, instead of reconnecting in a loop. Network errors are retried (retryAttempts, 5).
  let lastClose = null;
  const wsClient = webSocketImpl ? createWsClient({
    url: wsUrl,
    webSocketImpl,
    async connectionParams() {
      const token = storage.getItem("accessToken");
      if (lastClose?.code === 4403 || (token && expiresSoon(token))) {
        // Sent through the client (fetchExchange), not the socket that is still connecting.
        if (!(await refresh((query, variables) => client.mutation(query, variables).toPromise()))) {
          throw new SessionEndedError();
        }
      }
      const fresh = storage.getItem("accessToken");
      return fresh ? { Authorization: `Bearer ${fresh}` } : {}; // no token: anonymous (public operations only)
    },
    shouldRetry: (errOrCloseEvent) => !(errOrCloseEvent instanceof SessionEndedError),
    // After a 4403 the fix is a refresh, not time: come back at once (with jitter). Otherwise back off.
    retryWait: (retries) => new Promise((resolve) => setTimeout(resolve,
      lastClose?.code === 4403 && retries === 0 ? 100 + Math.random() * 400 : 1000 * 2 ** retries + Math.random() * 3000)),
    on: {
      closed: (event) => { lastClose = event; },
      connected: () => { lastClose = null; },
    },
  }) : null;

  // urql's documented graphql-ws recipe: subscription operations go to the socket, the rest to fetchExchange.
  const subscriptions = wsClient && subscriptionExchange({
    forwardSubscription(request) {
      const input = { ...request, query: request.query || "" };
      return { subscribe: (sink) => ({ unsubscribe: wsClient.subscribe(input, sink) }) };
    },
  });
  const client = new Client({
    url, fetch, exchanges: [cacheExchange, auth, fetchExchange, ...(subscriptions ? [subscriptions] : [])],
  });

  async function mutate(mutation, variables, field) {
    const result = await client.mutation(mutation, variables).toPromise();
    if (result.error) throw result.error;
    return result.data[field];
  }

  async function signIn(mutation, variables, field) {
    const payload = await mutate(mutation, variables, field);
    saveTokens(payload);
    return payload.user;
  }

  return {
    client,
    storage,
    // The graphql-ws client (null without a WebSocket): wsClient.on("closed", …) to watch the socket,
    // wsClient.dispose() to close it.
    wsClient,
    // Calls next(event) for each security event; error(err) once when the subscription ends with an error
    // (err.networkError is a SessionEndedError: log in again). Returns a function that unsubscribes.
    securityEvents({ next, error = () => {} }) {
      const { unsubscribe } = client.subscription(SECURITY_EVENTS, {}).subscribe((result) => {
        if (result.error) error(result.error);
        else if (result.data) next(result.data.securityEvents);
      });
      return unsubscribe;
    },
    register: (input) => signIn(REGISTER, { input }, "register"),
    login: (username, password) => signIn(LOGIN, { input: { username, password } }, "login"),
    // Always true, whether or not an account has the address: the server mails the link in the background.
    requestPasswordReset: (email) => mutate(REQUEST_PASSWORD_RESET, { email }, "requestPasswordReset"),
    // The token of the mailed link and a new password: every other session of the account ends, and this
    // client is signed in with the new session (like login).
    resetPassword: (token, newPassword) => signIn(RESET_PASSWORD, { token, newPassword }, "resetPassword"),
    // The token of the verification link; needs no sign-in (the link is often opened on another device).
    verifyEmail: (token) => mutate(VERIFY_EMAIL, { token }, "verifyEmail"),
    // Ends this session on the server, then forgets the tokens.
    async logout() {
      try {
        const result = await client.mutation(LOGOUT, {}).toPromise();
        if (result.error) throw result.error;
      } finally {
        clearTokens();
      }
    },
  };
}
