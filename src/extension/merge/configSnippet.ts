/**
 * The text "Insert Merge Config" puts into an editor or a notebook cell: the config of the current merge
 * selection with the settings' defaults, paths relative to where the text goes; or, with nothing selected, a
 * commented template to fill in. Pure, so both forms are tested to parse.
 */
import { serializeMergeConfig } from '../../core/config/load';
import { methodUsesDensity } from '../../core/config/schema';
import { requestToConfig, type MergeRequest } from './mergeRequest';

const HEADER = '# Merge config (AWD Merge): run it with "▶ Run merge" or `awd-merge merge <file>`\n';

/** The config of a complete request, in YAML or JSON, paths relative to `relativeTo`. */
export function requestSnippet(request: MergeRequest, format: 'yaml' | 'json', relativeTo: string): string {
  const body = serializeMergeConfig(requestToConfig(request), format, relativeTo);
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
