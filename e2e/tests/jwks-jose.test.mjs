// Another service verifying our access tokens with Node's `jose` (createRemoteJWKSet + jwtVerify), the
// recipe of docs/keys.md, against the real server: each algorithm, across a key rotation, HS256 mode, and
// the HTTP behaviour of /.well-known/jwks.json; and what ES256 mode makes of kid-less HS256 tokens signed with
// JWT_SECRET, backdated or not.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  SignJWT, createRemoteJWKSet, decodeProtectedHeader, errors, generateKeyPair, jwtVerify,
} from 'jose';
import {
  PASSWORD, decodeJwt, errorCodes, errorReasons, graphql, registerUser, signAccessToken, startServer, uniqueUser,
} from '../support/server.mjs';

const AUDIENCE = 'authgql'; // JWT_AUDIENCE's default (startServer never passes the caller's on)
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth'];
const ME = '{ me { id } }';

const servers = {};
before(async () => {
  const configs = {
    ES256: {},
    EdDSA: { JWT_ALGORITHM: 'EdDSA' },
    RS256: { JWT_ALGORITHM: 'RS256' },
    HS256: { JWT_ALGORITHM: 'HS256' },
    // Default algorithm, tokens that really expire: 2 s of life, no leeway.
    expiring: { ACCESS_TOKEN_TTL: '2s', JWT_CLOCK_SKEW: '0s' },
    // A key signs for 6 s; its successor is published 3 s before it signs. Tokens live 30 s, so a retired key
    // stays published well past the switch. Started with the others: the rotation test waits less.
    rotating: {
      JWT_KEY_ROTATION: '6s', JWT_KEY_PUBLISH_AHEAD: '3s', ACCESS_TOKEN_TTL: '30s', REVOCATION_SYNC_INTERVAL: '200ms',
      RATE_LIMIT_LOGIN: 'off', // the rotation test logs in every 500 ms
    },
  };
  await Promise.all(Object.entries(configs).map(async ([name, env]) => {
    servers[name] = await startServer({ env });
  }));
});
after(async () => { await Promise.all(Object.values(servers).map((s) => s.stop())); });

const getJson = async (url) => {
  const res = await fetch(url);
  assert.equal(res.status, 200, `GET ${url}`);
  return res.json();
};
const discoveryOf = (server) => getJson(`${server.baseUrl}/.well-known/openid-configuration`);
const jwksOf = (server) => getJson(`${server.baseUrl}/.well-known/jwks.json`);

async function login(server, username) {
  const body = await graphql(server.graphqlUrl,
    'mutation($i: LoginInput!) { login(input: $i) { accessToken refreshToken user { id } } }',
    { i: { username, password: PASSWORD } });
  if (!body.data) throw new Error(`login failed: ${JSON.stringify(body)}`);
  return body.data.login;
}

function assertPublicOnly(jwks) {
  for (const jwk of jwks.keys) {
    const leaked = PRIVATE_MEMBERS.filter((m) => m in jwk);
    assert.deepEqual(leaked, [], `JWK ${jwk.kid} has private members`);
  }
}

const keyShape = {
  ES256: (jwk) => assert.deepEqual([jwk.kty, jwk.crv], ['EC', 'P-256']),
  EdDSA: (jwk) => assert.deepEqual([jwk.kty, jwk.crv], ['OKP', 'Ed25519']),
  RS256: (jwk) => {
    assert.equal(jwk.kty, 'RSA');
    assert.ok(Buffer.from(jwk.n, 'base64url').length * 8 >= 2048, 'RSA modulus of at least 2048 bits');
  },
};

for (const alg of ['ES256', 'EdDSA', 'RS256']) {
  test(`jose: createRemoteJWKSet from the discovery document verifies a ${alg} access token`, async () => {
    const server = servers[alg];
    const discovery = await discoveryOf(server);
    assert.deepEqual(discovery.id_token_signing_alg_values_supported, [alg]);
    assert.equal(discovery.jwks_uri, `${server.baseUrl}/.well-known/jwks.json`);

    const user = uniqueUser(`jose${alg}`);
    const registered = await registerUser(server.graphqlUrl, user);
    const { accessToken } = await login(server, user.username);

    const jwks = createRemoteJWKSet(new URL(discovery.jwks_uri));
    const { payload, protectedHeader } = await jwtVerify(accessToken, jwks, {
      issuer: discovery.issuer, audience: AUDIENCE, algorithms: [alg], typ: 'at+jwt',
    });
    assert.equal(payload.sub, registered.user.id);
    assert.equal(typeof payload.sid, 'string');
    assert.ok(payload.sid);
    assert.equal(payload.iss, discovery.issuer, 'the discovery issuer is exactly the tokens\' iss');
    assert.equal(protectedHeader.alg, alg);
    assert.equal(protectedHeader.typ, 'at+jwt');

    // The key named by kid is published as a public key of that algorithm, and only as one.
    const published = await jwksOf(server);
    assertPublicOnly(published);
    const jwk = published.keys.find((k) => k.kid === protectedHeader.kid);
    assert.ok(jwk, `kid ${protectedHeader.kid} is in the JWKS`);
    assert.equal(jwk.alg, alg);
    assert.equal(jwk.use, 'sig');
    keyShape[alg](jwk);

    // A verifier that pins another algorithm refuses the token.
    const other = alg === 'RS256' ? 'ES256' : 'RS256';
    await assert.rejects(jwtVerify(accessToken, jwks, { issuer: discovery.issuer, audience: AUDIENCE, algorithms: [other] }),
      errors.JOSEAlgNotAllowed);
  });
}

