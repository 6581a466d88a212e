// Subscriptions over graphql-ws (graphql-transport-ws on /query) against the real server: a bare graphql-ws
// client, Apollo's GraphQLWsLink (examples/apollo/client.mjs) and urql's subscriptionExchange
// (examples/urql/client.mjs) receive the account's security events; sockets close with 4403 when the token
// expires or the session ends; the examples reconnect through a refresh and stop when the refresh fails.
// Node 20 has no global WebSocket: the `ws` package stands in, as the examples document.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createClient as createWsClient } from 'graphql-ws';
import WebSocket from 'ws';
import * as apollo from '../../examples/apollo/client.mjs';
import * as urql from '../../examples/urql/client.mjs';
import {
  decodeJwt, forgeExpiredAccessToken, graphql, recordingFetch, registerUser, signAccessToken, startServer, uniqueUser,
} from '../support/server.mjs';

const SECURITY_EVENTS = 'subscription { securityEvents { type at sessionId current userAgent ip } }';
const EVENT_WITHIN_MS = 3000; // the contract says ~2 s (the revocation sync); be loose

const wsUrl = (server) => server.graphqlUrl.replace(/^http/, 'ws');
const sessionOf = (accessToken) => decodeJwt(accessToken).payload.sid;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const isRefresh = (call) => /refreshToken\s*\(/.test(call.query); // the mutation, not the field of register

// Polls until fn() returns something truthy; fails with `what` and the state after `ms`.
async function until(fn, what, ms = EVENT_WITHIN_MS, state = () => '') {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = fn();
    if (value) return value;
    if (Date.now() > deadline) assert.fail(`no ${what} within ${ms} ms ${state()}`);
    await sleep(20);
  }
}

// What one subscription saw: events (with arrival time), errors, and the socket's life (graphql-ws events).
function recorder() {
  const rec = { events: [], errors: [], closes: [], connecting: 0, connected: 0, connectedAt: [], completed: false };
  rec.event = (e) => rec.events.push({ ...e, receivedAt: Date.now() });
  // graphql-ws's `on` listeners: createClient({ on: rec.on }), or wsClient.on(name, …) afterwards (rec.watch).
  rec.on = {
    connecting: () => { rec.connecting += 1; },
    connected: () => { rec.connected += 1; rec.connectedAt.push(Date.now()); },
    closed: (e) => { rec.closes.push({ code: e.code, reason: e.reason, at: Date.now() }); },
  };
  rec.watch = (wsClient) => Object.entries(rec.on).forEach(([name, listener]) => wsClient.on(name, listener));
  rec.state = () => JSON.stringify({
    events: rec.events, errors: rec.errors.map(String), closes: rec.closes, connectedAt: rec.connectedAt,
  });
  rec.waitEvent = (pred, what, ms) => until(() => rec.events.find(pred), what, ms, rec.state);
  rec.waitClose = (pred, what, ms) => until(() => rec.closes.find(pred), what, ms, rec.state);
  return rec;
}

// Signs the user in "elsewhere" (another device: plain fetch with its own User-Agent).
async function loginElsewhere(server, user, userAgent = `e2e-other-device/${Date.now()}`) {
  const res = await fetch(server.graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'user-agent': userAgent },
    body: JSON.stringify({
      query: 'mutation($i: LoginInput!) { login(input: $i) { accessToken refreshToken } }',
      variables: { i: { username: user.username, password: user.password } },
    }),
  });
  const body = await res.json();
  assert.ok(body.data?.login, `login failed: ${JSON.stringify(body)}`);
  return { ...body.data.login, sessionId: sessionOf(body.data.login.accessToken), userAgent, at: Date.now() };
}

const logout = (server, accessToken, scope = 'CURRENT') => graphql(server.graphqlUrl,
  `mutation { logout(scope: ${scope}) }`, {}, accessToken);

