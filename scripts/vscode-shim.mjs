#!/usr/bin/env node
// Stands in for a VS Code executable so that @vscode/test-electron's `runTests({ vscodeExecutablePath })` runs our
// integration tests inside code-server (a real VS Code with a Node extension host) driven by headless Chromium.
// runTests spawns this script with Electron-style flags; we pick out --extensionDevelopmentPath=,
// --extensionTestsPath= and the first positional argument (the workspace), start code-server on a free loopback
// port with throw-away HOME/XDG/user-data/extensions folders, open the workbench with the `payload` URL parameter
// (code-server refuses --extensionTestsPath on its command line) and exit with the extension host's test result:
// 0 pass, 1 fail, 124 timeout.
//
// While tests run, a small loopback HTTP endpoint lets them drive the page like a person (keys, clicks,
// screenshots); its URL reaches the extension host as AWD_UI_DRIVER_URL (see test/integration/ui.ts).
//
// The helpers below are also used by scripts/start.mjs.
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { format } from 'node:util';
import { installVscodeHost } from './install-vscode-host.mjs';

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** A TCP port nobody listens on right now, on the loopback interface. */
export function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createNetServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolvePort(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts code-server on 127.0.0.1:port for `workspace`, in its own process group (so stopping it also stops the
 * extension hosts it forked), with every folder it or its children write to inside a fresh temporary folder.
 * Resolves once /healthz answers. `stop()` kills the group and removes the temporary folder.
 */
export async function startCodeServer({ workspace, port, env = {}, keepTemp = false }) {
  const host = installVscodeHost();
  const tmp = mkdtempSync(join(tmpdir(), 'awd-vscode-'));
  const dirs = Object.fromEntries(['home', 'config', 'data', 'cache', 'user-data', 'extensions', 'browser'].map((d) => [d, join(tmp, d)]));
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
  mkdirSync(join(dirs['user-data'], 'User'), { recursive: true });
  writeFileSync(join(dirs['user-data'], 'User', 'settings.json'), JSON.stringify({
    'workbench.startupEditor': 'none',
    // The project lives in a git checkout above sample and test workspaces: no prompt about opening it.
    'git.openRepositoryInParentFolders': 'never',
  }, null, 2));
  const configFile = join(tmp, 'config.yaml');
  writeFileSync(configFile, `bind-addr: 127.0.0.1:${port}\nauth: none\ncert: false\n`);
  const logFile = join(tmp, 'code-server.log');
  const logFd = openSync(logFile, 'a');

  const child = spawn(process.execPath, [host.codeServerBin, '--config', configFile, '--auth', 'none',
    '--bind-addr', `127.0.0.1:${port}`, '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust',
    '--extensions-dir', dirs.extensions, '--user-data-dir', dirs['user-data'], workspace], {
    detached: true,
    stdio: ['ignore', logFd, logFd],
    env: { ...process.env, HOME: dirs.home, XDG_CONFIG_HOME: dirs.config, XDG_DATA_HOME: dirs.data, XDG_CACHE_HOME: dirs.cache, ...env },
  });
  closeSync(logFd);
  let exited = false;
  child.once('exit', () => (exited = true));

  const stop = async () => {
    if (!exited) {
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        // the group is already gone
      }
      for (let i = 0; i < 30 && !exited; i++) await sleep(100);
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // the group is already gone
      }
    }
    if (!keepTemp) rmSync(tmp, { recursive: true, force: true });
  };
  const logTail = (lines = 40) => {
    try {
      return readFileSync(logFile, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  };

  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited) {
      await stop();
      throw new Error(`code-server exited while starting:\n${logTail()}`);
    }
    try {
      const res = await fetch(`http://127.0.0.1:${port}/healthz`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      const tail = logTail();
      await stop();
      throw new Error(`code-server did not answer on 127.0.0.1:${port} within 60 s:\n${tail}`);
    }
    await sleep(200);
  }
  return { port, tmp, dirs, chromium: host.chromium, child, stop, logTail, isRunning: () => !exited };
}

