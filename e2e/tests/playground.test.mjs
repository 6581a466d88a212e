// The Playground (GraphiQL, served by the server at GET /) in headless Debian Chromium, driven through its UI
// by playwright-core. Every request to another origin is blocked and recorded: the Playground must work
// offline, from the assets the server embeds. It signs in like an app (internal/playground/assets/authgql.js):
// the access token of a Register/Login/RefreshToken answer stays in the page's memory and goes out as a Bearer
// header, one refresh on UNAUTHENTICATED, Logout forgets, a typed Authorization header wins; in AUTH_COOKIE=on
// mode the refresh token is an HttpOnly cookie. Subscriptions (SecurityEvents) run over a WebSocket to the page's
// own /query, authenticated by the token in connection_init: the only socket the page may open.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import {
  forgeExpiredAccessToken, graphql, registerUser, repoRoot, startServer, uniqueUser,
} from '../support/server.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const screenshotPath = new URL('../artifacts/playground.png', import.meta.url).pathname;
const DEFAULT_DOCUMENT = fs.readFileSync(`${repoRoot}internal/playground/document.graphql`, 'utf8');
const COOKIE = '__Host-authgql_refresh';

let server; // off mode, as deployed by default
let cookieServer; // AUTH_COOKIE=on; HS256 so that the test can forge an expired token of the server's own format
let browser;
before(async () => {
  [server, cookieServer] = await Promise.all([
    startServer(),
    startServer({ env: { AUTH_COOKIE: 'on', JWT_ALGORITHM: 'HS256' } }),
  ]);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true, // playwright passes --headless and a new empty --user-data-dir
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
});
after(async () => {
  await browser?.close();
  await Promise.all([server?.stop(), cookieServer?.stop()]);
});

// GraphiQL 4 edits with CodeMirror 5: each editor is a `.CodeMirror` element whose `.CodeMirror` property
// is the editor instance. The text is typed through the UI; the instance is only read back (and the read-only
// result pane emptied before each run, so that two equal answers in a row are told apart).
const QUERY_EDITOR = '.graphiql-query-editor .CodeMirror';
const TOOL_EDITOR = '.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror'; // variables or headers
const RESULT = '.result-window .CodeMirror';
const STATUS = '.graphiql-logo [role="status"]';
const probe = 'https://cdn.jsdelivr.net/npm/graphiql/graphiql.min.js';

const editorValue = (page, selector) => page.locator(selector).evaluate((el) => el.CodeMirror.getValue());

async function typeInto(page, selector, text) {
  await page.locator(selector).click();
  await page.keyboard.press('ControlOrMeta+A');
  await page.keyboard.press('Delete');
  // insertText sends the text as one input, like a paste: no auto-closed brackets, no completions inserted.
  await page.keyboard.insertText(text);
  await page.keyboard.press('Escape'); // close a completion hint if one opened
  assert.equal(await editorValue(page, selector), text, `editor ${selector} holds what was typed`);
}

async function showTool(page, name) {
  await page.getByRole('button', { name, exact: true }).click();
  await page.locator(TOOL_EDITOR).waitFor();
}

/**
 * Opens the Playground of `srv` in a fresh browser context (empty storage, no cookies) that blocks and records
 * every request leaving the server's origin, and records every GraphQL POST the page sends (introspection aside)
 * as { operationName, query, variables, authorization }, and every WebSocket it opens as { url, sent, received,
 * closed } with its messages parsed. A socket to anything but the server's own ws://…/query counts as blocked
 * (route() does not see sockets; the test fails on it instead).
 */