const clients = new Set(); // graphql-ws clients, disposed before their server stops
async function disposeClients() {
  await Promise.all([...clients].map((c) => c.dispose().catch(() => {})));
  clients.clear();
}
function bareClient(server, options) {
  const client = createWsClient({ url: wsUrl(server), webSocketImpl: WebSocket, retryAttempts: 0, ...options });
  clients.add(client);
  return client;
}

// A bare graphql-ws subscription to securityEvents, recorded.
function subscribeBare(server, options) {
  const rec = recorder();
  const client = bareClient(server, { on: rec.on, ...options });
  rec.dispose = client.subscribe({ query: SECURITY_EVENTS }, {
    next: (result) => (result.data ? rec.event(result.data.securityEvents) : rec.errors.push(result.errors)),
    error: (err) => rec.errors.push(err),
    complete: () => { rec.completed = true; },
  });
  return rec;
}

// The two examples, registered and subscribed through the library's own subscription API.
const examples = {
  Apollo: {
    module: apollo,
    subscribe(app, rec) {
      const sub = app.client.subscribe({ query: apollo.SECURITY_EVENTS }).subscribe({
        next: (result) => (result.error ? rec.errors.push(result.error) : rec.event(result.data.securityEvents)),
        error: (err) => rec.errors.push(err),
        complete: () => { rec.completed = true; },
      });
      return () => sub.unsubscribe();
    },
    sessionEnded: (err) => err instanceof apollo.SessionEndedError,
  },
  urql: {
    module: urql,
    subscribe(app, rec) {
      const { unsubscribe } = app.client.subscription(urql.SECURITY_EVENTS, {}).subscribe((result) => {
        if (result.error) rec.errors.push(result.error);
        else if (result.data) rec.event(result.data.securityEvents);
      });
      return unsubscribe;
    },
    // urql hands a non-GraphQL error to the caller as CombinedError.networkError.
    sessionEnded: (err) => err?.networkError instanceof urql.SessionEndedError,
  },
};

async function subscribedExample(server, name, prefix) {
  const { module, subscribe } = examples[name];
  const http = recordingFetch();
  const app = module.createClient({ url: server.graphqlUrl, fetch: http.fetch, webSocketImpl: WebSocket });
  clients.add(app.wsClient);
  const user = uniqueUser(prefix);
  await app.register(user);
  http.reset();
  const rec = recorder();
  rec.watch(app.wsClient);
  rec.dispose = subscribe(app, rec);
  await until(() => rec.connected, 'connection_ack', EVENT_WITHIN_MS, rec.state);
  await sleep(300); // let the subscription start before anything happens to the account
  return { app, user, rec, http };
}

