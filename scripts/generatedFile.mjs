// The committed-generated-file convention of the build scripts: write `text` to `target`, or with `--check` in the
// arguments exit 1 when the committed file differs (a test runs the check, so a stale file fails `npm test`).
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { basename, dirname } from 'node:path';

export function writeOrCheck(target, text, command) {
  if (process.argv.includes('--check')) {
    let current = '';
    try {
      current = readFileSync(target, 'utf8');
    } catch {
      /* missing counts as out of date */
    }
    if (current !== text) {
      console.error(`${target} is out of date: run ${command}`);
      process.exit(1);
    }
    console.log(`${basename(target)} is up to date`);
  } else {
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, text);
    console.log(`wrote ${target}`);
  }
}
