// The features driven like a person in the browser: the Explorer's context menu (single and multi-select), the
// inspector's page, the command palette and the merge wizard's prompts. Saves the README's screenshots into
// docs/screenshots/ when asked (AWD_SCREENSHOTS=1), else into out/. Runs only in the code-server host (it needs the page).
import * as assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as vscode from 'vscode';
import { ui } from '../ui';
import { ensureZoo, sleep, waitUntil, type Zoo } from '../features-fixtures';

const projectRoot = resolve(__dirname, '..', '..', '..');
// A test run never writes into the source tree unless asked to refresh the README's screenshots.
const shots = process.env.AWD_SCREENSHOTS === '1' ? join(projectRoot, 'docs', 'screenshots') : join(projectRoot, 'out', 'screenshots');

type State = { base?: string; models: string[] };

/** An Explorer row by file name. */
function explorerRow(name: string): string {
  return `.explorer-folders-view .monaco-list-row[aria-label="${name}"]`;
}

/** A context-menu entry by its title. */
function menuEntry(title: string): string {
  return `.monaco-menu .action-item:not(.disabled) .action-label:text-is("${title}")`;
}

describe('ui: explorer context menu, inspector page, palette and wizard in the browser', function () {
  this.timeout(180_000);
  // These drive the workbench with real clicks and keys, which a busy machine can lose (a re-rendered row, a
  // dropped keystroke): a failing test runs once more; one that fails twice fails the run.
  this.retries(1);
  let zoo: Zoo;

  before(async function () {
    if (!ui.available()) this.skip();
    await vscode.extensions.getExtension('awd-merge.awd-merge')?.activate();
    zoo = await ensureZoo();
    await vscode.commands.executeCommand('awd.clearMergeSelection');
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    await vscode.commands.executeCommand('workbench.action.closePanel');
  });

  beforeEach(async () => {
    // Whatever a failed test left open (a menu, a quick pick) must not swallow the next one's keys.
    await ui.press('Escape');
    await ui.press('Escape');
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') {
      await ui.screenshot(join(projectRoot, 'out', 'screenshots', `failed-${this.currentTest.title.replace(/[^a-z0-9]+/gi, '-').slice(0, 60)}.png`)).catch(() => undefined);
    }
  });

  it('Explorer context menu → Inspect Checkpoint opens the inspector; statistics are computed from its page', async () => {
    await vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(zoo.small.models[0]!));
    await ui.click(explorerRow('ft-a.safetensors'), { button: 'right' });
    await ui.waitFor(menuEntry('Inspect Checkpoint'));
    await ui.screenshot(join(shots, 'explorer-context-menu.png'));
    await ui.click(menuEntry('Inspect Checkpoint'));
    await ui.waitFor('table.tensors tbody tr', { frame: 'webview', timeoutMs: 30_000 });
    const rows = await ui.text('table.tensors tbody', { frame: 'webview' });
    assert.match(rows, /embed\.weight/);
    assert.match(rows, /position_ids/);
    // With the base set, the ‖Δ base‖ column fills in too.
    await vscode.commands.executeCommand('awd.setBaseModel', vscode.Uri.file(zoo.small.base));
    await ui.click('button:text-is("Compute statistics for this page")', { frame: 'webview' });
    await ui.waitFor('p.status:has-text("Statistics computed")', { frame: 'webview', timeoutMs: 30_000 });
    const withStats = await ui.text('table.tensors tbody', { frame: 'webview' });
    assert.match(withStats, /0 \/ 0/, 'NaN / Inf counts are shown');
    await ui.click('input[type="search"]', { frame: 'webview' });
    await ui.type('weight');
    await sleep(300);
    const filtered = await ui.text('table.tensors tbody', { frame: 'webview' });
    assert.doesNotMatch(filtered, /position_ids/, 'the search filters the table');
    await ui.screenshot(join(shots, 'inspector.png'));
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  it('multi-select in the Explorer → Add to Merge adds every selected file', async () => {
    await vscode.commands.executeCommand('awd.clearMergeSelection');
    await vscode.commands.executeCommand('awd.setBaseModel', vscode.Uri.file(zoo.small.base));
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    // Select ft-a, then extend the selection with the keyboard (a click would open ft-a and move the focus).
    await vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(zoo.small.models[0]!));
    await vscode.commands.executeCommand('workbench.files.action.focusFilesExplorer');
    await ui.waitFor(`${explorerRow('ft-a.safetensors')}.focused`);
    await ui.press('Shift+ArrowDown');
    await ui.press('Shift+ArrowDown');
    await ui.click(explorerRow('ft-c.safetensors'), { button: 'right' });
    await ui.waitFor(menuEntry('Merge Selected…'));
    await ui.click(menuEntry('Add to Merge'));
    let state: State = { models: [] };
    await waitUntil(async () => {
      // Without an argument "Remove from Merge" changes nothing and returns the selection.
      state = (await vscode.commands.executeCommand<State>('awd.removeFromMerge')) ?? state;
      return state.models.length === 3;
    }, 10_000, 'three models in the merge selection');
    assert.deepEqual(state, { base: zoo.small.base, models: zoo.small.models });
    // Room for the view: no editor, the file tree's section collapsed.
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    await vscode.commands.executeCommand('awd.refreshCheckpoints');
    await vscode.commands.executeCommand('awd.checkpoints.focus');
    await ui.click('.explorer-viewlet .pane-header[aria-expanded="true"]:has-text("workspace")');
    await ui.waitFor('.monaco-list-row:has-text("ft-c.safetensors"):has-text("#3")', { timeoutMs: 30_000 });
    await sleep(500);
    await ui.screenshot(join(shots, 'checkpoints-view.png'));
    await ui.click('.explorer-viewlet .pane-header[aria-expanded="false"]:has-text("workspace")');
  });

  it('palette → "AWD: Merge Checkpoints" walks the wizard with its defaults and merges', async () => {
    await vscode.workspace.getConfiguration('awdMerge').update('outputFolder', 'merged-ui', vscode.ConfigurationTarget.Workspace);
    const ws = vscode.workspace.workspaceFolders![0]!.uri.fsPath;
    const out = join(ws, 'merged-ui', 'ta-ft-a-ft-b-ft-c', 'model.safetensors');
    await vscode.commands.executeCommand('awd.setBaseModel', vscode.Uri.file(zoo.small.base));
    await vscode.commands.executeCommand('awd.addToMerge', undefined, zoo.small.models.map((m) => vscode.Uri.file(m)));
    await ui.runCommand('AWD: Merge Checkpoints', 30_000);
    // Base and models come from the selection; method, λ, AWD and output are asked, each with a default.
    await ui.waitFor('.quick-input-widget .quick-input-title:has-text("Merge method")');
    await ui.screenshot(join(shots, 'wizard-method.png'));
    await ui.press('Enter');
    await ui.waitFor('.quick-input-widget .quick-input-title:has-text("λ")');
    await ui.press('Enter');
    await ui.waitFor('.quick-input-widget .quick-input-title:has-text("Adaptive Weight Disentanglement")');
    await ui.screenshot(join(shots, 'wizard-awd.png'));
    await ui.press('Enter');
    await ui.waitFor('.quick-input-widget .quick-input-title:has-text("Output file")');
    await ui.press('Enter');
    await waitUntil(() => existsSync(out), 60_000, `the merged model ${out}`);
    assert.ok(existsSync(join(ws, 'merges', 'ta-ft-a-ft-b-ft-c.merge.yaml')), 'the wizard wrote no config');
    await ui.waitFor('.notifications-toasts .notification-toast:has-text("Merged ta-ft-a-ft-b-ft-c.merge.yaml")', { timeoutMs: 30_000 });
    await sleep(800);
    await ui.screenshot(join(shots, 'merge-done.png'));
    await vscode.workspace.getConfiguration('awdMerge').update('outputFolder', undefined, vscode.ConfigurationTarget.Workspace);
  });

  it('a config with mistakes shows squiggles on its lines, and its "▶ Run merge" CodeLens reports them once', async () => {
    const dir = join(zoo.root, 'configs');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'ui-typo.merge.yaml');
    writeFileSync(file, ['merge_method: task_arithmetic', 'base_model: ../small/base.safetensors', 'models:', '  - model: ../small/ft-a.safetensors', '    parameters: { wieght: 0.5 }', 'parameters:', '  lambda: high', ''].join('\n'));
    await vscode.window.showTextDocument(vscode.Uri.file(file));
    await ui.waitFor('.monaco-editor .squiggly-error', { timeoutMs: 20_000 });
    await ui.click('.monaco-editor .codelens-decoration a:has-text("Run merge")', { timeoutMs: 20_000 });
    await ui.waitFor('.notifications-toasts .notification-toast:has-text("has 2 problems")', { timeoutMs: 20_000 });
    await sleep(800); // the toast fades in
    await ui.screenshot(join(shots, 'config-diagnostics.png'));
    const lines = vscode.languages.getDiagnostics(vscode.Uri.file(file)).map((d) => d.range.start.line).sort();
    assert.deepEqual(lines, [4, 6]);
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    await vscode.commands.executeCommand('notifications.clearAll');
  });

  it('palette → "AWD: Show Task Vector Similarity" analyses the merge selection', async () => {
    await vscode.commands.executeCommand('awd.setBaseModel', vscode.Uri.file(zoo.small.base));
    await vscode.commands.executeCommand('awd.addToMerge', undefined, zoo.small.models.map((m) => vscode.Uri.file(m)));
    await ui.runCommand('AWD: Show Task Vector Similarity', 30_000);
    // The analysis opens the similarity panel (its own suite checks the heatmap) titled by the models compared.
    await ui.waitFor('.tabs-container .tab:has-text("ft-a, ft-b, ft-c")', { timeoutMs: 60_000 });
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });
});
