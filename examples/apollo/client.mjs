// Apollo Client 4 for authgql: an auth link adds the access token, an error link refreshes it on
// UNAUTHENTICATED and retries the operation once; subscriptions go over a WebSocket (graphql-ws) whose
// connectionParams refresh the token on each (re)connect. Copy this file into your app.
//
//   npm install @apollo/client graphql rxjs graphql-ws        (Node 20: also ws, passed as webSocketImpl)
//   const { client, login, logout } = createClient({ url: "http://localhost:8080/query", storage: localStorage });
//   await login("alice", "correct horse battery");
//   const { data } = await client.query({ query: gql`{ me { username } }` });
//   client.subscribe({ query: SECURITY_EVENTS }).subscribe({ next: ({ data }) => … });   // or securityEvents()
//
// Account recovery: requestPasswordReset(email) mails a link APP_URL/reset-password?token=…; the page behind it
// calls resetPassword(token, newPassword), which signs this client in. verifyEmail(token) serves the
// APP_URL/verify-email?token=… link. Failures reject with CombinedGraphQLErrors (e.g. INVALID_EMAIL_TOKEN).
//
// Tested end to end against the real server by e2e/tests/apollo.test.mjs, e2e/tests/recovery-apollo.test.mjs
// and e2e/tests/subscriptions*.test.mjs.
import { ApolloClient, ApolloLink, CombinedGraphQLErrors, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { SetContextLink } from "@apollo/client/link/context";
import { ErrorLink } from "@apollo/client/link/error";
import { GraphQLWsLink } from "@apollo/client/link/subscriptions";
import { getMainDefinition } from "@apollo/client/utilities";
import { createClient as createWsClient } from "graphql-ws";
import { from, of, switchMap } from "rxjs";

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
const LOGOUT = gql`mutation Logout { logout }`;
const REQUEST_PASSWORD_RESET = gql`mutation RequestPasswordReset($email: String!) {
  requestPasswordReset(email: $email) }`;
const RESET_PASSWORD = gql`mutation ResetPassword($token: String!, $newPassword: String!) {
  resetPassword(token: $token, newPassword: $newPassword) { ${AUTH_FIELDS} } }`;
const VERIFY_EMAIL = gql`mutation VerifyEmail($token: String!) {
  verifyEmail(token: $token) { id username email emailVerified } }`;

// A subscription's failure as GraphQLWsLink passes it on: GraphQL errors (an `error` message) or a socket problem.
function asError(err) {
  if (err instanceof Error) return err;
  if (Array.isArray(err)) return new CombinedGraphQLErrors({ errors: err });
  if (err && "code" in err && "reason" in err) return new Error(`Socket closed with event ${err.code} ${err.reason}`);
  return new Error("WebSocket error");
}

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

  // Every request carries the current access token; an empty header means anonymous.
  const authLink = new SetContextLink(({ headers }) => {
    const token = storage.getItem("accessToken");
    return { headers: { ...headers, authorization: token ? `Bearer ${token}` : "" } };
  });

  // refreshToken rotates the pair. Sent outside the link chain, so it never triggers the error link itself.
  // Concurrent failures share one refresh. Resolves false when the session is over (the tokens are dropped).
  let refreshing = null;
  function refresh() {
    refreshing ??= (async () => {
      const refreshToken = storage.getItem("refreshToken");
      if (!refreshToken) return false;
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          query: "mutation Refresh($t: String!) { refreshToken(token: $t) { accessToken refreshToken } }",
          variables: { t: refreshToken },
        }),
      });
      const body = await res.json();
      if (!body.data?.refreshToken) {
        clearTokens(); // INVALID_REFRESH_TOKEN (revoked, expired, reused, unknown): log in again, never retry
        return false;
      }
      saveTokens(body.data.refreshToken);
      return true;
    })().finally(() => { refreshing = null; });
    return refreshing;
  }

  // On UNAUTHENTICATED: refresh, then retry once (forward() does not pass through this link again).
  // If the refresh fails, the original UNAUTHENTICATED result goes to the caller: show the login screen.
  const errorLink = new ErrorLink(({ error, result, operation, forward }) => {
    if (CombinedGraphQLErrors.is(error) && error.errors.some((e) => e.extensions?.code === "UNAUTHENTICATED")) {
      const token = storage.getItem("accessToken");
      if (token && operation.getContext().headers?.authorization !== `Bearer ${token}`) {
        return forward(operation); // refreshed meanwhile by another request: just retry
      }
      return from(refresh()).pipe(switchMap((ok) => (ok ? forward(operation) : of(result))));
    }
  });

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
        if (!(await refresh())) throw new SessionEndedError();
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

  const httpLink = ApolloLink.from([errorLink, authLink, new HttpLink({ uri: url, fetch })]);
  const isSubscription = ({ query }) => {
    const definition = getMainDefinition(query);
    return definition.kind === "OperationDefinition" && definition.operation === "subscription";
  };
  // GraphQLWsLink reads the global WebSocket when a subscription fails with anything but an Error or a close
  // event, which Node 20 lacks ("WebSocket is not defined" would close the whole socket): hand it Errors, made
  // as it would make them itself.
  const wsLink = wsClient && new GraphQLWsLink({
    subscribe: (payload, sink) => wsClient.subscribe(payload, { ...sink, error: (err) => sink.error(asError(err)) }),
  });
  const client = new ApolloClient({
    // ApolloLink.split is Apollo 4's name for split(): subscriptions to the socket, the rest over HTTP.
    link: wsLink ? ApolloLink.split(isSubscription, wsLink, httpLink) : httpLink,
    cache: new InMemoryCache(),
  });

  async function mutate(mutation, variables, field) {
    const { data } = await client.mutate({ mutation, variables });
    return data[field];
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
    // (SessionEndedError: log in again). Returns a function that unsubscribes.
    securityEvents({ next, error = () => {} }) {
      const subscription = client.subscribe({ query: SECURITY_EVENTS }).subscribe({
        next: (result) => (result.error ? error(result.error) : next(result.data.securityEvents)),
        error,
      });
      return () => subscription.unsubscribe();
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
    // Ends this session on the server, then forgets the tokens and the cached data.
    async logout() {
      try {
        await client.mutate({ mutation: LOGOUT });
      } finally {
        clearTokens();
        await client.clearStore();
      }
    },
  };
}
