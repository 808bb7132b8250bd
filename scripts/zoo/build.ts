/**
 * `npm run zoo [-- --force] [--out DIR] [--tiny]`: builds the sample model zoo (scripts/zoo/zooBuilder.ts) into
 * samples/workspace/zoo, or reports that the cached one is up to date.
 */
import { resolve } from 'node:path';
import { buildZoo, DEFAULT_ZOO_SETTINGS, TINY_ZOO_SETTINGS } from './zooBuilder';
import { DEFAULT_ZOO_FOLDER } from './zooPaths';

const USAGE = `usage: npm run zoo -- [--force] [--out DIR] [--tiny]
  --force    rebuild even when the zoo is up to date
  --out DIR  write the zoo to DIR (default samples/workspace/zoo)
  --tiny     a few-second variant with the same code paths (for tests)`;

async function main(args: readonly string[]): Promise<number> {
  let out = DEFAULT_ZOO_FOLDER;
  let force = false;
  let tiny = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--force') force = true;
    else if (a === '--tiny') tiny = true;
    else if (a === '--out' && args[i + 1] !== undefined) out = resolve(args[++i]!);
    else {
      process.stderr.write(`${a === '--help' ? '' : `unknown argument ${a}\n`}${USAGE}\n`);
      return a === '--help' ? 0 : 2;
    }
  }
  const { manifest, cached, seconds } = await buildZoo(tiny ? TINY_ZOO_SETTINGS : DEFAULT_ZOO_SETTINGS, out, { force });
  const size = `${(manifest.total_bytes / 1024 ** 2).toFixed(2)} MiB in ${Object.keys(manifest.files).length + 1} files`;
  console.log(cached ? `zoo up to date: ${out} (${size}; --force rebuilds)` : `wrote ${out} (${size}) in ${seconds.toFixed(1)} s`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`error: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
