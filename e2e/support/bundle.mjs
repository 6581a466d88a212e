// Bundles an example's app.mjs in memory for a test page, the way a front-end
// build would: the examples have no node_modules of their own, so packages
// resolve from e2e's.
import * as esbuild from 'esbuild';
import { repoRoot } from './server.mjs';

export async function bundleExample(dir) {
  const result = await esbuild.build({
    entryPoints: [`${repoRoot}examples/${dir}/app.mjs`],
    bundle: true,
    format: 'esm',
    write: false,
    nodePaths: [new URL('../node_modules', import.meta.url).pathname],
    define: { 'process.env.NODE_ENV': '"production"' },
    logLevel: 'silent',
  });
  return result.outputFiles[0].text;
}
