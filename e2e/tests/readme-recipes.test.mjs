// The README's two browser recipes (## Clients: the ```js blocks after "**Apollo Client**" and "**urql**"), run as
// written in headless Debian Chromium against the server in cookie mode (AUTH_COOKIE=on), so the README stays true.
//
// Each block is read from README.md when the test runs and bundled in memory by esbuild with two changes only:
//   1. its one literal "http://localhost:8080/query" becomes this server's http://localhost:<apiPort>/query;
//   2. a harness is appended that hands the page the recipe's `client` and lets the test do what the recipe's
//      comment says an app does ("after login: accessToken = data.login.accessToken"):
//        export { client }; export const setAccessToken = ...; export const getAccessToken = ...;
//      (and, for Apollo, `export { gql } from "@apollo/client"`, to build the test's documents).
// The page (http://localhost:<pagePort>, an allowed origin of the API's site) imports the bundle, which runs the
// recipe's top-level page-load refresh; every operation then goes through the recipe's client, and the test counts
// the requests the page sends.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import { after, before, test } from 'node:test';
import * as esbuild from 'esbuild';
import { parse } from 'graphql';
import { chromium } from 'playwright-core';
import {
  errorCodes, errorReasons, forgeExpiredAccessToken, registerUser, repoRoot, startServer, uniqueUser,
} from '../support/server.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const COOKIE = '__Host-authgql_refresh';
const README_URI = 'http://localhost:8080/query';
const RECIPES = { apollo: '**Apollo Client**', urql: '**urql**' };

const LOGIN = 'mutation Login($i: LoginInput!) { login(input: $i) { accessToken refreshToken user { id username } } }';
const ME = 'query Me { me { id username } }';
const LOGOUT = 'mutation Logout { logout }';

let server;
let browser;
let pageOrigin; // http://localhost:<pagePort>: allowed by CORS_ALLOWED_ORIGINS
let apiUrl; // http://localhost:<apiPort>/query
let staticServer;

// The ```js block right after the paragraph that starts with `lead`, in the README's "## Clients" section.
function recipeFromReadme(readme, lead) {
  const section = /^## Clients\n([\s\S]*?)(?=^## )/m.exec(readme)?.[1];
  assert.ok(section, 'README.md has no "## Clients" section');
  const start = section.split('\n').findIndex((line) => line.startsWith(lead));
  assert.ok(start >= 0, `README.md "## Clients" has no paragraph starting with ${lead}`);
  const rest = section.split('\n').slice(start);
  const blank = rest.indexOf(''); // the end of the paragraph
  assert.equal(rest[blank + 1], '```js',
    `README.md "## Clients": the paragraph ${lead} is not followed by a \`\`\`js block (got ${JSON.stringify(rest[blank + 1])})`);
  const end = rest.indexOf('```', blank + 2);
  assert.ok(end > 0, `README.md "## Clients": the \`\`\`js block after ${lead} is not closed`);
  return rest.slice(blank + 2, end).join('\n');
}

const HARNESS = {
  common: [
    '',
    '// --- appended by e2e/tests/readme-recipes.test.mjs ---',
    'export { client };',
    'export const setAccessToken = (t) => { accessToken = t; };',
    'export const getAccessToken = () => accessToken;',
  ].join('\n'),
  apollo: 'export { gql } from "@apollo/client";',
  urql: '',
};

// The recipe as written, with the API address substituted and the harness appended.
function recipeModule(name, block) {
  assert.equal(block.split(README_URI).length - 1, 1, `the ${name} recipe names ${README_URI} exactly once`);
  assert.match(block, /^let accessToken = null;/m, `the ${name} recipe keeps \`let accessToken\` at module level`);
  assert.match(block, /^const client = new /m, `the ${name} recipe defines \`const client\` at module level`);
  return `${block.replace(README_URI, apiUrl)}\n${HARNESS.common}\n${HARNESS[name]}\n`;
}

async function bundle(name, source) {
  const result = await esbuild.build({
    stdin: { contents: source, sourcefile: `README-${name}.mjs`, resolveDir: repoRoot, loader: 'js' },
    bundle: true,
    format: 'esm',
    write: false,
    nodePaths: [new URL('../node_modules', import.meta.url).pathname],
    define: { 'process.env.NODE_ENV': '"production"' },
    logLevel: 'silent',
  });
  return result.outputFiles[0].text;
}