async function openPlayground(srv) {
  const origin = new URL(srv.baseUrl).origin;
  const socketUrl = srv.graphqlUrl.replace(/^http/, 'ws');
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const seen = [];
  const blocked = [];
  const sent = [];
  const sockets = [];
  context.on('request', (req) => {
    seen.push(req.url());
    if (req.url() !== srv.graphqlUrl || req.method() !== 'POST') return;
    const body = JSON.parse(req.postData());
    if (body.operationName === 'IntrospectionQuery' || body.query.includes('__schema')) return;
    sent.push({ ...body, authorization: req.headers().authorization });
  });
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (new URL(url).origin === origin) return route.continue();
    blocked.push(url);
    return route.abort('blockedbyclient');
  });
  const page = await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (err) => pageErrors.push(String(err)));
  page.on('websocket', (ws) => {
    if (ws.url() !== socketUrl) blocked.push(`websocket ${ws.url()}`);
    const socket = { url: ws.url(), sent: [], received: [], closed: false };
    ws.on('framesent', (f) => socket.sent.push(JSON.parse(f.payload)));
    ws.on('framereceived', (f) => socket.received.push(JSON.parse(f.payload)));
    ws.on('close', () => { socket.closed = true; });
    sockets.push(socket);
  });

  // GraphiQL loads the schema by introspection as it starts (for completion and the docs).
  const introspection = page.waitForResponse((res) => res.url() === srv.graphqlUrl
    && res.request().postData()?.includes('IntrospectionQuery'));
  await page.goto(`${srv.baseUrl}/`);
  await page.locator(QUERY_EDITOR).waitFor();
  const schema = await (await introspection).json();
  assert.ok(schema.data?.__schema?.types?.some((t) => t.name === 'AuthPayload'), 'introspection answered');

  async function close() {
    await context.close();
    assert.deepEqual(blocked, [], "no request left the server's origin");
    assert.ok(seen.some((u) => u.startsWith(`${origin}/playground/graphiql.min.js`)), 'GraphiQL came from the server');
    assert.ok(seen.some((u) => u.startsWith(`${origin}/playground/authgql.js`)), 'authgql.js came from the server');
    assert.ok(seen.every((u) => u === probe || u.startsWith(`${origin}/`)), JSON.stringify(seen));
    assert.deepEqual(pageErrors, []);
  }
  return { context, page, sent, sockets, blocked, close };
}

/**
 * Runs one operation with the execute (play) button — from its menu by name when the document holds several —
 * and returns the JSON the result pane shows once the page's fetcher is done (after a refresh, if it made one).
 */
async function execute(page, srv, operationName) {
  await page.locator(RESULT).evaluate((el) => el.CodeMirror.setValue(''));
  const request = page.waitForRequest((req) => req.url() === srv.graphqlUrl && req.method() === 'POST'
    && (!operationName || JSON.parse(req.postData()).operationName === operationName));
  await page.getByRole('button', { name: /Execute query/ }).click();
  if (operationName) await page.getByRole('menuitem', { name: operationName, exact: true }).click();
  await request;
  await page.waitForFunction((sel) => (document.querySelector(sel)?.CodeMirror.getValue() ?? '').trim() !== '',
    RESULT);
  return JSON.parse(await editorValue(page, RESULT));
}

const status = (page) => page.locator(STATUS).textContent();
const codes = (body) => (body.errors ?? []).map((e) => e.extensions?.code);

async function setVariables(page, variables) {
  await showTool(page, 'Variables');
  await typeInto(page, TOOL_EDITOR, JSON.stringify(variables, null, 2));
}

test('Playground (Chromium): opens on the document for this API, Register through the UI, then Me with no header typed, offline', async () => {
  const user = uniqueUser('pg');
  const pg = await openPlayground(server);
  const { page } = pg;
  try {
    // The document to start from, with its sample variables, and nobody signed in.
    assert.equal(await editorValue(page, QUERY_EDITOR), DEFAULT_DOCUMENT);
    await page.locator(TOOL_EDITOR).waitFor(); // the variables pane is open
    const sample = JSON.parse(await editorValue(page, TOOL_EDITOR));
    assert.deepEqual(Object.keys(sample).sort(), ['email', 'password', 'username']);
    assert.equal(await status(page), 'Not signed in');

    await setVariables(page, user);
    const registered = await execute(page, server, 'Register');
    assert.equal(registered.errors, undefined, JSON.stringify(registered.errors));
    assert.equal(registered.data.register.user.username, user.username);
    const { accessToken } = registered.data.register;
    assert.match(accessToken, /^ey[\w-]+\.[\w-]+\.[\w-]+$/);
    assert.equal(typeof registered.data.register.refreshToken, 'string', 'off mode: the refresh token in the body');
    assert.equal(await status(page), `Signed in as ${user.username}`);

    // Me: the headers pane is empty, the page sends the token it kept.
    await showTool(page, 'Headers');
    assert.equal((await editorValue(page, TOOL_EDITOR)).trim(), '');
    const me = await execute(page, server, 'Me');
    assert.equal(me.errors, undefined, JSON.stringify(me.errors));
    assert.equal(me.data.me.username, user.username);
    assert.deepEqual(pg.sent.map((r) => [r.operationName, r.authorization]),
      [['Register', undefined], ['Me', `Bearer ${accessToken}`]]);
    // The username is on screen, in the result pane and in the status badge.
    await page.locator('.result-window').getByText(user.username).first().waitFor();

    // Nothing of the session went to storage or to a script-readable cookie.
    const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage })
      + document.cookie);
    assert.ok(!stored.includes(accessToken) && !stored.includes(registered.data.register.refreshToken), stored);

    fs.mkdirSync(new URL('.', `file://${screenshotPath}`), { recursive: true });
    await page.screenshot({ path: screenshotPath });

    // The guard itself works: a request to a CDN from the page is caught (and is the only one).
    assert.equal(await page.evaluate((u) => fetch(u).then(() => 'loaded', () => 'failed'), probe), 'failed');
    assert.deepEqual(pg.blocked, [probe], "no request but the probe left the server's origin");
    pg.blocked.length = 0;
  } finally {
    await pg.close();
  }
});

