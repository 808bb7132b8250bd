#!/usr/bin/env node
// Runs the integration suites (test/integration/suites/*.test.ts) inside a real VS Code with
// @vscode/test-electron's runTests. Default host: code-server driven by headless Chromium through
// scripts/vscode-shim.mjs, installed on first use (works offline). AWD_TEST_HOST=electron instead lets runTests
// download a desktop VS Code (a developer's laptop with internet access); AWD_VSCODE_VERSION picks its version.
// Exits non-zero when any test fails.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runTests } from '@vscode/test-electron';
import { installVscodeHost } from './install-vscode-host.mjs';

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const hostKind = process.env.AWD_TEST_HOST ?? 'code-server';
if (!['code-server', 'electron'].includes(hostKind)) {
  console.error(`AWD_TEST_HOST must be "code-server" (default) or "electron", not "${hostKind}"`);
  process.exit(2);
}

if (hostKind === 'code-server') installVscodeHost();

// The extension and the test bundle must be current: build both (esbuild.mjs builds every bundle whose entry exists).
const build = spawnSync(process.execPath, [join(projectRoot, 'esbuild.mjs')], { cwd: projectRoot, stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);

// Tests may write into their workspace; give every run a fresh copy so the source tree stays clean.
const runDir = mkdtempSync(join(tmpdir(), 'awd-integration-'));
const workspace = join(runDir, 'workspace');
cpSync(join(projectRoot, 'test', 'integration', 'workspace'), workspace, { recursive: true });

const options = {
  extensionDevelopmentPath: projectRoot,
  extensionTestsPath: join(projectRoot, 'out', 'test', 'integration', 'index.js'),
  launchArgs: [workspace, '--disable-extensions'],
};
if (hostKind === 'code-server') options.vscodeExecutablePath = join(projectRoot, 'scripts', 'vscode-shim.mjs');
else if (process.env.AWD_VSCODE_VERSION) options.version = process.env.AWD_VSCODE_VERSION;

const started = Date.now();
let exitCode = 0;
try {
  await runTests(options);
  console.log(`integration tests passed in ${((Date.now() - started) / 1000).toFixed(1)} s (${hostKind})`);
} catch (e) {
  console.error(`integration tests failed (${hostKind}): ${e instanceof Error ? e.message : String(e)}`);
  exitCode = 1;
} finally {
  rmSync(runDir, { recursive: true, force: true });
}
process.exit(exitCode);
