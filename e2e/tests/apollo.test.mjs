// Apollo Client 4 (examples/apollo/client.mjs) against the real server.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { CombinedGraphQLErrors } from '@apollo/client';
import { createClient, gql } from '../../examples/apollo/client.mjs';
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

// `me` through the client; resolves { data } or { error } (errorPolicy 'none' rejects on GraphQL errors).
async function me(client) {
  try {
    const { data } = await client.query({ query: ME, fetchPolicy: 'network-only' });
    return { data };
  } catch (error) {
    return { error };
  }
}

const unauthenticated = (error) => CombinedGraphQLErrors.is(error)
  && error.errors.some((e) => e.extensions?.code === 'UNAUTHENTICATED');

test('Apollo Client: register, login and me through the auth link', async () => {
  const rec = recordingFetch();
  const app = createClient({ url: server.graphqlUrl, fetch: rec.fetch });
  const user = uniqueUser('apollo');

  const registered = await app.register(user);
  assert.equal(registered.username, user.username);

  const loggedIn = await app.login(user.username, user.password);
  assert.equal(loggedIn.id, registered.id);
  assert.ok(app.storage.getItem('accessToken'));
  assert.ok(app.storage.getItem('refreshToken'));

  const { data, error } = await me(app.client);
  assert.equal(error, undefined);
  assert.deepEqual(data.me, { __typename: 'User', id: registered.id, username: user.username, email: user.email });
  const meCall = rec.calls.at(-1);
  assert.equal(meCall.method, 'POST');
  assert.equal(meCall.authorization, `Bearer ${app.storage.getItem('accessToken')}`);
});

test('Apollo Client: an expired access token is refreshed and the query retried transparently; logout ends it', async () => {
  const rec = recordingFetch();
  const app = createClient({ url: server.graphqlUrl, fetch: rec.fetch });
  const user = uniqueUser('apollo');
  await app.register(user);
  await app.login(user.username, user.password);
  assert.equal((await me(app.client)).data.me.username, user.username);

  // The tab was left open: the stored access token is now expired.
  const expired = forgeExpiredAccessToken(app.storage.getItem('accessToken'), server.jwtSecret);
  const direct = await graphql(server.graphqlUrl, '{ me { username } }', {}, expired);
  assert.deepEqual(errorCodes(direct), ['UNAUTHENTICATED']);
  assert.deepEqual(errorReasons(direct), ['token_expired']);
  app.storage.setItem('accessToken', expired);
  const oldRefresh = app.storage.getItem('refreshToken');

  rec.reset();
  const { data, error } = await me(app.client);
  assert.equal(error, undefined, `me failed: ${error}`);
  assert.equal(data.me.username, user.username);
  // me (expired) → refreshToken → me (new token): exactly three requests.
  assert.deepEqual(rec.calls.map((c) => [c.query.includes('refreshToken') ? 'refresh' : 'me', c.authorization]), [
    ['me', `Bearer ${expired}`],
    ['refresh', null],
    ['me', `Bearer ${app.storage.getItem('accessToken')}`],
  ]);
  assert.deepEqual(errorReasons(rec.calls[0].body), ['token_expired']);
  assert.notEqual(app.storage.getItem('refreshToken'), oldRefresh, 'the refresh token was rotated');
  assert.notEqual(app.storage.getItem('accessToken'), expired);
  assert.equal(rec.calls[1].body.data.refreshToken.refreshToken, app.storage.getItem('refreshToken'));

  // logout (the raw mutation, so the client still holds the now-revoked tokens) ...
  const out = await app.client.mutate({ mutation: gql`mutation { logout }` });
  assert.equal(out.data.logout, true);

  // ... then me fails with UNAUTHENTICATED: one refresh attempt (INVALID_REFRESH_TOKEN revoked), no loop.
  rec.reset();
  const after = await me(app.client);
  assert.ok(unauthenticated(after.error), `expected UNAUTHENTICATED, got ${after.error}`);
  assert.deepEqual(rec.calls.map((c) => (c.query.includes('refreshToken') ? 'refresh' : 'me')), ['me', 'refresh']);
  assert.deepEqual(errorReasons(rec.calls[0].body), ['session_revoked']);
  assert.deepEqual(errorCodes(rec.calls[1].body), ['INVALID_REFRESH_TOKEN']);
  assert.deepEqual(errorReasons(rec.calls[1].body), ['revoked']);
  assert.equal(app.storage.getItem('accessToken'), null, 'the failed refresh dropped the tokens');
  assert.equal(app.storage.getItem('refreshToken'), null);

  // Logged out, the client stays quiet: one anonymous request, no refresh without a refresh token.
  rec.reset();
  const again = await me(app.client);
  assert.ok(unauthenticated(again.error));
  assert.equal(rec.calls.length, 1);
  assert.equal(rec.calls[0].authorization, '', "Apollo's auth link sends an empty header when logged out");
  assert.deepEqual(errorReasons(rec.calls[0].body), ['token_missing']);
});

test("Apollo Client: the example's logout() ends the session on the server and forgets the tokens", async () => {
  const rec = recordingFetch();
  const app = createClient({ url: server.graphqlUrl, fetch: rec.fetch });
  const user = uniqueUser('apollo');
  await app.register(user);
  const refreshToken = app.storage.getItem('refreshToken');
  const accessToken = app.storage.getItem('accessToken');

  await app.logout();
  assert.equal(app.storage.getItem('accessToken'), null);
  assert.equal(app.storage.getItem('refreshToken'), null);

  // The server agrees: the old tokens are dead.
  assert.deepEqual(errorReasons(await graphql(server.graphqlUrl, '{ me { id } }', {}, accessToken)), ['session_revoked']);
  const refreshed = await graphql(server.graphqlUrl,
    'mutation($t: String!) { refreshToken(token: $t) { accessToken } }', { t: refreshToken });
  assert.deepEqual(errorCodes(refreshed), ['INVALID_REFRESH_TOKEN']);

  rec.reset();
  assert.ok(unauthenticated((await me(app.client)).error));
  assert.equal(rec.calls.length, 1, 'no refresh attempt without a refresh token');
});

test('Apollo Client: two queries failing at once share one refresh', async () => {
  const rec = recordingFetch();
  const app = createClient({ url: server.graphqlUrl, fetch: rec.fetch });
  const user = uniqueUser('apollo');
  await app.register(user);
  app.storage.setItem('accessToken', forgeExpiredAccessToken(app.storage.getItem('accessToken'), server.jwtSecret));

  rec.reset();
  const SESSIONS = gql`query Sessions { sessions { id current } }`;
  const [a, b] = await Promise.all([
    app.client.query({ query: ME, fetchPolicy: 'network-only' }),
    app.client.query({ query: SESSIONS, fetchPolicy: 'network-only' }),
  ]);
  assert.equal(a.data.me.username, user.username);
  assert.equal(b.data.sessions.filter((s) => s.current).length, 1);
  assert.equal(rec.calls.filter((c) => c.query.includes('refreshToken')).length, 1);
  assert.equal(rec.calls.length, 5);
});