test('jose: one createRemoteJWKSet verifies tokens across a key rotation; forged and tampered tokens are refused', async () => {
  const server = servers.rotating;
  const discovery = await discoveryOf(server);
  const user = uniqueUser('joserot');
  const registered = await registerUser(server.graphqlUrl, user);
  const tokenA = (await login(server, user.username)).accessToken;
  const kidA = decodeProtectedHeader(tokenA).kid;
  assert.ok(kidA);

  // One verifier, with its cache, for the whole test. jose caches the JWKS for 10 minutes and refetches on an
  // unknown kid at most every 30 s: with the server's defaults (a successor published 1 h ahead) it learns the
  // successor long before its first token. This test squeezes the server's schedule into seconds, so it
  // squeezes jose's cache lifetime likewise (500 ms, shorter than the 3 s ahead); the 30 s cooldown stays.
  const jwks = createRemoteJWKSet(new URL(discovery.jwks_uri), { cacheMaxAge: 500 });
  const options = { issuer: discovery.issuer, audience: AUDIENCE, algorithms: ['ES256'], typ: 'at+jwt' };
  const verify = async (token) => (await jwtVerify(token, jwks, options)).payload;

  assert.equal((await verify(tokenA)).sub, registered.user.id);

  // Log in every 500 ms until a token carries another kid; meanwhile the verifier keeps verifying token A
  // (its traffic), which keeps its cache fresh.
  let tokenB;
  const deadline = Date.now() + 15_000;
  while (!tokenB) {
    assert.ok(Date.now() < deadline, `no token with a kid other than ${kidA} within 15 s`);
    await new Promise((r) => setTimeout(r, 500));
    await verify(tokenA);
    const { accessToken } = await login(server, user.username);
    if (decodeProtectedHeader(accessToken).kid !== kidA) tokenB = accessToken;
  }
  const kidB = decodeProtectedHeader(tokenB).kid;

  // Published ahead: the successor is in the verifier's cache before its first token reaches it.
  const cachedKids = jwks.jwks().keys.map((k) => k.kid);
  assert.ok(cachedKids.includes(kidB), `kid B ${kidB} in the cached JWKS before its first token (${cachedKids})`);
  assert.equal((await verify(tokenB)).sub, registered.user.id);
  assert.equal((await verify(tokenA)).sub, registered.user.id, 'token A still verifies after the rotation');

  // While token A is unexpired, the JWKS lists both keys, and the server still accepts token A.
  const { exp: expA } = decodeJwt(tokenA).payload;
  const published = await jwksOf(server);
  assert.ok(Date.now() / 1000 < expA);
  for (const kid of [kidA, kidB]) assert.ok(published.keys.some((k) => k.kid === kid), `${kid} published`);
  assertPublicOnly(published);
  assert.equal((await graphql(server.graphqlUrl, ME, {}, tokenA)).data?.me?.id, registered.user.id);

  // A tampered token: token A's payload promoted to ADMIN, signature kept.
  const [header, payload, signature] = tokenA.split('.');
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
  const promoted = Buffer.from(JSON.stringify({ ...claims, roles: ['ADMIN'] })).toString('base64url');
  const tampered = `${header}.${promoted}.${signature}`;
  await assert.rejects(verify(tampered), errors.JWSSignatureVerificationFailed);
  assert.deepEqual(errorReasons(await graphql(server.graphqlUrl, ME, {}, tampered)), ['token_invalid']);

  // A token signed by a key of our own, under kid A.
  const { privateKey } = await generateKeyPair('ES256');
  const foreign = await new SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256', kid: kidA, typ: 'at+jwt' })
    .sign(privateKey);
  await assert.rejects(verify(foreign), errors.JWSSignatureVerificationFailed);
  assert.deepEqual(errorReasons(await graphql(server.graphqlUrl, ME, {}, foreign)), ['token_invalid']);
});