/**
 * The workbench URL that opens `workspace` with our extension loaded from source (`devPath`) and, for a test run,
 * the tests module (`testsPath`). Paths become vscode-remote URIs on this server.
 */
export function workbenchUrl({ port, workspace, devPath, testsPath }) {
  const authority = `127.0.0.1:${port}`;
  const payload = [['extensionDevelopmentPath', `vscode-remote://${authority}${resolve(devPath)}`]];
  if (testsPath) payload.push(['extensionTestsPath', `vscode-remote://${authority}${resolve(testsPath)}`]);
  return `http://${authority}/?folder=${encodeURIComponent(resolve(workspace))}&payload=${encodeURIComponent(JSON.stringify(payload))}`;
}

/** Headless Debian Chromium through playwright-core, with its profile in `profileDir`. */
export async function launchBrowser(chromiumPath, profileDir, viewport = { width: 1400, height: 900 }) {
  const { chromium } = await import('playwright-core');
  const context = await chromium.launchPersistentContext(profileDir, { executablePath: chromiumPath, headless: true, args: CHROMIUM_ARGS, viewport });
  const page = context.pages()[0] ?? (await context.newPage());
  return { context, page };
}

/** Finds `selector` in the page or, with `frame`, in the first frame whose URL contains that text (webviews: "webview"). */
async function locate(page, selector, frame, timeoutMs) {
  if (!frame) {
    const locator = page.locator(selector).first();
    await locator.waitFor({ state: 'visible', timeout: timeoutMs });
    return locator;
  }
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const f of page.frames()) {
      if (!f.url().includes(frame)) continue;
      const locator = f.locator(selector).first();
      if ((await locator.count().catch(() => 0)) > 0) return locator;
    }
    if (Date.now() > deadline) throw new Error(`no "${selector}" in a frame whose URL contains "${frame}" within ${timeoutMs} ms`);
    await sleep(100);
  }
}

/** What a test inside the extension host may ask of the page (see test/integration/ui.ts for the typed client). */
async function driveUi(page, request) {
  const timeoutMs = request.timeoutMs ?? 10_000;
  switch (request.op) {
    case 'press':
      await page.keyboard.press(request.key);
      return null;
    case 'type':
      await page.keyboard.type(request.text, { delay: 10 });
      return null;
    case 'click':
      await (await locate(page, request.selector, request.frame, timeoutMs)).click({ button: request.button ?? 'left' });
      return null;
    case 'waitFor':
      await locate(page, request.selector, request.frame, timeoutMs);
      return null;
    case 'text':
      // Editors render spaces as no-break spaces; hand back plain text.
      return (await (await locate(page, request.selector, request.frame, timeoutMs)).innerText()).replace(/\u00a0/g, ' ');
    case 'runCommand': {
      // As a person would: F1, type the palette title, Enter once it is listed. The palette computes its list
      // when it opens and never refreshes it, and a loaded machine can open it before the extension host has
      // registered our commands: so close and reopen it until the entry appears.
      const deadline = Date.now() + Math.max(timeoutMs, 30_000);
      for (;;) {
        await page.keyboard.press('F1');
        const input = page.locator('.quick-input-widget .quick-input-box input').first();
        await input.waitFor({ state: 'visible', timeout: timeoutMs });
        await input.fill(`>${request.title}`);
        const row = page.locator('.quick-input-list .monaco-list-row').filter({ hasText: request.title }).first();
        const listed = await row.waitFor({ timeout: 3_000 }).then(() => true, () => false);
        if (listed) {
          await page.keyboard.press('Enter');
          return null;
        }
        await page.keyboard.press('Escape');
        if (Date.now() > deadline) throw new Error(`"${request.title}" is not in the command palette`);
      }
    }
    case 'screenshot': {
      mkdirSync(dirname(request.path), { recursive: true });
      if (request.selector) await (await locate(page, request.selector, request.frame, timeoutMs)).screenshot({ path: request.path });
      else await page.screenshot({ path: request.path });
      return request.path;
    }
    default:
      throw new Error(`unknown UI operation ${JSON.stringify(request.op)}`);
  }
}

