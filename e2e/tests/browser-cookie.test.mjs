// The browser examples (examples/apollo-browser, examples/urql-browser) in headless Debian Chromium against the
// server in cookie mode (AUTH_COOKIE=on): the access token only in the page's memory, the refresh token in an
// HttpOnly __Host- cookie, CSRF refused by Origin.
//
// The page is served from http://localhost:<pagePort> and calls the API at http://localhost:<apiPort>/query: two
// origins of one site, so the SameSite=Strict cookie flows between them. A second static server,
// http://127.0.0.1:<otherPort>, is the disallowed (cross-site) origin an attacker would use. Each example's app.mjs
// is bundled in memory by esbuild, the way its README tells users to bundle it.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { bundleExample } from '../support/bundle.mjs';
import { chromium } from 'playwright-core';
import {
  decodeJwt, errorCodes, errorReasons, forgeExpiredAccessToken, graphql, registerUser, repoRoot, startServer,
  uniqueUser,
} from '../support/server.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const COOKIE = '__Host-authgql_refresh';
const REFRESH_TTL_S = 30 * 24 * 3600; // REFRESH_TOKEN_TTL's default
const EXAMPLES = { apollo: 'apollo-browser', urql: 'urql-browser' };
const REFRESH_NO_ARG = 'mutation { refreshToken { accessToken expiresAt user { id username } } }';
const BLANK = '<!doctype html><html><head><meta charset="utf-8"><title>blank</title></head><body></body></html>';

let server;
let browser;
let pageOrigin; // http://localhost:<pagePort>: allowed
let otherOrigin; // http://127.0.0.1:<otherPort>: not allowed, another site
let apiUrl; // http://localhost:<apiPort>/query
const statics = [];

