// Shared helpers for the client tests: start the real authgql server (embedded database, free port),
// talk GraphQL to it with plain fetch, forge access tokens, count a client's requests.
import { execFileSync, spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
export const PASSWORD = 'e2e correct horse battery';

let builtBinary;

// The server binary: $AUTHGQL_BIN (make e2e builds it once), else `go build` of the working tree.
function serverBinary() {
  if (process.env.AUTHGQL_BIN) return process.env.AUTHGQL_BIN;
  if (!builtBinary) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'authgql-e2e-bin-'));
    const out = path.join(dir, 'authgql');
    try {
      execFileSync(process.env.GO || 'go', ['build', '-o', out, '.'], { cwd: repoRoot, stdio: 'pipe' });
    } catch (err) {
      throw new Error(`go build failed:\n${err.stderr?.toString() ?? err}`);
    }
    builtBinary = out;
    process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  }
  return builtBinary;
}

const running = new Set();
process.on('exit', () => running.forEach((child) => child.kill('SIGKILL')));

/**
 * Starts the server as a child process with a fresh DATA_DIR and a random JWT_SECRET (returned, so tests can
 * forge tokens; forged tokens are the server's own format only with `env: { JWT_ALGORITHM: 'HS256' }`, by default it
 * signs with ES256 keys of its own). Resolves once GET /healthz answers 200. Call stop() at the end.
 */
