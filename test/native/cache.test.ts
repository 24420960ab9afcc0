/**
 * The KV cache grows its capacity in steps of GROW_BY positions, copying what it holds: across growths
 * (a prefill longer than one step, single-token appends, a prefill that ends exactly on a step) the
 * views it returns must equal everything appended so far, and it must refuse to pass maxLen. reserve()
 * (the fused decoder step's: it writes every layer in one call) grows every layer the same way.
 * Tags: @numeric
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GROW_BY, KVCache } from '../../src/models/cache.js';
import { cat, randn, scope, type Tensor } from '../../src/tensor/index.js';

const same = (a: Tensor, b: Tensor) => scope(() => a.sub(b).abs().max().item() === 0);

describe('KVCache', () => {
  for (const steps of [[GROW_BY + 5, ...Array<number>(2 * GROW_BY).fill(1)], [GROW_BY, 1, 1], [1, 3, GROW_BY + 1, 2]]) {
    test(`appends of ${steps.length} chunks (${steps.slice(0, 4).join(', ')}, …) read back exactly`, () => scope(() => {
      const total = steps.reduce((a, b) => a + b, 0);
      const cache = new KVCache(2, 3, 2, total, 8);
      const ks: Tensor[][] = [[], []];
      const vs: Tensor[][] = [[], []];
      try {
        for (const t of steps) {
          for (let layer = 0; layer < 2; layer++) {
            const k = randn([3, 2, t, 8]);
            const v = randn([3, 2, t, 8]);
            ks[layer]!.push(k);
            vs[layer]!.push(v);
            const view = cache.append(layer, k, v);
            assert.deepEqual(view.k.shape, [3, 2, cache.length + t, 8]);
            assert.ok(same(view.k, cat(ks[layer]!, 2)) && same(view.v, cat(vs[layer]!, 2)), `layer ${layer} after ${cache.length + t} positions`);
          }
          cache.advance(t);
        }
        assert.ok(cache.k[0]!.size(2) <= total, 'never past maxLen');
        assert.throws(() => cache.append(0, randn([3, 2, 1, 8]), randn([3, 2, 1, 8])), /KV cache overflow: \d+ positions, capacity \d+/);
      } finally {
        cache.dispose();
      }
    }));
  }

  test('reserve grows every layer, keeps what is cached, and refuses to pass maxLen', () => scope(() => {
    const cache = new KVCache(3, 2, 2, 40, 8);
    try {
      const k = randn([2, 2, GROW_BY + 3, 8]);
      for (let layer = 0; layer < 3; layer++) cache.append(layer, k, k);
      cache.advance(GROW_BY + 3);
      cache.reserve(2 * GROW_BY + 1);
      for (let layer = 0; layer < 3; layer++) {
        assert.equal(cache.k[layer]!.size(2), Math.min(40, 3 * GROW_BY), `layer ${layer} capacity`);
        assert.ok(same(cache.k[layer]!.narrow(2, 0, GROW_BY + 3), k) && same(cache.v[layer]!.narrow(2, 0, GROW_BY + 3), k), `layer ${layer} kept its keys and values`);
      }
      assert.throws(() => cache.reserve(41), /KV cache overflow: 41 positions, capacity 40/);
    } finally {
      cache.dispose();
    }
  }));
});