/** Loopback HTTP endpoint on `port`: POST a JSON request, get {ok, value} or {ok: false, error}. One request at a time. */
async function startUiDriver(page, port) {
  let queue = Promise.resolve();
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      queue = queue.then(async () => {
        let reply;
        try {
          reply = { ok: true, value: await driveUi(page, JSON.parse(body)) };
        } catch (e) {
          reply = { ok: false, error: e instanceof Error ? e.message : String(e) };
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(reply));
      });
    });
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${port}/`, close: () => new Promise((r) => server.close(r)) };
}

/** Electron-style argv → what the test run needs. */
function parseArgs(argv) {
  let devPath;
  let testsPath;
  let workspace;
  for (const arg of argv) {
    if (arg.startsWith('--extensionDevelopmentPath=')) devPath ??= arg.slice('--extensionDevelopmentPath='.length);
    else if (arg.startsWith('--extensionTestsPath=')) testsPath ??= arg.slice('--extensionTestsPath='.length);
    else if (!arg.startsWith('-')) workspace ??= arg;
  }
  return { devPath, testsPath, workspace };
}

async function main() {
  const { devPath, testsPath, workspace } = parseArgs(process.argv.slice(2));
  if (!devPath || !testsPath) {
    console.error('vscode-shim: needs --extensionDevelopmentPath= and --extensionTestsPath= (it runs integration tests only; use `npm start` to open VS Code)');
    return 2;
  }
  const timeoutMs = Number(process.env.AWD_TEST_TIMEOUT_MS ?? 900_000);
  const ws = workspace ?? mkdtempSync(join(tmpdir(), 'awd-empty-workspace-'));

  // The UI driver needs the page, the page needs the server, the server needs the driver's URL: reserve the port first.
  const driverPort = await freePort();
  const server = await startCodeServer({ workspace: ws, port: await freePort(), env: {
    AWD_UI_DRIVER_URL: `http://127.0.0.1:${driverPort}/`,
    // No extension gallery: tests install nothing, and offline its queries only add errors to the log.
    EXTENSIONS_GALLERY: '{}',
  } });
  let browser;
  let driver;
  const cleanUp = async () => {
    await driver?.close().catch(() => undefined);
    await browser?.context.close().catch(() => undefined);
    await server.stop();
  };
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => {
      void cleanUp().finally(() => process.exit(130));
    });
  }

  try {
    browser = await launchBrowser(server.chromium, server.dirs.browser);
    const { page } = browser;
    driver = await startUiDriver(page, driverPort);
    let finish;
    const exited = new Promise((r) => (finish = r));
    await page.exposeFunction('codeAutomationLog', (type, args) => {
      // The workbench hands over console-style arguments: a format string and its values.
      const text = format(...(Array.isArray(args) ? args : [args]));
      if (type === 'error') process.stderr.write(`${text}\n`);
      else process.stdout.write(`${text}\n`);
    });
    await page.exposeFunction('codeAutomationExit', (code) => finish(Number(code)));
    // Only the navigation itself is awaited: on a loaded machine the workbench's "load" event can take longer
    // than Playwright's default 30 s, and the test timeout below already bounds the run.
    await page.goto(workbenchUrl({ port: server.port, workspace: ws, devPath, testsPath }), { waitUntil: 'commit', timeout: timeoutMs });
    let timer;
    const timedOut = new Promise((r) => (timer = setTimeout(() => r(124), timeoutMs)));
    const code = await Promise.race([exited, timedOut]);
    clearTimeout(timer);
    if (code === 124) {
      console.error(`vscode-shim: no result from the extension host within ${timeoutMs} ms; code-server log:\n${server.logTail()}`);
    }
    return code;
  } finally {
    await cleanUp();
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().then(
    (code) => process.exit(code),
    (e) => {
      console.error(`vscode-shim: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
      process.exit(1);
    },
  );
}
