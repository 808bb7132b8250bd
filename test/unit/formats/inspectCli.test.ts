// `awd-merge inspect`: the JSON shape from the issue, --head values, the table, and exit codes / one-line errors
// (in-process through main(), plus real processes for the exit status and the no-stack-trace rule).
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { main } from '../../../src/cli/main';
import { buildSafetensors, bytesOf, tempFolder } from './testFiles';

const ROOT = join(__dirname, '../../..');
const tmp = tempFolder();
after(tmp.cleanup);
const model = join(tmp.dir, 'model.safetensors');
writeFileSync(
  model,
  buildSafetensors(
    [
      { name: 'emb', dtype: 'F32', shape: [2, 3], data: bytesOf(new Float32Array([0.5, -1, 2, 3, 4, 5])) },
      { name: 'ids', dtype: 'I64', shape: [3], data: bytesOf(new BigInt64Array([9007199254740993n, -2n, 3n])) },
      { name: 'h', dtype: 'F16', shape: [2], data: bytesOf(new Uint16Array([0x7e00, 0x3c00])) }, // NaN, 1
      { name: 'scalar', dtype: 'BF16', shape: [], data: bytesOf(new Uint16Array([0x4040])) }, // 3
    ],
    { format: 'pt' },
  ),
);

function capture(): { stream: Writable & { isTTY?: boolean }; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _enc, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  return { stream, text: () => chunks.join('') };
}

async function run(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = capture();
  const err = capture();
  const code = await main(argv, { stdout: out.stream, stderr: err.stream });
  return { code, stdout: out.text(), stderr: err.text() };
}

void describe('awd-merge inspect', () => {
  void it('--json prints the issue\'s object, exactly one JSON document', async () => {
    const r = await run('inspect', model, '--json');
    assert.equal(r.code, 0);
    assert.equal(r.stderr, '');
    assert.deepEqual(JSON.parse(r.stdout), {
      path: model,
      format: 'safetensors',
      parameters: 12,
      metadata: { format: 'pt' },
      tensors: [
        { name: 'emb', dtype: 'F32', shape: [2, 3], bytes: 24 },
        { name: 'ids', dtype: 'I64', shape: [3], bytes: 24 },
        { name: 'h', dtype: 'F16', shape: [2], bytes: 4 },
        { name: 'scalar', dtype: 'BF16', shape: [], bytes: 2 },
      ],
    });
  });

  void it('--head N adds the first N values in row-major order (exact integers, NaN as null)', async () => {
    const r = await run('inspect', model, '--json', '--head', '4');
    const tensors = (JSON.parse(r.stdout) as { tensors: { name: string; head: unknown[] }[] }).tensors;
    assert.deepEqual(Object.fromEntries(tensors.map((t) => [t.name, t.head])), {
      emb: [0.5, -1, 2, 3],
      ids: [9007199254740992, -2, 3], // 2^53 + 1 is the nearest double, as JSON numbers go
      h: [null, 1],
      scalar: [3],
    });
    const zero = await run('inspect', model, '--json', '--head=0');
    assert.deepEqual((JSON.parse(zero.stdout) as { tensors: { head: unknown[] }[] }).tensors[0]!.head, []);
  });

  void it('prints a table by default', async () => {
    const r = await run('inspect', model, '--head', '2');
    assert.equal(r.code, 0);
    assert.match(r.stdout, /format\s+safetensors/);
    assert.match(r.stdout, /parameters\s+12/);
    assert.match(r.stdout, /format = pt/);
    assert.match(r.stdout, /^emb\s+F32\s+\[2, 3\]\s+24 B\s+0\.5 -1$/m);
    assert.match(r.stdout, /^scalar\s+BF16\s+\[\]\s+2 B\s+3$/m);
  });

  void it('user errors: one `error:` line naming the file and the fix, exit 1', async () => {
    const missing = join(tmp.dir, 'missing.safetensors');
    for (const argv of [['inspect', missing], ['inspect'], ['inspect', model, '--head', 'x'], ['inspect', model, '--bogus'], ['nope']]) {
      const r = await run(...argv);
      assert.equal(r.code, 1, argv.join(' '));
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /^error: [^\n]+\n$/, argv.join(' '));
    }
    assert.match((await run('inspect', missing)).stderr, /missing\.safetensors: no such file/);
    const corrupt = join(tmp.dir, 'corrupt.safetensors');
    writeFileSync(corrupt, new Uint8Array([255, 255, 255, 255, 0, 0, 0, 0, 0x7b]));
    assert.match((await run('inspect', corrupt)).stderr, /^error: .*corrupt\.safetensors.*re-download/);
  });

  void it('--help and --version', async () => {
    assert.match((await run('inspect', '--help')).stdout, /usage: awd-merge inspect PATH/);
    const top = await run('--help');
    assert.equal(top.code, 0);
    assert.match(top.stdout, /inspect.*\n.*merge.*\n.*similarity/);
    assert.match((await run('--version')).stdout, /^awd-merge \d+\.\d+\.\d+\n$/);
  });

  void it('as a real process: exit codes and no stack trace', () => {
    const node = (...args: string[]) =>
      spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    const ok = node('inspect', model, '--json');
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal((JSON.parse(ok.stdout) as { parameters: number }).parameters, 12);
    const bad = node('inspect', join(tmp.dir, 'missing.bin'));
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /^error: .*missing\.bin: no such file or folder/);
    assert.doesNotMatch(bad.stderr, /\n\s+at /, 'no stack trace');
    assert.equal(bad.stderr.trim().split('\n').length, 1);
  });
});
