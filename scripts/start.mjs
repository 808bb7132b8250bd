#!/usr/bin/env node
// `npm start`: builds the extension and opens VS Code with it loaded from source on samples/workspace/.
// With a desktop `code` on PATH that is used; otherwise a local code-server on 127.0.0.1 (installed on first use)
// serves VS Code in a browser at the printed URL, and this script keeps it running until Ctrl-C.
// AWD_START_HOST=desktop|code-server overrides the choice; AWD_PORT fixes code-server's port (default: a free one).
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { installVscodeHost } from './install-vscode-host.mjs';
import { freePort, startCodeServer, workbenchUrl } from './vscode-shim.mjs';

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const workspace = join(projectRoot, 'samples', 'workspace');

const hasDesktop = spawnSync('sh', ['-c', 'command -v code'], { stdio: 'ignore' }).status === 0;
const hostKind = process.env.AWD_START_HOST ?? (hasDesktop ? 'desktop' : 'code-server');
if (!['desktop', 'code-server'].includes(hostKind)) {
  console.error(`AWD_START_HOST must be "desktop" or "code-server", not "${hostKind}"`);
  process.exit(2);
}

if (hostKind === 'code-server') installVscodeHost();
const build = spawnSync(process.execPath, [join(projectRoot, 'esbuild.mjs')], { cwd: projectRoot, stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);

if (hostKind === 'desktop') {
  // The desktop launcher hands the window to the running VS Code and returns.
  const r = spawnSync('code', ['--new-window', `--extensionDevelopmentPath=${projectRoot}`, workspace], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}

const port = process.env.AWD_PORT ? Number(process.env.AWD_PORT) : await freePort();
const server = await startCodeServer({ workspace, port });
const url = workbenchUrl({ port, workspace, devPath: projectRoot });
console.log(`\nVS Code (code-server) with AWD Merge loaded on ${workspace}:\n\n  ${url}\n\nOpen it in a browser on this machine (an SSH tunnel to port ${port} works too). Ctrl-C stops the server.`);

let stopping = false;
const shutDown = async (code) => {
  if (stopping) return;
  stopping = true;
  await server.stop();
  process.exit(code);
};
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => void shutDown(0));
// Watch the server: if it dies on its own, say so and leave with its log instead of hanging.
const watch = setInterval(() => {
  if (!server.isRunning() && !stopping) {
    clearInterval(watch);
    console.error(`code-server stopped unexpectedly:\n${server.logTail()}`);
    void shutDown(1);
  }
}, 1000);