test('Playground (Chromium, off mode): one refresh with the kept refresh token on UNAUTHENTICATED, RefreshToken by hand, Logout forgets', async () => {
  const user = uniqueUser('pgref');
  await registerUser(server.graphqlUrl, user); // the account exists; the UI logs in
  const pg = await openPlayground(server);
  const { page, sent } = pg;
  try {
    await setVariables(page, { username: user.username, password: user.password });
    const login = await execute(page, server, 'Login');
    assert.equal(login.errors, undefined, JSON.stringify(login.errors));
    assert.equal(await status(page), `Signed in as ${user.username}`);

    // The access token the page holds stops being accepted (as an expired one would); the refresh token stays good.
    await page.evaluate(() => window.__authgqlPlayground.replaceAccessToken('not.a.token'));
    sent.length = 0;
    const me = await execute(page, server, 'Me');
    assert.equal(me.errors, undefined, JSON.stringify(me.errors));
    assert.equal(me.data.me.username, user.username);
    assert.deepEqual(sent.map((r) => r.operationName), ['Me', 'PlaygroundRefresh', 'Me']);
    assert.equal(sent[0].authorization, 'Bearer not.a.token');
    assert.equal(sent[1].authorization, undefined);
    assert.deepEqual(sent[1].variables, { token: login.data.login.refreshToken }, 'refreshed with the kept token');
    assert.match(sent[2].authorization, /^Bearer ey/);
    assert.notEqual(sent[2].authorization, `Bearer ${login.data.login.accessToken}`);
    assert.equal(await status(page), `Signed in as ${user.username}`);

    // The document's RefreshToken, its $refreshToken left out: the page passes the one it keeps (rotated above).
    sent.length = 0;
    const refreshed = await execute(page, server, 'RefreshToken');
    assert.equal(refreshed.errors, undefined, JSON.stringify(refreshed.errors));
    assert.equal(typeof refreshed.data.refreshToken.refreshToken, 'string');
    assert.equal(sent.length, 1);
    assert.notEqual(sent[0].variables.refreshToken, login.data.login.refreshToken, 'the rotated token, not the first');
    // ... and the page keeps that answer's tokens.
    sent.length = 0;
    assert.equal((await execute(page, server, 'Me')).data.me.username, user.username);
    assert.equal(sent[0].authorization, `Bearer ${refreshed.data.refreshToken.accessToken}`);

    // Logout ends the session and the page forgets it: Me is UNAUTHENTICATED, with no token and no refresh tried.
    const logout = await execute(page, server, 'Logout');
    assert.deepEqual(logout, { data: { logout: true } });
    assert.equal(await status(page), 'Not signed in');
    sent.length = 0;
    const after = await execute(page, server, 'Me');
    assert.deepEqual(codes(after), ['UNAUTHENTICATED']);
    assert.deepEqual(sent.map((r) => [r.operationName, r.authorization]), [['Me', undefined]]);
    assert.equal(await status(page), 'Not signed in');
  } finally {
    await pg.close();
  }
});

