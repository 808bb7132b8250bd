#!/usr/bin/env node
// Installs the offline VS Code test host the integration tests and `npm start` use: Debian's headless Chromium
// (driven by playwright-core), ripgrep, fonts, the Kerberos headers one of code-server's native modules builds
// against, and code-server (= a real VS Code whose Node extension host loads our extension) into a git-ignored
// cache. code-server's own postinstall downloads from GitHub, which offline machines cannot reach, so its steps
// are done here by hand. Everything is skipped when already in place; a marker written last says "complete".
//
// Usage: node scripts/install-vscode-host.mjs            (prints the code-server folder on its last line)
// Import: `installVscodeHost()` returns { codeServerDir, codeServerBin, chromium }.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, symlinkSync, writeFileSync, readFileSync, lstatSync, unlinkSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CODE_SERVER_VERSION = '4.96.4';
const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const cacheDir = join(projectRoot, '.vscode-test', `code-server-${CODE_SERVER_VERSION}`);
const completeMarker = join(cacheDir, '.install-complete');
const aptPackages = ['chromium', 'ripgrep', 'fonts-liberation', 'libkrb5-dev'];

function log(message) {
  console.log(`[vscode-host] ${message}`);
}

/** Runs a command with inherited output; throws with the command line when it fails. */
function run(command, args, options = {}) {
  const r = spawnSync(command, args, { stdio: 'inherit', ...options });
  if (r.status !== 0) {
    throw new Error(`"${command} ${args.join(' ')}" failed (exit ${r.status ?? r.signal}) in ${options.cwd ?? process.cwd()}`);
  }
}

function commandPath(name) {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

function dpkgInstalled(pkg) {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.includes('install ok installed');
}

/** apt packages that are missing; a C/C++ toolchain is added when absent because native modules build from source. */
function missingAptPackages() {
  const missing = aptPackages.filter((p) => !dpkgInstalled(p));
  if (!commandPath('make') || !commandPath('g++')) missing.push('build-essential');
  if (!commandPath('python3')) missing.push('python3');
  return missing;
}

function installAptPackages() {
  if (!commandPath('dpkg-query')) {
    // Not Debian: the caller has to provide chromium and rg itself; say what is missing instead of guessing.
    for (const tool of ['chromium', 'rg']) {
      if (!commandPath(tool)) throw new Error(`${tool} is not on PATH and this is not a Debian system: install it, then run again`);
    }
    return;
  }
  const missing = missingAptPackages();
  if (missing.length === 0) {
    log(`apt packages present (${aptPackages.join(', ')})`);
    return;
  }
  const asRoot = process.getuid?.() === 0;
  const sudo = asRoot ? [] : commandPath('sudo') ? ['sudo'] : undefined;
  if (!sudo) throw new Error(`missing apt packages ${missing.join(' ')}; run as root: apt-get install -y ${missing.join(' ')}`);
  log(`installing apt packages: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const apt = (args) => (sudo.length ? run('sudo', ['apt-get', ...args], { env }) : run('apt-get', args, { env }));
  apt(['update']);
  apt(['install', '-y', '--no-install-recommends', ...missing]);
}

/** Header folder for node-gyp: the running Node's own headers, so nothing is downloaded from nodejs.org. */
function localNodeDir() {
  const prefix = dirname(dirname(process.execPath));
  return existsSync(join(prefix, 'include', 'node', 'common.gypi')) ? prefix : undefined;
}

function linkForce(target, path) {
  try {
    if (lstatSync(path)) unlinkSync(path);
  } catch {
    // nothing to replace
  }
  symlinkSync(target, path);
}

function installCodeServer() {
  if (existsSync(completeMarker)) {
    log(`code-server ${CODE_SERVER_VERSION} present in ${cacheDir}`);
    return;
  }
  log(`installing code-server ${CODE_SERVER_VERSION} into ${cacheDir} (a few minutes, about 350 MB)`);
  // A folder without the marker is a half-finished install: start over rather than patch it.
  rmSync(cacheDir, { recursive: true, force: true });
  mkdirSync(cacheDir, { recursive: true });
  // Without its own package.json npm would walk up and install into the project itself.
  writeFileSync(join(cacheDir, 'package.json'), JSON.stringify({ name: 'awd-merge-vscode-host', private: true }, null, 2));

  const nodeDir = localNodeDir();
  const env = { ...process.env, npm_config_yes: 'true', npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' };
  if (nodeDir) env.npm_config_nodedir = nodeDir;
  const npm = (args, cwd) => run('npm', args, { cwd, env });

  npm(['install', '--ignore-scripts', '--no-audit', '--no-fund', `code-server@${CODE_SERVER_VERSION}`], cacheDir);
  npm(['rebuild', 'argon2'], cacheDir);

  const vscodeDir = join(cacheDir, 'node_modules', 'code-server', 'lib', 'vscode');
  // 4.96.4's shrinkwrap points one dependency at a GitHub git URL; the npm tarball has the identical integrity hash.
  const shrinkwrapPath = join(vscodeDir, 'npm-shrinkwrap.json');
  const shrinkwrap = readFileSync(shrinkwrapPath, 'utf8');
  const repointed = shrinkwrap.replace(
    /"resolved": "git\+ssh:\/\/git@github\.com\/microsoft\/vscode-proxy-agent\.git#[0-9a-f]*"/g,
    '"resolved": "https://registry.npmjs.org/@vscode/proxy-agent/-/proxy-agent-0.27.0.tgz"',
  );
  writeFileSync(shrinkwrapPath, repointed);

  npm(['install', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund'], vscodeDir);
  npm(['rebuild', 'node-pty', '@parcel/watcher', '@vscode/spdlog', 'native-watchdog', 'kerberos', '@vscode/deviceid'], vscodeDir);

  // workspace.findFiles and search spawn ripgrep from here; the npm package would download it, so use Debian's.
  const rg = commandPath('rg');
  if (!rg) throw new Error('ripgrep (rg) is not on PATH after the apt step');
  mkdirSync(join(vscodeDir, 'node_modules', '@vscode', 'ripgrep', 'bin'), { recursive: true });
  linkForce(rg, join(vscodeDir, 'node_modules', '@vscode', 'ripgrep', 'bin', 'rg'));
  linkForce('node_modules', join(vscodeDir, 'node_modules.asar'));
  linkForce('code-linux.sh', join(vscodeDir, 'bin', 'remote-cli', 'code-server'));
  linkForce('browser-linux.sh', join(vscodeDir, 'bin', 'helpers', 'browser.sh'));
  npm(['install', '--omit=dev', '--no-audit', '--no-fund'], join(vscodeDir, 'extensions'));

  writeFileSync(completeMarker, `code-server ${CODE_SERVER_VERSION} installed ${new Date().toISOString()}\n`);
  log('code-server installed');
}

/** Installs whatever is missing and returns where the host's parts are. */
export function installVscodeHost() {
  installAptPackages();
  installCodeServer();
  const chromium = commandPath('chromium') ?? commandPath('chromium-browser');
  if (!chromium) throw new Error('chromium is not on PATH: install it (Debian: apt-get install chromium)');
  return { codeServerDir: cacheDir, codeServerBin: join(cacheDir, 'node_modules', 'code-server', 'out', 'node', 'entry.js'), chromium };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const host = installVscodeHost();
    console.log(host.codeServerDir);
  } catch (e) {
    console.error(`[vscode-host] ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  }
}
