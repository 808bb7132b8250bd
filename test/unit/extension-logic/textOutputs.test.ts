import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { parseMergeConfig } from '../../../src/core/config/load';
import { requestSnippet, templateSnippet } from '../../../src/extension/merge/configSnippet';
import { describeProgress, overallFraction, ProgressIncrements } from '../../../src/extension/merge/jobProgressText';
import { formatValue, matrixLines, similarityReportLines } from '../../../src/extension/similarity/similarityReportText';
import { escapeHtml, inspectorPageHtml, newNonce } from '../../../src/extension/inspector/inspectorHtml';
import type { SimilarityReport } from '../../../src/core/analysis/analyze';

const ws = path.resolve('/ws');

void test('config snippets parse: from a request (YAML and JSON) and the templates', () => {
  const request = {
    base: path.join(ws, 'm', 'base.safetensors'),
    models: [path.join(ws, 'm', 'a.safetensors'), path.join(ws, 'm', 'b.safetensors')],
    method: 'dare_ties' as const,
    lambda: 0.7,
    density: 0.3,
    outPath: path.join(ws, 'merged', 'x', 'model.safetensors'),
    configPath: path.join(ws, 'notes', 'x.merge.yaml'),
  };
  for (const format of ['yaml', 'json'] as const) {
    const text = requestSnippet(request, format, path.join(ws, 'notes'));
    const loaded = parseMergeConfig(text, path.join(ws, 'notes', 'x.merge.yaml'));
    assert.equal(loaded.config.base_model, request.base);
    assert.equal(loaded.config.parameters.density, 0.3);
    assert.equal(loaded.config.out_path, request.outPath);
  }
  for (const format of ['yaml', 'json'] as const) {
    for (const method of ['ties', 'task_arithmetic'] as const) {
      const loaded = parseMergeConfig(templateSnippet(format, method, 0.3, 0.2), path.join(ws, 't.merge.yaml'));
      assert.equal(loaded.config.merge_method, method);
      assert.equal(loaded.config.models.length, 2);
      assert.equal(loaded.config.parameters.density, method === 'ties' ? 0.2 : undefined);
    }
  }
});

void test('progress: words, percentages, a bar that never moves back', () => {
  assert.equal(describeProgress({ phase: 'output', tensor: 'w', bytesDone: 42, bytesTotal: 100 }), 'writing the result 42% · w');
  assert.equal(describeProgress({ phase: 'plan', bytesDone: 0, bytesTotal: 0 }), 'checking inputs');
  assert.equal(overallFraction({ phase: 'statistics', bytesDone: 0, bytesTotal: 10 }), 0.02);
  assert.equal(overallFraction({ phase: 'finish', bytesDone: 0, bytesTotal: 0 }), 1);
  const inc = new ProgressIncrements();
  assert.equal(inc.next(0.25), 25);
  assert.equal(inc.next(0.1), 0);
  assert.ok(Math.abs(inc.next(0.5) - 25) < 1e-9);
  assert.ok(Math.abs(inc.next(2) - 50) < 1e-9);
});

void test('similarity report text', () => {
  assert.equal(formatValue(0.000123456), '1.235e-4');
  assert.equal(formatValue(12.3456), '12.35');
  assert.deepEqual(matrixLines([[1, -0.25], [-0.25, 1]]), ['           [1]    [2]', '  [1]    1.000 -0.250', '  [2]   -0.250  1.000']);
  const report = {
    models: ['/ws/a', '/ws/b'],
    base: '/ws/base',
    tensor_count: 3,
    elements: 100,
    cosine: [[1, 0.5], [0.5, 1]],
    mean_abs_cos: 0.5,
    task_vector_norms: [2, 3],
    gram: [],
    tensor_grams: [],
    seconds: 0.25,
    awd: {
      settings: { alpha: 0.1, learning_rate: 0.01, iterations: 10, granularity: 'model', norm: 'l2' },
      mean_abs_cos_before: 0.5,
      mean_abs_cos_after: 0.1,
      cos_before: [[1, 0.5], [0.5, 1]],
      cos_after: [[1, 0.1], [0.1, 1]],
      delta_norm: 0.4,
      delta_norm_relative: 0.16,
      norm_ratio: [0.9, null],
      coefficients: [0.1, 0.1],
      effective_ta_coefficients: [0.8, 0.8],
      loss: [1, 0.5, 0.25],
      loss_orthogonality: [],
      loss_delta_norm: [],
      per_tensor: {},
    },
  } as unknown as SimilarityReport;
  const lines = similarityReportLines(report, (p) => path.basename(p));
  assert.equal(lines[0], 'Task vector similarity: 2 models against base base — 3 tensors, 100 elements, 0.25 s');
  assert.equal(lines[1], '  [1] a   ‖τ‖ = 2');
  assert.ok(lines.includes('Mean |cos| over pairs: 0.5000'));
  assert.ok(lines.includes('  mean |cos| 0.5000 → 0.1000'));
  assert.ok(lines.includes('  ‖τ̂_i‖ / ‖τ_i‖: 0.9000, —'));
  assert.ok(lines.includes('  loss 1 → 0.25 over 2 steps'));
});

void test('inspector page: strict CSP with the nonce, escaped title, no inline script', () => {
  const nonce = newNonce();
  assert.notEqual(nonce, newNonce());
  assert.match(nonce, /^[A-Za-z0-9+/]{22}==$/);
  const html = inspectorPageHtml({ cspSource: 'https://x.vscode-cdn.net', scriptUri: 'https://x/inspector.js', styleUri: 'https://x/i.css', title: '<img src=x onerror=alert(1)>.safetensors', nonce });
  assert.match(html, new RegExp(`default-src 'none'; style-src https://x.vscode-cdn.net; img-src https://x.vscode-cdn.net; font-src https://x.vscode-cdn.net; script-src 'nonce-${nonce.replace(/[+/]/g, '\\$&')}'`));
  assert.ok(!html.includes('<img'), 'the title is escaped');
  assert.equal((html.match(/<script/g) ?? []).length, 1);
  assert.match(html, new RegExp(`<script nonce="${nonce.replace(/[+/]/g, '\\$&')}" src="https://x/inspector.js"></script>`));
  assert.equal(escapeHtml(`a"b'<&>`), 'a&#34;b&#39;&#60;&#38;&#62;');
});