export async function startServer({ env = {}, timeoutMs = 60_000 } = {}) {
  const bin = serverBinary();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'authgql-e2e-data-'));
  const jwtSecret = randomBytes(32).toString('hex');
  const addrFile = path.join(dataDir, 'addr'); // the server writes host:port here once it listens
  const childEnv = { ...process.env };
  // Never let the caller's environment point the tests at a real database or change the token format.
  for (const key of ['MONGODB_URI', 'MONGODB_DATABASE', 'APP_ENV', 'JWT_ISSUER', 'JWT_AUDIENCE',
    'GRAPHQL_PLAYGROUND', 'GRAPHQL_INTROSPECTION', 'ACCESS_TOKEN_TTL', 'REFRESH_REUSE_INTERVAL',
    'JWT_ALGORITHM', 'JWT_KEY_ROTATION', 'JWT_KEY_PUBLISH_AHEAD', 'JWT_CLOCK_SKEW', 'PUBLIC_URL',
    'REVOCATION_SYNC_INTERVAL',
    // ... nor switch cookie mode or CORS on behind a test's back (browser-*.test.mjs set them explicitly).
    'AUTH_COOKIE', 'AUTH_COOKIE_DOMAIN', 'AUTH_COOKIE_SAMESITE', 'CORS_ALLOWED_ORIGINS',
    // ... nor send mail anywhere but to the test's own SMTP server (see smtp.mjs).
    'SMTP_URL', 'MAIL_FROM', 'APP_URL', 'MAIL_DISABLED', 'MAIL_TEMPLATES_DIR', 'MAIL_ADDRESS_INTERVAL',
    'RATE_LIMIT_MAIL', 'EMAIL_VERIFICATION_TTL', 'PASSWORD_RESET_TTL', 'EMAIL_CHANGE_TTL',
    // ... nor bind passkeys to another site (passkeys.test.mjs sets them explicitly).
    'WEBAUTHN_RP_ID', 'WEBAUTHN_RP_NAME', 'WEBAUTHN_ORIGINS',
    // ... nor sign in with identity providers (federation.test.mjs sets them explicitly).
    'OIDC_PROVIDERS']) {
    delete childEnv[key];
  }
  Object.assign(childEnv, {
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    BCRYPT_COST: '10',
    JWT_SECRET: jwtSecret,
    ADDR_FILE: addrFile,
    LOG_LEVEL: 'info',
  }, env);

  const child = spawn(bin, [], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  const logs = [];
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => {
    running.delete(child);
    resolve({ code, signal });
  }));

  for (const stream of [child.stdout, child.stderr]) {
    readline.createInterface({ input: stream }).on('line', (line) => logs.push(line));
  }
  let early = null;
  child.once('error', (err) => { early = err; });
  exited.then(({ code, signal }) => { early ??= new Error(`server exited early (code ${code}, signal ${signal})`); });
  // The address comes from ADDR_FILE (written whole, by rename), the one way every client of PORT=0 learns it.
  const addr = await (async () => {
    const until = Date.now() + timeoutMs;
    for (;;) {
      if (early) break;
      try {
        const text = fs.readFileSync(addrFile, 'utf8').trim();
        if (text) return text;
      } catch { /* not yet */ }
      if (Date.now() > until) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill('SIGKILL');
    throw new Error(`${early?.message ?? `server did not write ADDR_FILE within ${timeoutMs} ms`}\n--- server output ---\n${logs.join('\n')}`);
  })();

  const baseUrl = `http://${addr}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(`${baseUrl}/healthz`);
      if (res.status === 200) break;
    } catch { /* not yet */ }
    if (Date.now() > deadline) throw new Error(`GET /healthz never answered 200\n${logs.join('\n')}`);
    await new Promise((r) => setTimeout(r, 100));
  }

  return {
    baseUrl,
    graphqlUrl: `${baseUrl}/query`,
    jwtSecret,
    logs,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
      }
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** One GraphQL request over POST with plain fetch; returns the parsed body. */
export async function graphql(url, query, variables = {}, token) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
  return res.json();
}

/** A fresh, valid identity: usernames are 3–32 of [A-Za-z0-9_.-]. */
export function uniqueUser(prefix) {
  const username = `${prefix}_${Date.now().toString(36)}${randomBytes(3).toString('hex')}`.slice(0, 32);
  return { username, email: `${username}@example.com`, password: PASSWORD };
}

export async function registerUser(url, user) {
  const body = await graphql(url,
    'mutation($i: RegisterInput!) { register(input: $i) { accessToken refreshToken user { id username } } }',
    { i: user });
  if (!body.data) throw new Error(`register failed: ${JSON.stringify(body)}`);
  return body.data.register;
}

const b64url = (buf) => Buffer.from(buf).toString('base64url');

export function decodeJwt(token) {
  const [header, payload] = token.split('.');
  return {
    header: JSON.parse(Buffer.from(header, 'base64url').toString()),
    payload: JSON.parse(Buffer.from(payload, 'base64url').toString()),
  };
}

/**
 * Signs claims as the server does in HS256 mode (no kid, typ at+jwt) with the JWT_SECRET the test passed to it.
 * A server in its default, asymmetric mode refuses such a token (token_invalid), unless its iat precedes the
 * server's first asymmetric key (kept for tokens issued before a switch from HS256; see jwks-jose.test.mjs).
 */
export function signAccessToken(claims, secret) {
  const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'at+jwt' }));
  const payload = b64url(JSON.stringify(claims));
  const sig = createHmac('sha256', secret).update(`${header}.${payload}`).digest();
  return `${header}.${payload}.${b64url(sig)}`;
}

/**
 * The same session and user as `token`, but expired two minutes ago (beyond the server's 30 s of skew):
 * what a client holds after leaving a tab open for longer than ACCESS_TOKEN_TTL. For a server started with
 * JWT_ALGORITHM=HS256 only (see signAccessToken).
 */
export function forgeExpiredAccessToken(token, secret) {
  const { payload } = decodeJwt(token);
  const now = Math.floor(Date.now() / 1000);
  return signAccessToken({
    ...payload, iat: now - 1020, nbf: now - 1020, exp: now - 120, jti: b64url(randomBytes(16)),
  }, secret);
}

/**
 * A fetch that records every request (method, GraphQL document, variables, authorization header) and the
 * parsed response body, so tests can count what a client sent.
 */
export function recordingFetch() {
  const calls = [];
  async function recordedFetch(input, init = {}) {
    const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
    const method = (init.method ?? 'GET').toUpperCase();
    let query = url.searchParams.get('query');
    let variables = url.searchParams.has('variables') ? JSON.parse(url.searchParams.get('variables')) : undefined;
    if (init.body) ({ query, variables } = JSON.parse(init.body));
    const headers = new Headers(init.headers);
    const call = { method, query: query ?? '', variables, authorization: headers.get('authorization') };
    calls.push(call);
    const res = await fetch(input, init);
    call.status = res.status;
    call.body = await res.clone().json().catch(() => undefined);
    return res;
  }
  return { fetch: recordedFetch, calls, reset: () => calls.splice(0) };
}

/** The GraphQL error codes (and reasons) of a response body. */
export const errorCodes = (body) => (body?.errors ?? []).map((e) => e.extensions?.code);
export const errorReasons = (body) => (body?.errors ?? []).map((e) => e.extensions?.reason);