test('Playground (Chromium): an Authorization header typed in the Headers pane is sent as typed, never overridden or refreshed', async () => {
  const user = uniqueUser('pghdr');
  await registerUser(server.graphqlUrl, user);
  const pg = await openPlayground(server);
  const { page, sent } = pg;
  try {
    await setVariables(page, { username: user.username, password: user.password });
    const login = await execute(page, server, 'Login');
    assert.equal(login.data.login.user.username, user.username);

    await showTool(page, 'Headers');
    await typeInto(page, TOOL_EDITOR, JSON.stringify({ AUTHORIZATION: 'Bearer typed-by-hand' }, null, 2));
    sent.length = 0;
    const me = await execute(page, server, 'Me');
    assert.deepEqual(codes(me), ['UNAUTHENTICATED'], 'the typed token, refused as it is');
    assert.deepEqual(sent.map((r) => [r.operationName, r.authorization]), [['Me', 'Bearer typed-by-hand']]);
    assert.equal(await status(page), `Signed in as ${user.username}`, "the page's own session is untouched");
    await page.waitForTimeout(700); // GraphiQL writes its storage 500 ms after a change
    const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }));
    assert.ok(!stored.includes('typed-by-hand'), `typed headers are not stored: ${stored}`);

    // Without the typed header, the page's token is back.
    await typeInto(page, TOOL_EDITOR, '{}');
    sent.length = 0;
    assert.equal((await execute(page, server, 'Me')).data.me.username, user.username);
    assert.equal(sent.length, 1);
    assert.equal(sent[0].authorization, `Bearer ${login.data.login.accessToken}`);
  } finally {
    await pg.close();
  }
});

test('Playground (Chromium, AUTH_COOKIE=on): the refresh token in an HttpOnly cookie, one refresh through it, a reload stays signed in, Logout clears it', async () => {
  const user = uniqueUser('pgck');
  await registerUser(cookieServer.graphqlUrl, user);
  const pg = await openPlayground(cookieServer);
  const { context, page, sent } = pg;
  const cookies = async () => (await context.cookies(cookieServer.baseUrl)).filter((c) => c.name === COOKIE);
  try {
    await setVariables(page, { username: user.username, password: user.password });
    const login = await execute(page, cookieServer, 'Login');
    assert.equal(login.errors, undefined, JSON.stringify(login.errors));
    assert.equal(login.data.login.refreshToken, null, 'the refresh token is not in the body');
    assert.equal(await status(page), `Signed in as ${user.username}`);
    const [cookie] = await cookies();
    assert.ok(cookie, `the ${COOKIE} cookie is set`);
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.secure, true);
    assert.equal(cookie.path, '/');
    assert.equal(cookie.sameSite, 'Strict');
    assert.ok(!(await page.evaluate(() => document.cookie)).includes(cookie.value), 'JavaScript cannot read it');

    // An expired access token (forged with the server's HS256 secret): one refresh, without argument, by cookie.
    const expired = forgeExpiredAccessToken(login.data.login.accessToken, cookieServer.jwtSecret);
    await page.evaluate((t) => window.__authgqlPlayground.replaceAccessToken(t), expired);
    sent.length = 0;
    const me = await execute(page, cookieServer, 'Me');
    assert.equal(me.errors, undefined, JSON.stringify(me.errors));
    assert.equal(me.data.me.username, user.username);
    assert.deepEqual(sent.map((r) => r.operationName), ['Me', 'PlaygroundRefresh', 'Me']);
    assert.equal(sent[0].authorization, `Bearer ${expired}`);
    assert.doesNotMatch(sent[1].query, /token:/, 'no argument: the server reads the cookie');
    assert.equal(sent[1].variables, undefined);
    assert.match(sent[2].authorization, /^Bearer ey/);
    const [rotated] = await cookies();
    assert.notEqual(rotated.value, cookie.value, 'the refresh rotated the cookie');

    // A reload forgets the memory; the first UNAUTHENTICATED refreshes through the cookie and signs in again.
    await page.reload();
    await page.locator(QUERY_EDITOR).waitFor();
    assert.equal(await status(page), 'Not signed in');
    sent.length = 0;
    const again = await execute(page, cookieServer, 'Me');
    assert.equal(again.errors, undefined, JSON.stringify(again.errors));
    assert.deepEqual(sent.map((r) => [r.operationName, r.authorization === undefined]),
      [['Me', true], ['PlaygroundRefresh', true], ['Me', false]]);
    assert.equal(await status(page), `Signed in as ${user.username}`);

    // Logout clears the cookie and the memory: Me is UNAUTHENTICATED and nothing is refreshed.
    assert.deepEqual(await execute(page, cookieServer, 'Logout'), { data: { logout: true } });
    assert.deepEqual(await cookies(), [], 'the cookie is cleared');
    assert.equal(await status(page), 'Not signed in');
    sent.length = 0;
    assert.deepEqual(codes(await execute(page, cookieServer, 'Me')), ['UNAUTHENTICATED']);
    assert.deepEqual(sent.map((r) => r.operationName), ['Me']);
  } finally {
    await pg.close();
  }
});

