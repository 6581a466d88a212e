// The Playground (GraphiQL, served by the server at GET /) in headless Debian Chromium, driven through its UI
// by playwright-core. Every request to another origin is blocked and recorded: the Playground must work
// offline, from the assets the server embeds.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { registerUser, startServer, uniqueUser } from '../support/server.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const screenshotPath = new URL('../artifacts/playground.png', import.meta.url).pathname;

let server;
let browser;
before(async () => {
  server = await startServer();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true, // playwright passes --headless and a new empty --user-data-dir
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

// GraphiQL 4 edits with CodeMirror 5: each editor is a `.CodeMirror` element whose `.CodeMirror` property
// is the editor instance. The text is typed through the UI; the instance is only read back.
const QUERY_EDITOR = '.graphiql-query-editor .CodeMirror';
const HEADERS_EDITOR = '.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror';
const RESULT = '.result-window .CodeMirror';
const probe = 'https://cdn.jsdelivr.net/npm/graphiql/graphiql.min.js';

async function typeInto(page, selector, text) {
  await page.locator(selector).click();
  await page.keyboard.press('ControlOrMeta+A');
  await page.keyboard.press('Delete');
  // insertText sends the text as one input, like a paste: no auto-closed brackets, no completions inserted.
  await page.keyboard.insertText(text);
  await page.keyboard.press('Escape'); // close a completion hint if one opened
  const value = await page.locator(selector).evaluate((el) => el.CodeMirror.getValue());
  assert.equal(value, text, `editor ${selector} holds what was typed`);
}

// Clicks the execute (play) button and returns the JSON shown in the result pane once it has changed.
async function execute(page) {
  const readResult = () => page.locator(RESULT).evaluate((el) => el.CodeMirror.getValue());
  const before = await readResult();
  const responded = page.waitForResponse((res) => res.url() === server.graphqlUrl && res.request().method() === 'POST'
    && !res.request().postData()?.includes('IntrospectionQuery'));
  await page.getByRole('button', { name: /Execute query/ }).click();
  await responded;
  await page.waitForFunction(([sel, old]) => {
    const value = document.querySelector(sel)?.CodeMirror.getValue() ?? '';
    return value.trim() !== '' && value !== old;
  }, [RESULT, before]);
  return JSON.parse(await readResult());
}

test('Playground (Chromium): log in, put the token in the headers editor and run me, through the Playground UI, offline', async () => {
  const user = uniqueUser('pg');
  await registerUser(server.graphqlUrl, user); // the account exists; the UI logs in

  const origin = new URL(server.baseUrl).origin;
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const seen = [];
  const blocked = [];
  context.on('request', (req) => seen.push(req.url()));
  context.on('websocket', (ws) => blocked.push(`websocket ${ws.url()}`));
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (new URL(url).origin === origin) return route.continue();
    blocked.push(url);
    return route.abort('blockedbyclient');
  });
  const page = await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (err) => pageErrors.push(String(err)));

  try {
    // GraphiQL loads the schema by introspection as it starts (for completion and the docs).
    const introspection = page.waitForResponse((res) => res.url() === server.graphqlUrl
      && res.request().postData()?.includes('IntrospectionQuery'));
    await page.goto(`${server.baseUrl}/`);
    await page.locator(QUERY_EDITOR).waitFor();
    const schema = await (await introspection).json();
    assert.ok(schema.data?.__schema?.types?.some((t) => t.name === 'AuthPayload'), 'introspection answered');

    // 1. The login mutation, run with the execute (play) button; the token is read from the result pane.
    await typeInto(page, QUERY_EDITOR,
      `mutation {\n  login(input: {username: "${user.username}", password: "${user.password}"}) {\n    accessToken\n    user { username }\n  }\n}`);
    const login = await execute(page);
    assert.equal(login.errors, undefined, JSON.stringify(login.errors));
    assert.equal(login.data.login.user.username, user.username);
    const token = login.data.login.accessToken;
    assert.match(token, /^ey[\w-]+\.[\w-]+\.[\w-]+$/);

    // 2. The Headers tab under the query editor: {"Authorization": "Bearer <token>"}.
    await page.getByRole('button', { name: 'Headers', exact: true }).click();
    await page.locator(HEADERS_EDITOR).waitFor();
    await typeInto(page, HEADERS_EDITOR, JSON.stringify({ Authorization: `Bearer ${token}` }, null, 2));

    // 3. me, with that header.
    await typeInto(page, QUERY_EDITOR, '{\n  me {\n    username\n  }\n}');
    const sent = page.waitForRequest((req) => req.url() === server.graphqlUrl && req.postData()?.includes('me'));
    const me = await execute(page);
    assert.equal((await sent).headers().authorization, `Bearer ${token}`);
    assert.deepEqual(me, { data: { me: { username: user.username } } });
    // The username is on screen, in the result pane.
    await page.locator('.result-window').getByText(user.username).waitFor();

    fs.mkdirSync(new URL('.', `file://${screenshotPath}`), { recursive: true });
    await page.screenshot({ path: screenshotPath });

    // The guard itself works: a request to a CDN from the page is caught (and is the only one).
    assert.equal(await page.evaluate((u) => fetch(u).then(() => 'loaded', () => 'failed'), probe), 'failed');
    assert.deepEqual(blocked, [probe], "no request but the probe left the server's origin");
    blocked.length = 0;
  } finally {
    await context.close();
  }

  assert.deepEqual(blocked, [], "no request left the server's origin");
  assert.ok(seen.some((u) => u.startsWith(`${origin}/playground/graphiql.min.js`)), 'GraphiQL came from the server');
  assert.ok(seen.every((u) => u === probe || u.startsWith(`${origin}/`)), JSON.stringify(seen));
  assert.deepEqual(pageErrors, []);
});
