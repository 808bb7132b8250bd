// Tensor-name globs of the merge config: `*` any run (dots included), `?` one character, nothing else special.
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { globMatch, hasWildcard, isSelected } from '../../../src/core/merge/glob';

/** Reference: the glob translated to an anchored regular expression. */
function reference(pattern: string, name: string): boolean {
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${re}$`, 's').test(name);
}

void describe('globMatch', () => {
  void it('matches hand-picked cases', () => {
    const cases: [string, string, boolean][] = [
      ['*', 'model.layers.0.mlp.weight', true],
      ['*', '', true],
      ['', '', true],
      ['', 'a', false],
      ['model.*.weight', 'model.layers.0.mlp.weight', true],
      ['model.*.weight', 'model.weight', false],
      ['model.*weight', 'model.weight', true],
      ['*.bias', 'encoder.layer.3.attention.bias', true],
      ['*.bias', 'bias', false],
      ['layer.?.weight', 'layer.7.weight', true],
      ['layer.?.weight', 'layer.12.weight', false],
      ['layer.??.weight', 'layer.12.weight', true],
      ['lm_head.weight', 'lm_head.weight', true],
      ['lm_head.weight', 'lm_head.weights', false],
      ['lm_head.weight', 'lm_headXweight', false], // '.' is literal, not "any character"
      ['a*b*c', 'aXbYbZc', true],
      ['a*b*c', 'aXbYbZ', false],
      ['**', 'x.y', true],
      ['[ab]', '[ab]', true], // brackets are literal
      ['[ab]', 'a', false],
    ];
    for (const [p, n, want] of cases) assert.equal(globMatch(p, n), want, `${p} vs ${n}`);
  });

  void it('agrees with a regular-expression reference on random patterns and names', () => {
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed % n;
    };
    const alphabet = 'ab.';
    for (let trial = 0; trial < 5000; trial++) {
      const name = Array.from({ length: rand(8) }, () => alphabet[rand(3)]).join('');
      const pattern = Array.from({ length: rand(6) }, () => 'ab.*?'[rand(5)]).join('');
      assert.equal(globMatch(pattern, name), reference(pattern, name), `${pattern} vs ${name}`);
    }
  });

  void it('stays fast on adversarial patterns', () => {
    const name = 'a'.repeat(5000);
    const t0 = Date.now();
    assert.equal(globMatch(`${'*a'.repeat(50)}b`, name), false);
    assert.ok(Date.now() - t0 < 1000);
  });
});

void describe('isSelected / hasWildcard', () => {
  void it('selects what include matches and exclude does not', () => {
    assert.equal(isSelected('a.weight', ['*'], []), true);
    assert.equal(isSelected('a.weight', ['*'], ['*.weight']), false);
    assert.equal(isSelected('a.weight', ['b.*'], []), false);
    assert.equal(isSelected('a.weight', [], []), false);
    assert.equal(hasWildcard('a.*'), true);
    assert.equal(hasWildcard('a.?'), true);
    assert.equal(hasWildcard('a.b'), false);
  });
});
