/**
 * The current merge selection: one base model and the fine-tuned models to merge into it, in the order they were
 * added (that order becomes the order of `models` in the config). A path is never both base and fine-tuned.
 * Plain TypeScript with a listener list, so the rules are unit-tested without vscode.
 */

export interface MergeSelectionState {
  readonly base?: string;
  readonly models: readonly string[];
}

export type SelectionRole = 'base' | 'model' | undefined;

export class MergeSelection {
  private baseModel: string | undefined;
  private fineTuned: string[] = [];
  private readonly listeners = new Set<() => void>();

  get state(): MergeSelectionState {
    return { base: this.baseModel, models: [...this.fineTuned] };
  }

  get isEmpty(): boolean {
    return this.baseModel === undefined && this.fineTuned.length === 0;
  }

  /** Whether a path is the base, one of the fine-tuned models, or neither. */
  roleOf(path: string): SelectionRole {
    if (path === this.baseModel) return 'base';
    return this.fineTuned.includes(path) ? 'model' : undefined;
  }

  /** 1-based position of a fine-tuned model (as shown in the view), 0 when it is not one. */
  modelNumber(path: string): number {
    return this.fineTuned.indexOf(path) + 1;
  }

  /** Makes `path` the base; it leaves the fine-tuned list if it was there. */
  setBase(path: string): void {
    this.baseModel = path;
    this.fineTuned = this.fineTuned.filter((p) => p !== path);
    this.changed();
  }

  /** Appends paths as fine-tuned models, skipping the base and those already selected. Returns how many were added. */
  add(paths: readonly string[]): number {
    let added = 0;
    for (const p of paths) {
      if (p === this.baseModel || this.fineTuned.includes(p)) continue;
      this.fineTuned.push(p);
      added++;
    }
    if (added > 0) this.changed();
    return added;
  }

  /** Removes a path from whichever role it has. */
  remove(path: string): void {
    if (this.roleOf(path) === undefined) return;
    if (this.baseModel === path) this.baseModel = undefined;
    this.fineTuned = this.fineTuned.filter((p) => p !== path);
    this.changed();
  }

  /** Replaces the whole selection at once (one change event). */
  replace(state: MergeSelectionState): void {
    this.baseModel = state.base;
    this.fineTuned = state.models.filter((p, i, all) => p !== state.base && all.indexOf(p) === i);
    this.changed();
  }

  clear(): void {
    if (this.isEmpty) return;
    this.baseModel = undefined;
    this.fineTuned = [];
    this.changed();
  }

  /** Registers a listener called after every change; returns the function that unregisters it. */
  onDidChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private changed(): void {
    for (const l of [...this.listeners]) l();
  }
}
