// The webviews are untrusted input: every message from the inspector and the similarity page goes through a
// validator that must return a well-formed request or undefined (the host then drops and logs it) — never throw,
// never pass junk through. And the pages' Content-Security-Policy must allow nothing remote.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_STATS_TENSORS, parseInspectorRequest } from '../../../src/protocol/inspectorMessages';
import { parseSimilarityRequest } from '../../../src/protocol/similarityMessages';
import { inspectorPageHtml } from '../../../src/extension/inspector/inspectorHtml';
import { similarityPageHtml } from '../../../src/extension/similarityPanel/similarityPanelHtml';
import { int, type Rand } from '../../support/mutations';
import { seededRandom } from '../formats/testFiles';

/** A random JSON-ish value (plus the things postMessage can carry that JSON cannot), up to `depth` levels. */
function junk(r: Rand, depth = 3): unknown {
  const leaves: (() => unknown)[] = [
    () => null,
    () => undefined,
    () => int(r, 2) === 0,
    () => r() * 1e6 - 5e5,
    () => [NaN, Infinity, -Infinity, -0, 2 ** 53 + 2, 1e308][int(r, 6)],
    () => ['', 'ready', 'computeStats', 'chooseBase', 'rendered', 'rerunAwd', 'exportPng', 'problem', '__proto__', 'constructor', 'x'.repeat(int(r, 5000))][int(r, 11)],
    () => new Float64Array(int(r, 8)),
    () => BigInt(int(r, 100)),
    () => Symbol('s'),
    () => () => 1,
  ];
  if (depth === 0 || r() < 0.4) return leaves[int(r, leaves.length)]!();
  if (r() < 0.5) return Array.from({ length: int(r, 6) }, () => junk(r, depth - 1));
  const keys = ['type', 'requestId', 'tensors', 'settings', 'snapshot', 'dataUrl', 'name', 'message', 'alpha', 'learning_rate', 'iterations', 'granularity', 'norm', '__proto__', 'constructor'];
  const obj: Record<string, unknown> = Object.create(r() < 0.1 ? null : Object.prototype) as Record<string, unknown>;
  // Own properties, as JSON.parse and structured cloning make them (a plain `obj.__proto__ = x` would set the prototype).
  for (let i = int(r, 6); i > 0; i--) Object.defineProperty(obj, keys[int(r, keys.length)]!, { value: junk(r, depth - 1), enumerable: true, writable: true, configurable: true });
  return obj;
}

/** Valid messages, then each mutated in one field. */
const VALID_INSPECTOR: unknown[] = [{ type: 'ready' }, { type: 'chooseBase' }, { type: 'computeStats', requestId: 3, tensors: ['a', 'b'] }];
const VALID_SIMILARITY: unknown[] = [
  { type: 'ready' },
  { type: 'cancel' },
  { type: 'exportCsv' },
  { type: 'merge' },
  { type: 'rerunAwd', settings: null },
  { type: 'rerunAwd', settings: { alpha: 0.1, learning_rate: 0.01, iterations: 30, granularity: 'model', norm: 'l2' } },
  { type: 'exportPng', dataUrl: 'data:image/png;base64,AAAA', name: 'heatmap.png' },
  { type: 'problem', message: 'x' },
];

function mutateField(r: Rand, message: unknown): unknown {
  const copy = structuredClone(message) as Record<string, unknown>;
  const keys = Object.keys(copy);
  const key = r() < 0.2 ? 'extra' : keys[int(r, keys.length)]!;
  Object.defineProperty(copy, key, { value: junk(r, 2), enumerable: true, writable: true, configurable: true });
  return copy;
}

/** A parsed inspector request is exactly of one of its shapes. */
function wellFormedInspector(m: ReturnType<typeof parseInspectorRequest>): boolean {
  if (!m) return true;
  if (m.type === 'ready' || m.type === 'chooseBase') return Object.keys(m).length === 1;
  return (
    Number.isSafeInteger(m.requestId) &&
    Array.isArray(m.tensors) &&
    m.tensors.length >= 1 &&
    m.tensors.length <= MAX_STATS_TENSORS &&
    m.tensors.every((t) => typeof t === 'string' && t.length > 0)
  );
}

