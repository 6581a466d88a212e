// Sign-in with identity providers (docs/federation.md) in headless Debian Chromium: the browser examples'
// "Sign in with …" buttons against two local providers, each its own process (support/providers.mjs): oidctest,
// an OpenID Connect provider, as OIDC_PROVIDERS entry "local", and githubtest, the stand-in of GitHub's OAuth web
// flow and API, as the "github" preset. The server runs in cookie mode, as the examples expect.
//
// The example is served from http://localhost:<pagePort>/app/ (APP_URL=http://localhost:<pagePort>/app, so the
// providers' return lands on /app/auth/callback, the same page) and the API is http://localhost:<apiPort>
// (PUBLIC_URL: the providers call back to PUBLIC_URL/auth/NAME/callback). The API's port is chosen before the
// server starts, since PUBLIC_URL and the providers' callback URLs name it.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { bundleExample } from '../support/bundle.mjs';
import { chromium } from 'playwright-core';
import { startProvider } from '../support/providers.mjs';
import { decodeJwt, errorCodes, errorReasons, graphql, repoRoot, startServer } from '../support/server.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const DISPLAY = { local: 'Local', github: 'GitHub' };

// The providers' accounts. Each test signs in its own, so that the tests do not depend on each other's accounts.
const LOCAL = {
  ana: { subject: 'local-ana', email: 'ana.lima@example.com', email_verified: true, name: 'Ana Lima',
    preferred_username: 'ana.lima' },
  ben: { subject: 'local-ben', email: 'ben.okafor@example.com', email_verified: true, name: 'Ben Okafor',
    preferred_username: 'ben.okafor' },
  cy: { subject: 'local-cy', email: 'cy.urql@example.com', email_verified: true, name: 'Cy Urql',
    preferred_username: 'cy.urql' },
  dee: { subject: 'local-dee', email: 'dee@example.com', email_verified: false, name: 'Dee Unverified',
    preferred_username: 'dee' },
};
const GITHUB = {
  octo: { id: 5001, login: 'octo-e2e', name: 'Octo E2E',
    emails: [{ email: 'octo.e2e@example.com', primary: true, verified: true }] },
};

let server;
let browser;
let local; // oidctest: url is its issuer
let github; // githubtest
let pageOrigin; // http://localhost:<pagePort>
let apiUrl; // http://localhost:<apiPort>/query, as the page calls it
let mounted = 'apollo-browser'; // the example served at /app/
const pages = {}; // example → { html, js }
let statics;

