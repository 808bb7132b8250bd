// The fuzzing harness's case runner, a child process of run.ts: it builds each case from (family, seed, index),
// feeds it to the reader, and answers with the outcome, the CPU time it took and the memory seen. The parent
// kills and restarts it when a case hangs or the process dies, so one bad case cannot take the run down.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AwdError } from '../../src/core/errors';
import { openCheckpoint } from '../../src/core/formats/open';
import { unpickle } from '../../src/core/formats/pickle';
import { TorchPersistentLoader, flattenTorchObject, resolveTorchGlobal } from '../../src/core/formats/torchPickle';
import { loadMergeConfig } from '../../src/core/config/load';
import { planMerge } from '../../src/core/merge/plan';
import { seededRandom } from '../unit/formats/testFiles';
import { FAMILIES, writeModelSet, type FuzzContext, type FuzzTarget } from './cases';
import { caseSeed, type CaseReply, type CaseRequest } from './protocol';

const root = mkdtempSync(join(tmpdir(), 'awd-fuzz-'));
const models = writeModelSet(join(root, 'models'));
const canary = join(root, 'CODE-RAN');

/** Opens the checkpoint and reads a bounded part of every tensor (head and tail), as the inspector and a merge would. */
async function exerciseCheckpoint(path: string): Promise<void> {
  const checkpoint = await openCheckpoint(path);
  try {
    for (const t of checkpoint.tensors.slice(0, 64)) {
      await checkpoint.readFloat32(t.name, 0, Math.min(t.elements, 4096));
      await checkpoint.readBytes(t.name, Math.max(0, t.elements - 16), t.elements);
    }
  } finally {
    await checkpoint.close();
  }
}

function exercisePickle(bytes: Uint8Array): void {
  const loader = new TorchPersistentLoader();
  const { value } = unpickle(bytes, { resolveGlobal: resolveTorchGlobal, persistentLoad: loader.load });
  flattenTorchObject(value);
}

/** Loads and plans the merge (every input opened and checked), never writing anything. */
async function exerciseConfig(path: string): Promise<void> {
  const plan = await planMerge(await loadMergeConfig(path));
  await plan.close();
}

async function exercise(target: FuzzTarget): Promise<void> {
  if (target.kind === 'checkpoint') await exerciseCheckpoint(target.path);
  else if (target.kind === 'pickle') exercisePickle(target.bytes);
  else await exerciseConfig(target.path);
}

async function runCase(request: CaseRequest): Promise<CaseReply> {
  const dir = join(root, 'case');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir);
  const ctx: FuzzContext = { dir, canary, models };
  const family = FAMILIES[request.family];
  if (!family) return { outcome: 'crash', cpuMs: 0, rssBytes: 0, arrayBuffers: 0, message: `unknown family ${request.family}` };
  const target = family(seededRandom(caseSeed(request.seed, request.index)), ctx);
  const cpu0 = process.cpuUsage();
  let outcome: CaseReply['outcome'];
  let message: string | undefined;
  try {
    await exercise(target);
    outcome = target.mustRefuse ? 'accepted' : 'data';
    if (target.mustRefuse) message = `expected a refusal mentioning "${target.mustRefuse}"`;
  } catch (e) {
    if (e instanceof AwdError) {
      outcome = 'refused';
      message = e.message.slice(0, 400);
      if (target.mustRefuse && !e.message.includes(target.mustRefuse)) {
        outcome = 'wrong-reason';
        message = `expected the refusal to mention "${target.mustRefuse}": ${message}`;
      }
    } else {
      outcome = 'crash';
      message = e instanceof Error ? (e.stack ?? e.message) : String(e);
    }
  }
  const used = process.cpuUsage(cpu0);
  if (existsSync(canary)) {
    outcome = 'code-ran';
    message = 'a pickle ran code: the canary file exists';
    rmSync(canary, { force: true });
  }
  const memory = process.memoryUsage();
  return {
    outcome,
    cpuMs: (used.user + used.system) / 1000,
    rssBytes: process.resourceUsage().maxRSS * 1024,
    arrayBuffers: memory.arrayBuffers,
    ...(message !== undefined ? { message } : {}),
  };
}

process.on('message', (request: CaseRequest) => {
  void runCase(request).then((reply) => process.send!(reply));
});
process.on('disconnect', () => {
  rmSync(root, { recursive: true, force: true });
  process.exit(0);
});
process.on('uncaughtException', (e) => {
  process.send!({ outcome: 'crash', cpuMs: 0, rssBytes: 0, arrayBuffers: 0, message: `uncaught: ${e.stack ?? e.message}` } satisfies CaseReply);
  process.exit(70);
});
process.on('unhandledRejection', (e) => {
  process.send!({ outcome: 'crash', cpuMs: 0, rssBytes: 0, arrayBuffers: 0, message: `unhandled rejection: ${String(e)}` } satisfies CaseReply);
  process.exit(70);
});
process.send!({ ready: true });
