// The foundation: the extension loads in a real VS Code, and its command works through the API and through the UI.
import * as assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as vscode from 'vscode';
import { ui } from '../ui';

const projectRoot = resolve(__dirname, '..', '..', '..');
const manifest = JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')) as { publisher: string; name: string; version: string };
const extensionId = `${manifest.publisher}.${manifest.name}`;

/** "1.96.4" → [1, 96, 4]; a pre-release suffix is ignored. */
function versionParts(version: string): number[] {
  return version.split('-')[0]!.split('.').map(Number);
}

describe('extension', () => {
  it('activates in VS Code 1.96 or newer', async () => {
    console.log(`VS Code ${vscode.version}, ${vscode.env.appName}, UI ${vscode.UIKind[vscode.env.uiKind]}, remote ${vscode.env.remoteName ?? 'none'}`);
    const [major = 0, minor = 0] = versionParts(vscode.version);
    assert.ok(major > 1 || (major === 1 && minor >= 96), `VS Code ${vscode.version} is older than 1.96`);
    const extension = vscode.extensions.getExtension(extensionId);
    assert.ok(extension, `${extensionId} is not loaded`);
    await extension.activate();
    assert.equal(extension.isActive, true);
  });

  it('opens the test workspace', () => {
    const folder = vscode.workspace.workspaceFolders?.[0];
    assert.ok(folder, 'no workspace folder is open');
    assert.ok(existsSync(join(folder.uri.fsPath, 'README.md')), `${folder.uri.fsPath} is not the test workspace`);
  });

  it('"AWD: Show Log" writes the extension and VS Code versions', async () => {
    const commands = await vscode.commands.getCommands(true);
    assert.ok(commands.includes('awd.showLog'), 'awd.showLog is not registered');
    const lines = await vscode.commands.executeCommand<string[]>('awd.showLog');
    assert.equal(lines[0], `AWD Merge ${manifest.version}`);
    assert.ok(lines[1]?.startsWith(`VS Code ${vscode.version} `), `unexpected host line: ${lines[1]}`);
    assert.ok(lines[2]?.includes(`UI: ${vscode.UIKind[vscode.env.uiKind]}`), `unexpected UI line: ${lines[2]}`);
  });

  it('"AWD: Show Log" from the command palette shows the log in the Output panel', async function () {
    if (!ui.available()) this.skip();
    this.timeout(120_000);
    // A busy workbench can drop the palette's keystrokes: try again (after Escape) rather than fail on the first.
    for (let attempt = 1; ; attempt++) {
      await ui.runCommand('AWD: Show Log');
      try {
        await ui.waitFor('.part.panel .view-lines', { timeoutMs: 15_000 });
        break;
      } catch (e) {
        if (attempt === 3) throw e;
        await ui.press('Escape');
      }
    }
    // The log is written asynchronously to the channel's document: wait until the version line is rendered.
    let text = '';
    for (let i = 0; i < 50 && !text.includes(`AWD Merge ${manifest.version}`); i++) {
      text = await ui.text('.part.panel .view-lines');
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(text.includes(`AWD Merge ${manifest.version}`), `Output panel shows:\n${text}`);
    await ui.screenshot(join(projectRoot, 'out', 'screenshots', 'show-log.png'));
  });
});
