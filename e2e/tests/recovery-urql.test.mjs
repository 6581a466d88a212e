// Account recovery through the urql example (examples/urql/client.mjs) against the real server, which
// sends real mail over SMTP to a server in this process (support/smtp.mjs); the tests take the links out of
// the mails' text parts like a user would.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { CombinedError } from '@urql/core';
import { createClient, gql } from '../../examples/urql/client.mjs';
import { errorCodes, errorReasons, graphql, startServer, uniqueUser } from '../support/server.mjs';
import { APP_URL, MAIL_FROM, linkToken, mailEnv, startSmtpServer } from '../support/smtp.mjs';

const ME = gql`query Me { me { id username email emailVerified } }`;
const NEW_PASSWORD = 'e2e a brand new battery staple';
const RESET = 'reset-password';
const VERIFY = 'verify-email';

let smtp;
let server;
before(async () => {
  smtp = await startSmtpServer();
  server = await startServer({ env: mailEnv(smtp) });
});
after(async () => {
  await server?.stop();
  await smtp?.close();
});

// The first mail to address that carries an APP_URL/<path>?token=… link, and that token.
async function mailedLink(address, path) {
  const mail = await smtp.waitFor((m) => m.to.includes(address.toLowerCase())
    && m.text?.includes(`${APP_URL}/${path}?token=`));
  return { mail, token: linkToken(mail.text, APP_URL, path) };
}

// `me` through the client, never from urql's cache; resolves { data, error }.
const me = (client) => client.query(ME, {}, { requestPolicy: 'network-only' }).toPromise();

// The example throws urql's CombinedError: assert its [code, reason] pairs.
const graphQLError = (want) => (err) => {
  assert.ok(err instanceof CombinedError, `expected CombinedError, got ${err}`);
  assert.equal(err.networkError, undefined);
  assert.deepEqual(err.graphQLErrors.map((e) => [e.extensions?.code, e.extensions?.reason]), want);
  return true;
};

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test('urql: requestPasswordReset → mailed link → resetPassword signs in; the old password and sessions are refused', async () => {
  const user = uniqueUser('urql_reset');
  const old = createClient({ url: server.graphqlUrl }); // the session the user still has somewhere
  const registered = await old.register(user);
  const oldRefresh = old.storage.getItem('refreshToken');
  const oldAccess = old.storage.getItem('accessToken');

  // A new device, signed out: the user asks for a link.
  const app = createClient({ url: server.graphqlUrl });
  assert.equal(await app.requestPasswordReset(user.email), true);
  const { mail, token } = await mailedLink(user.email, RESET);
  assert.equal(mail.from, MAIL_FROM.match(/<(.+)>/)[1]);
  assert.equal(mail.contentType, 'multipart/alternative');
  assert.ok(mail.html?.includes(`${APP_URL}/${RESET}?token=${token}`), 'the HTML part has the same link');
  assert.match(token, /^[A-Za-z0-9_-]{43,}$/, 'at least 256 bits, URL-safe');

  const signedIn = await app.resetPassword(token, NEW_PASSWORD);
  assert.equal(signedIn.id, registered.id);
  assert.ok(app.storage.getItem('accessToken'));
  assert.ok(app.storage.getItem('refreshToken'));
  assert.notEqual(app.storage.getItem('refreshToken'), oldRefresh);
  const { data, error } = await me(app.client);
  assert.equal(error, undefined, `me failed: ${error}`);
  assert.equal(data.me.username, user.username);
  assert.equal(data.me.emailVerified, true, 'the reset link proved control of the address');

  // Every other session ended: the old access token is refused, its refresh token too.
  assert.deepEqual(errorReasons(await graphql(server.graphqlUrl, '{ me { id } }', {}, oldAccess)), ['session_revoked']);
  const refreshed = await graphql(server.graphqlUrl,
    'mutation($t: String!) { refreshToken(token: $t) { accessToken } }', { t: oldRefresh });
  assert.deepEqual(errorCodes(refreshed), ['INVALID_REFRESH_TOKEN']);
  // The old client finds out on its next query: one failed refresh, tokens dropped.
  const stale = await me(old.client);
  assert.deepEqual(stale.error?.graphQLErrors.map((e) => e.extensions?.code), ['UNAUTHENTICATED']);
  assert.equal(old.storage.getItem('refreshToken'), null);

  // The old password no longer works; the new one does.
  const other = createClient({ url: server.graphqlUrl });
  await assert.rejects(other.login(user.username, user.password),
    graphQLError([['INVALID_CREDENTIALS', undefined]]));
  assert.equal(other.storage.getItem('accessToken'), null);
  assert.equal((await other.login(user.username, NEW_PASSWORD)).id, registered.id);
  assert.equal((await me(other.client)).data.me.id, registered.id);
  // ... and logging in elsewhere did not end the session the reset created.
  assert.equal((await me(app.client)).data.me.id, registered.id);
});

