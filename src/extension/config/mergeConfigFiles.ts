/**
 * Which documents are merge configs: files named *.merge.yaml / *.merge.yml / *.merge.json, and any YAML or JSON
 * document with a top-level `merge_method` key (a mergekit config kept under another name). Pure, for the
 * CodeLens, the diagnostics and "Run Merge From Config" alike.
 */

const CONFIG_NAME = /\.merge\.(ya?ml|json)$/i;
/** `merge_method:` starting a line with no indentation = a top-level YAML key. */
const TOP_LEVEL_YAML_KEY = /^merge_method\s*:/m;
/** `"merge_method":` in a JSON object; a nested one is possible in principle but no other schema uses that name. */
const JSON_KEY = /"merge_method"\s*:/;

/** True for a file name the extension always treats as a merge config. */
export function hasMergeConfigName(fileName: string): boolean {
  return CONFIG_NAME.test(fileName);
}

/** True when a document is a merge config by name, or by content for YAML/JSON documents. */
export function isMergeConfigDocument(fileName: string, languageId: string, text: string): boolean {
  if (hasMergeConfigName(fileName)) return true;
  if (languageId === 'yaml' || /\.ya?ml$/i.test(fileName)) return TOP_LEVEL_YAML_KEY.test(text);
  if (languageId === 'json' || languageId === 'jsonc' || /\.json$/i.test(fileName)) {
    return text.trimStart().startsWith('{') && JSON_KEY.test(text);
  }
  return false;
}

/** 0-based line of the top-level `merge_method` key (where the "▶ Run merge" lens goes), 0 when not found. */
export function mergeMethodLine(text: string): number {
  const lines = text.split(/\r?\n/);
  const i = lines.findIndex((l) => /^(merge_method|\s*"merge_method")\s*"?\s*:/.test(l));
  return i < 0 ? 0 : i;
}

/**
 * 0-based line on which a path named by a job problem appears in the config (e.g. a model that is missing), so
 * the Diagnostic lands on it; matched by the path as written, relative to the config's folder, or by its base name.
 */
export function lineMentioning(text: string, candidates: readonly string[]): number | undefined {
  const lines = text.split(/\r?\n/);
  for (const c of candidates) {
    if (c === '') continue;
    const i = lines.findIndex((l) => l.includes(c));
    if (i >= 0) return i;
  }
  return undefined;
}
