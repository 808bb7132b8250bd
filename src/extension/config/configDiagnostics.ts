/**
 * Diagnostics on merge configs: validation problems (syntax, schema, semantics) on the exact lines the config
 * parser located, refreshed as the user types; and problems a merge job found in the inputs (a missing model,
 * a shape mismatch) on the line that names the file in question.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { AwdErrorList, type AwdError } from '../../core/errors';
import { parseMergeConfig, type LoadedConfig } from '../../core/config/load';
import { ConfigProblem } from '../../core/config/problem';
import { isMergeConfigDocument, lineMentioning } from './mergeConfigFiles';

const SOURCE = 'AWD Merge';
/** Quiet time after the last keystroke before re-validating. */
const VALIDATE_DEBOUNCE_MS = 300;

/** The config, or the problems that stop it (always non-empty), from the text as it is. */
export type ConfigCheck = { ok: true; loaded: LoadedConfig } | { ok: false; problems: AwdError[] };

/** Parses and validates config text; never throws for a user-facing problem. */
export function checkConfigText(text: string, file: string): ConfigCheck {
  try {
    return { ok: true, loaded: parseMergeConfig(text, file) };
  } catch (e) {
    if (e instanceof AwdErrorList) return { ok: false, problems: [...e.problems] };
    if (e instanceof ConfigProblem) return { ok: false, problems: [e] };
    throw e;
  }
}

function rangeOf(problem: AwdError, document: vscode.TextDocument): vscode.Range {
  if (problem instanceof ConfigProblem && problem.line !== undefined) {
    const line = Math.min(Math.max(0, problem.line - 1), document.lineCount - 1);
    const start = new vscode.Position(line, Math.max(0, (problem.column ?? 1) - 1));
    const endLine = Math.min(Math.max(line, (problem.endLine ?? problem.line) - 1), document.lineCount - 1);
    let end = new vscode.Position(endLine, Math.max(0, (problem.endColumn ?? problem.column ?? 1) - 1));
    if (!end.isAfter(start)) end = document.lineAt(line).range.end;
    return new vscode.Range(start, end.isAfter(start) ? end : start.translate(0, 1));
  }
  return lineRangeForMessage(problem.message, document) ?? document.lineAt(0).range;
}

/** The line whose path value appears (resolved) in a job problem's message, e.g. the model that is missing. */
function lineRangeForMessage(message: string, document: vscode.TextDocument): vscode.Range | undefined {
  const dir = path.dirname(document.uri.fsPath);
  const text = document.getText();
  const pathLine = /^\s*(?:-\s*)?(?:model|base_model|out_path)\s*:\s*["']?([^"'#\n]+?)["']?\s*(?:#.*)?$/;
  for (let i = 0; i < document.lineCount; i++) {
    const m = pathLine.exec(document.lineAt(i).text);
    const written = m?.[1]?.trim();
    if (!written) continue;
    if (message.includes(path.resolve(dir, written))) return document.lineAt(i).range;
  }
  const mentioned = lineMentioning(text, message.match(/"[^"]+"/g)?.map((q) => q.slice(1, -1)) ?? []);
  return mentioned !== undefined ? document.lineAt(mentioned).range : undefined;
}

function toDiagnostic(problem: AwdError, document: vscode.TextDocument, severity: vscode.DiagnosticSeverity): vscode.Diagnostic {
  const text = problem instanceof ConfigProblem ? `${problem.detail}${problem.fix ? `. ${problem.fix}` : ''}` : problem.message;
  const d = new vscode.Diagnostic(rangeOf(problem, document), text, severity);
  d.source = SOURCE;
  return d;
}

export class ConfigDiagnostics implements vscode.Disposable {
  readonly collection = vscode.languages.createDiagnosticCollection('awd-merge');
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly disposables: vscode.Disposable[] = [this.collection];

  constructor() {
    const validateSoon = (document: vscode.TextDocument): void => {
      if (!this.isConfig(document)) return;
      const key = document.uri.toString();
      const t = this.timers.get(key);
      if (t) clearTimeout(t);
      this.timers.set(
        key,
        setTimeout(() => {
          this.timers.delete(key);
          this.validate(document);
        }, VALIDATE_DEBOUNCE_MS),
      );
    };
    this.disposables.push(
      vscode.workspace.onDidOpenTextDocument(validateSoon),
      vscode.workspace.onDidChangeTextDocument((e) => validateSoon(e.document)),
      vscode.workspace.onDidCloseTextDocument((d) => this.collection.delete(d.uri)),
    );
    for (const d of vscode.workspace.textDocuments) validateSoon(d);
  }

  isConfig(document: vscode.TextDocument): boolean {
    return document.uri.scheme === 'file' && isMergeConfigDocument(document.fileName, document.languageId, document.getText());
  }

  /** Validates now; sets (or clears) the document's diagnostics and returns the outcome. */
  validate(document: vscode.TextDocument): ConfigCheck {
    const check = checkConfigText(document.getText(), document.uri.fsPath);
    const diagnostics =
      check.ok ?
        check.loaded.warnings.map((w) => toDiagnostic(w, document, vscode.DiagnosticSeverity.Warning))
      : check.problems.map((p) => toDiagnostic(p, document, p instanceof ConfigProblem && p.severity === 'warning' ? vscode.DiagnosticSeverity.Warning : vscode.DiagnosticSeverity.Error));
    this.collection.set(document.uri, diagnostics);
    return check;
  }

  /** Adds the problems a merge job reported about the inputs (after validation passed). */
  addJobProblems(document: vscode.TextDocument, problems: readonly AwdError[]): void {
    const existing = this.collection.get(document.uri) ?? [];
    this.collection.set(document.uri, [...existing, ...problems.map((p) => toDiagnostic(p, document, vscode.DiagnosticSeverity.Error))]);
  }

  dispose(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    for (const d of this.disposables) d.dispose();
  }
}