function wellFormedSimilarity(m: ReturnType<typeof parseSimilarityRequest>): boolean {
  if (!m) return true;
  switch (m.type) {
    case 'exportPng':
      return m.dataUrl.startsWith('data:image/png;base64,') && m.name.length > 0 && !/[\\/]/.test(m.name);
    case 'problem':
      return typeof m.message === 'string' && m.message.length <= 2000;
    case 'rerunAwd':
      return (
        m.settings === null ||
        (Number.isFinite(m.settings.alpha) && m.settings.alpha >= 0 && m.settings.learning_rate > 0 && Number.isInteger(m.settings.iterations) && ['model', 'tensor'].includes(m.settings.granularity))
      );
    case 'rendered':
      return typeof m.snapshot === 'object' && m.snapshot !== null;
    default:
      return Object.keys(m).length === 1;
  }
}

void describe('webview message validators under random junk', () => {
  void it('20 000 junk and mutated messages: the validators never throw and pass only well-formed requests', () => {
    const r = seededRandom(8080);
    const counts = { inspectorDropped: 0, inspectorAccepted: 0, similarityDropped: 0, similarityAccepted: 0 };
    for (let i = 0; i < 10_000; i++) {
      const a = i % 2 === 0 ? junk(r) : mutateField(r, VALID_INSPECTOR[int(r, VALID_INSPECTOR.length)]);
      const m = parseInspectorRequest(a);
      assert.ok(wellFormedInspector(m), `inspector passed ${String(JSON.stringify(m))}`);
      counts[m ? 'inspectorAccepted' : 'inspectorDropped']++;
      const b = i % 2 === 0 ? junk(r) : mutateField(r, VALID_SIMILARITY[int(r, VALID_SIMILARITY.length)]);
      const s = parseSimilarityRequest(b);
      assert.ok(wellFormedSimilarity(s), `similarity passed ${String(JSON.stringify(s))}`);
      counts[s ? 'similarityAccepted' : 'similarityDropped']++;
    }
    // Both validators saw plenty of each.
    assert.ok(counts.inspectorDropped > 5000 && counts.similarityDropped > 5000, JSON.stringify(counts));
    assert.ok(counts.inspectorAccepted > 100 && counts.similarityAccepted > 100, JSON.stringify(counts));
  });

  void it('the valid messages pass, and pointed attacks are dropped', () => {
    for (const m of VALID_INSPECTOR) assert.ok(parseInspectorRequest(m), JSON.stringify(m));
    for (const m of VALID_SIMILARITY) assert.ok(parseSimilarityRequest(m), JSON.stringify(m));
    const attacks: unknown[] = [
      { type: 'computeStats', requestId: 1, tensors: Array(MAX_STATS_TENSORS + 1).fill('a') },
      { type: 'computeStats', requestId: 1.5, tensors: ['a'] },
      { type: 'computeStats', requestId: 1, tensors: [''] },
      { type: 'computeStats', requestId: 1, tensors: 'a' },
      JSON.parse('{"__proto__": {"type": "ready"}}'),
    ];
    for (const m of attacks) assert.equal(parseInspectorRequest(m), undefined, JSON.stringify(m));
    const similarityAttacks: unknown[] = [
      { type: 'exportPng', dataUrl: 'data:image/png;base64,AAAA', name: '../../.bashrc' },
      { type: 'exportPng', dataUrl: 'data:image/png;base64,AAAA', name: '/etc/cron.d/x.png' },
      { type: 'exportPng', dataUrl: 'data:text/html;base64,AAAA', name: 'x.png' },
      { type: 'exportPng', dataUrl: 'https://evil.invalid/x.png', name: 'x.png' },
      { type: 'rerunAwd', settings: { alpha: -1, learning_rate: 0.01, iterations: 30, granularity: 'model', norm: 'l2' } },
      { type: 'rerunAwd', settings: { alpha: 0.1, learning_rate: 0.01, iterations: 1e9, granularity: 'model', norm: 'l2' } },
      { type: 'rerunAwd', settings: { alpha: NaN, learning_rate: 0.01, iterations: 30, granularity: 'model', norm: 'l2' } },
      { type: 'problem', message: 42 },
      JSON.parse('{"__proto__": {"type": "merge"}}'),
    ];
    for (const m of similarityAttacks) assert.equal(parseSimilarityRequest(m), undefined, JSON.stringify(m));
    const long = parseSimilarityRequest({ type: 'problem', message: 'x'.repeat(1e6) });
    assert.equal(long?.type === 'problem' ? long.message.length : -1, 2000);
  });
});

