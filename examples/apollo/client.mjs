// Apollo Client 4 for authgql: an auth link adds the access token, an error link refreshes it on
// UNAUTHENTICATED and retries the operation once. Copy this file into your app.
//
//   npm install @apollo/client graphql rxjs
//   const { client, login, logout } = createClient({ url: "http://localhost:8080/query", storage: localStorage });
//   await login("alice", "correct horse battery");
//   const { data } = await client.query({ query: gql`{ me { username } }` });
//
// Account recovery: requestPasswordReset(email) mails a link APP_URL/reset-password?token=…; the page behind it
// calls resetPassword(token, newPassword), which signs this client in. verifyEmail(token) serves the
// APP_URL/verify-email?token=… link. Failures reject with CombinedGraphQLErrors (e.g. INVALID_EMAIL_TOKEN).
//
// Tested end to end against the real server by e2e/tests/apollo.test.mjs and
// e2e/tests/recovery-apollo.test.mjs.
import { ApolloClient, ApolloLink, CombinedGraphQLErrors, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { SetContextLink } from "@apollo/client/link/context";
import { ErrorLink } from "@apollo/client/link/error";
import { from, of, switchMap } from "rxjs";

export { gql };

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

export function createClient({ url, storage = memoryStorage(), fetch = globalThis.fetch }) {
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

  const client = new ApolloClient({
    link: ApolloLink.from([errorLink, authLink, new HttpLink({ uri: url, fetch })]),
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