// Subscriptions. SecurityEvents streams into the result pane, each event replacing the last; the execute button
// turns into a stop button meanwhile.
const ELSEWHERE_UA = 'authgql-e2e-elsewhere/1.0';
const LOGIN = 'mutation($u: String!, $p: String!) { login(input: {username: $u, password: $p}) { accessToken } }';

/** Signs `user` in from somewhere else (plain fetch, its own user agent); returns the access token. */
async function loginElsewhere(srv, user) {
  const res = await fetch(srv.graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'user-agent': ELSEWHERE_UA },
    body: JSON.stringify({ query: LOGIN, variables: { u: user.username, p: user.password } }),
  });
  const body = await res.json();
  assert.equal(body.errors, undefined, JSON.stringify(body.errors));
  return body.data.login.accessToken;
}

async function logoutElsewhere(srv, token, scope = 'CURRENT') {
  assert.deepEqual(await graphql(srv.graphqlUrl, `mutation { logout(scope: ${scope}) }`, {}, token),
    { data: { logout: true } });
}

async function until(what, fn, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const messages = (sockets, direction, type) => sockets.flatMap((s) => s[direction].filter((m) => m.type === type));

/**
 * Starts a subscription from the execute button's menu and waits until a socket sent its `subscribe` (after the
 * connection was acknowledged); then gives the server a moment to register it. Returns the socket.
 */
async function startSubscription(page, sockets, operationName) {
  await page.locator(RESULT).evaluate((el) => el.CodeMirror.setValue(''));
  const before = messages(sockets, 'sent', 'subscribe').length;
  await page.getByRole('button', { name: /Execute query/ }).click();
  await page.getByRole('menuitem', { name: operationName, exact: true }).click();
  const socket = await until(`the subscribe message of ${operationName}`, () => messages(sockets, 'sent', 'subscribe')
    .length > before && sockets.findLast((s) => s.sent.some((m) => m.type === 'subscribe')));
  const subscribe = socket.sent.findLast((m) => m.type === 'subscribe');
  assert.equal(subscribe.payload.operationName, operationName);
  await new Promise((r) => setTimeout(r, 300));
  return socket;
}

/** The result pane once it shows `text` (a streamed result replaces the one before it). */
async function resultShowing(page, text, timeoutMs = 5000) {
  await page.waitForFunction(([sel, t]) => (document.querySelector(sel)?.CodeMirror.getValue() ?? '').includes(t),
    [RESULT, text], { timeout: timeoutMs });
  return JSON.parse(await editorValue(page, RESULT));
}

async function stopSubscription(page, socket) {
  await page.getByRole('button', { name: /Stop query/ }).click();
  await until('the socket to close', () => socket.closed);
  assert.ok(socket.sent.some((m) => m.type === 'complete'), 'the page completed the subscription');
  await page.getByRole('button', { name: /Execute query/ }).waitFor();
}

async function loginInPlayground(page, srv, user) {
  await setVariables(page, { username: user.username, password: user.password });
  const login = await execute(page, srv, 'Login');
  assert.equal(login.errors, undefined, JSON.stringify(login.errors));
  assert.equal(await status(page), `Signed in as ${user.username}`);
  return login.data.login;
}

test('Playground (Chromium): SecurityEvents streams sign-ins and sign-outs elsewhere over a WebSocket authenticated in connection_init', async () => {
  const user = uniqueUser('pgsub');
  await registerUser(server.graphqlUrl, user);
  const pg = await openPlayground(server);
  const { page, sent, sockets } = pg;
  try {
    const { accessToken } = await loginInPlayground(page, server, user);
    assert.deepEqual(sockets, [], 'no socket until a subscription runs');

    sent.length = 0;
    const socket = await startSubscription(page, sockets, 'SecurityEvents');
    // One socket to the page's own /query, the token in connection_init and nowhere in the URL.
    assert.equal(sockets.length, 1);
    assert.equal(socket.url, server.graphqlUrl.replace(/^http/, 'ws'));
    assert.doesNotMatch(socket.url, /[?#]/);
    assert.deepEqual(socket.sent[0], { type: 'connection_init', payload: { Authorization: `Bearer ${accessToken}` } });
    assert.equal(socket.received[0].type, 'connection_ack');
    assert.deepEqual(sent, [], 'the subscription went over the socket, not over HTTP');

    // The same user signs in elsewhere: SESSION_CREATED, with that session's user agent.
    const other = await loginElsewhere(server, user);
    const created = (await resultShowing(page, 'SESSION_CREATED')).data.securityEvents;
    assert.equal(created.type, 'SESSION_CREATED');
    assert.equal(created.current, false);
    assert.equal(created.userAgent, ELSEWHERE_UA);
    assert.equal(typeof created.sessionId, 'string');

    // ... and signs out there: SESSION_REVOKED of that session; this page's socket goes on.
    await logoutElsewhere(server, other);
    const revoked = (await resultShowing(page, 'SESSION_REVOKED')).data.securityEvents;
    assert.deepEqual([revoked.type, revoked.sessionId, revoked.current], ['SESSION_REVOKED', created.sessionId, false]);
    assert.deepEqual(socket.received.filter((m) => m.type === 'next').map((m) => m.payload.data.securityEvents.type),
      ['SESSION_CREATED', 'SESSION_REVOKED']);
    assert.equal(socket.closed, false);
    assert.equal(await status(page), `Signed in as ${user.username}`);

    // ■ stops it: `complete`, and the (lazy) socket closes.
    await stopSubscription(page, socket);

    // Signed out (Logout forgets the tokens): an anonymous socket, no refresh tried, UNAUTHENTICATED.
    assert.deepEqual(await execute(page, server, 'Logout'), { data: { logout: true } });
    sent.length = 0;
    await page.locator(RESULT).evaluate((el) => el.CodeMirror.setValue(''));
    await page.getByRole('button', { name: /Execute query/ }).click();
    await page.getByRole('menuitem', { name: 'SecurityEvents', exact: true }).click();
    const anonymous = await resultShowing(page, 'UNAUTHENTICATED');
    assert.deepEqual(codes(anonymous), ['UNAUTHENTICATED']);
    assert.equal(sockets.length, 2);
    assert.deepEqual(sockets[1].sent[0], { type: 'connection_init' }, 'no payload: an anonymous connection');
    assert.deepEqual(sent, [], 'no refresh without a session');
  } finally {
    await pg.close();
  }
});

test('Playground (Chromium, off mode): the socket refreshes first without a usable token, and after a 4403 close; a session ended elsewhere signs the page out', async () => {
  const user = uniqueUser('pgsubref');
  await registerUser(server.graphqlUrl, user);
  const pg = await openPlayground(server);
  const { page, sent, sockets } = pg;
  try {
    const login = await loginInPlayground(page, server, user);

    // A token the page cannot use (not a JWT, as an expired one): one refresh before the socket opens.
    await page.evaluate(() => window.__authgqlPlayground.replaceAccessToken('not.a.token'));
    sent.length = 0;
    const first = await startSubscription(page, sockets, 'SecurityEvents');
    assert.deepEqual(sent.map((r) => r.operationName), ['PlaygroundRefresh']);
    assert.deepEqual(sent[0].variables, { token: login.refreshToken });
    const [init] = first.sent;
    assert.match(init.payload.Authorization, /^Bearer ey/);
    assert.notEqual(init.payload.Authorization, `Bearer ${login.accessToken}`, 'the refreshed token');
    assert.equal(sockets.length, 1);
    await loginElsewhere(server, user);
    assert.equal((await resultShowing(page, 'SESSION_CREATED')).data.securityEvents.userAgent, ELSEWHERE_UA);
    await stopSubscription(page, first);

    // A token that looks good but whose session ended: the server closes with 4403, graphql-ws reconnects and
    // the page refreshes before its second connection_init.
    const ended = await loginElsewhere(server, user);
    await logoutElsewhere(server, ended);
    await page.evaluate((t) => window.__authgqlPlayground.replaceAccessToken(t), ended);
    sent.length = 0;
    const second = await startSubscription(page, sockets, 'SecurityEvents');
    assert.equal(sockets.length, 3);
    assert.deepEqual(sockets[1].sent, [{ type: 'connection_init', payload: { Authorization: `Bearer ${ended}` } }]);
    assert.ok(sockets[1].closed, 'refused at init');
    assert.equal(second, sockets[2]);
    assert.deepEqual(sent.map((r) => r.operationName), ['PlaygroundRefresh']);
    assert.match(second.sent[0].payload.Authorization, /^Bearer ey/);
    assert.notEqual(second.sent[0].payload.Authorization, `Bearer ${ended}`);

    // Another client ends this page's session (logout OTHERS from elsewhere): its own SESSION_REVOKED
    // (current: true), the socket closes with 4403, the refresh fails, the page is signed out and says so.
    const elsewhere = await loginElsewhere(server, user);
    await resultShowing(page, 'SESSION_CREATED');
    await logoutElsewhere(server, elsewhere, 'OTHERS');
    await until('the page to learn it was signed out', async () => (await status(page)) === 'Not signed in');
    const last = await resultShowing(page, 'UNAUTHENTICATED');
    assert.deepEqual(codes(last), ['UNAUTHENTICATED']);
    const own = second.received.filter((m) => m.type === 'next').map((m) => m.payload.data.securityEvents)
      .find((e) => e.current);
    assert.equal(own?.type, 'SESSION_REVOKED', 'the socket delivered the end of its own session');
    assert.ok(second.closed);
    assert.deepEqual(sent.map((r) => r.operationName), ['PlaygroundRefresh', 'PlaygroundRefresh']);
    assert.deepEqual(sockets.at(-1).sent[0], { type: 'connection_init' }, 'then anonymous');
  } finally {
    await pg.close();
  }
});

test('Playground (Chromium): a typed Authorization header opens its own socket with that header, no refresh', async () => {
  const user = uniqueUser('pgsubhdr');
  await registerUser(server.graphqlUrl, user);
  const pg = await openPlayground(server);
  const { page, sent, sockets } = pg;
  try {
    const login = await loginInPlayground(page, server, user);
    await showTool(page, 'Headers');
    await typeInto(page, TOOL_EDITOR, JSON.stringify({ authorization: 'Bearer typed-by-hand' }, null, 2));
    sent.length = 0;
    await page.locator(RESULT).evaluate((el) => el.CodeMirror.setValue(''));
    await page.getByRole('button', { name: /Execute query/ }).click();
    await page.getByRole('menuitem', { name: 'SecurityEvents', exact: true }).click();
    const refused = await resultShowing(page, '4403');
    assert.deepEqual(refused.errors.map((e) => e.extensions), [{ closeCode: 4403, closeReason: 'token_invalid' }]);
    assert.equal(sockets.length, 1, 'not retried');
    assert.deepEqual(sockets[0].sent, [{ type: 'connection_init', payload: { Authorization: 'Bearer typed-by-hand' } }]);
    assert.deepEqual(sent, [], 'no refresh');
    assert.equal(await status(page), `Signed in as ${user.username}`, "the page's own session is untouched");

    // Without it, the page's token again.
    await typeInto(page, TOOL_EDITOR, '{}');
    const socket = await startSubscription(page, sockets, 'SecurityEvents');
    assert.deepEqual(socket.sent[0].payload, { Authorization: `Bearer ${login.accessToken}` });
    await stopSubscription(page, socket);
  } finally {
    await pg.close();
  }
});

test('Playground (Chromium, AUTH_COOKIE=on): after a reload, SecurityEvents refreshes through the cookie before it connects', async () => {
  const user = uniqueUser('pgsubck');
  await registerUser(cookieServer.graphqlUrl, user);
  const pg = await openPlayground(cookieServer);
  const { page, sent, sockets } = pg;
  try {
    await loginInPlayground(page, cookieServer, user);
    await page.reload();
    await page.locator(QUERY_EDITOR).waitFor();
    assert.equal(await status(page), 'Not signed in');
    sent.length = 0;
    const socket = await startSubscription(page, sockets, 'SecurityEvents');
    assert.deepEqual(sent.map((r) => [r.operationName, r.variables]), [['PlaygroundRefresh', undefined]]);
    assert.match(socket.sent[0].payload.Authorization, /^Bearer ey/);
    assert.equal(await status(page), `Signed in as ${user.username}`);
    await loginElsewhere(cookieServer, user);
    assert.equal((await resultShowing(page, 'SESSION_CREATED')).data.securityEvents.userAgent, ELSEWHERE_UA);
    await stopSubscription(page, socket);
  } finally {
    await pg.close();
  }
});