// A tiny static server on 127.0.0.1: /<example>/ is its index.html, /<example>/app.js its bundle, / a blank page.
async function startStatic(files) {
  const srv = http.createServer((req, res) => {
    const { pathname } = new URL(req.url, 'http://x');
    const file = files[pathname.endsWith('/') ? `${pathname}index.html` : pathname];
    if (req.method !== 'GET' || file === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    const type = pathname.endsWith('.js') ? 'text/javascript' : 'text/html';
    res.writeHead(200, { 'content-type': `${type}; charset=utf-8`, 'cache-control': 'no-store' }).end(file);
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  statics.push(srv);
  return srv.address().port;
}

before(async () => {
  const files = { '/index.html': BLANK };
  for (const dir of Object.values(EXAMPLES)) {
    files[`/${dir}/index.html`] = fs.readFileSync(`${repoRoot}examples/${dir}/index.html`, 'utf8');
    files[`/${dir}/app.js`] = await bundleExample(dir);
  }
  pageOrigin = `http://localhost:${await startStatic(files)}`;
  otherOrigin = `http://127.0.0.1:${await startStatic({ '/index.html': BLANK })}`;
  // HS256: the refresh test plants an expired access token forged with JWT_SECRET, the server's own format only in
  // HS256 mode.
  server = await startServer({
    env: { AUTH_COOKIE: 'on', CORS_ALLOWED_ORIGINS: pageOrigin, JWT_ALGORITHM: 'HS256' },
  });
  apiUrl = `http://localhost:${new URL(server.baseUrl).port}/query`;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
});
after(async () => {
  await browser?.close();
  await server?.stop();
  await Promise.all(statics.map((srv) => new Promise((resolve) => srv.close(resolve))));
});

// The operation name of a GraphQL request ("Login", "Me", "Refresh", "Logout"), GET or POST.
function operationOf(req) {
  let query = '';
  if (req.method() === 'GET') {
    query = new URL(req.url()).searchParams.get('query') ?? '';
  } else {
    try { query = JSON.parse(req.postData() ?? '').query ?? ''; } catch { query = req.postData() ?? ''; }
  }
  return /^\s*(?:query|mutation)\s+(\w+)/.exec(query)?.[1] ?? '?';
}

// Records the page's requests to the API (preflights aside), in order, with their answers.
function watchApi(page) {
  const log = [];
  page.on('request', (req) => {
    if (!req.url().startsWith(apiUrl) || req.method() === 'OPTIONS') return;
    const entry = { name: operationOf(req), method: req.method() };
    if (entry.name === 'Providers') return; // the login page's "Sign in with …" buttons: federation.test.mjs
    entry.done = (async () => {
      entry.requestHeaders = await req.allHeaders().catch(() => ({}));
      entry.authorization = entry.requestHeaders.authorization;
      const res = await req.response().catch(() => null);
      if (!res) return;
      entry.status = res.status();
      entry.setCookie = await res.headerValue('set-cookie');
      entry.body = await res.json().catch(() => undefined);
    })();
    log.push(entry);
  });
  return log;
}

// Waits until the log has `count` requests and all are answered, then a moment more: nothing else may follow.
async function settle(log, count) {
  const until = Date.now() + 15_000;
  while (log.length < count) {
    if (Date.now() > until) {
      throw new Error(`expected ${count} API requests, saw ${JSON.stringify(log.map((e) => e.name))}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  await new Promise((r) => setTimeout(r, 300));
  await Promise.all(log.map((e) => e.done));
  return log;
}

async function openExample(context, example) {
  const page = await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (err) => pageErrors.push(String(err)));
  const log = watchApi(page);
  await page.goto(`${pageOrigin}/${EXAMPLES[example]}/?api=${encodeURIComponent(apiUrl)}`);
  await page.waitForSelector('body:not([data-state="loading"])');
  return { page, log, pageErrors };
}

async function signIn(page, user) {
  await page.getByLabel('Username or email').fill(user.username);
  await page.getByLabel('Password').fill(user.password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForSelector('body[data-state="signed-in"]');
}

const refreshCookies = async (context) => (await context.cookies()).filter((c) => c.name.includes('authgql_refresh'));
async function refreshCookie(context) {
  const cookies = await refreshCookies(context);
  assert.equal(cookies.length, 1, `one refresh cookie, got ${JSON.stringify(cookies)}`);
  return cookies[0];
}

// What scripts on the page can see: never the refresh token, and nothing stored.
async function assertNothingInJs(page) {
  const seen = await page.evaluate(() => ({
    cookie: document.cookie,
    local: localStorage.length,
    session: sessionStorage.length,
  }));
  assert.ok(!seen.cookie.includes('authgql_refresh'), `document.cookie shows the refresh token: ${seen.cookie}`);
  assert.deepEqual([seen.local, seen.session], [0, 0], 'nothing in localStorage or sessionStorage');
}

// A raw Set-Cookie that sets the refresh cookie: returns its value and attributes.
function parseSetCookie(header) {
  assert.ok(header, 'a Set-Cookie header');
  const line = header.split('\n').find((l) => l.startsWith(`${COOKIE}=`));
  assert.ok(line, `Set-Cookie for ${COOKIE}: ${header}`);
  const [pair, ...attrs] = line.split(';').map((s) => s.trim());
  const map = Object.fromEntries(attrs.map((a) => {
    const [k, v = true] = a.split('=');
    return [k.toLowerCase(), v];
  }));
  return { value: pair.slice(COOKIE.length + 1), attrs: map };
}

for (const example of Object.keys(EXAMPLES)) {
  test(`${example} in Chromium: login through the page sets the HttpOnly cookie exactly; a reload restores the session silently`, async () => {
    const user = uniqueUser(`b${example}`);
    const registered = await registerUser(server.graphqlUrl, user);
    const context = await browser.newContext();
    try {
      const { page, log, pageErrors } = await openExample(context, example);

      // A first visit: the page tries the cookie, there is none, it shows the login form.
      await settle(log, 1);
      assert.deepEqual(log.map((e) => e.name), ['Refresh']);
      assert.deepEqual(errorCodes(log[0].body), ['INVALID_REFRESH_TOKEN']);
      assert.deepEqual(errorReasons(log[0].body), ['missing']);
      assert.equal(await page.locator('body').getAttribute('data-state'), 'signed-out');
      log.length = 0;

      await signIn(page, user);
      await settle(log, 2);
      assert.deepEqual(log.map((e) => e.name), ['Login', 'Me']);
      const [login, me] = log;
      assert.equal(login.status, 200);
      assert.equal(login.body.errors, undefined, JSON.stringify(login.body.errors));
      assert.equal(login.body.data.login.refreshToken, null, 'a browser gets the refresh token only as a cookie');
      const accessToken = login.body.data.login.accessToken;
      assert.equal(me.authorization, `Bearer ${accessToken}`);
      assert.deepEqual(me.body.errors, undefined);
      assert.deepEqual({ ...me.body.data.me, __typename: undefined },
        { id: registered.user.id, username: user.username, __typename: undefined });
      assert.equal(await page.locator('#username').textContent(), user.username);
      assert.equal(await page.locator('#user-id').textContent(), registered.user.id);

      // The raw Set-Cookie of the login response.
      const set = parseSetCookie(login.setCookie);
      assert.ok(set.value.length >= 20, 'a token in the cookie');
      assert.equal(set.attrs.path, '/');
      assert.equal(set.attrs.httponly, true);
      assert.equal(set.attrs.secure, true);
      assert.equal(set.attrs.samesite, 'Strict');
      assert.equal(set.attrs.domain, undefined, 'no Domain: host-only');
      assert.ok(Math.abs(Number(set.attrs['max-age']) - REFRESH_TTL_S) <= 120, `Max-Age ${set.attrs['max-age']}`);

      // What the browser stored.
      const cookie = await refreshCookie(context);
      assert.equal(cookie.name, COOKIE);
      assert.equal(cookie.value, set.value);
      assert.equal(cookie.domain, 'localhost', 'host-only (a Domain cookie would read .localhost)');
      assert.equal(cookie.path, '/');
      assert.equal(cookie.httpOnly, true);
      assert.equal(cookie.secure, true);
      assert.equal(cookie.sameSite, 'Strict');
      assert.ok(Math.abs(cookie.expires - (Date.now() / 1000 + REFRESH_TTL_S)) <= 120, `expires ${cookie.expires}`);
      await assertNothingInJs(page);

      // A reload: the token in memory is gone; the cookie brings the session back without the login form.
      log.length = 0;
      await page.reload();
      await page.waitForSelector('body:not([data-state="loading"])');
      await settle(log, 2);
      assert.deepEqual(log.map((e) => e.name), ['Refresh', 'Me']);
      const [refresh, meAgain] = log;
      assert.equal(refresh.method, 'POST');
      assert.match(refresh.requestHeaders.cookie ?? '', new RegExp(`${COOKIE}=`), 'the cookie went with the refresh');
      assert.equal(refresh.body.errors, undefined, JSON.stringify(refresh.body.errors));
      const restored = refresh.body.data.refreshToken;
      assert.equal(restored.user.username, user.username);
      assert.equal(decodeJwt(restored.accessToken).payload.sub, registered.user.id);
      assert.equal(meAgain.authorization, `Bearer ${restored.accessToken}`);
      assert.equal(meAgain.body.data.me.username, user.username);
      assert.equal(await page.locator('body').getAttribute('data-state'), 'signed-in');
      assert.equal(await page.locator('#username').textContent(), user.username);

      // The refresh rotated the cookie (same attributes, new value).
      const rotated = parseSetCookie(refresh.setCookie);
      assert.notEqual(rotated.value, set.value);
      assert.equal(rotated.attrs.domain, undefined);
      assert.equal((await refreshCookie(context)).value, rotated.value);
      await assertNothingInJs(page);
      assert.deepEqual(pageErrors, []);
    } finally {
      await context.close();
    }
  });

  test(`${example} in Chromium: a stale access token is refreshed through the cookie once and the query retried`, async () => {
    const user = uniqueUser(`b${example}`);
    await registerUser(server.graphqlUrl, user);
    const context = await browser.newContext();
    try {
      const { page, log, pageErrors } = await openExample(context, example);
      await settle(log, 1);
      log.length = 0;
      await signIn(page, user);
      await settle(log, 2);
      const loginToken = log[0].body.data.login.accessToken;

      // Expired (the tab was left open past ACCESS_TOKEN_TTL), and then plain garbage: each time one refresh.
      const expired = forgeExpiredAccessToken(loginToken, server.jwtSecret);
      assert.deepEqual(errorReasons(await graphql(server.graphqlUrl, '{ me { id } }', {}, expired)), ['token_expired']);
      for (const [stale, reason] of [[expired, 'token_expired'], ['not-a-jwt', 'token_invalid']]) {
        const before = (await refreshCookie(context)).value;
        await page.evaluate((t) => window.__example.setAccessToken(t), stale);
        log.length = 0;
        await page.getByRole('button', { name: 'Ask the server who I am' }).click();
        await settle(log, 3);
        assert.deepEqual(log.map((e) => e.name), ['Me', 'Refresh', 'Me'], `${reason}: me, one refresh, me`);
        assert.equal(log[0].authorization, `Bearer ${stale}`);
        assert.deepEqual(errorCodes(log[0].body), ['UNAUTHENTICATED']);
        assert.deepEqual(errorReasons(log[0].body), [reason]);
        assert.equal(log[1].body.errors, undefined, JSON.stringify(log[1].body.errors));
        const fresh = log[1].body.data.refreshToken.accessToken;
        assert.equal(log[2].authorization, `Bearer ${fresh}`);
        assert.equal(log[2].body.data.me.username, user.username);
        assert.equal(await page.locator('body').getAttribute('data-state'), 'signed-in');
        assert.equal(await page.locator('#error').textContent(), '');
        const after = await refreshCookie(context);
        assert.notEqual(after.value, before, 'the refresh rotated the cookie');
        assert.equal(after.value, parseSetCookie(log[1].setCookie).value);
      }
      await assertNothingInJs(page);
      assert.deepEqual(pageErrors, []);
    } finally {
      await context.close();
    }
  });

  test(`${example} in Chromium: logout clears the cookie; after a reload the page is signed out`, async () => {
    const user = uniqueUser(`b${example}`);
    await registerUser(server.graphqlUrl, user);
    const context = await browser.newContext();
    try {
      const { page, log, pageErrors } = await openExample(context, example);
      await settle(log, 1);
      log.length = 0;
      await signIn(page, user);
      await settle(log, 2);
      const sessionCookie = (await refreshCookie(context)).value;

      log.length = 0;
      await page.getByRole('button', { name: 'Log out' }).click();
      await page.waitForSelector('body[data-state="signed-out"]');
      await settle(log, 1);
      assert.deepEqual(log.map((e) => e.name), ['Logout']);
      assert.deepEqual(log[0].body, { data: { logout: true } });
      const cleared = parseSetCookie(log[0].setCookie);
      assert.equal(cleared.attrs['max-age'], '0', `a clearing cookie: ${log[0].setCookie}`);
      assert.equal(cleared.attrs.path, '/');
      assert.equal(cleared.attrs.domain, undefined);
      assert.deepEqual(await refreshCookies(context), [], 'the browser dropped the cookie');

      log.length = 0;
      await page.reload();
      await page.waitForSelector('body:not([data-state="loading"])');
      await settle(log, 1);
      assert.deepEqual(log.map((e) => e.name), ['Refresh']);
      assert.equal(log[0].requestHeaders.cookie, undefined, 'no cookie left to send');
      assert.deepEqual(errorCodes(log[0].body), ['INVALID_REFRESH_TOKEN']);
      assert.deepEqual(errorReasons(log[0].body), ['missing']);
      assert.equal(await page.locator('body').getAttribute('data-state'), 'signed-out');
      assert.ok(await page.getByRole('button', { name: 'Log in' }).isVisible());

      // The server agrees: the old cookie's session is over (and an allowed origin presenting it is told to drop it).
      const res = await fetch(server.graphqlUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: pageOrigin, cookie: `${COOKIE}=${sessionCookie}` },
        body: JSON.stringify({ query: REFRESH_NO_ARG }),
      });
      const body = await res.json();
      assert.deepEqual(errorCodes(body), ['INVALID_REFRESH_TOKEN']);
      assert.equal(parseSetCookie(res.headers.get('set-cookie')).attrs['max-age'], '0');
      assert.deepEqual(pageErrors, []);
    } finally {
      await context.close();
    }
  });
}

test('Chromium: two tabs that restore at once both stay signed in, and the cookie left behind still works', async () => {
  const user = uniqueUser('btabs');
  await registerUser(server.graphqlUrl, user);
  const context = await browser.newContext();
  try {
    const first = await openExample(context, 'apollo');
    await settle(first.log, 1);
    await signIn(first.page, user);
    const second = await openExample(context, 'urql'); // the same cookie jar: signed in at once
    assert.equal(await second.page.locator('body').getAttribute('data-state'), 'signed-in');

    // Both reload together: their refreshes present the same cookie; the server's reuse interval lets both through.
    for (let round = 0; round < 3; round++) {
      first.log.length = 0;
      second.log.length = 0;
      await Promise.all([first.page.reload(), second.page.reload()]);
      for (const tab of [first, second]) {
        await tab.page.waitForSelector('body:not([data-state="loading"])');
        await settle(tab.log, 2);
        const refresh = tab.log.find((e) => e.name === 'Refresh');
        assert.equal(refresh.body.errors, undefined, `round ${round}: ${JSON.stringify(refresh.body.errors)}`);
        assert.equal(await tab.page.locator('body').getAttribute('data-state'), 'signed-in', `round ${round}`);
      }
    }
    // What the browser kept is live: one more reload signs in again.
    first.log.length = 0;
    await first.page.reload();
    await first.page.waitForSelector('body[data-state="signed-in"]');
    await settle(first.log, 2);
    assert.deepEqual(first.log.map((e) => e.name), ['Refresh', 'Me']);
    assert.deepEqual([...first.pageErrors, ...second.pageErrors], []);
  } finally {
    await context.close();
  }
});

// A signed-in browser (the Apollo example) whose cookie an attacker page in the same browser would like to use.
async function signedInContext() {
  const user = uniqueUser('battack');
  await registerUser(server.graphqlUrl, user);
  const context = await browser.newContext();
  const { page, log } = await openExample(context, 'apollo');
  await settle(log, 1);
  await signIn(page, user);
  return { context, page, user, cookie: (await refreshCookie(context)).value };
}

// A CORS preflight for a JSON POST with a token, as Chromium sends it (the header names sorted, lowercase).
const preflightFrom = (origin) => fetch(server.graphqlUrl, {
  method: 'OPTIONS',
  headers: {
    origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type',
  },
});

// The session survives whatever the attacker did: same cookie, and the page still restores it on reload.
async function assertSessionIntact({ context, page, user, cookie }) {
  assert.equal((await refreshCookie(context)).value, cookie, 'the cookie was not rotated or cleared');
  await page.reload();
  await page.waitForSelector('body[data-state="signed-in"]');
  assert.equal(await page.locator('#username').textContent(), user.username);
}

test('Chromium: a page on a disallowed origin cannot refresh with fetch and credentials', async () => {
  const session = await signedInContext();
  try {
    const attacker = await session.context.newPage();
    const log = watchApi(attacker);
    await attacker.goto(`${otherOrigin}/`);

    // A JSON POST needs a preflight, which the server refuses to this origin: the request never leaves.
    const cors = await attacker.evaluate(async ({ url, query }) => {
      try {
        const res = await fetch(url, {
          method: 'POST', credentials: 'include', headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ query }),
        });
        return `read ${res.status}: ${await res.text()}`;
      } catch (err) {
        return `rejected: ${err.name}`;
      }
    }, { url: apiUrl, query: REFRESH_NO_ARG });
    assert.equal(cors, 'rejected: TypeError');

    // A "simple" POST goes out without a preflight (text/plain); the answer is opaque to the page and a 415 anyway.
    const simple = await attacker.evaluate(async ({ url, query }) => {
      const body = JSON.stringify({ query });
      const res = await fetch(url, { method: 'POST', mode: 'no-cors', credentials: 'include', body });
      return res.type;
    }, { url: apiUrl, query: REFRESH_NO_ARG });
    assert.equal(simple, 'opaque');
    await new Promise((r) => setTimeout(r, 300));
    await Promise.all(log.map((e) => e.done));
    const answered = log.filter((e) => e.status !== undefined);
    assert.ok(answered.length >= 1, 'the no-cors POST reached the server');
    for (const e of answered) {
      assert.equal(e.status, 415, JSON.stringify(e.body));
      assert.equal(e.setCookie, null);
      assert.equal(e.requestHeaders.cookie, undefined, 'SameSite=Strict: no cookie on a cross-site request');
    }

    // Had the browser sent the cookie with the JSON POST, the server would still refuse the origin.
    for (const origin of [otherOrigin, 'null']) {
      const res = await fetch(server.graphqlUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin, cookie: `${COOKIE}=${session.cookie}` },
        body: JSON.stringify({ query: REFRESH_NO_ARG }),
      });
      const body = await res.json();
      assert.equal(body.data, null, `Origin ${origin}: ${JSON.stringify(body)}`);
      assert.deepEqual(errorCodes(body), ['FORBIDDEN'], `Origin ${origin}`);
      assert.deepEqual(errorReasons(body), ['origin_not_allowed'], `Origin ${origin}`);
      assert.equal(res.headers.get('set-cookie'), null);
      assert.equal(res.headers.get('access-control-allow-origin'), null);
      assert.equal(res.headers.get('access-control-allow-credentials'), null);
    }
    // ... and its preflight gets no CORS grant.
    const preflight = await preflightFrom(otherOrigin);
    assert.equal(preflight.headers.get('access-control-allow-origin'), null);

    await assertSessionIntact(session);
  } finally {
    await session.context.close();
  }
});

// The text/plain body a form can craft to look like GraphQL JSON: name + "=" + value.
const FORMS = [
  ['text/plain', `{"query":"${REFRESH_NO_ARG}","extensions":{"x":"`, '"}}'],
  ['application/x-www-form-urlencoded', 'query', REFRESH_NO_ARG],
  ['multipart/form-data', 'query', REFRESH_NO_ARG],
];

async function submitForm(page, enctype, name, value) {
  const navigated = page.waitForResponse((res) => res.url() === apiUrl && res.request().method() === 'POST');
  await page.evaluate(({ url, enctype: type, name: n, value: v }) => {
    const form = document.createElement('form');
    form.method = 'POST';
    form.action = url;
    form.enctype = type;
    const input = document.createElement('input');
    input.type = 'hidden';
    input.name = n;
    input.value = v;
    form.append(input);
    document.body.append(form);
    form.submit();
  }, { url: apiUrl, enctype, name, value });
  const res = await navigated;
  return {
    status: res.status(),
    setCookie: await res.headerValue('set-cookie'),
    text: await res.text(),
    cookieSent: (await res.request().allHeaders()).cookie?.includes(COOKIE) ?? false,
    contentType: (await res.request().allHeaders())['content-type'],
  };
}

test('Chromium: a form POST to the API cannot refresh, from another site or from the same site', async () => {
  const session = await signedInContext();
  try {
    const page = await session.context.newPage();
    // From 127.0.0.1 (cross-site) SameSite=Strict keeps the cookie home; from localhost:<pagePort> (same site)
    // the browser sends it, and the server's JSON-only rule is what refuses.
    for (const [origin, cookieSent] of [[otherOrigin, false], [pageOrigin, true]]) {
      for (const [enctype, name, value] of FORMS) {
        await page.goto(`${origin}/`);
        const got = await submitForm(page, enctype, name, value);
        const what = `${enctype} from ${origin}`;
        assert.ok(got.contentType.startsWith(enctype), `${what}: sent as ${got.contentType}`);
        assert.equal(got.status, 415, `${what}: ${got.text}`);
        assert.ok(!got.text.includes('accessToken'), `${what}: ${got.text}`);
        assert.deepEqual(errorCodes(JSON.parse(got.text)), ['UNSUPPORTED_MEDIA_TYPE'], what);
        assert.equal(got.setCookie, null, what);
        assert.equal(got.cookieSent, cookieSent, `${what}: cookie sent`);
        assert.equal((await refreshCookie(session.context)).value, session.cookie, `${what}: cookie unchanged`);
      }
    }
    await assertSessionIntact(session);
  } finally {
    await session.context.close();
  }
});

test('cookie mode without Origin (native apps, servers, Postman): tokens in the body, no cookie; refreshToken() is refused', async () => {
  const user = uniqueUser('bnative');
  await registerUser(server.graphqlUrl, user);
  const post = (query, variables, headers = {}) => fetch(server.graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query, variables }),
  });

  const login = await post('mutation($i: LoginInput!) { login(input: $i) { accessToken refreshToken } }',
    { i: { username: user.username, password: user.password } });
  const loginBody = await login.json();
  assert.equal(loginBody.errors, undefined, JSON.stringify(loginBody.errors));
  assert.match(loginBody.data.login.refreshToken, /\S{20,}/, 'the refresh token in the body');
  assert.equal(login.headers.get('set-cookie'), null, 'no cookie without Origin');

  // With the argument: as in off mode.
  const rotated = await post('mutation($t: String) { refreshToken(token: $t) { accessToken refreshToken } }',
    { t: loginBody.data.login.refreshToken });
  const rotatedBody = await rotated.json();
  assert.equal(rotatedBody.errors, undefined, JSON.stringify(rotatedBody.errors));
  assert.ok(rotatedBody.data.refreshToken.refreshToken);
  assert.equal(rotated.headers.get('set-cookie'), null);

  // With the argument from an allowed browser origin: also as in off mode, and the cookie is not touched.
  const fromPage = await post('mutation($t: String) { refreshToken(token: $t) { accessToken refreshToken } }',
    { t: rotatedBody.data.refreshToken.refreshToken }, { origin: pageOrigin });
  const fromPageBody = await fromPage.json();
  assert.equal(fromPageBody.errors, undefined, JSON.stringify(fromPageBody.errors));
  assert.ok(fromPageBody.data.refreshToken.refreshToken, 'the token in the body');
  assert.equal(fromPage.headers.get('set-cookie'), null);
  const latest = fromPageBody.data.refreshToken.refreshToken;

  // A login from an origin that is not allowed is not a browser session of ours: the token in the body, no cookie.
  const foreign = await post('mutation($i: LoginInput!) { login(input: $i) { refreshToken } }',
    { i: { username: user.username, password: user.password } }, { origin: otherOrigin });
  const foreignBody = await foreign.json();
  assert.ok(foreignBody.data?.login.refreshToken, JSON.stringify(foreignBody));
  assert.equal(foreign.headers.get('set-cookie'), null);

  // Without it (the cookie way), a request with no Origin is refused, cookie or not.
  for (const headers of [{}, { cookie: `${COOKIE}=${latest}` }]) {
    const res = await post(REFRESH_NO_ARG, {}, headers);
    const body = await res.json();
    assert.deepEqual(errorCodes(body), ['FORBIDDEN'], JSON.stringify(body));
    assert.deepEqual(errorReasons(body), ['origin_not_allowed']);
    assert.equal(res.headers.get('set-cookie'), null);
  }

  // CORS grants credentials to the allowed origin only.
  const preflight = await preflightFrom(pageOrigin);
  assert.equal(preflight.headers.get('access-control-allow-origin'), pageOrigin);
  assert.equal(preflight.headers.get('access-control-allow-credentials'), 'true');
});

test('off mode (the default): no cookie and no credentials for browsers; refreshToken() without a token is INVALID_REFRESH_TOKEN missing', async () => {
  const off = await startServer({ env: { CORS_ALLOWED_ORIGINS: pageOrigin } });
  try {
    const user = uniqueUser('boff');
    await registerUser(off.graphqlUrl, user);
    const headers = { 'content-type': 'application/json', origin: pageOrigin };
    const login = await fetch(off.graphqlUrl, {
      method: 'POST', headers,
      body: JSON.stringify({ query: 'mutation($i: LoginInput!) { login(input: $i) { refreshToken } }',
        variables: { i: { username: user.username, password: user.password } } }),
    });
    const body = await login.json();
    assert.ok(body.data.login.refreshToken, 'the refresh token in the body, as today');
    assert.equal(login.headers.get('set-cookie'), null);
    assert.equal(login.headers.get('access-control-allow-origin'), pageOrigin);
    assert.equal(login.headers.get('access-control-allow-credentials'), null, 'never credentials in off mode');

    const refresh = await (await fetch(off.graphqlUrl, {
      method: 'POST', headers, body: JSON.stringify({ query: REFRESH_NO_ARG }),
    })).json();
    assert.deepEqual(errorCodes(refresh), ['INVALID_REFRESH_TOKEN'], JSON.stringify(refresh));
    assert.deepEqual(errorReasons(refresh), ['missing']);
  } finally {
    await off.stop();
  }
});