// The page: imports the bundle (its top-level await is the recipe's page-load refresh) and exposes its exports.
const PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>README recipe</title></head><body>
<script type="module">
try { window.__recipe = await import('./app.js'); } catch (err) { window.__recipeError = String(err?.stack ?? err); }
document.body.dataset.state = 'ready';
</script></body></html>`;

before(async () => {
  const readme = fs.readFileSync(`${repoRoot}README.md`, 'utf8');
  const blocks = Object.fromEntries(Object.entries(RECIPES).map(([name, lead]) => [name, recipeFromReadme(readme, lead)]));

  const files = {};
  staticServer = http.createServer((req, res) => {
    const file = files[new URL(req.url, 'http://x').pathname];
    if (req.method !== 'GET' || file === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    const type = req.url.endsWith('.js') ? 'text/javascript' : 'text/html';
    res.writeHead(200, { 'content-type': `${type}; charset=utf-8`, 'cache-control': 'no-store' }).end(file);
  });
  await new Promise((resolve) => staticServer.listen(0, '127.0.0.1', resolve));
  pageOrigin = `http://localhost:${staticServer.address().port}`;

  // HS256: the stale-token step plants an expired access token forged with JWT_SECRET.
  server = await startServer({
    env: { AUTH_COOKIE: 'on', CORS_ALLOWED_ORIGINS: pageOrigin, JWT_ALGORITHM: 'HS256' },
  });
  apiUrl = `http://localhost:${new URL(server.baseUrl).port}/query`;
  for (const [name, block] of Object.entries(blocks)) {
    files[`/${name}/`] = PAGE;
    files[`/${name}/app.js`] = await bundle(name, recipeModule(name, block));
  }

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
  await new Promise((resolve) => (staticServer ? staticServer.close(resolve) : resolve()));
});

// The root field of a GraphQL request (the recipes' refresh is anonymous): "login", "me", "refreshToken", "logout".
function rootFieldOf(req) {
  let query = '';
  if (req.method() === 'GET') {
    query = new URL(req.url()).searchParams.get('query') ?? '';
  } else {
    try { query = JSON.parse(req.postData() ?? '').query ?? ''; } catch { query = req.postData() ?? ''; }
  }
  try {
    return parse(query).definitions[0].selectionSet.selections[0].name.value;
  } catch {
    return '?';
  }
}