test('urql: a reset link works once: reused → INVALID_EMAIL_TOKEN (used); a refused password spends nothing', async () => {
  const user = uniqueUser('urql_reuse');
  const app = createClient({ url: server.graphqlUrl });
  await app.register(user);
  const { token: verifyToken } = await mailedLink(user.email, VERIFY);
  await app.logout();

  assert.equal(await app.requestPasswordReset(user.email), true);
  const { token } = await mailedLink(user.email, RESET);
  // A password the policy refuses consumes nothing: the same link then works.
  await assert.rejects(app.resetPassword(token, 'short'), (err) => {
    assert.deepEqual(err.graphQLErrors.map((e) => [e.extensions?.code, e.extensions?.field]),
      [['BAD_USER_INPUT', 'newPassword']]);
    return true;
  });
  await app.resetPassword(token, NEW_PASSWORD);
  const accessToken = app.storage.getItem('accessToken');
  const refreshToken = app.storage.getItem('refreshToken');

  await assert.rejects(app.resetPassword(token, `${NEW_PASSWORD} again`),
    graphQLError([['INVALID_EMAIL_TOKEN', 'used']]));
  // A verification token is no reset token; nor is garbage.
  await assert.rejects(app.resetPassword(verifyToken, `${NEW_PASSWORD} again`),
    graphQLError([['INVALID_EMAIL_TOKEN', 'unknown']]));
  await assert.rejects(app.resetPassword('not-a-token', `${NEW_PASSWORD} again`),
    graphQLError([['INVALID_EMAIL_TOKEN', 'unknown']]));

  // The failures changed nothing: same tokens, still signed in, the password of the first reset still holds.
  assert.equal(app.storage.getItem('accessToken'), accessToken);
  assert.equal(app.storage.getItem('refreshToken'), refreshToken);
  assert.equal((await me(app.client)).data.me.username, user.username);
  await createClient({ url: server.graphqlUrl }).login(user.username, NEW_PASSWORD);
});

test('urql: requestPasswordReset mails nobody for an unknown address, and an address once per interval', async () => {
  const known = uniqueUser('urql_known');
  await createClient({ url: server.graphqlUrl }).register(known);
  const unknown = uniqueUser('urql_nobody').email;
  const app = createClient({ url: server.graphqlUrl });

  const start = Date.now();
  assert.equal(await app.requestPasswordReset(unknown), true);
  assert.equal(await app.requestPasswordReset(known.email), true);
  assert.equal(await app.requestPasswordReset(known.email), true, 'a repeat within MAIL_ADDRESS_INTERVAL: true too');
  await mailedLink(known.email, RESET); // the worker has been through the queue ...
  await sleep(1500 - (Date.now() - start)); // ... and had time to send anything else

  assert.deepEqual(smtp.to(unknown), []);
  assert.equal(smtp.to(known.email).filter((m) => m.text.includes(`/${RESET}?token=`)).length, 1);
});

test('urql: verifyEmail with the link mailed at registration, on another device, sets emailVerified', async () => {
  const user = uniqueUser('urql_verify');
  const app = createClient({ url: server.graphqlUrl });
  const registered = await app.register(user);
  assert.equal((await me(app.client)).data.me.emailVerified, false);

  const { token } = await mailedLink(user.email, VERIFY);
  const device = createClient({ url: server.graphqlUrl }); // not signed in
  const verified = await device.verifyEmail(token);
  assert.deepEqual({ ...verified }, {
    __typename: 'User', id: registered.id, username: user.username, email: user.email, emailVerified: true,
  });
  assert.equal((await me(app.client)).data.me.emailVerified, true);

  await assert.rejects(device.verifyEmail(token), graphQLError([['INVALID_EMAIL_TOKEN', 'used']]));
});