async function freePort() {
  const srv = net.createServer();
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address();
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

before(async () => {
  const apiPort = await freePort();
  const publicUrl = `http://localhost:${apiPort}`;
  apiUrl = `${publicUrl}/query`;

  // The example at /app/ and at /app/auth/callback, its index.html pointed at this API (<meta name="authgql-api">:
  // a provider sends the browser back without the page's ?api=).
  for (const dir of ['apollo-browser', 'urql-browser']) {
    const html = fs.readFileSync(`${repoRoot}examples/${dir}/index.html`, 'utf8');
    const pointed = html.replace(/(<meta name="authgql-api" content=")[^"]*/, `$1${apiUrl}`);
    assert.notEqual(pointed, html, `${dir}/index.html has <meta name="authgql-api">`);
    pages[dir] = { html: pointed, js: await bundleExample(dir) };
  }
  statics = http.createServer((req, res) => {
    const { pathname } = new URL(req.url, 'http://x');
    const page = pages[mounted];
    const body = { '/app/': page.html, '/app/auth/callback': page.html, '/app/app.js': page.js }[pathname];
    if (req.method !== 'GET' || body === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    const type = pathname.endsWith('.js') ? 'text/javascript' : 'text/html';
    res.writeHead(200, { 'content-type': `${type}; charset=utf-8`, 'cache-control': 'no-store' }).end(body);
  });
  await new Promise((resolve) => statics.listen(0, '127.0.0.1', resolve));
  pageOrigin = `http://localhost:${statics.address().port}`;

  [local, github] = await Promise.all([
    startProvider('oidctest', ['-client-id', 'e2e-local', '-client-secret', 'e2e-local-secret',
      '-callback', `${publicUrl}/auth/local/callback`, '-users', JSON.stringify(Object.values(LOCAL))]),
    startProvider('githubtest', ['-client-id', 'e2e-github', '-client-secret', 'e2e-github-secret',
      '-callback', `${publicUrl}/auth/github/callback`, '-users', JSON.stringify(Object.values(GITHUB))]),
  ]);
  server = await startServer({
    env: {
      PORT: String(apiPort),
      PUBLIC_URL: publicUrl,
      APP_URL: `${pageOrigin}/app`,
      AUTH_COOKIE: 'on',
      CORS_ALLOWED_ORIGINS: pageOrigin,
      RATE_LIMIT_LOGIN: 'off', // every flow is two requests to /auth from 127.0.0.1
      OIDC_PROVIDERS: 'local,github',
      OIDC_LOCAL_ISSUER: local.url,
      OIDC_LOCAL_CLIENT_ID: 'e2e-local',
      OIDC_LOCAL_CLIENT_SECRET: 'e2e-local-secret',
      OIDC_LOCAL_DISPLAY_NAME: DISPLAY.local,
      OIDC_GITHUB_CLIENT_ID: 'e2e-github',
      OIDC_GITHUB_CLIENT_SECRET: 'e2e-github-secret',
      OIDC_GITHUB_URL: github.url,
      OIDC_GITHUB_API_URL: github.url,
    },
  });
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
  await Promise.all([local?.stop(), github?.stop()]);
  await new Promise((resolve) => (statics ? statics.close(resolve) : resolve()));
});

// The operation name of a GraphQL request, GET (urql's queries) or POST.
function operationOf(req) {
  let query = '';
  if (req.method() === 'GET') {
    query = new URL(req.url()).searchParams.get('query') ?? '';
  } else {
    try { query = JSON.parse(req.postData() ?? '').query ?? ''; } catch { query = req.postData() ?? ''; }
  }
  return /^\s*(?:query|mutation)\s+(\w+)/.exec(query)?.[1] ?? '?';
}

// Opens the example at /app/ in context and records what the page does: its top-level navigations (every URL
// the browser was sent to), its GraphQL requests with their answers (the Providers list aside), its errors.
async function openApp(context, path = '/app/') {
  const page = await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (err) => pageErrors.push(String(err)));
  const navigations = [];
  const api = [];
  page.on('request', (req) => {
    if (req.isNavigationRequest() && req.frame() === page.mainFrame()) navigations.push(req.url());
    if (!req.url().startsWith(apiUrl) || req.method() === 'OPTIONS') return;
    const entry = { name: operationOf(req) };
    if (entry.name === 'Providers') return;
    entry.done = (async () => {
      entry.authorization = (await req.allHeaders().catch(() => ({}))).authorization;
      const res = await req.response().catch(() => null);
      entry.body = await res?.json().catch(() => undefined);
    })();
    api.push(entry);
  });
  await page.goto(`${pageOrigin}${path}`);
  await page.waitForSelector('body[data-state]:not([data-state="loading"])');
  return { page, pageErrors, navigations, api };
}

// Waits until the log has `count` answered requests, then a moment more: nothing else may follow.
async function settle(log, count) {
  const until = Date.now() + 15_000;
  while (log.length < count) {
    if (Date.now() > until) throw new Error(`expected ${count} API requests, saw ${log.map((e) => e.name)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  await new Promise((r) => setTimeout(r, 300));
  await Promise.all(log.map((e) => e.done));
  return log.map((e) => e.name);
}

const stateOf = (page) => page.locator('body').getAttribute('data-state');

// Clicks "Sign in with …", then the consent page's Authorize (as `account`, when given) or Cancel, and waits for
// the app to settle on the page the browser comes back to.
async function signInWith(page, provider, { account, decision = 'authorize' } = {}) {
  const consent = provider === 'local' ? `${local.url}/authorize` : `${github.url}/login/oauth/authorize`;
  await page.getByRole('button', { name: `Sign in with ${DISPLAY[provider]}` }).click();
  await page.waitForURL((url) => url.href.startsWith(`${consent}?`));
  if (account !== undefined) await page.locator('#user').selectOption(String(account));
  await page.locator(`#${decision}`).click();
  await page.waitForURL((url) => url.origin === pageOrigin);
  await page.waitForSelector('body[data-state]:not([data-state="loading"])');
}

const refreshCookies = async (context) => (await context.cookies()).filter((c) => c.name.includes('authgql_refresh'));

/**
 * Signs `account` in through the example in a fresh browser context and checks the whole way: the app lands on
 * /app/auth/callback with a one-time code (never a token), exchanges it, shows `me`, and is back at /app/; the
 * refresh token is in the HttpOnly cookie only; the code is spent; a reload restores the session. The sign-in
 * begins at `path` (the example's /app/, with a query, say) and the app ends there: the server's `redirect`.
 */
async function signInAndCheck(provider, account, usernamePrefix, path = '/app/') {
  const context = await browser.newContext();
  try {
    const { page, pageErrors, navigations, api } = await openApp(context, path);
    assert.equal(await stateOf(page), 'signed-out');
    await settle(api, 1);
    assert.deepEqual(api.map((e) => e.name), ['Refresh'], 'a first visit tries the cookie, there is none');
    api.length = 0;
    navigations.length = 0;

    await signInWith(page, provider, { account });
    assert.equal(await stateOf(page), 'signed-in', await page.locator('#error').textContent());
    assert.deepEqual(await settle(api, 2), ['ExchangeAuthCode', 'Me']);
    const [exchange, me] = api;

    // The app landed on APP_URL/auth/callback with a one-time code and the path the sign-in began on.
    const landings = navigations.filter((u) => u.startsWith(`${pageOrigin}/app/auth/callback`));
    assert.equal(landings.length, 1, `one landing: ${navigations.join(' → ')}`);
    const landing = new URL(landings[0]);
    assert.deepEqual([...landing.searchParams.keys()].sort(), ['code', 'redirect'], landing.href);
    assert.equal(landing.searchParams.get('redirect'), path);
    const code = landing.searchParams.get('code');
    assert.ok(code.length >= 32, `a code of 256 bits: ${code}`);
    // ... and the code left the address bar (and the history entry) at once.
    assert.equal(page.url(), `${pageOrigin}${path}`);

    // exchangeAuthCode: an access token for the page, the refresh token in the HttpOnly cookie only.
    assert.equal(exchange.body.errors, undefined, JSON.stringify(exchange.body.errors));
    const payload = exchange.body.data.exchangeAuthCode;
    assert.equal(payload.refreshToken, null, 'a browser gets the refresh token only as a cookie');
    const claims = decodeJwt(payload.accessToken).payload;
    assert.deepEqual(claims.amr, ['fed']);
    assert.equal(claims.sub, payload.user.id);
    const cookies = await refreshCookies(context);
    assert.equal(cookies.length, 1, 'the refresh cookie');
    assert.equal(cookies[0].httpOnly, true);
    // No token ever travelled in a URL: not the access token, not the refresh token, not the provider's.
    for (const url of navigations) {
      assert.ok(!url.includes(payload.accessToken) && !url.includes(cookies[0].value), `a token in ${url}`);
      assert.ok(![...new URL(url).searchParams.keys()].some((k) => /token/i.test(k)), `a token in ${url}`);
    }

    // `me` works, with that token, and the page shows it.
    assert.equal(me.authorization, `Bearer ${payload.accessToken}`);
    assert.equal(me.body.errors, undefined, JSON.stringify(me.body.errors));
    const user = me.body.data.me;
    assert.equal(user.id, payload.user.id);
    assert.ok(user.username.startsWith(usernamePrefix), `username ${user.username} from the profile`);
    assert.equal(await page.locator('#username').textContent(), user.username);
    assert.equal(await page.locator('#user-id').textContent(), user.id);
    assert.equal(await page.locator('#error').textContent(), '');

    // The code was single use: a replay is refused.
    const replay = await graphql(server.graphqlUrl,
      'mutation($c: String!) { exchangeAuthCode(code: $c) { accessToken } }', { c: code });
    assert.equal(replay.data, null);
    assert.deepEqual(errorCodes(replay), ['INVALID_AUTH_CODE']);
    assert.deepEqual(errorReasons(replay), ['used']);

    // The session is an ordinary cookie session: a reload restores it.
    api.length = 0;
    await page.reload();
    await page.waitForSelector('body[data-state]:not([data-state="loading"])');
    assert.equal(await stateOf(page), 'signed-in');
    assert.deepEqual(await settle(api, 2), ['Refresh', 'Me']);
    assert.equal(await page.locator('#username').textContent(), user.username);

    const identities = await graphql(server.graphqlUrl, '{ identities { provider email } }', {},
      payload.accessToken);
    assert.equal(identities.errors, undefined, JSON.stringify(identities.errors));
    assert.deepEqual(pageErrors, []);
    return { user, identities: identities.data.identities };
  } finally {
    await context.close();
  }
}

test('Local (OpenID Connect) in Chromium: Sign in, Authorize, back on the app signed in with a one-time code; `me` works', async () => {
  const { identities } = await signInAndCheck('local', LOCAL.ana.subject, 'ana.lima');
  assert.deepEqual(identities, [{ provider: 'local', email: LOCAL.ana.email }]);
});

test('GitHub (the OAuth 2.0 adapter) in Chromium: Sign in, Authorize, back on the app signed in; `me` works', async () => {
  const { identities } = await signInAndCheck('github', GITHUB.octo.id, GITHUB.octo.login, '/app/?from=github');
  assert.deepEqual(identities, [{ provider: 'github', email: GITHUB.octo.emails[0].email }]);
});

test('a second sign-in of the same identity signs into the same account', async () => {
  const first = await signInAndCheck('local', LOCAL.ben.subject, 'ben.okafor');
  const second = await signInAndCheck('local', LOCAL.ben.subject, 'ben.okafor');
  assert.deepEqual(second.user, first.user);
  assert.deepEqual(second.identities, [{ provider: 'local', email: LOCAL.ben.email }], 'one identity, not two');
});

test('urql in Chromium: Sign in with Local, back on the app signed in; `me` works', async () => {
  mounted = 'urql-browser';
  try {
    await signInAndCheck('local', LOCAL.cy.subject, 'cy.urql');
  } finally {
    mounted = 'apollo-browser';
  }
});

// Lands on the app with ?error=…: no code, nothing exchanged, no cookie, signed out, the error shown.
async function signInRefused(provider, options, error) {
  const context = await browser.newContext();
  try {
    const { page, pageErrors, navigations, api } = await openApp(context);
    await settle(api, 1);
    api.length = 0;
    navigations.length = 0;
    await signInWith(page, provider, options);
    assert.equal(await stateOf(page), 'signed-out');
    const landings = navigations.filter((u) => u.startsWith(`${pageOrigin}/app/auth/callback`));
    assert.equal(landings.length, 1, `one landing: ${navigations.join(' → ')}`);
    assert.deepEqual([...new URL(landings[0]).searchParams], [['error', error]]);
    assert.equal(page.url(), `${pageOrigin}/app/`);
    assert.match(await page.locator('#error').textContent(), new RegExp(`Sign-in failed \\(${error}\\)`));
    assert.ok(await page.getByRole('button', { name: 'Log in' }).isVisible());
    assert.ok(!(await settle(api, 1)).includes('ExchangeAuthCode'));
    assert.deepEqual(await refreshCookies(context), []);
    assert.deepEqual(pageErrors, []);
  } finally {
    await context.close();
  }
}

for (const provider of ['local', 'github']) {
  test(`Cancel at ${DISPLAY[provider]}'s consent page: the app shows access_denied and stays signed out`, async () => {
    await signInRefused(provider, { decision: 'cancel' }, 'access_denied');
  });
}

test('an address the provider has not verified creates no account: the app shows email_not_verified', async () => {
  await signInRefused('local', { account: LOCAL.dee.subject }, 'email_not_verified');
});

test('a crafted link to /auth/callback: the app never leaves its origin, and a made-up code is INVALID_AUTH_CODE', async () => {
  const context = await browser.newContext();
  try {
    for (const redirect of ['//evil.test/', '/\\evil.test/', 'https://evil.test/', 'javascript:alert(1)']) {
      const { page, pageErrors, api } = await openApp(context,
        `/app/auth/callback?${new URLSearchParams({ error: 'access_denied', redirect })}`);
      assert.equal(page.url(), `${pageOrigin}/app/`, `redirect ${redirect}`);
      assert.match(await page.locator('#error').textContent(), /access_denied/);
      assert.deepEqual(await settle(api, 1), ['Refresh']);
      assert.deepEqual(pageErrors, []);
      await page.close();
    }
    const { page, api } = await openApp(context, `/app/auth/callback?code=${'A'.repeat(43)}&redirect=%2Fapp%2F`);
    assert.equal(page.url(), `${pageOrigin}/app/`);
    assert.equal(await stateOf(page), 'signed-out');
    assert.deepEqual(await settle(api, 1), ['ExchangeAuthCode']);
    assert.deepEqual(errorCodes(api[0].body), ['INVALID_AUTH_CODE']);
    assert.deepEqual(errorReasons(api[0].body), ['unknown']);
    assert.match(await page.locator('#error').textContent(), /INVALID_AUTH_CODE/);
  } finally {
    await context.close();
  }
});
