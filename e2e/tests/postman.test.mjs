// The Postman collection (examples/postman/authgql.postman_collection.json), run by newman against the real server.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, test } from 'node:test';
import newman from 'newman';
import { startServer } from '../support/server.mjs';

const collectionPath = new URL('../../examples/postman/authgql.postman_collection.json', import.meta.url);
const reportPath = new URL('../artifacts/newman-report.json', import.meta.url);

let server;
before(async () => { server = await startServer(); });
after(async () => { await server?.stop(); });

function runNewman(options) {
  return new Promise((resolve, reject) => {
    newman.run(options, (err, summary) => (err ? reject(err) : resolve(summary)));
  });
}

test('Postman (newman): newman runs the collection: every request runs and every assertion passes', async () => {
  const collection = JSON.parse(fs.readFileSync(collectionPath, 'utf8'));
  assert.equal(collection.info.schema, 'https://schema.getpostman.com/json/collection/v2.1.0/collection.json');
  const names = collection.item.map((item) => item.name);
  for (const item of collection.item) {
    assert.equal(item.request.body.mode, 'graphql', `${item.name}: GraphQL body mode`);
    assert.ok(item.event.some((e) => e.listen === 'test'), `${item.name}: has a test script`);
  }
  fs.mkdirSync(new URL('.', reportPath), { recursive: true });

  const summary = await runNewman({
    collection,
    envVar: [{ key: 'baseUrl', value: server.baseUrl }],
    reporters: ['json'],
    reporter: { json: { export: reportPath.pathname } },
    timeoutRequest: 30_000,
  });

  const failures = summary.run.failures.map((f) => `${f.source?.name}: ${f.error?.test ?? ''} ${f.error?.message}`);
  assert.deepEqual(failures, [], 'no failed assertion or request');
  assert.equal(summary.run.error ?? null, null);
  const ran = summary.run.executions.map((e) => e.item.name);
  assert.deepEqual(ran, names, 'every request ran, in order');
  for (const e of summary.run.executions) {
    assert.equal(e.response?.code, 200, `${e.item.name}: HTTP 200`);
    assert.ok(e.assertions?.length >= 2, `${e.item.name}: asserted (collection + request tests)`);
    assert.ok(e.assertions.every((a) => !a.error), `${e.item.name}: ${JSON.stringify(e.assertions)}`);
    // GraphQL body mode is sent as JSON, which is all the server executes.
    assert.match(e.request.headers.get('Content-Type') ?? '', /^application\/json/, `${e.item.name}: JSON`);
  }
  assert.equal(summary.run.stats.requests.total, names.length);
  assert.equal(summary.run.stats.requests.failed, 0);
  assert.equal(summary.run.stats.assertions.failed, 0);
  assert.ok(summary.run.stats.assertions.total >= names.length * 2);

  // The token travelled as the collection's Bearer auth on the protected requests only.
  const auth = Object.fromEntries(summary.run.executions.map((e) => [e.item.name, e.request.headers.get('Authorization')]));
  assert.equal(auth.Register, undefined);
  assert.equal(auth.Login, undefined);
  assert.match(auth.Me, /^Bearer ey/);
  assert.match(auth.Logout, /^Bearer ey/);
  assert.equal(auth['Me after logout'], auth.Logout, 'the logged-out token');
  assert.notEqual(auth.Me, auth.Logout, 'Refresh stored a new access token');
});

test('Postman (newman): the collection asserts: without the Logout request, "Me after logout" fails', async () => {
  const collection = JSON.parse(fs.readFileSync(collectionPath, 'utf8'));
  collection.item = collection.item.filter((item) => item.name !== 'Logout');
  const summary = await runNewman({ collection, envVar: [{ key: 'baseUrl', value: server.baseUrl }], reporters: [] });
  const failed = summary.run.failures.map((f) => f.source?.name);
  assert.ok(failed.includes('Me after logout'), JSON.stringify(failed));
  assert.ok(failed.includes('Refresh after logout'), JSON.stringify(failed));
  assert.ok(!failed.includes('Me') && !failed.includes('Refresh'), JSON.stringify(failed));
});
