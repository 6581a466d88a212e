// urql (examples/urql/client.mjs: @urql/core + @urql/exchange-auth) against the real server.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createClient, gql } from '../../examples/urql/client.mjs';
import {
  errorCodes, errorReasons, forgeExpiredAccessToken, graphql, recordingFetch, startServer, uniqueUser,
} from '../support/server.mjs';

const ME = gql`query Me { me { id username email } }`;

let server;
// HS256: these tests are about the clients' refresh logic, and they hand the client an expired token forged
// with JWT_SECRET, which is the server's own token format only in HS256 mode. Expiry of real ES256 tokens is
// tested in jwks-jose.test.mjs.
before(async () => { server = await startServer({ env: { JWT_ALGORITHM: 'HS256' } }); });
after(async () => { await server?.stop(); });

// `me` through the client, never from urql's cache.
const me = (client) => client.query(ME, {}, { requestPolicy: 'network-only' }).toPromise();
const kind = (call) => (call.query.includes('refreshToken') ? 'refresh' : 'me');
const unauthenticated = (result) => result.error?.graphQLErrors.some((e) => e.extensions?.code === 'UNAUTHENTICATED');

async function loggedInClient(prefix = 'urql') {
  const rec = recordingFetch();
  const app = createClient({ url: server.graphqlUrl, fetch: rec.fetch });
  const user = uniqueUser(prefix);
  await app.register(user);
  await app.login(user.username, user.password);
  return { rec, app, user };
}

test('urql: register, login and me: queries by GET, mutations by POST, token in the header', async () => {
  const { rec, app, user } = await loggedInClient();
  assert.deepEqual(rec.calls.map((c) => c.method), ['POST', 'POST']);

  rec.reset();
  const result = await me(app.client);
  assert.equal(result.error, undefined, `${result.error}`);
  assert.equal(result.data.me.username, user.username);
  assert.equal(result.data.me.email, user.email);
  assert.equal(rec.calls.length, 1);
  assert.equal(rec.calls[0].method, 'GET', 'urql sends queries by GET (preferGetMethod: within-url-limit)');
  assert.equal(rec.calls[0].authorization, `Bearer ${app.storage.getItem('accessToken')}`);
});

test('urql: an expired access token is refreshed through authExchange and the query retried transparently', async () => {
  const { rec, app, user } = await loggedInClient();
  const expired = forgeExpiredAccessToken(app.storage.getItem('accessToken'), server.jwtSecret);
  assert.deepEqual(errorReasons(await graphql(server.graphqlUrl, '{ me { id } }', {}, expired)), ['token_expired']);
  app.storage.setItem('accessToken', expired);
  const oldRefresh = app.storage.getItem('refreshToken');

  rec.reset();
  const result = await me(app.client);
  assert.equal(result.error, undefined, `${result.error}`);
  assert.equal(result.data.me.username, user.username);
  assert.deepEqual(rec.calls.map((c) => [kind(c), c.method]), [['me', 'GET'], ['refresh', 'POST'], ['me', 'GET']]);
  assert.deepEqual(errorReasons(rec.calls[0].body), ['token_expired']);
  // utils.mutate sends the refresh with the stale token attached: the server must (and does) accept it.
  assert.equal(rec.calls[1].authorization, `Bearer ${expired}`);
  assert.equal(rec.calls[1].body.data.refreshToken.refreshToken, app.storage.getItem('refreshToken'));
  assert.notEqual(app.storage.getItem('refreshToken'), oldRefresh, 'the refresh token was rotated');
  assert.equal(rec.calls[2].authorization, `Bearer ${app.storage.getItem('accessToken')}`);

  // The new token keeps working without another refresh.
  rec.reset();
  assert.equal((await me(app.client)).data.me.username, user.username);
  assert.equal(rec.calls.length, 1);
});

