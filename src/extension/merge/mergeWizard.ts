/**
 * "AWD: Merge Checkpoints" and "Merge Selected…": a guided flow (base, fine-tuned models, method, λ / density,
 * AWD, output) whose steps are skipped when the answer is obvious (the merge selection already holds it) or given
 * as the command's argument. Every merge writes its config into the workspace first, then runs that config in the
 * background, so the project keeps a file that reproduces it.
 */
import { existsSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { MERGE_METHODS, methodNeedsBase, methodUsesDensity, type MergeMethod, type ResolvedAwdConfig } from '../../core/config/schema';
import { runMergeConfig, type MergeRunOutcome } from '../config/runMergeConfig';
import { mergeConfigText } from './configSnippet';
import { log } from '../log';
import type { AwdServices } from '../services';
import { mergeDefaults } from '../settings';
import { targetPaths } from '../selection/commandTargets';
import { pickCheckpoints } from '../selection/selectionCommands';
import { ensureTrusted } from '../workspaceTrust';
import {
  completeAwd,
  defaultConfigPath,
  defaultOutPath,
  isMergeMethod,
  parseNumberInput,
  requestProblems,
  suggestMergeName,
  uniqueName,
  type MergeDefaults,
  type MergeRequest,
  type MergeWizardAnswers,
} from './mergeRequest';

export const MERGE_CHECKPOINTS_COMMAND = 'awd.mergeCheckpoints';
export const MERGE_SELECTED_COMMAND = 'awd.mergeSelected';

/** What the wizard returns: the config it wrote and how the merge went (undefined when the user backed out). */
export interface MergeWizardOutcome {
  configFile: string;
  run: MergeRunOutcome;
}

const METHOD_DESCRIPTIONS: Readonly<Record<MergeMethod, string>> = {
  task_arithmetic: 'θ = θ₀ + λ Σ τᵢ',
  ties: 'trim to the largest entries, elect a sign, merge the agreeing ones',
  dare_linear: 'random drop and rescale, then task arithmetic',
  dare_ties: 'random drop and rescale, then TIES sign election',
  linear: 'weighted average of the models (no base)',
};

/** The workspace folder configs and outputs go into: the one holding the base model, else the first. */
function workspaceRootFor(paths: readonly string[]): string | undefined {
  for (const p of paths) {
    const ws = vscode.workspace.getWorkspaceFolder(vscode.Uri.file(p));
    if (ws) return ws.uri.fsPath;
  }
  return vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
}

async function askNumber(title: string, value: number, validate: (n: number) => string | undefined): Promise<number | undefined> {
  const text = await vscode.window.showInputBox({
    title,
    value: String(value),
    validateInput: (t) => {
      const n = parseNumberInput(t);
      return n === undefined ? 'Type a number' : validate(n);
    },
  });
  return text === undefined ? undefined : parseNumberInput(text);
}

/** Asks what the answers do not say; undefined when the user cancels a step. */
async function completeAnswers(services: AwdServices, given: MergeWizardAnswers, interactive: boolean, defaults: MergeDefaults): Promise<MergeRequest | undefined> {
  const selection = services.selection.state;
  let models = given.models ?? (selection.models.length > 0 ? [...selection.models] : undefined);
  let base = given.base ?? selection.base;
  // Base and models first (usually known from the merge selection), then the method.
  if (base === undefined && interactive && given.method !== 'linear') {
    base = (await pickCheckpoints(services, { title: 'Base model (the checkpoint the others were fine-tuned from)', canPickMany: false, exclude: models }))?.[0];
    if (base === undefined) return undefined;
  }
  if (models === undefined) {
    if (!interactive) return undefined;
    models = await pickCheckpoints(services, { title: 'Fine-tuned models to merge', canPickMany: true, exclude: base !== undefined ? [base] : [] });
    if (!models) return undefined;
  }
  const method: MergeMethod | undefined =
    given.method ??
    (interactive ?
      (
        await vscode.window.showQuickPick(
          [defaults.method, ...MERGE_METHODS.filter((m) => m !== defaults.method)].map((m) => ({
            label: m,
            description: METHOD_DESCRIPTIONS[m],
            detail: m === defaults.method ? 'default (setting awdMerge.defaultMethod)' : undefined,
          })),
          { title: 'Merge method' },
        )
      )?.label
    : defaults.method);
  if (!isMergeMethod(method)) return undefined;

  if (base === undefined && methodNeedsBase(method)) return undefined;

  let lambda = given.lambda ?? defaults.lambda;
  if (given.lambda === undefined && interactive && method !== 'linear') {
    const n = await askNumber(`λ — scale of the merged task vector (${method})`, defaults.lambda, () => undefined);
    if (n === undefined) return undefined;
    lambda = n;
  }
  let density = given.density ?? defaults.density;
  if (given.density === undefined && interactive && methodUsesDensity(method)) {
    const n = await askNumber('Density — fraction of task-vector entries kept, in (0, 1]', defaults.density, (d) => (d > 0 && d <= 1 ? undefined : 'Must be in (0, 1]'));
    if (n === undefined) return undefined;
    density = n;
  }

  let awd: ResolvedAwdConfig | undefined;
  const awdPossible = method !== 'linear' && models.length >= 2;
  if (given.awd !== undefined) awd = given.awd === false ? undefined : completeAwd(given.awd, defaults.awd);
  else if (interactive && awdPossible) {
    const a = defaults.awd;
    const withDefaults = `With AWD (α = ${a.alpha}, learning rate ${a.learning_rate}, ${a.iterations} iterations, ${a.granularity})`;
    const items = [
      { label: 'Without AWD', description: 'merge the task vectors as they are' },
      { label: withDefaults, description: 'disentangle the task vectors first' },
      { label: 'With AWD, other parameters…' },
    ];
    if (defaults.awdEnabled) items.unshift(items.splice(1, 1)[0]!);
    const choice = await vscode.window.showQuickPick(items, { title: 'Adaptive Weight Disentanglement' });
    if (!choice) return undefined;
    if (choice.label === withDefaults) awd = { ...a };
    else if (choice.label.startsWith('With AWD, other')) {
      const alpha = await askNumber('AWD α — weight of ‖δ‖ in the objective', a.alpha, (x) => (x >= 0 ? undefined : 'Must be ≥ 0'));
      if (alpha === undefined) return undefined;
      const lr = await askNumber('AWD learning rate', a.learning_rate, (x) => (x > 0 ? undefined : 'Must be > 0'));
      if (lr === undefined) return undefined;
      const iterations = await askNumber('AWD iterations', a.iterations, (x) => (Number.isInteger(x) && x >= 0 ? undefined : 'A whole number ≥ 0'));
      if (iterations === undefined) return undefined;
      const granularity = await vscode.window.showQuickPick(['model', 'tensor'], { title: 'AWD granularity: one δ for the model, or one per tensor' });
      if (granularity !== 'model' && granularity !== 'tensor') return undefined;
      awd = { ...a, alpha, learning_rate: lr, iterations, granularity };
    }
  } else if (defaults.awdEnabled && awdPossible) awd = { ...defaults.awd };

  const root = workspaceRootFor([...(base !== undefined ? [base] : []), ...models]);
  if (root === undefined) {
    void vscode.window.showErrorMessage('Open a folder first: the merge config and the merged model are written into the workspace.');
    return undefined;
  }
  const name =
    given.name ??
    uniqueName(suggestMergeName(method, models, awd !== undefined), (n) => existsSync(defaultConfigPath(root, defaults, n)) || existsSync(path.dirname(defaultOutPath(root, defaults, n))));
  let outPath = given.outPath ?? defaultOutPath(root, defaults, name);
  if (given.outPath === undefined && interactive) {
    const typed = await vscode.window.showInputBox({
      title: 'Output file (relative to the workspace folder)',
      value: path.relative(root, outPath).split(path.sep).join('/'),
      validateInput: (t) => (t.trim().endsWith('.safetensors') ? undefined : 'The output is a .safetensors file'),
    });
    if (typed === undefined) return undefined;
    outPath = path.resolve(root, typed.trim());
  }
  const configPath = given.configPath ?? defaultConfigPath(root, defaults, name);
  return { ...(base !== undefined ? { base } : {}), models, method, lambda, density, ...(awd ? { awd } : {}), outPath, configPath };
}

/** Writes the request's config (YAML, paths relative to its folder) and returns its path. */
export async function writeMergeConfig(request: MergeRequest): Promise<string> {
  const dir = path.dirname(request.configPath);
  const body = mergeConfigText(request, 'yaml', dir);
  const header = '# Merge config written by AWD Merge. Run it again with "▶ Run merge" above, or: awd-merge merge <this file>\n';
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(request.configPath, header + body, 'utf8');
  log.info(`Wrote merge config ${request.configPath}`);
  return request.configPath;
}

/** The wizard: complete the answers, check them, write the config, run it. */
export async function mergeCheckpoints(services: AwdServices, given: MergeWizardAnswers | undefined): Promise<MergeWizardOutcome | undefined> {
  if (!(await ensureTrusted('Merging'))) return undefined;
  // Answers passed as an argument = a script or test: no prompts, defaults for the rest.
  const interactive = given === undefined;
  const request = await completeAnswers(services, given ?? {}, interactive, mergeDefaults());
  if (!request) {
    if (!interactive) void vscode.window.showErrorMessage('Merge Checkpoints: the arguments do not say what to merge (base and models).');
    return undefined;
  }
  const problems = requestProblems(request);
  if (problems.length > 0) {
    for (const p of problems) log.error(`Merge Checkpoints: ${p}`);
    void vscode.window.showErrorMessage(`Merge Checkpoints: ${problems[0]}${problems.length > 1 ? ` (+${problems.length - 1} more in the log)` : ''}`);
    return undefined;
  }
  const configFile = await writeMergeConfig(request);
  const run = await runMergeConfig(services, vscode.Uri.file(configFile));
  return { configFile, run };
}

export function registerMergeWizard(services: AwdServices): vscode.Disposable {
  return vscode.Disposable.from(
    vscode.commands.registerCommand(MERGE_CHECKPOINTS_COMMAND, (answers?: unknown) =>
      mergeCheckpoints(services, typeof answers === 'object' && answers !== null && !(answers instanceof vscode.Uri) ? (answers as MergeWizardAnswers) : undefined),
    ),
    vscode.commands.registerCommand(MERGE_SELECTED_COMMAND, async (first?: unknown, second?: unknown) => {
      const picked = targetPaths(first, second);
      if (picked.length === 0) return mergeCheckpoints(services, undefined);
      const current = services.selection.state.base;
      let base: string | undefined;
      if (picked.length === 1) base = current;
      else if (current !== undefined && !picked.includes(current)) base = current;
      else {
        const choice = await vscode.window.showQuickPick(
          picked.map((p) => ({ label: path.basename(p), description: vscode.workspace.asRelativePath(path.dirname(p)), path: p })),
          { title: 'Which of the selected checkpoints is the base model?' },
        );
        if (!choice) return undefined;
        base = choice.path;
      }
      services.selection.replace({ ...(base !== undefined ? { base } : {}), models: picked.filter((p) => p !== base) });
      return mergeCheckpoints(services, undefined);
    }),
  );
}
