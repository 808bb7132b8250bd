/**
 * JSON.parse keeps the last of two equal keys silently; a checkpoint header or index that names a tensor twice
 * must be refused instead, so this scans already-valid JSON text for a repeated key in any object.
 */

/** The first key that occurs twice in one object of `text` (which must be valid JSON), or undefined. */
export function findDuplicateJsonKey(text: string): string | undefined {
  const stack: (Set<string> | null)[] = [];
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x7b /* { */) {
      stack.push(new Set());
      i++;
    } else if (c === 0x5b /* [ */) {
      stack.push(null);
      i++;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
      i++;
    } else if (c === 0x22 /* " */) {
      const begin = i;
      i++;
      while (i < n && text.charCodeAt(i) !== 0x22) i += text.charCodeAt(i) === 0x5c /* \ */ ? 2 : 1;
      i++;
      const keys = stack[stack.length - 1];
      if (keys) {
        let j = i;
        while (j < n && /\s/.test(text[j]!)) j++;
        if (text[j] === ':') {
          const key = JSON.parse(text.slice(begin, i)) as string;
          if (keys.has(key)) return key;
          keys.add(key);
        }
      }
    } else {
      i++;
    }
  }
  return undefined;
}