/** The CSP of a page, as directive → sources. */
function cspOf(html: string): Map<string, string[]> {
  const m = /<meta http-equiv="Content-Security-Policy" content="([^"]*)">/.exec(html);
  assert.ok(m, 'the page has a CSP meta tag');
  const text = m[1]!.replace(/&#39;/g, "'");
  return new Map(
    text
      .split(';')
      .map((d) => d.trim().split(/\s+/))
      .filter((parts) => parts[0])
      .map((parts) => [parts[0]!, parts.slice(1)]),
  );
}

void describe('webview pages: the CSP allows nothing remote', () => {
  const cspSource = 'https://file+.vscode-resource.vscode-cdn.net';
  const nonce = 'bm9uY2Vub25jZW5vbmNlMTI=';
  const hostileTitle = '"><script src="https://evil.invalid/x.js"></script><img src=x onerror=alert(1)>';
  const pages = [
    ['inspector', inspectorPageHtml({ cspSource, nonce, scriptUri: `${cspSource}/dist/inspector.js`, styleUri: `${cspSource}/media/inspector.css`, title: hostileTitle })],
    ['similarity', similarityPageHtml({ cspSource, nonce, scriptUri: `${cspSource}/dist/similarity.js`, styleUri: `${cspSource}/dist/similarity.css`, title: hostileTitle })],
  ] as const;
  for (const [name, html] of pages) {
    void it(`${name}: default-src 'none', scripts only by nonce, sources only the webview's own, no injection through the title`, () => {
      const csp = cspOf(html);
      assert.deepEqual(csp.get('default-src'), ["'none'"]);
      assert.deepEqual(csp.get('script-src'), [`'nonce-${nonce}'`]);
      for (const [directive, sources] of csp) {
        for (const source of sources) {
          // Only the webview resource origin, a nonce, 'none', or (images) inline data:/blob: — nothing from the network.
          const allowed = source === cspSource || source === "'none'" || source.startsWith("'nonce-") || (directive === 'img-src' && (source === 'data:' || source === 'blob:'));
          assert.ok(allowed, `${name}: ${directive} allows ${source}`);
        }
        assert.ok(!sources.includes("'unsafe-inline'") && !sources.includes("'unsafe-eval'") && !sources.includes('*'), `${name}: ${directive} ${sources.join(' ')}`);
      }
      for (const d of ['connect-src', 'frame-src', 'worker-src', 'object-src']) assert.ok(!csp.has(d), `${name}: ${d} is set (default-src 'none' already forbids it)`);
      // Every script and stylesheet the page loads is the webview's own; the title went in escaped.
      const urls = [...html.matchAll(/(?:src|href)="([^"]*)"/g)].map((m) => m[1]!);
      assert.ok(urls.length >= 2 && urls.every((u) => u.startsWith(cspSource)), urls.join(', '));
      assert.ok(!html.includes('evil.invalid/x.js"></script>'), 'the title was not escaped');
      assert.equal((html.match(/<script/g) ?? []).length, 1);
    });
  }
});