describe('subscriptions', () => {
  let server;
  // HS256: tests forge an expired token with JWT_SECRET (the server's own format only in HS256 mode).
  before(async () => { server = await startServer({ env: { JWT_ALGORITHM: 'HS256' } }); });
  after(async () => {
    await disposeClients();
    await server?.stop();
  });

  test('graphql-ws: SESSION_CREATED for a sign-in elsewhere, SESSION_REVOKED when that tab logs out; its own logout: current: true, then close 4403 session_revoked', async () => {
    const user = uniqueUser('wsbare');
    const own = await registerUser(server.graphqlUrl, user);
    const rec = subscribeBare(server, { connectionParams: async () => ({ Authorization: `Bearer ${own.accessToken}` }) });
    await until(() => rec.connected, 'connection_ack');
    await sleep(300);

    const other = await loginElsewhere(server, user, 'e2e-phone/1.0 (subscriptions test)');
    const created = await rec.waitEvent((e) => e.type === 'SESSION_CREATED' && e.sessionId === other.sessionId,
      'SESSION_CREATED for the other sign-in');
    assert.equal(created.current, false);
    assert.equal(created.userAgent, 'e2e-phone/1.0 (subscriptions test)');
    assert.equal(created.ip, '127.0.0.1');
    assert.ok(!Number.isNaN(Date.parse(created.at)), `at: ${created.at}`);
    assert.ok(created.receivedAt - other.at < EVENT_WITHIN_MS, `${created.receivedAt - other.at} ms`);

    // The other tab logs itself out with its own access token.
    const loggedOut = Date.now();
    assert.deepEqual(await logout(server, other.accessToken), { data: { logout: true } });
    const revoked = await rec.waitEvent((e) => e.type === 'SESSION_REVOKED' && e.sessionId === other.sessionId,
      'SESSION_REVOKED for the other session');
    assert.equal(revoked.current, false);
    assert.ok(revoked.receivedAt - loggedOut < EVENT_WITHIN_MS, `${revoked.receivedAt - loggedOut} ms`);
    assert.deepEqual(rec.closes, [], 'the socket stays open when another session ends');

    // The subscribing session itself is logged out over HTTP: its own SESSION_REVOKED, then the close.
    const ownSession = sessionOf(own.accessToken);
    const endedAt = Date.now();
    assert.deepEqual(await logout(server, own.accessToken), { data: { logout: true } });
    const ownRevoked = await rec.waitEvent((e) => e.type === 'SESSION_REVOKED' && e.sessionId === ownSession,
      'SESSION_REVOKED for the own session');
    assert.equal(ownRevoked.current, true);
    const close = await rec.waitClose(() => true, 'close');
    assert.deepEqual([close.code, close.reason], [4403, 'session_revoked']);
    assert.ok(close.at >= ownRevoked.receivedAt, 'the event is delivered before the close');
    assert.ok(close.at - endedAt < EVENT_WITHIN_MS, `${close.at - endedAt} ms`);
    await until(() => rec.errors.length, 'the subscription to end with the close');
    assert.equal(rec.errors[0].code, 4403, 'retryAttempts: 0: the close ends the subscription');
  });

  for (const name of Object.keys(examples)) {
    test(`${name}: SESSION_CREATED and SESSION_REVOKED through the example's socket; logout() ends the subscription without a reconnect loop`, async () => {
      const { app, user, rec, http } = await subscribedExample(server, name, `ws${name.toLowerCase()}`);
      const ownSession = sessionOf(app.storage.getItem('accessToken'));

      const other = await loginElsewhere(server, user);
      const created = await rec.waitEvent((e) => e.type === 'SESSION_CREATED' && e.sessionId === other.sessionId,
        'SESSION_CREATED');
      assert.equal(created.current, false);
      assert.equal(created.userAgent, other.userAgent);

      await logout(server, other.accessToken);
      const revoked = await rec.waitEvent((e) => e.type === 'SESSION_REVOKED' && e.sessionId === other.sessionId,
        'SESSION_REVOKED');
      assert.equal(revoked.current, false);
      assert.ok(revoked.receivedAt - created.receivedAt < 2 * EVENT_WITHIN_MS);

      // The example's own logout(): the server ends the session and closes the socket (4403 session_revoked);
      // graphql-ws retries, connectionParams finds no refresh token and gives up: SessionEndedError.
      http.reset();
      await app.logout();
      const own = await rec.waitEvent((e) => e.type === 'SESSION_REVOKED' && e.sessionId === ownSession,
        'SESSION_REVOKED current: true');
      assert.equal(own.current, true);
      await rec.waitClose((c) => c.code === 4403 && c.reason === 'session_revoked', 'close 4403 session_revoked');
      await until(() => rec.errors.length, 'the subscription to end', EVENT_WITHIN_MS, rec.state);
      assert.ok(examples[name].sessionEnded(rec.errors[0]), `ended with ${rec.errors[0]}`);
      await sleep(3000);
      assert.equal(rec.connecting, 2, 'one connection and one retry, then nothing');
      assert.equal(http.calls.filter(isRefresh).length, 0, 'no refresh without a refresh token');
      assert.equal(rec.errors.length, 1);
      rec.dispose();
    });

    test(`${name}: a subscription that fails (GRAPHQL_VALIDATION_FAILED) fails alone: the socket and the other subscription live on`, async () => {
      const { app, user, rec } = await subscribedExample(server, name, `wsfail${name.toLowerCase()}`);
      const bad = recorder();
      const BAD = 'subscription Bad { securityEvents { notAField } }';
      if (name === 'Apollo') {
        app.client.subscribe({ query: apollo.gql(BAD) }).subscribe({
          next: (result) => (result.error ? bad.errors.push(result.error) : bad.event(result.data)),
          error: (err) => bad.errors.push(err),
        });
      } else {
        app.client.subscription(BAD, {}).subscribe((result) => (result.error ? bad.errors.push(result.error) : bad.event(result.data)));
      }
      await until(() => bad.errors.length, 'the error', EVENT_WITHIN_MS, bad.state);
      const errors = bad.errors[0].errors ?? bad.errors[0].graphQLErrors; // Apollo: CombinedGraphQLErrors; urql: CombinedError
      assert.equal(errors?.[0]?.extensions?.code, 'GRAPHQL_VALIDATION_FAILED', String(bad.errors[0]));

      const other = await loginElsewhere(server, user);
      await rec.waitEvent((e) => e.type === 'SESSION_CREATED' && e.sessionId === other.sessionId, 'SESSION_CREATED');
      assert.deepEqual(rec.closes, [], 'the socket stayed open');
      assert.deepEqual(rec.errors, []);
      rec.dispose();
    });

    test(`${name}: the session revoked by another tab: one refresh attempt (INVALID_REFRESH_TOKEN), then the client stops retrying`, async () => {
      const { app, user, rec, http } = await subscribedExample(server, name, `wsstop${name.toLowerCase()}`);
      const ownSession = sessionOf(app.storage.getItem('accessToken'));

      // Another tab signs out every other session, ours included.
      const other = await loginElsewhere(server, user);
      http.reset();
      assert.deepEqual(await logout(server, other.accessToken, 'OTHERS'), { data: { logout: true } });
      const own = await rec.waitEvent((e) => e.type === 'SESSION_REVOKED' && e.sessionId === ownSession,
        'SESSION_REVOKED current: true');
      assert.equal(own.current, true);
      await rec.waitClose((c) => c.code === 4403 && c.reason === 'session_revoked', 'close 4403 session_revoked');
      await until(() => rec.errors.length, 'the subscription to end', EVENT_WITHIN_MS, rec.state);
      assert.ok(examples[name].sessionEnded(rec.errors[0]), `ended with ${rec.errors[0]}`);

      // No loop: watch a few seconds more.
      await sleep(4000);
      const refreshes = http.calls.filter(isRefresh);
      assert.equal(refreshes.length, 1, `refresh requests: ${refreshes.length}`);
      assert.equal(refreshes[0].body.errors?.[0]?.extensions?.code, 'INVALID_REFRESH_TOKEN');
      assert.equal(rec.connecting, 2, `connection attempts: ${rec.connecting}`);
      assert.equal(rec.connected, 1);
      assert.equal(rec.errors.length, 1);
      assert.equal(app.storage.getItem('accessToken'), null, 'the failed refresh dropped the tokens');
      assert.equal(app.storage.getItem('refreshToken'), null);
      rec.dispose();
    });
  }

  // graphql-transport-ws: `error` "terminates the operation and no further messages will be sent" for its id.
  // A `complete` after it makes graphql-ws (the reference client, under Apollo and urql) release the operation
  // twice when both frames arrive in one read: its count of running operations drops to zero, it closes the
  // socket (1000) and completes the other subscriptions on it without an error (the test above).
  test('protocol: an operation that fails validation or parsing gets one `error` message and nothing more', async () => {
    const { accessToken } = await registerUser(server.graphqlUrl, uniqueUser('wsproto'));
    const socket = new WebSocket(wsUrl(server), 'graphql-transport-ws');
    const messages = [];
    socket.on('message', (data) => messages.push(JSON.parse(String(data))));
    await new Promise((resolve, reject) => { socket.once('open', resolve); socket.once('error', reject); });
    try {
      socket.send(JSON.stringify({ type: 'connection_init', payload: { Authorization: `Bearer ${accessToken}` } }));
      await until(() => messages.some((m) => m.type === 'connection_ack'), 'connection_ack');
      socket.send(JSON.stringify({ id: 'invalid', type: 'subscribe', payload: { query: 'subscription { securityEvents { notAField } }' } }));
      socket.send(JSON.stringify({ id: 'unparsable', type: 'subscribe', payload: { query: 'subscription {' } }));
      await sleep(700);
      for (const [id, code] of [['invalid', 'GRAPHQL_VALIDATION_FAILED'], ['unparsable', 'GRAPHQL_PARSE_FAILED']]) {
        const forId = messages.filter((m) => m.id === id);
        assert.equal(forId[0]?.type, 'error', `${id}: ${JSON.stringify(forId)}`);
        assert.equal(forId[0].payload[0]?.extensions?.code, code);
        assert.deepEqual(forId.map((m) => m.type), ['error'], `${id}: no message may follow an error`);
      }
    } finally {
      socket.close();
    }
  });

  test('a token in the URL or on the upgrade request does not authenticate the socket', async () => {
    const { accessToken } = await registerUser(server.graphqlUrl, uniqueUser('wsurl'));
    for (const query of ['token', 'access_token', 'authToken', 'Authorization']) {
      const value = query === 'Authorization' ? `Bearer ${accessToken}` : accessToken;
      const rec = subscribeBare({ graphqlUrl: `${server.graphqlUrl}?${query}=${encodeURIComponent(value)}` }, {});
      await until(() => rec.errors.length, `?${query}=: an answer`, EVENT_WITHIN_MS, rec.state);
      assert.equal(rec.connected, 1, `?${query}=: an anonymous connection is accepted`);
      assert.equal(rec.errors[0]?.[0]?.extensions?.code, 'UNAUTHENTICATED', `?${query}=: ${rec.state()}`);
      assert.deepEqual(rec.events, []);
    }

    // An Authorization header on the upgrade request (which browsers cannot send anyway) counts for nothing.
    class WebSocketWithHeader extends WebSocket {
      constructor(url, protocols) { super(url, protocols, { headers: { authorization: `Bearer ${accessToken}` } }); }
    }
    const rec = subscribeBare(server, { webSocketImpl: WebSocketWithHeader });
    await until(() => rec.errors.length, 'an answer', EVENT_WITHIN_MS, rec.state);
    assert.equal(rec.errors[0]?.[0]?.extensions?.code, 'UNAUTHENTICATED', rec.state());
  });

  test('bad tokens in connection_init: close 4403 with the reason (token_invalid, token_expired, session_revoked)', async () => {
    const user = uniqueUser('wsbad');
    const { accessToken } = await registerUser(server.graphqlUrl, user);
    const { payload } = decodeJwt(accessToken);
    const revoked = await loginElsewhere(server, user);
    await logout(server, revoked.accessToken);
    const cases = [
      ['garbage', { Authorization: 'Bearer not-a-jwt' }, 'token_invalid'],
      ['another secret', { Authorization: `Bearer ${signAccessToken(payload, 'not-the-server-secret')}` }, 'token_invalid'],
      ['authToken, expired', { authToken: forgeExpiredAccessToken(accessToken, server.jwtSecret) }, 'token_expired'],
      ['a logged-out session', { authorization: `Bearer ${revoked.accessToken}` }, 'session_revoked'],
    ];
    for (const [what, params, reason] of cases) {
      const rec = subscribeBare(server, { connectionParams: params });
      const close = await rec.waitClose(() => true, `${what}: a close`);
      assert.deepEqual([close.code, close.reason], [4403, reason], what);
      assert.equal(rec.connected, 0, `${what}: never acknowledged`);
      await until(() => rec.errors.length, `${what}: the subscription to fail`);
      assert.equal(rec.errors[0].code, 4403);
    }

    // The same token, valid: acknowledged (the cases above failed for their token, not for the protocol).
    const ok = subscribeBare(server, { connectionParams: { token: accessToken } });
    await until(() => ok.connected, 'connection_ack');
  });
});

