// Builds the project's bundles: extension (node, cjs, vscode external), worker (node), CLI (node, shebang),
// webview (browser) and the integration-test bundle. `--watch` rebuilds on change; `--production` minifies.
import * as esbuild from 'esbuild';
import { existsSync } from 'node:fs';

const watch = process.argv.includes('--watch');
const production = process.argv.includes('--production');

const node = { platform: 'node', format: 'cjs', target: 'node20', bundle: true, sourcemap: !production, minify: production, logLevel: 'info' };

/** Every bundle the project ships; a layer whose entry does not exist yet has not landed and is skipped. */
const bundles = [
  { ...node, entryPoints: ['src/extension/extension.ts'], outfile: 'dist/extension.js', external: ['vscode'] },
  { ...node, entryPoints: ['src/jobs/worker.ts'], outfile: 'dist/worker.js' },
  { ...node, entryPoints: ['src/cli/main.ts'], outfile: 'dist/cli.js', banner: { js: '#!/usr/bin/env node' } },
  { platform: 'browser', format: 'iife', target: 'es2022', bundle: true, sourcemap: !production, minify: production, logLevel: 'info',
    entryPoints: ['src/webview/main.ts'], outfile: 'dist/webview.js' },
  { platform: 'browser', format: 'iife', target: 'es2022', bundle: true, sourcemap: !production, minify: production, logLevel: 'info',
    entryPoints: ['src/webview/inspector/main.ts'], outfile: 'dist/inspector.js' },
  // The similarity panel and the notebook renderer carry plotly (10 MB): no source maps of it, minified always.
  { platform: 'browser', format: 'iife', target: 'es2022', bundle: true, sourcemap: false, minify: true, logLevel: 'info',
    entryPoints: ['src/webview/similarity/main.ts'], outfile: 'dist/similarity.js' },
  { platform: 'browser', format: 'esm', target: 'es2022', bundle: true, sourcemap: false, minify: true, logLevel: 'info',
    entryPoints: ['src/webview/notebook/renderer.ts'], outfile: 'dist/notebookRenderer.js' },
  { ...node, entryPoints: ['test/integration/index.ts'], outfile: 'out/test/integration/index.js', external: ['vscode', 'mocha'] },
].filter((b) => existsSync(b.entryPoints[0]));

if (watch) {
  for (const b of bundles) await (await esbuild.context(b)).watch();
} else {
  await Promise.all(bundles.map((b) => esbuild.build(b)));
}
