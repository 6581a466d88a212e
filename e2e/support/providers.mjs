// The local identity providers of federation.test.mjs, each its own process on 127.0.0.1: oidctest, an OpenID
// Connect provider (internal/federation/oidctest), and githubtest, GitHub's OAuth web flow and API
// (internal/federation/githubtest). Both show a consent page with #authorize and #cancel.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { repoRoot } from './server.mjs';

const COMMANDS = {
  oidctest: { pkg: './internal/federation/oidctest/cmd/oidctest', env: 'OIDCTEST_BIN' },
  githubtest: { pkg: './internal/federation/githubtest/cmd/githubtest', env: 'GITHUBTEST_BIN' },
};

const built = {};
let buildDir;

// The command's binary: $OIDCTEST_BIN / $GITHUBTEST_BIN (make e2e builds them once), else `go build` of the tree.
function binary(name) {
  const { pkg, env } = COMMANDS[name];
  if (process.env[env]) return process.env[env];
  if (!built[name]) {
    if (!buildDir) {
      buildDir = fs.mkdtempSync(path.join(os.tmpdir(), 'authgql-e2e-providers-'));
      process.on('exit', () => fs.rmSync(buildDir, { recursive: true, force: true }));
    }
    const out = path.join(buildDir, name);
    try {
      execFileSync(process.env.GO || 'go', ['build', '-o', out, pkg], { cwd: repoRoot, stdio: 'pipe' });
    } catch (err) {
      throw new Error(`go build ${pkg} failed:\n${err.stderr?.toString() ?? err}`);
    }
    built[name] = out;
  }
  return built[name];
}

const running = new Set();
process.on('exit', () => running.forEach((child) => child.kill('SIGKILL')));

/**
 * Starts `name` (oidctest or githubtest) on a free port of 127.0.0.1 with the flags in args (-client-id,
 * -client-secret, -callback, -users). Resolves with the URL it writes to -addr-file (oidctest: its issuer,
 * http://127.0.0.1:PORT/oidc; githubtest: http://127.0.0.1:PORT) once it listens. Call stop() at the end.
 */
export async function startProvider(name, args = [], { timeoutMs = 60_000 } = {}) {
  const bin = binary(name);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `authgql-e2e-${name}-`));
  const addrFile = path.join(dir, 'addr');
  const child = spawn(bin, ['-addr', '127.0.0.1:0', '-addr-file', addrFile, ...args],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  const logs = [];
  for (const stream of [child.stdout, child.stderr]) {
    readline.createInterface({ input: stream }).on('line', (line) => logs.push(line));
  }
  let early = null;
  child.once('error', (err) => { early = err; });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => {
    running.delete(child);
    early ??= new Error(`${name} exited early (code ${code}, signal ${signal})`);
    resolve();
  }));

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };

  const until = Date.now() + timeoutMs;
  for (;;) {
    let text = '';
    try { text = fs.readFileSync(addrFile, 'utf8').trim(); } catch { /* not yet */ }
    if (/^http:\/\/127\.0\.0\.1:\d+(\/\S*)?$/.test(text)) return { url: text, logs, stop };
    if (early || Date.now() > until) {
      await stop();
      throw new Error(`${early?.message ?? `${name} did not write -addr-file within ${timeoutMs} ms`}\n${logs.join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