test('urql: a session revoked by another client: the refresh fails, the client logs out instead of looping', async () => {
  const { rec, app, user } = await loggedInClient();
  // The same user on another device signs out every other session.
  const other = createClient({ url: server.graphqlUrl });
  await other.login(user.username, user.password);
  const out = await other.client.mutation(gql`mutation { logout(scope: OTHERS) }`, {}).toPromise();
  assert.equal(out.data?.logout, true, `${out.error}`);

  rec.reset();
  const result = await me(app.client);
  assert.ok(unauthenticated(result), `expected UNAUTHENTICATED, got ${result.error}`);
  assert.equal(result.data?.me ?? null, null);
  // me (revoked) → refresh (INVALID_REFRESH_TOKEN revoked) → me retried once (authExchange marks it as the
  // auth attempt; it keeps the header it was first sent with) → UNAUTHENTICATED to the caller. Then it stops.
  assert.deepEqual(rec.calls.map(kind), ['me', 'refresh', 'me']);
  assert.deepEqual(errorReasons(rec.calls[0].body), ['session_revoked']);
  assert.deepEqual(errorCodes(rec.calls[1].body), ['INVALID_REFRESH_TOKEN']);
  assert.deepEqual(errorReasons(rec.calls[1].body), ['revoked']);
  assert.deepEqual(errorCodes(rec.calls[2].body), ['UNAUTHENTICATED']);
  assert.equal(app.storage.getItem('accessToken'), null, 'logged out: tokens dropped');
  assert.equal(app.storage.getItem('refreshToken'), null);

  // Logged out, a query costs at most its retry, never a refresh.
  rec.reset();
  assert.ok(unauthenticated(await me(app.client)));
  assert.ok(rec.calls.length <= 2, `${rec.calls.length} requests`);
  assert.equal(rec.calls.filter((c) => kind(c) === 'refresh').length, 0);

  // The other device is unaffected.
  assert.equal((await me(other.client)).data.me.username, user.username);
});

test('urql: a garbage refresh token: one failed refresh (unknown), tokens cleared, no loop', async () => {
  const { rec, app } = await loggedInClient();
  app.storage.setItem('accessToken', forgeExpiredAccessToken(app.storage.getItem('accessToken'), server.jwtSecret));
  app.storage.setItem('refreshToken', 'garbage.not-a-refresh-token');

  rec.reset();
  const result = await me(app.client);
  assert.ok(unauthenticated(result), `expected UNAUTHENTICATED, got ${result.error}`);
  assert.deepEqual(rec.calls.map(kind), ['me', 'refresh', 'me']);
  assert.deepEqual(errorCodes(rec.calls[1].body), ['INVALID_REFRESH_TOKEN']);
  assert.deepEqual(errorReasons(rec.calls[1].body), ['unknown']);
  assert.equal(app.storage.getItem('accessToken'), null);
  assert.equal(app.storage.getItem('refreshToken'), null);
});

test("urql: the example's logout() ends the session on the server and forgets the tokens", async () => {
  const { rec, app } = await loggedInClient();
  const accessToken = app.storage.getItem('accessToken');
  const refreshToken = app.storage.getItem('refreshToken');

  rec.reset();
  await app.logout();
  assert.deepEqual(rec.calls.map((c) => [c.method, c.body?.data?.logout]), [['POST', true]]);
  assert.equal(app.storage.getItem('accessToken'), null);
  assert.equal(app.storage.getItem('refreshToken'), null);
  assert.deepEqual(errorReasons(await graphql(server.graphqlUrl, '{ me { id } }', {}, accessToken)), ['session_revoked']);
  const refreshed = await graphql(server.graphqlUrl,
    'mutation($t: String!) { refreshToken(token: $t) { accessToken } }', { t: refreshToken });
  assert.deepEqual(errorReasons(refreshed), ['revoked']);

  rec.reset();
  assert.ok(unauthenticated(await me(app.client)));
  assert.equal(rec.calls.filter((c) => kind(c) === 'refresh').length, 0);
});