// Records the page's requests to the API (preflights aside), in order, with their answers.
function watchApi(page) {
  const log = [];
  page.on('request', (req) => {
    if (!req.url().startsWith(apiUrl) || req.method() === 'OPTIONS') return;
    const entry = { name: rootFieldOf(req), method: req.method() };
    entry.done = (async () => {
      const headers = await req.allHeaders().catch(() => ({}));
      entry.authorization = headers.authorization;
      entry.cookie = headers.cookie;
      const res = await req.response().catch(() => null);
      if (!res) return;
      entry.status = res.status();
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
  await new Promise((r) => setTimeout(r, 500));
  await Promise.all(log.map((e) => e.done));
  return log;
}

async function loadRecipe(page, name) {
  await page.goto(`${pageOrigin}/${name}/`);
  await page.waitForSelector('body[data-state="ready"]', { state: 'attached' });
  const error = await page.evaluate(() => window.__recipeError);
  assert.equal(error, undefined, `the ${name} recipe failed to load`);
}

// One operation through the recipe's own client, in the page: { data, errors: [{ message, extensions }] }.
function run(page, name, document, variables = {}) {
  return page.evaluate(async ({ name, document, variables }) => {
    const { client, gql } = window.__recipe;
    const isMutation = document.trimStart().startsWith('mutation');
    const plain = (errors) => errors.map((e) => ({ message: e.message, extensions: e.extensions }));
    if (name === 'apollo') {
      try {
        const { data } = isMutation
          ? await client.mutate({ mutation: gql(document), variables })
          : await client.query({ query: gql(document), variables, fetchPolicy: 'network-only' });
        return { data, errors: [] };
      } catch (err) {
        return { data: null, errors: err.errors ? plain(err.errors) : [{ message: String(err) }] };
      }
    }
    const result = isMutation
      ? await client.mutation(document, variables).toPromise()
      : await client.query(document, variables, { requestPolicy: 'network-only' }).toPromise();
    const errors = result.error
      ? (result.error.graphQLErrors.length ? plain(result.error.graphQLErrors) : [{ message: String(result.error) }])
      : [];
    return { data: result.data ?? null, errors };
  }, { name, document, variables });
}

const getAccessToken = (page) => page.evaluate(() => window.__recipe.getAccessToken());
const setAccessToken = (page, token) => page.evaluate((t) => window.__recipe.setAccessToken(t), token);
const codesOf = (result) => result.errors.map((e) => e.extensions?.code);
const refreshCookies = async (context) => (await context.cookies()).filter((c) => c.name === COOKIE);

for (const name of Object.keys(RECIPES)) {
  test(`README ${name} recipe in Chromium, cookie mode: login, me, reload restores, stale token refreshed once, logout, reload signed out without a loop`, async () => {
    const user = uniqueUser(`r${name}`);
    const registered = await registerUser(server.graphqlUrl, user);
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const pageErrors = [];
      page.on('pageerror', (err) => pageErrors.push(String(err)));
      const log = watchApi(page);

      // First visit: the page-load refresh finds no cookie.
      await loadRecipe(page, name);
      await settle(log, 1);
      assert.deepEqual(log.map((e) => e.name), ['refreshToken'], 'first visit: one page-load refresh');
      assert.deepEqual(errorCodes(log[0].body), ['INVALID_REFRESH_TOKEN']);
      assert.equal(await getAccessToken(page), null);

      // Login through the client; the app keeps the access token, the refresh token goes to the cookie only.
      log.length = 0;
      const login = await run(page, name, LOGIN, { i: { username: user.username, password: user.password } });
      assert.deepEqual(login.errors, [], 'login');
      assert.equal(login.data.login.refreshToken, null, 'a browser gets the refresh token only as a cookie');
      assert.equal(login.data.login.user.id, registered.user.id);
      await setAccessToken(page, login.data.login.accessToken);
      await settle(log, 1);
      assert.deepEqual(log.map((e) => e.name), ['login']);
      assert.equal(log[0].body.data.login.refreshToken, null, 'the response body has refreshToken null');
      const [cookie] = await refreshCookies(context);
      assert.ok(cookie, `the ${COOKIE} cookie is set`);
      assert.equal(cookie.httpOnly, true);
      assert.ok(!(await page.evaluate(() => document.cookie)).includes('authgql_refresh'), 'no script can read it');

      // me through the client, with the access token from the login.
      log.length = 0;
      const me = await run(page, name, ME);
      assert.deepEqual(me.errors, [], 'me after login');
      assert.deepEqual([me.data.me.id, me.data.me.username], [registered.user.id, user.username]);
      await settle(log, 1);
      assert.deepEqual(log.map((e) => e.name), ['me']);
      assert.equal(log[0].authorization, `Bearer ${login.data.login.accessToken}`);

      // Reload: memory is gone; the recipe's page-load refresh restores the session from the cookie, no login.
      log.length = 0;
      await loadRecipe(page, name);
      await settle(log, 1);
      assert.deepEqual(log.map((e) => e.name), ['refreshToken'], 'reload: exactly one page-load refresh');
      assert.match(log[0].cookie ?? '', new RegExp(`${COOKIE}=`), 'the cookie went with the refresh');
      assert.equal(log[0].body.errors, undefined, JSON.stringify(log[0].body.errors));
      const restored = await getAccessToken(page);
      assert.equal(restored, log[0].body.data.refreshToken.accessToken, 'the access token is set from the refresh');
      log.length = 0;
      const meRestored = await run(page, name, ME);
      assert.deepEqual(meRestored.errors, [], 'me after reload');
      assert.equal(meRestored.data.me.username, user.username);
      await settle(log, 1);
      assert.deepEqual(log.map((e) => e.name), ['me']);
      assert.equal(log[0].authorization, `Bearer ${restored}`);

      // A stale (expired) access token: me answers the user after exactly one refresh and one retry.
      const expired = forgeExpiredAccessToken(restored, server.jwtSecret);
      await setAccessToken(page, expired);
      log.length = 0;
      const meStale = await run(page, name, ME);
      assert.deepEqual(meStale.errors, [], 'me with an expired token');
      assert.equal(meStale.data.me.username, user.username);
      await settle(log, 3);
      assert.deepEqual(log.map((e) => e.name), ['me', 'refreshToken', 'me'], 'me, one refresh, me');
      assert.equal(log[0].authorization, `Bearer ${expired}`);
      assert.deepEqual(errorReasons(log[0].body), ['token_expired']);
      const fresh = log[1].body.data.refreshToken.accessToken;
      assert.equal(log[2].authorization, `Bearer ${fresh}`);
      assert.equal(await getAccessToken(page), fresh);

      // Logout through the client clears the cookie.
      log.length = 0;
      const logout = await run(page, name, LOGOUT);
      assert.deepEqual(logout.errors, [], 'logout');
      assert.equal(logout.data.logout, true);
      await settle(log, 1);
      assert.deepEqual(log.map((e) => e.name), ['logout']);
      assert.deepEqual(await refreshCookies(context), [], 'logout cleared the cookie');

      // Reload: the page-load refresh is refused (no cookie); the token stays null.
      log.length = 0;
      await loadRecipe(page, name);
      await settle(log, 1);
      assert.deepEqual(log.map((e) => e.name), ['refreshToken'], 'reload after logout: one page-load refresh');
      assert.deepEqual(errorCodes(log[0].body), ['INVALID_REFRESH_TOKEN']);
      assert.deepEqual(errorReasons(log[0].body), ['missing']);
      assert.equal(await getAccessToken(page), null);

      // me signed out: UNAUTHENTICATED, at most one refresh attempt, no loop.
      log.length = 0;
      const meOut = await run(page, name, ME);
      assert.deepEqual(codesOf(meOut), ['UNAUTHENTICATED'], JSON.stringify(meOut));
      await settle(log, 2);
      const names = log.map((e) => e.name);
      assert.ok(names.filter((n) => n === 'refreshToken').length <= 1, `at most one refresh: ${names}`);
      assert.ok(names.filter((n) => n === 'me').length <= 2, `me at most retried once: ${names}`);
      assert.ok(names.every((n) => n === 'me' || n === 'refreshToken'), `only me and refresh: ${names}`);
      for (const entry of log.filter((e) => e.name === 'refreshToken')) {
        assert.deepEqual(errorCodes(entry.body), ['INVALID_REFRESH_TOKEN']);
      }
      assert.equal(await getAccessToken(page), null);
      assert.deepEqual(pageErrors, []);
    } finally {
      await context.close();
    }
  });
}
