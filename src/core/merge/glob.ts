/**
 * Tensor-name globs of the merge config: `*` matches any run of characters (dots included, since tensor names
 * are dotted paths), `?` exactly one character, every other character only itself. No classes, braces or
 * escapes: tensor names hold none of those characters in practice, and a tiny language is easy to predict.
 */

/** True when the pattern contains a wildcard (else it names one tensor exactly). */
export function hasWildcard(pattern: string): boolean {
  return pattern.includes('*') || pattern.includes('?');
}

/** Whether `name` matches `pattern` as a whole. Greedy with one backtrack point: O(|pattern|·|name|) worst case. */
export function globMatch(pattern: string, name: string): boolean {
  let p = 0;
  let n = 0;
  let starP = -1; // pattern index just after the last '*'
  let starN = 0; // name index that '*' is currently extended to
  while (n < name.length) {
    const c = pattern[p];
    if (c === '*') {
      starP = ++p;
      starN = n;
    } else if (c !== undefined && (c === '?' || c === name[n])) {
      p++;
      n++;
    } else if (starP >= 0) {
      // Let the last '*' swallow one more character and retry from there.
      p = starP;
      n = ++starN;
    } else {
      return false;
    }
  }
  while (pattern[p] === '*') p++;
  return p === pattern.length;
}

/** Whether a tensor is selected: it matches some `include` and no `exclude` pattern. */
export function isSelected(name: string, include: readonly string[], exclude: readonly string[]): boolean {
  return include.some((g) => globMatch(g, name)) && !exclude.some((g) => globMatch(g, name));
}