describe('subscriptions with 2-second access tokens', () => {
  let server;
  before(async () => { server = await startServer({ env: { ACCESS_TOKEN_TTL: '2s', JWT_CLOCK_SKEW: '0s' } }); });
  after(async () => {
    await disposeClients();
    await server?.stop();
  });

  for (const name of Object.keys(examples)) {
    test(`${name}: the socket closes 4403 token_expired, connectionParams refreshes, the subscription keeps delivering`, async () => {
      const { app, user, rec, http } = await subscribedExample(server, name, `wsexp${name.toLowerCase()}`);
      const { exp } = decodeJwt(app.storage.getItem('accessToken')).payload;

      const expired = await rec.waitClose((c) => c.code === 4403, 'close 4403 at expiry', 4000);
      assert.equal(expired.reason, 'token_expired');
      assert.ok(Math.abs(expired.at - exp * 1000) < 1500, `closed ${expired.at - exp * 1000} ms after exp`);
      await until(() => rec.connected >= 2, 'a reconnect', EVENT_WITHIN_MS, rec.state);
      const refreshes = http.calls.filter(isRefresh);
      assert.ok(refreshes.length >= 1, 'connectionParams refreshed');
      assert.ok(refreshes[0].body.data?.refreshToken, `refresh: ${JSON.stringify(refreshes[0].body)}`);
      assert.equal(rec.errors.length, 0, rec.state());

      // A sign-in elsewhere after the reconnect reaches the resubscribed operation. The socket lives only as
      // long as its 2 s token, and an event that falls between two sockets is lost (at most once): try a few
      // reconnects, each sign-in right after one.
      let created;
      for (let attempt = 1; attempt <= 3 && !created; attempt += 1) {
        const connected = rec.connected;
        if (attempt > 1) await until(() => rec.connected > connected, 'another reconnect', 4000, rec.state);
        const other = await loginElsewhere(server, user);
        created = await rec.waitEvent((e) => e.type === 'SESSION_CREATED' && e.sessionId === other.sessionId,
          'SESSION_CREATED').catch(() => undefined);
        if (!created) console.log(`attempt ${attempt}: the event of the sign-in at ${other.at} fell between two sockets: ${rec.state()}`);
      }
      assert.ok(created, `no SESSION_CREATED after reconnecting: ${rec.state()}`);
      assert.equal(created.current, false);
      assert.ok(rec.closes.every((c) => c.code === 4403 && c.reason === 'token_expired'), rec.state());
      assert.equal(rec.errors.length, 0, rec.state());
      // Each reconnect costs exactly one refresh (connectionParams), never a storm.
      assert.ok(http.calls.filter(isRefresh).length <= rec.connecting, `${http.calls.filter(isRefresh).length} refreshes for ${rec.connecting} connections`);
      rec.dispose();
    });

    test(`${name}: the token expires and the refresh token is invalid: one failed refresh, then no more attempts`, async () => {
      const { app, rec, http } = await subscribedExample(server, name, `wsexpbad${name.toLowerCase()}`);
      app.storage.setItem('refreshToken', 'garbage.not-a-refresh-token');
      http.reset();

      await rec.waitClose((c) => c.code === 4403 && c.reason === 'token_expired', 'close 4403 token_expired', 4000);
      await until(() => rec.errors.length, 'the subscription to end', EVENT_WITHIN_MS, rec.state);
      assert.ok(examples[name].sessionEnded(rec.errors[0]), `ended with ${rec.errors[0]}`);
      await sleep(4000);
      const refreshes = http.calls.filter(isRefresh);
      assert.equal(refreshes.length, 1, `refresh requests: ${refreshes.length}`);
      assert.equal(refreshes[0].body.errors?.[0]?.extensions?.code, 'INVALID_REFRESH_TOKEN');
      assert.equal(rec.connecting, 2, `connection attempts: ${rec.connecting}`);
      assert.equal(rec.errors.length, 1);
      assert.equal(app.storage.getItem('accessToken'), null);
      rec.dispose();
    });
  }
});
