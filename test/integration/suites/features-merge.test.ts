// The extension's features end to end in a real VS Code: the checkpoints view, the merge selection, the
// inspector, the merge wizard with its config, Run Merge From Config (re-run, cancel, bad configs), similarity,
// Insert Merge Config — each through its command, on the small fixture zoo.
import * as assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import * as vscode from 'vscode';
import { parseMergeConfig } from '../../../src/core/config/load';
import { startJob } from '../../../src/jobs/runner';
import { ensureZoo, readAll, readAllBytes, SMALL_TENSORS, waitUntil, type Zoo } from '../features-fixtures';

const projectRoot = resolve(__dirname, '..', '..', '..');

type State = { base?: string; models: string[] };
type Outcome = { status: string; files?: string[]; recordFile?: string; problems?: string[]; message?: string };
type WizardOutcome = { configFile: string; run: Outcome };
type Snapshot = { folder: string; checkpoints: { path: string; label: string; description: string; role?: string }[] }[];

function exec<T>(command: string, ...args: unknown[]): Promise<T> {
  return Promise.resolve(vscode.commands.executeCommand<T>(command, ...args));
}

describe('features: checkpoints view, selection, inspector, merges, configs', function () {
  this.timeout(120_000);
  let zoo: Zoo;

  before(async () => {
    await vscode.extensions.getExtension('awd-merge.awd-merge')?.activate();
    zoo = await ensureZoo();
    await vscode.workspace.getConfiguration('awdMerge').update('memoryBudgetMB', 16, vscode.ConfigurationTarget.Workspace);
  });

  beforeEach(async () => {
    await exec('awd.clearMergeSelection');
  });

  it('the checkpoints view lists the fixture checkpoints with parameters, size and dtype', async () => {
    const snapshot = await exec<Snapshot>('awd.refreshCheckpoints');
    const all = snapshot.flatMap((g) => g.checkpoints);
    for (const file of [zoo.small.base, ...zoo.small.models, zoo.big.base]) {
      const entry = all.find((c) => c.path === file);
      assert.ok(entry, `${file} is not listed; listed: ${all.map((c) => c.path).join(', ')}`);
    }
    const base = all.find((c) => c.path === zoo.small.base)!;
    // 32·16 + 16·16 + 16 float32 + 8 int64 = 792 parameters in 784·4 + 8·8 = 3200 bytes.
    assert.equal(base.description, '792 params · 3.13 KiB · F32 + I64');
    const group = snapshot.find((g) => g.folder === dirname(zoo.small.base));
    assert.deepEqual(group?.checkpoints.map((c) => c.label), ['base.safetensors', 'ft-a.safetensors', 'ft-b.safetensors', 'ft-c.safetensors']);
  });

  it('Set as Base / Add to Merge / Remove / Clear edit the selection, multi-select aware, and the view shows it', async () => {
    const [a, b, c] = zoo.small.models as [string, string, string];
    let state = await exec<State>('awd.setBaseModel', vscode.Uri.file(zoo.small.base));
    assert.equal(state.base, zoo.small.base);
    // The Explorer passes (clicked, all selected): every selected file is added, the base is skipped.
    state = await exec<State>('awd.addToMerge', vscode.Uri.file(a), [vscode.Uri.file(a), vscode.Uri.file(b), vscode.Uri.file(zoo.small.base)]);
    assert.deepEqual(state, { base: zoo.small.base, models: [a, b] });
    state = await exec<State>('awd.addToMerge', vscode.Uri.file(c));
    assert.deepEqual(state.models, [a, b, c]);
    state = await exec<State>('awd.removeFromMerge', { checkpointPath: b });
    assert.deepEqual(state.models, [a, c]);
    const snapshot = await exec<Snapshot>('awd.refreshCheckpoints');
    const roles = Object.fromEntries(snapshot.flatMap((g) => g.checkpoints).filter((x) => x.role).map((x) => [x.path, x.role]));
    assert.deepEqual(roles, { [zoo.small.base]: 'base', [a]: 'model', [c]: 'model' });
    state = await exec<State>('awd.clearMergeSelection');
    assert.deepEqual(state, { base: undefined, models: [] });
  });

  it('Inspect Checkpoint opens the inspector, which lists the header (read-only custom editor)', async () => {
    const loaded = await exec<{ path: string; format?: string; tensors?: number; error?: string }[]>('awd.inspectCheckpoint', vscode.Uri.file(zoo.small.models[0]!));
    assert.deepEqual(loaded, [{ path: zoo.small.models[0], format: 'safetensors', tensors: 4 }]);
    const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
    assert.ok(input instanceof vscode.TabInputCustom, 'the active tab is not a custom editor');
    assert.equal(input.viewType, 'awd.checkpointInspector');
    // A folder that holds one model opens that model.
    const [fromFolder] = await exec<{ path: string; error?: string }[]>('awd.inspectCheckpoint', vscode.Uri.file(dirname(zoo.big.base)));
    assert.ok(fromFolder?.error, 'a folder with several models cannot be inspected as one');
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  it('tensor statistics are computed in the worker: mean, std, min, max, NaN/Inf, ‖Δ base‖', async () => {
    const job = startJob(
      { kind: 'tensorStats', checkpoint: zoo.small.models[0]!, tensors: ['layer.0.weight', 'position_ids'], base: zoo.small.base, chunkElements: 100 },
      {},
      { workerPath: join(projectRoot, 'dist', 'worker.js') },
    );
    const result = await job.done;
    assert.equal(result.kind, 'tensorStats');
    if (result.kind !== 'tensorStats') return;
    const [w, ids] = result.stats;
    const model = await readAll(zoo.small.models[0]!);
    const base = await readAll(zoo.small.base);
    const x = Array.from(model.get('layer.0.weight')!);
    const b = Array.from(base.get('layer.0.weight')!);
    const mean = x.reduce((s, v) => s + v, 0) / x.length;
    const std = Math.sqrt(x.reduce((s, v) => s + (v - mean) ** 2, 0) / x.length);
    const diff = Math.sqrt(x.reduce((s, v, i) => s + (v - b[i]!) ** 2, 0));
    assert.ok(Math.abs(w!.mean - mean) < 1e-9, `mean ${w!.mean} vs ${mean}`);
    assert.ok(Math.abs(w!.std - std) < 1e-9, `std ${w!.std} vs ${std}`);
    assert.equal(w!.min, Math.min(...x));
    assert.equal(w!.max, Math.max(...x));
    assert.equal(w!.nan_count + w!.inf_count, 0);
    assert.ok(Math.abs(w!.diff_norm! - diff) < 1e-5 * diff, `‖Δ‖ ${w!.diff_norm} vs ${diff}`);
    // position_ids 0..7 as float: mean 3.5, and equal to the base's.
    assert.equal(ids!.mean, 3.5);
    assert.equal(ids!.diff_norm, 0);
  });

  it('Merge Checkpoints (answers as arguments) writes its config, merges in the worker, and the output is θ₀ + λΣτ', async () => {
    const [a, b] = zoo.small.models as [string, string];
    const outcome = await exec<WizardOutcome>('awd.mergeCheckpoints', {
      base: zoo.small.base,
      models: [a, b],
      method: 'task_arithmetic',
      lambda: 0.5,
      awd: false,
      name: 'features-ta',
    });
    assert.equal(outcome.run.status, 'merged', JSON.stringify(outcome.run));
    const ws = vscode.workspace.workspaceFolders![0]!.uri.fsPath;
    assert.equal(outcome.configFile, join(ws, 'merges', 'features-ta.merge.yaml'));
    const out = join(ws, 'merged', 'features-ta', 'model.safetensors');
    assert.deepEqual(outcome.run.files, [out]);
    assert.ok(existsSync(outcome.run.recordFile!), 'no reproducibility record beside the output');
    const text = readFileSync(outcome.configFile, 'utf8');
    assert.match(text, /base_model: \.\.\/features-zoo\/small\/base\.safetensors/);
    assert.equal(parseMergeConfig(text, outcome.configFile).config.parameters.lambda, 0.5);
    const [merged, base, ta, tb] = await Promise.all([readAll(out), readAll(zoo.small.base), readAll(a), readAll(b)]);
    for (const { name } of SMALL_TENSORS) {
      const m = merged.get(name)!;
      const t0 = base.get(name)!;
      for (let i = 0; i < m.length; i++) {
        const expected = t0[i]! + 0.5 * (ta.get(name)![i]! - t0[i]! + (tb.get(name)![i]! - t0[i]!));
        assert.ok(Math.abs(m[i]! - expected) <= 1e-6, `${name}[${i}] = ${m[i]}, expected ${expected}`);
      }
    }
    assert.deepEqual(Array.from(merged.get('position_ids')!), [0, 1, 2, 3, 4, 5, 6, 7], 'int64 buffers are copied from the base');
  });

  it('a config written by the wizard (TIES + AWD) re-runs from the file to bit-identical tensors, via the CodeLens command', async () => {
    const outcome = await exec<WizardOutcome>('awd.mergeCheckpoints', {
      base: zoo.small.base,
      models: zoo.small.models,
      method: 'ties',
      lambda: 0.8,
      density: 0.4,
      awd: { iterations: 25 },
      name: 'features-ties-awd',
    });
    assert.equal(outcome.run.status, 'merged', JSON.stringify(outcome.run));
    const out = outcome.run.files![0]!;
    const first = await readAllBytes(out);
    const copy = `${out}.first`;
    copyFileSync(out, copy);
    const uri = vscode.Uri.file(outcome.configFile);
    const lenses = await exec<vscode.CodeLens[]>('vscode.executeCodeLensProvider', uri);
    const run = lenses.find((l) => l.command?.title === '▶ Run merge');
    assert.ok(run?.command, 'no "▶ Run merge" CodeLens on the written config');
    const again = await exec<Outcome>(run.command.command, ...(run.command.arguments ?? []));
    assert.equal(again.status, 'merged', JSON.stringify(again));
    const second = await readAllBytes(out);
    assert.deepEqual([...second.keys()], [...first.keys()]);
    for (const [name, bytes] of first) assert.ok(Buffer.from(bytes).equals(Buffer.from(second.get(name)!)), `tensor ${name} differs between runs`);
    assert.ok(readFileSync(copy).equals(readFileSync(out)), 'the whole output file differs between runs');
    rmSync(copy);
  });

  it('cancelling a merge leaves no output, and a command issued during the merge answers at once', async () => {
    const ws = vscode.workspace.workspaceFolders![0]!.uri.fsPath;
    const outDir = join(ws, 'merged', 'features-cancel');
    const running = exec<WizardOutcome>('awd.mergeCheckpoints', {
      base: zoo.big.base,
      models: zoo.big.models,
      method: 'ties',
      density: 0.3,
      awd: { iterations: 50 },
      name: 'features-cancel',
    });
    // Cancel mid-write: once the writer's temporary file exists in the output folder.
    await waitUntil(() => existsSync(outDir) && readdirSync(outDir).length > 0, 60_000, 'the merge to start writing');
    const t0 = Date.now();
    const state = await exec<State>('awd.setBaseModel', vscode.Uri.file(zoo.small.base));
    const answeredMs = Date.now() - t0;
    assert.equal(state.base, zoo.small.base);
    assert.ok(answeredMs < 500, `a command took ${answeredMs} ms to answer during a merge`);
    console.log(`    command answered in ${answeredMs} ms during a merge`);
    const cancelled = await exec<number>('awd.cancelMerges');
    assert.equal(cancelled, 1, 'no merge was running to cancel');
    const outcome = await running;
    assert.equal(outcome.run.status, 'cancelled', JSON.stringify(outcome.run));
    const left = existsSync(outDir) ? readdirSync(outDir) : [];
    assert.deepEqual(left, [], `cancelled merge left ${left.join(', ')}`);
    assert.ok(existsSync(outcome.configFile), 'the config is kept: it was written before the merge started');
  });

  it('several merges queue and each completes', async () => {
    const start = (name: string, lambda: number): Promise<WizardOutcome> =>
      exec<WizardOutcome>('awd.mergeCheckpoints', { base: zoo.small.base, models: zoo.small.models, method: 'task_arithmetic', lambda, awd: false, name });
    const outcomes = await Promise.all([start('features-queue-1', 0.1), start('features-queue-2', 0.2), start('features-queue-3', 0.3)]);
    assert.deepEqual(outcomes.map((o) => o.run.status), ['merged', 'merged', 'merged']);
    const merged = await Promise.all(outcomes.map((o) => readAll(o.run.files![0]!)));
    const base = await readAll(zoo.small.base);
    const models = await Promise.all(zoo.small.models.map(readAll));
    // Each output is its own config's merge: θ₀ + λ Σ τ with its λ.
    merged.forEach((m, k) => {
      const lambda = 0.1 * (k + 1);
      const t0 = base.get('layer.0.bias')!;
      const got = m.get('layer.0.bias')!;
      for (let i = 0; i < t0.length; i++) {
        const expected = t0[i]! + lambda * models.reduce((sum, x) => sum + (x.get('layer.0.bias')![i]! - t0[i]!), 0);
        assert.ok(Math.abs(got[i]! - expected) < 1e-6, `queue ${k + 1}: ${got[i]} vs ${expected}`);
      }
    });
  });

  it('a bad config gives one notification and Diagnostics on the offending lines; a missing model is marked on its line', async () => {
    const dir = join(zoo.root, 'configs');
    mkdirSync(dir, { recursive: true });
    const bad = join(dir, 'bad.merge.yaml');
    writeFileSync(bad, ['merge_method: tie', 'base_model: ../small/base.safetensors', 'models:', '  - model: ../small/ft-a.safetensors', 'colour: blue', ''].join('\n'));
    const outcome = await exec<Outcome>('awd.runMergeFromConfig', vscode.Uri.file(bad));
    assert.equal(outcome.status, 'invalid');
    const diagnostics = vscode.languages.getDiagnostics(vscode.Uri.file(bad));
    const lines = diagnostics.filter((d) => d.severity === vscode.DiagnosticSeverity.Error).map((d) => d.range.start.line).sort();
    assert.deepEqual(lines, [0, 4], diagnostics.map((d) => `${d.range.start.line}: ${d.message}`).join('\n'));

    const missing = join(dir, 'missing.merge.yaml');
    writeFileSync(missing, ['merge_method: task_arithmetic', 'base_model: ../small/base.safetensors', 'models:', '  - model: ../small/ft-a.safetensors', '  - model: ../small/nowhere.safetensors', 'out_path: ../out/missing.safetensors', ''].join('\n'));
    const failed = await exec<Outcome>('awd.runMergeFromConfig', vscode.Uri.file(missing));
    assert.equal(failed.status, 'failed', JSON.stringify(failed));
    const d2 = vscode.languages.getDiagnostics(vscode.Uri.file(missing));
    assert.ok(d2.some((d) => d.range.start.line === 4), d2.map((d) => `${d.range.start.line}: ${d.message}`).join('\n'));
    assert.ok(!existsSync(join(zoo.root, 'out', 'missing.safetensors')));
  });

  it('Show Task Vector Similarity computes the K×K cosines and AWD diagnostics in the worker', async () => {
    const report = await exec<{ cosine: number[][]; models: string[]; awd?: { mean_abs_cos_after: number; mean_abs_cos_before: number } }>(
      'awd.showSimilarity',
      { base: zoo.small.base, models: zoo.small.models },
    );
    assert.equal(report.models.length, 3);
    const [base, ...models] = await Promise.all([zoo.small.base, ...zoo.small.models].map(readAll));
    const tau = models.map((m) => SMALL_TENSORS.flatMap(({ name }) => Array.from(m.get(name)!, (v, i) => v - base!.get(name)![i]!)));
    const dot = (x: number[], y: number[]): number => x.reduce((s, v, i) => s + v * y[i]!, 0);
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 3; j++) {
        const expected = dot(tau[i]!, tau[j]!) / Math.sqrt(dot(tau[i]!, tau[i]!) * dot(tau[j]!, tau[j]!));
        assert.ok(Math.abs(report.cosine[i]![j]! - expected) < 1e-5, `cos[${i}][${j}] = ${report.cosine[i]![j]}, expected ${expected}`);
      }
    }
    assert.ok(report.awd, 'no AWD diagnostics');
    assert.ok(report.awd.mean_abs_cos_after < report.awd.mean_abs_cos_before, 'AWD did not reduce the interference');
  });

  it('Insert Merge Config puts a config that parses at the cursor, and a YAML cell into a notebook', async () => {
    await exec('awd.setBaseModel', vscode.Uri.file(zoo.small.base));
    await exec('awd.addToMerge', undefined, zoo.small.models.slice(0, 2).map((m) => vscode.Uri.file(m)));
    const file = join(zoo.root, 'configs', 'inserted.merge.yaml');
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, '');
    const editor = await vscode.window.showTextDocument(vscode.Uri.file(file));
    const inserted = await exec<{ target: string; text: string }>('awd.insertMergeConfig');
    assert.equal(inserted.target, 'editor');
    const text = editor.document.getText();
    assert.equal(text, inserted.text);
    const loaded = parseMergeConfig(text, file);
    assert.equal(loaded.config.base_model, zoo.small.base);
    assert.deepEqual(loaded.config.models.map((m) => m.model), zoo.small.models.slice(0, 2));
    await vscode.commands.executeCommand('workbench.action.revertAndCloseActiveEditor');

    let notebook: vscode.NotebookDocument;
    const t0 = Date.now();
    try {
      notebook = await vscode.workspace.openNotebookDocument('jupyter-notebook', new vscode.NotebookData([new vscode.NotebookCellData(vscode.NotebookCellKind.Markup, '# merges', 'markdown')]));
    } catch (e) {
      console.log(`    (no notebook type available in this host: ${e instanceof Error ? e.message : String(e)})`);
      return;
    }
    console.log(`    notebook opened in ${Date.now() - t0} ms`);
    await vscode.window.showNotebookDocument(notebook);
    console.log(`    notebook shown after ${Date.now() - t0} ms`);
    const cell = await exec<{ target: string; text: string }>('awd.insertMergeConfig');
    console.log(`    cell inserted after ${Date.now() - t0} ms`);
    assert.equal(cell.target, 'notebook');
    assert.equal(notebook.cellCount, 2);
    const last = notebook.cellAt(1);
    assert.equal(last.document.languageId, 'yaml');
    assert.equal(parseMergeConfig(last.document.getText(), join(vscode.workspace.workspaceFolders![0]!.uri.fsPath, 'x.merge.yaml')).config.models.length, 2);
    await vscode.commands.executeCommand('workbench.action.revertAndCloseActiveEditor');
  });
});
