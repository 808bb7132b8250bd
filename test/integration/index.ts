// Entry point the extension host loads for integration tests (bundled by esbuild.mjs to
// out/test/integration/index.js; mocha stays external and is required from node_modules). Runs every suite in
// test/integration/suites/*.test.ts; AWD_TEST_GREP narrows the run to tests whose title matches.
import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Mocha from 'mocha';

/** The project folder, from the bundle's place in out/test/integration. */
const projectRoot = resolve(__dirname, '..', '..', '..');
const suitesDir = join(projectRoot, 'test', 'integration', 'suites');

export async function run(): Promise<void> {
  const mocha = new Mocha({ ui: 'bdd', color: false, timeout: 60_000, reporter: 'spec' });
  if (process.env.AWD_TEST_GREP) mocha.grep(process.env.AWD_TEST_GREP);
  const names = readdirSync(suitesDir)
    .filter((n) => n.endsWith('.test.ts'))
    .map((n) => n.slice(0, -'.test.ts'.length))
    .sort();
  for (const name of names) {
    // Mocha's loadFiles does the same: give the suite file describe/it, then let it register its tests.
    const file = join(suitesDir, `${name}.test.ts`);
    mocha.suite.emit('pre-require', globalThis, file, mocha);
    // esbuild bundles every file this pattern can match, so new suites need no registration.
    await import(`./suites/${name}.test.ts`);
    mocha.suite.emit('require', null, file, mocha);
    mocha.suite.emit('post-require', globalThis, file, mocha);
  }
  const failures = await new Promise<number>((done) => mocha.run(done));
  if (failures > 0) throw new Error(`${failures} integration test(s) failed`);
}
