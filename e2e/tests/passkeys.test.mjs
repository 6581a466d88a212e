// The second factor and passkeys from a real browser page (examples/passkeys-browser) in headless Chromium, with
// Chromium's virtual authenticator (DevTools protocol WebAuthn domain: CTAP2, internal transport, resident keys,
// user verification, presence simulated) standing in for Touch ID or Windows Hello.
//
// The page is served as is (a plain ES module, no bundler) from http://localhost:<pagePort>, a secure context and
// the WebAuthn origin the server is told about; it calls the API at http://localhost:<apiPort>/query. TOTP codes
// are computed here (RFC 6238 over the secret the page shows), as an authenticator app would.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { decodeJwt, errorCodes, errorReasons, graphql, repoRoot, startServer, uniqueUser } from '../support/server.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const EXAMPLE = `${repoRoot}examples/passkeys-browser/`;

let server;
let browser;
let staticServer;
let pageOrigin; // http://localhost:<pagePort>
let apiUrl; // http://localhost:<apiPort>/query

// Serves the example's two files, read on each request.
async function startStatic() {
  const files = { '/': ['index.html', 'text/html'], '/index.html': ['index.html', 'text/html'],
    '/app.mjs': ['app.mjs', 'text/javascript'] };
  const srv = http.createServer((req, res) => {
    const file = files[new URL(req.url, 'http://x').pathname];
    if (req.method !== 'GET' || !file) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': `${file[1]}; charset=utf-8`, 'cache-control': 'no-store' })
      .end(fs.readFileSync(EXAMPLE + file[0]));
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return srv;
}

before(async () => {
  staticServer = await startStatic();
  pageOrigin = `http://localhost:${staticServer.address().port}`;
  server = await startServer({
    env: { CORS_ALLOWED_ORIGINS: pageOrigin, WEBAUTHN_RP_ID: 'localhost', WEBAUTHN_ORIGINS: pageOrigin },
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
  await new Promise((resolve) => (staticServer ? staticServer.close(resolve) : resolve()));
});

// --- TOTP as an authenticator app computes it (RFC 6238 over RFC 4226), from the otpauth:// link ---

function base32(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const ch of text.toUpperCase().replace(/=+$/, '')) {
    const v = alphabet.indexOf(ch);
    assert.ok(v >= 0, `not base32: ${text}`);
    bits += v.toString(2).padStart(5, '0');
  }
  const out = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) out.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(out);
}

function hotp({ key, digits, algorithm }, counter) {
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(counter));
  const mac = createHmac(algorithm, key).update(msg).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const n = mac.readUInt32BE(offset) & 0x7fffffff;
  return String(n % 10 ** digits).padStart(digits, '0');
}

// The app's settings from the otpauth:// link the page links to (secret, digits, period, algorithm).
function authenticatorApp(uri, shownSecret) {
  const url = new URL(uri);
  assert.equal(url.protocol, 'otpauth:');
  assert.equal(url.host, 'totp');
  const secret = url.searchParams.get('secret');
  assert.equal(secret, shownSecret, 'the secret shown is the one in the link');
  const app = {
    key: base32(secret),
    digits: Number(url.searchParams.get('digits') ?? 6),
    period: Number(url.searchParams.get('period') ?? 30),
    algorithm: (url.searchParams.get('algorithm') ?? 'SHA1').toLowerCase(),
    used: new Set(),
  };
  assert.ok(app.key.length >= 10, `a secret of at least 80 bits, got ${app.key.length * 8}`);
  return app;
}

// A code the server has not seen: for the current step, or a later one (the server accepts ±1 step) when the
// current one was used; waits for the clock when even that was. Steps only ever grow, so a server that refuses
// any step at or before the last one it accepted is satisfied too.
async function freshCode(app) {
  for (;;) {
    const now = Math.floor(Date.now() / 1000 / app.period);
    const step = Math.max(now, ...[...app.used].map((s) => s + 1));
    if (step <= now + 1) {
      app.used.add(step);
      return hotp(app, step);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

test('the TOTP implementation of this test matches RFC 6238 (appendix B, SHA1)', () => {
  const app = { key: Buffer.from('12345678901234567890'), digits: 8, algorithm: 'sha1' };
  for (const [time, want] of [[59, '94287082'], [1111111109, '07081804'], [1234567890, '89005924'],
    [20000000000, '65353130']]) {
    assert.equal(hotp(app, Math.floor(time / 30)), want, `T=${time}`);
  }
  assert.deepEqual([...base32('GEZDGNBVGY3TQOJQ')], [...Buffer.from('1234567890')]);
});

// --- the page ---

// The GraphQL operations the page sent, with their answers.
function watchApi(page) {
  const log = [];
  page.on('request', (req) => {
    if (!req.url().startsWith(apiUrl) || req.method() !== 'POST') return;
    const sent = JSON.parse(req.postData() ?? '{}');
    const entry = { name: /^\s*(?:query|mutation)\s+(\w+)/.exec(sent.query ?? '')?.[1] ?? '?', variables: sent.variables };
    entry.done = (async () => {
      const res = await req.response().catch(() => null);
      entry.body = await res?.json().catch(() => undefined);
    })();
    log.push(entry);
  });
  return log;
}

// The newest access token the page received (it keeps it in memory only; the test reads it off the wire).
async function lastAccessToken(log) {
  await Promise.all(log.map((e) => e.done));
  const find = (v) => {
    if (!v || typeof v !== 'object') return undefined;
    if (typeof v.accessToken === 'string') return v.accessToken;
    for (const child of Object.values(v)) {
      const t = find(child);
      if (t) return t;
    }
    return undefined;
  };
  for (let i = log.length - 1; i >= 0; i--) {
    const token = find(log[i].body?.data);
    if (token) return token;
  }
  throw new Error('the page never received an access token');
}

async function lastBody(log, name) {
  await Promise.all(log.map((e) => e.done));
  const entry = log.findLast((e) => e.name === name);
  assert.ok(entry, `the page sent ${name}; it sent ${JSON.stringify(log.map((e) => e.name))}`);
  return entry;
}

// A fresh browser context and tab with a virtual platform authenticator (a passkey provider of this device).
async function openPage() {
  const context = await browser.newContext();
  const page = await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (err) => pageErrors.push(String(err)));
  const log = watchApi(page);
  logs.set(page, log);
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true,
      isUserVerified: true, automaticPresenceSimulation: true,
    },
  });
  await page.goto(`${pageOrigin}/?api=${encodeURIComponent(apiUrl)}`);
  await page.waitForSelector('body[data-state="signed-out"]');
  const credentials = async () => (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials;
  return { context, page, log, pageErrors, credentials };
}

// One user action on the page: `doIt` clicks; the page is busy until its requests and ceremonies are over, then
// shows nothing or an error (the server's message, code and reason).
async function act(page, what, doIt) {
  await doIt();
  await page.waitForSelector('body[data-busy="false"]', { timeout: 30_000 });
  return (await page.locator('#error').textContent()).trim();
}

const logs = new WeakMap(); // page → its watchApi log

async function succeeds(page, what, doIt) {
  const log = logs.get(page);
  const from = log.length;
  const error = await act(page, what, doIt);
  await Promise.all(log.map((e) => e.done));
  const failed = log.slice(from).filter((e) => e.body?.errors)
    .map((e) => `\n  ${e.name} ${JSON.stringify(e.variables)} answered ${JSON.stringify(e.body.errors)}`);
  assert.equal(error, '', `${what}: the page shows an error${failed.join('')}`);
}

async function fails(page, what, doIt) {
  const error = await act(page, what, doIt);
  assert.notEqual(error, '', `${what}: the page shows no error`);
  return error;
}

// What the page shows of the session.
async function shown(page) {
  const text = async (sel) => (await page.locator(sel).first().textContent()).trim();
  return {
    state: await page.locator('body').getAttribute('data-state'),
    username: await text('.who'),
    aal: await text('#aal'),
    amr: await text('#amr'),
    sid: await text('#sid'),
    mfaEnabled: await text('#mfa-enabled'),
  };
}

// The begin* mutations answer the options in WebAuthn's JSON form (issue 17: "returns the
// PublicKeyCredentialCreationOptions"), what PublicKeyCredential.parseCreationOptionsFromJSON and
// parseRequestOptionsFromJSON take: a base64url challenge at the top, no { publicKey } wrapper.
function assertOptionsJSON(options) {
  assert.equal(options.publicKey, undefined, `options, not wrapped: ${JSON.stringify(options)}`);
  assert.match(options.challenge, /^[A-Za-z0-9_-]{22,}$/, 'a base64url challenge of at least 16 bytes');
}

const visible = (page, sel) => page.locator(`${sel}:visible`);

async function registerThroughPage(page, user) {
  const form = page.locator('#register-form');
  await form.getByLabel('Username').fill(user.username);
  await form.getByLabel('Email').fill(user.email);
  await form.getByLabel('Password').fill(user.password);
  await succeeds(page, 'register', () => form.getByRole('button', { name: 'Create account' }).click());
}

async function logInThroughPage(page, user) {
  const form = page.locator('#login-form');
  await form.getByLabel('Username or email').fill(user.username);
  await form.getByLabel('Password').fill(user.password);
  await succeeds(page, 'password login', () => form.getByRole('button', { name: 'Log in' }).click());
}

async function logOutThroughPage(page) {
  await succeeds(page, 'log out', () => visible(page, '.logout').click());
  assert.equal(await page.locator('body').getAttribute('data-state'), 'signed-out');
}

async function verifyCodeThroughPage(page, code) {
  await page.locator('#verify-form').getByLabel('Code from your app').fill(code);
  return act(page, `verifyMfa(code: ${code})`, () => page.getByRole('button', { name: 'Verify' }).click());
}

// A level-1 token of an account with a factor reaches me, and not the rest (FORBIDDEN mfa_required).
async function assertConfined(token, what) {
  const me = await graphql(server.graphqlUrl, '{ me { username mfaEnabled } }', {}, token);
  assert.equal(me.errors, undefined, `${what}: me at level 1: ${JSON.stringify(me.errors)}`);
  assert.equal(me.data.me.mfaEnabled, true, `${what}: me.mfaEnabled`);
  for (const query of ['{ exportMyData }', '{ passkeys { id } }', 'mutation { regenerateRecoveryCodes }',
    'mutation { beginPasskeyRegistration }', 'mutation { enrollTotp { secret } }']) {
    const body = await graphql(server.graphqlUrl, query, {}, token);
    assert.deepEqual(errorCodes(body), ['FORBIDDEN'], `${what}: ${query} at level 1: ${JSON.stringify(body)}`);
    assert.deepEqual(errorReasons(body), ['mfa_required'], `${what}: ${query} at level 1`);
  }
}

async function assertFullAccess(token, what) {
  const body = await graphql(server.graphqlUrl, '{ exportMyData }', {}, token);
  assert.equal(body.errors, undefined, `${what}: exportMyData: ${JSON.stringify(body.errors)}`);
  assert.ok(body.data.exportMyData, what);
}

test('Chromium with a virtual authenticator: register a passkey from the page, sign out, sign in with it and no password (level 2); a password login is confined until verifyMfa with the passkey', { timeout: 180_000 }, async () => {
  const user = uniqueUser('pk');
  const { context, page, log, pageErrors, credentials } = await openPage();
  try {
    await registerThroughPage(page, user);
    let s = await shown(page);
    assert.deepEqual([s.state, s.username, s.aal, s.amr, s.mfaEnabled], ['signed-in', user.username, '1', 'pwd', 'off']);
    const registeredSid = s.sid;

    // Add a passkey: beginPasskeyRegistration → navigator.credentials.create → finishPasskeyRegistration.
    await page.locator('#passkey-add-form').getByLabel('Passkey name').fill('e2e laptop');
    await succeeds(page, 'add a passkey', () => page.getByRole('button', { name: 'Add a passkey' }).click());
    const options = (await lastBody(log, 'BeginPasskeyRegistration')).body.data.beginPasskeyRegistration;
    assertOptionsJSON(options);
    assert.equal(options.rp.id, 'localhost', JSON.stringify(options.rp));
    assert.equal(options.authenticatorSelection?.residentKey, 'required', JSON.stringify(options.authenticatorSelection));
    assert.equal(options.authenticatorSelection?.userVerification, 'preferred');
    assert.notEqual(Buffer.from(options.user.id, 'base64url').toString(), user.username,
      'the user handle is not the username');
    assert.equal(await page.locator('#passkeys-error').textContent(), '');
    assert.deepEqual(await page.locator('#passkeys .name').allTextContents(), ['e2e laptop']);
    s = await shown(page);
    assert.equal(s.mfaEnabled, 'on', 'a passkey is a second factor');
    const creds = await credentials();
    assert.equal(creds.length, 1);
    assert.equal(creds[0].isResidentCredential, true, 'a discoverable credential');
    assert.equal(creds[0].rpId, 'localhost');
    assert.equal(Buffer.from(creds[0].userHandle, 'base64').toString('base64url'), options.user.id,
      'the authenticator stored the user handle of the options');

    await logOutThroughPage(page);

    // Passwordless: beginPasskeyLogin → navigator.credentials.get → finishPasskeyLogin, no username, no password.
    await succeeds(page, 'sign in with a passkey', () => page.getByRole('button', { name: 'Sign in with a passkey' }).click());
    const begin = (await lastBody(log, 'BeginPasskeyLogin')).body.data.beginPasskeyLogin;
    assertOptionsJSON(begin);
    assert.deepEqual(begin.allowCredentials ?? [], [], 'discoverable: no credential list, no username');
    assert.equal(begin.rpId, 'localhost');
    const finish = await lastBody(log, 'FinishPasskeyLogin');
    assert.deepEqual(Object.keys(finish.variables), ['r']);
    assert.ok(!JSON.stringify(finish.variables).includes(user.password));
    s = await shown(page);
    assert.deepEqual([s.state, s.username, s.aal, s.amr, s.mfaEnabled], ['signed-in', user.username, '2', 'webauthn', 'on']);
    assert.notEqual(s.sid, registeredSid, 'a new session');
    let token = await lastAccessToken(log);
    const { payload } = decodeJwt(token);
    assert.equal(payload.aal, 2);
    assert.deepEqual(payload.amr, ['webauthn']);
    assert.equal(payload.mfa, true);
    // Level 2 reaches what level 1 may not: the page listed the passkeys; the data export answers.
    assert.equal(await page.locator('#passkeys-error').textContent(), '');
    assert.deepEqual(await page.locator('#passkeys .name').allTextContents(), ['e2e laptop']);
    await assertFullAccess(token, 'passkey login');
    const listed = await graphql(server.graphqlUrl, '{ passkeys { name lastUsedAt } }', {}, token);
    assert.equal(listed.errors, undefined, JSON.stringify(listed.errors));
    assert.ok(listed.data.passkeys[0].lastUsedAt, `lastUsedAt after a sign-in: ${JSON.stringify(listed.data)}`);
    assert.ok((await credentials())[0].signCount >= 1, 'the authenticator counted the assertion');

    // The password alone is level 1 now: confined to me, verifyMfa, beginMfaPasskey, logout, sessions.
    await logOutThroughPage(page);
    await logInThroughPage(page, user);
    s = await shown(page);
    assert.deepEqual([s.state, s.username, s.aal, s.amr], ['mfa-required', user.username, '1', 'pwd']);
    const levelOneSid = s.sid;
    token = await lastAccessToken(log);
    await assertConfined(token, 'password login of a passkey account');

    // verifyMfa with the passkey: beginMfaPasskey → navigator.credentials.get → verifyMfa(passkeyResponse).
    await succeeds(page, 'verifyMfa with a passkey', () => page.getByRole('button', { name: 'Use a passkey instead' }).click());
    const mfaOptions = (await lastBody(log, 'BeginMfaPasskey')).body.data.beginMfaPasskey;
    assertOptionsJSON(mfaOptions);
    assert.equal(mfaOptions.allowCredentials?.length, 1, `the account's passkey: ${JSON.stringify(mfaOptions)}`);
    s = await shown(page);
    assert.deepEqual([s.state, s.aal, s.amr], ['signed-in', '2', 'pwd, webauthn']);
    assert.equal(s.sid, levelOneSid, 'verifyMfa raises the same session');
    token = await lastAccessToken(log);
    assert.deepEqual(decodeJwt(token).payload.amr, ['pwd', 'webauthn']);
    await assertFullAccess(token, 'after verifyMfa with a passkey');

    // deletePasskey needs level 2 (@auth(aal: 2)): this session has it. The account has no factor left.
    await succeeds(page, 'remove the passkey', () => page.getByRole('button', { name: 'Remove e2e laptop' }).click());
    assert.deepEqual(await page.locator('#passkeys .name').allTextContents(), []);
    assert.equal((await shown(page)).mfaEnabled, 'off');

    // The authenticator still holds the key; the server no longer accepts it.
    await logOutThroughPage(page);
    const before = log.length;
    const error = await fails(page, 'sign in with a removed passkey',
      () => page.getByRole('button', { name: 'Sign in with a passkey' }).click());
    assert.equal(await page.locator('body').getAttribute('data-state'), 'signed-out', error);
    const refused = (await lastBody(log, 'FinishPasskeyLogin'));
    assert.ok(log.indexOf(refused) >= before, 'the page got as far as finishPasskeyLogin');
    assert.equal(refused.body.data, null);
    assert.deepEqual(pageErrors, []);
  } finally {
    await context.close();
  }
});

test('Chromium: TOTP enrolment from the page with a code computed here; recovery codes; a password login is level 1 until verifyMfa with a code or a recovery code', { timeout: 240_000 }, async () => {
  const user = uniqueUser('totp');
  const { context, page, log, pageErrors } = await openPage();
  try {
    await registerThroughPage(page, user);
    const sid = (await shown(page)).sid;

    await succeeds(page, 'enrollTotp', () => page.getByRole('button', { name: 'Set up an authenticator app' }).click());
    const qr = page.locator('#totp-qr');
    assert.match(await qr.getAttribute('src'), /^data:image\/png;base64,/);
    assert.ok(await qr.evaluate((img) => img.decode().then(() => img.naturalWidth)) > 0, 'the QR code is a PNG');
    const secret = (await page.locator('#totp-secret').textContent()).trim();
    const app = authenticatorApp(await page.locator('#totp-uri').getAttribute('href'), secret);
    let token = await lastAccessToken(log);
    let me = await graphql(server.graphqlUrl, '{ me { mfaEnabled } }', {}, token);
    assert.equal(me.data?.me.mfaEnabled, false, 'pending until confirmed');

    await page.locator('#totp-confirm-form').getByLabel('Code from the app').fill(await freshCode(app));
    await succeeds(page, 'confirmTotp', () => page.getByRole('button', { name: 'Confirm' }).click());
    const firstCodes = await page.locator('#recovery-codes li').allTextContents();
    assert.equal(firstCodes.length, 10, JSON.stringify(firstCodes));
    assert.equal(new Set(firstCodes).size, 10);
    let s = await shown(page);
    assert.deepEqual([s.state, s.aal, s.amr, s.mfaEnabled], ['signed-in', '2', 'pwd, otp', 'on']);
    assert.equal(s.sid, sid, 'confirmTotp raises the same session');

    // regenerateRecoveryCodes needs level 2: this session has it.
    await succeeds(page, 'regenerateRecoveryCodes', () => page.getByRole('button', { name: 'New recovery codes' }).click());
    const codes = await page.locator('#recovery-codes li').allTextContents();
    assert.equal(codes.length, 10);
    assert.equal(codes.filter((c) => firstCodes.includes(c)).length, 0, 'ten new codes');

    // A password login is level 1 and confined until verifyMfa.
    await logOutThroughPage(page);
    await logInThroughPage(page, user);
    s = await shown(page);
    assert.deepEqual([s.state, s.aal, s.amr], ['mfa-required', '1', 'pwd']);
    token = await lastAccessToken(log);
    await assertConfined(token, 'password login of a TOTP account');

    const wrong = hotp(app, Math.floor(Date.now() / 1000 / app.period) + 7); // valid digits, not in the window
    assert.notEqual(await verifyCodeThroughPage(page, wrong), '', 'a code from outside the window is refused');
    assert.equal((await shown(page)).state, 'mfa-required');

    const code = await freshCode(app);
    assert.equal(await verifyCodeThroughPage(page, code), '', 'a current code');
    s = await shown(page);
    assert.deepEqual([s.state, s.aal, s.amr], ['signed-in', '2', 'pwd, otp']);
    const { payload } = decodeJwt(await lastAccessToken(log));
    assert.equal(payload.aal, 2);
    assert.deepEqual(payload.amr, ['pwd', 'otp']);
    assert.equal(payload.sid, s.sid);
    await assertFullAccess(await lastAccessToken(log), 'after verifyMfa with a code');

    // The same code again, in another session: a replay, refused.
    await logOutThroughPage(page);
    await logInThroughPage(page, user);
    const replay = await verifyCodeThroughPage(page, code);
    assert.notEqual(replay, '', 'a TOTP code works once');
    assert.equal((await shown(page)).state, 'mfa-required');

    // A recovery code (of the new set) works once; the replaced set does not.
    assert.equal(await verifyCodeThroughPage(page, codes[0]), '', 'a recovery code');
    s = await shown(page);
    assert.deepEqual([s.state, s.aal, s.amr], ['signed-in', '2', 'pwd, recovery']);
    await logOutThroughPage(page);
    await logInThroughPage(page, user);
    assert.notEqual(await verifyCodeThroughPage(page, codes[0]), '', 'a recovery code works once');
    assert.notEqual(await verifyCodeThroughPage(page, firstCodes[1]), '', 'the replaced codes stopped working');
    assert.equal((await shown(page)).state, 'mfa-required');
    me = await graphql(server.graphqlUrl, '{ me { mfaEnabled } }', {}, await lastAccessToken(log));
    assert.equal(me.data?.me.mfaEnabled, true);
    assert.deepEqual(pageErrors, []);
  } finally {
    await context.close();
  }
});
