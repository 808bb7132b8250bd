/**
 * The text "Insert Merge Config" puts into an editor or a notebook cell: the config of the current merge
 * selection with the settings' defaults, paths relative to where the text goes; or, with nothing selected, a
 * commented template to fill in. Pure, so both forms are tested to parse.
 */
import { stringify } from 'yaml';
import { configToPlainObject } from '../../core/config/load';
import { methodElectsSign, methodTrimsByMagnitude, methodUsesDensity } from '../../core/config/schema';
import { requestToConfig, type MergeRequest } from './mergeRequest';

const HEADER = '# Merge config (AWD Merge): run it with "▶ Run merge" or `awd-merge merge <file>`\n';

/**
 * The config of a complete request as text, paths relative to `relativeTo`: every default spelled out except the
 * keys the method ignores (the config loader warns about those), so the file loads back to the same config with
 * no warning.
 */
export function mergeConfigText(request: MergeRequest, format: 'yaml' | 'json', relativeTo: string): string {
  const method = request.method;
  const obj = configToPlainObject(requestToConfig(request), relativeTo);
  const parameters = obj['parameters'] as Record<string, unknown>;
  if (method === 'linear') delete parameters['lambda'];
  if (!methodElectsSign(method)) delete parameters['normalize'];
  if (!methodTrimsByMagnitude(method)) delete parameters['trim_scope'];
  if (method !== 'dare_linear' && method !== 'dare_ties') delete obj['random_seed'];
  if (Object.keys(parameters).length === 0) delete obj['parameters'];
  return format === 'json' ? `${JSON.stringify(obj, null, 2)}\n` : stringify(obj, { lineWidth: 0 });
}

/** What Insert Merge Config puts in: the request's config, with a comment line in YAML. */
export function requestSnippet(request: MergeRequest, format: 'yaml' | 'json', relativeTo: string): string {
  const body = mergeConfigText(request, format, relativeTo);
  return format === 'yaml' ? HEADER + body : body;
}

/** A template for when nothing is selected: every key it needs, paths to replace. */
export function templateSnippet(format: 'yaml' | 'json', method: MergeRequest['method'], lambda: number, density: number): string {
  const usesDensity = methodUsesDensity(method);
  if (format === 'json') {
    const obj = {
      merge_method: method,
      base_model: 'models/base.safetensors',
      models: [{ model: 'models/finetuned-a.safetensors' }, { model: 'models/finetuned-b.safetensors' }],
      parameters: { lambda, ...(usesDensity ? { density } : {}) },
      out_path: 'merged/model.safetensors',
    };
    return `${JSON.stringify(obj, null, 2)}\n`;
  }
  return [
    HEADER.trimEnd(),
    `merge_method: ${method}            # task_arithmetic | ties | dare_linear | dare_ties | linear`,
    'base_model: models/base.safetensors   # the checkpoint the others were fine-tuned from',
    'models:',
    '  - model: models/finetuned-a.safetensors',
    '  - model: models/finetuned-b.safetensors',
    'parameters:',
    `  lambda: ${lambda}`,
    ...(usesDensity ? [`  density: ${density}`] : []),
    '# awd:                                # uncomment to disentangle the task vectors first',
    '#   alpha: 0.1',
    '#   iterations: 300',
    'out_path: merged/model.safetensors',
    '',
  ].join('\n');
}
