import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { join } from 'node:path';
import { startJob } from '../../../src/jobs/runner';
import { fromGramsRequest, reportFromSource, viewFromReport } from '../../../src/extension/similarityPanel/similarityView';
import { AWD, randomTaskVectors, reportOf } from './randomReport';

const workerPath = join(__dirname, '..', '..', '..', 'src', 'jobs', 'worker.ts');

void test('the worker re-runs AWD from kept Gram matrices and reports exactly what the in-thread computation does', async () => {
  const report = reportOf(randomTaskVectors(4, ['a.w', 'a.b', 'b.w', 'c'], 21), AWD);
  const source = viewFromReport(report).source;
  const settings = { ...AWD, granularity: 'tensor' as const, iterations: 30, alpha: 0.3 };
  const result = await startJob(fromGramsRequest(source, settings), {}, { workerPath }).done;
  assert.equal(result.kind, 'similarity');
  if (result.kind !== 'similarity') return;
  assert.deepEqual(result.similarity, reportFromSource(source, settings));
  assert.deepEqual(result.similarity.cosine, report.cosine, 'the cosines before AWD do not depend on AWD');
  const without = await startJob(fromGramsRequest(source, null), {}, { workerPath }).done;
  assert.ok(without.kind === 'similarity' && without.similarity.awd === undefined);
});
