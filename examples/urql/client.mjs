// urql for authgql: the documented @urql/exchange-auth recipe. Copy this file into your app.
//
//   npm install @urql/core @urql/exchange-auth
//   const { client, login, logout } = createClient({ url: "http://localhost:8080/query", storage: localStorage });
//   await login("alice", "correct horse battery");
//   const { data } = await client.query(gql`{ me { username } }`, {}).toPromise();
//
// Account recovery: requestPasswordReset(email) mails a link APP_URL/reset-password?token=…; the page behind it
// calls resetPassword(token, newPassword), which signs this client in. verifyEmail(token) serves the
// APP_URL/verify-email?token=… link. Failures throw urql's CombinedError (e.g. INVALID_EMAIL_TOKEN).
//
// Queries go by GET (urql's default preferGetMethod: "within-url-limit"), mutations by POST; the server
// serves both. Tested end to end against the real server by e2e/tests/urql.test.mjs and
// e2e/tests/recovery-urql.test.mjs.
import { Client, cacheExchange, fetchExchange, gql } from "@urql/core";
import { authExchange } from "@urql/exchange-auth";

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
const REFRESH = gql`mutation Refresh($t: String!) { refreshToken(token: $t) { accessToken refreshToken } }`;
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

  const auth = authExchange(async (utils) => ({
    // Every operation carries the current access token, if any.
    addAuthToOperation(operation) {
      const token = storage.getItem("accessToken");
      return token ? utils.appendHeaders(operation, { Authorization: `Bearer ${token}` }) : operation;
    },
    // Only UNAUTHENTICATED means "refresh": a failed login or refresh has its own code, so this never loops.
    didAuthError: (error) => error.graphQLErrors.some((e) => e.extensions?.code === "UNAUTHENTICATED"),
    // Called once for all operations that failed; they are retried once afterwards.
    async refreshAuth() {
      const refreshToken = storage.getItem("refreshToken");
      const result = refreshToken ? await utils.mutate(REFRESH, { t: refreshToken }) : null;
      if (result?.data?.refreshToken) {
        saveTokens(result.data.refreshToken);
      } else {
        clearTokens(); // INVALID_REFRESH_TOKEN (or never logged in): log out instead of looping
      }
    },
  }));

  const client = new Client({ url, fetch, exchanges: [cacheExchange, auth, fetchExchange] });

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