test('jose: an expired ES256 token is JWTExpired to jose and token_expired to the server; refresh still works', async () => {
  const server = servers.expiring;
  const discovery = await discoveryOf(server);
  const user = uniqueUser('joseexp');
  const registered = await registerUser(server.graphqlUrl, user);
  const { accessToken, refreshToken } = await login(server, user.username);
  const { exp } = decodeJwt(accessToken).payload;

  const jwks = createRemoteJWKSet(new URL(discovery.jwks_uri));
  const options = { issuer: discovery.issuer, audience: AUDIENCE, algorithms: ['ES256'], typ: 'at+jwt' };
  assert.equal((await jwtVerify(accessToken, jwks, options)).payload.sub, registered.user.id);

  await new Promise((r) => setTimeout(r, Math.max(0, exp * 1000 - Date.now()) + 100));
  await assert.rejects(jwtVerify(accessToken, jwks, options), errors.JWTExpired);
  const direct = await graphql(server.graphqlUrl, ME, {}, accessToken);
  assert.deepEqual(errorCodes(direct), ['UNAUTHENTICATED']);
  assert.deepEqual(errorReasons(direct), ['token_expired']);

  // The client's next move: refreshToken, with the stale token still attached (as urql's utils.mutate sends it).
  const refreshed = await graphql(server.graphqlUrl,
    'mutation($t: String!) { refreshToken(token: $t) { accessToken } }', { t: refreshToken }, accessToken);
  const fresh = refreshed.data?.refreshToken?.accessToken;
  assert.ok(fresh, `refresh failed: ${JSON.stringify(refreshed)}`);
  assert.equal((await jwtVerify(fresh, jwks, options)).payload.sub, registered.user.id);
  assert.equal((await graphql(server.graphqlUrl, ME, {}, fresh)).data?.me?.id, registered.user.id);
});

test('jose: HS256 mode publishes no keys and discovery says HS256: nothing for a JWKS verifier', async () => {
  const server = servers.HS256;
  assert.deepEqual(await jwksOf(server), { keys: [] });
  const discovery = await discoveryOf(server);
  assert.deepEqual(discovery.id_token_signing_alg_values_supported, ['HS256']);

  const user = uniqueUser('josehs');
  await registerUser(server.graphqlUrl, user);
  const { accessToken } = await login(server, user.username);
  const { header, payload } = decodeJwt(accessToken);
  assert.equal(header.alg, 'HS256');
  assert.equal(header.kid, undefined);
  assert.equal(payload.iss, discovery.issuer);
  // Nothing for a JWKS verifier to check it with: jose verifies no symmetric algorithm from a key set.
  const jwks = createRemoteJWKSet(new URL(discovery.jwks_uri));
  await assert.rejects(jwtVerify(accessToken, jwks, { issuer: discovery.issuer, audience: AUDIENCE }),
    errors.JOSENotSupported);
});

test('jose: the JWKS response is cacheable (max-age=300, ETag, 304), open to any origin, public keys only', async () => {
  const server = servers.ES256;
  const url = `${server.baseUrl}/.well-known/jwks.json`;
  const res = await fetch(url, { headers: { origin: 'https://app.example' } });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('cache-control'), 'public, max-age=300');
  assert.equal(res.headers.get('access-control-allow-origin'), '*');
  assert.match(res.headers.get('content-type'), /^application\/(jwk-set\+)?json/);
  const etag = res.headers.get('etag');
  assert.match(etag ?? '', /^"[^"]+"$/, 'a strong ETag');
  const body = await res.json();
  assert.ok(body.keys.length >= 1);
  assertPublicOnly(body);

  const again = await fetch(url, { headers: { 'if-none-match': etag } });
  assert.equal(again.status, 304);
  assert.equal(again.headers.get('etag'), etag);
  assert.equal(await again.text(), '');
  const changed = await fetch(url, { headers: { 'if-none-match': '"not-the-etag"' } });
  assert.equal(changed.status, 200);

  const discovery = await fetch(`${server.baseUrl}/.well-known/openid-configuration`, { headers: { origin: 'https://app.example' } });
  assert.equal(discovery.headers.get('access-control-allow-origin'), '*');
});

test('ES256 mode refuses a token without kid signed with JWT_SECRET (HS256)', async () => {
  const server = servers.ES256;
  const user = uniqueUser('josehmac');
  await registerUser(server.graphqlUrl, user);
  const { accessToken } = await login(server, user.username);
  const { payload } = decodeJwt(accessToken);
  const now = Math.floor(Date.now() / 1000);
  const hmac = signAccessToken({ ...payload, iat: now, nbf: now, exp: now + 600, jti: 'e2e-hmac-now' }, server.jwtSecret);
  assert.deepEqual(errorReasons(await graphql(server.graphqlUrl, ME, {}, hmac)), ['token_invalid']);
});

test('ES256 mode refuses a backdated HS256 token that outlives the switch to asymmetric keys', async () => {
  // A holder of JWT_SECRET (shared with other services in HS256 days) backdates iat: no token issued before the
  // first asymmetric key can be valid later than that key's creation + ACCESS_TOKEN_TTL + JWT_CLOCK_SKEW.
  const server = servers.ES256;
  const user = uniqueUser('josebackd');
  await registerUser(server.graphqlUrl, user);
  const { accessToken } = await login(server, user.username);
  const { payload } = decodeJwt(accessToken);
  const now = Math.floor(Date.now() / 1000);
  const backdated = signAccessToken({
    ...payload, iat: now - 3600, nbf: now - 3600, exp: now + 86_400, jti: 'e2e-hmac-backdated',
  }, server.jwtSecret);
  assert.deepEqual(errorReasons(await graphql(server.graphqlUrl, ME, {}, backdated)), ['token_invalid']);
});
