/**
 * The evaluation grid: which merge methods, densities and λ values `npm run eval` runs, each with and without
 * AWD, and the merge config written for each point.
 */

export type MergeMethod = 'task_arithmetic' | 'ties' | 'dare_linear' | 'dare_ties';

export interface MethodGrid {
  readonly method: MergeMethod;
  /** Label in tables and the plot. */
  readonly label: string;
  /** ties / dare: fraction of task-vector entries kept. */
  readonly density?: number;
  readonly lambdas: readonly number[];
}

export interface GridPoint {
  readonly grid: MethodGrid;
  readonly lambda: number;
  readonly awd: boolean;
}

/**
 * Task arithmetic and DARE-linear add up K = 8 task vectors, so their useful λ is small: the grid is finer below 0.3.
 * TIES and DARE-TIES take the mean of the agreeing entries (normalize: true), so theirs reaches further. Densities as
 * commonly used for small models: 0.2 for TIES (its paper's default), 0.5 for DARE.
 */
export function evaluationGrid(quick: boolean): MethodGrid[] {
  const sumGrid = [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.7, 1.0];
  const meanGrid = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.2, 1.5];
  return [
    { method: 'task_arithmetic', label: 'Task arithmetic', lambdas: quick ? [0.3] : sumGrid },
    { method: 'ties', label: 'TIES (density 0.2)', density: 0.2, lambdas: quick ? [1.0] : meanGrid },
    { method: 'dare_linear', label: 'DARE linear (density 0.5)', density: 0.5, lambdas: quick ? [0.3] : sumGrid },
    { method: 'dare_ties', label: 'DARE-TIES (density 0.5)', density: 0.5, lambdas: quick ? [1.0] : meanGrid },
  ];
}

export function gridPoints(grids: readonly MethodGrid[]): GridPoint[] {
  return grids.flatMap((grid) => [false, true].flatMap((awd) => grid.lambdas.map((lambda) => ({ grid, lambda, awd }))));
}

/** The merge config of one grid point (JSON, which the config loader accepts like YAML); AWD with its defaults. */
export function mergeConfigFor(point: GridPoint, base: string, models: readonly string[], outPath: string): Record<string, unknown> {
  const { grid, lambda, awd } = point;
  return {
    merge_method: grid.method,
    base_model: base,
    models: models.map((model) => ({ model })),
    parameters: {
      lambda,
      ...(grid.density !== undefined ? { density: grid.density } : {}),
      ...(grid.method === 'ties' || grid.method === 'dare_ties' ? { normalize: true } : {}),
    },
    ...(awd ? { awd: { alpha: 0.1, learning_rate: 0.01, iterations: 300, granularity: 'model', norm: 'l2' } } : {}),
    dtype: 'float32',
    random_seed: 0,
    out_path: outPath,
  };
}
