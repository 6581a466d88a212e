// urql for authgql: the documented @urql/exchange-auth recipe. Copy this file into your app.
//
//   npm install @urql/core @urql/exchange-auth
//   const { client, login, logout } = createClient({ url: "http://localhost:8080/query", storage: localStorage });
//   await login("alice", "correct horse battery");
//   const { data } = await client.query(gql`{ me { username } }`, {}).toPromise();
//
// Queries go by GET (urql's default preferGetMethod: "within-url-limit"), mutations by POST; the server
// serves both. Tested end to end against the real server by e2e/tests/urql.test.mjs.
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

  async function signIn(mutation, input, field) {
    const result = await client.mutation(mutation, { input }).toPromise();
    if (result.error) throw result.error;
    saveTokens(result.data[field]);
    return result.data[field].user;
  }

  return {
    client,
    storage,
    register: (input) => signIn(REGISTER, input, "register"),
    login: (username, password) => signIn(LOGIN, { username, password }, "login"),
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
