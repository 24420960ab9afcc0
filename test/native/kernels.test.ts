/**
 * The fused decode-time attention loop (native/kernels.cpp groupedAttention: T ≤ 4, no gradient, float32)
 * against libtorch's attention (the composite path the same entry point takes when a gradient is needed):
 * grouped-query heads, head sizes 8, 12 and 16, key counts that are and are not multiples of 8, a padding
 * bias with −∞, causal masks, strided cache views. Where the CPU has AVX2 + FMA both the vector path
 * (head size 8) and the scalar loop are checked against libtorch, and the vector path is the default
 * exactly when the CPU reports both flags.
 * Tags: @numeric
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { full, getNumThreads, groupedAttention, noGrad, randn, rmsNorm, rotary, sampleCdf, sampleLogits, scope, setNumThreads, type Tensor, tensor, gatherLogprobs, vectorKernels, zeros } from '../../src/tensor/index.js';
import { logSoftmaxBound, sumBound } from '../tolerance.js';
import { reportBound } from '../env.js';

function maxAbsDiff(a: Tensor, b: Tensor): number {
  return scope(() => a.sub(b).abs().max().item());
}

const vectorByDefault = vectorKernels();
after(() => vectorKernels(vectorByDefault));
/** The fused loop under each path this CPU has (the scalar loop always; the vector one where available). */
function fusedPaths(): { path: string; run: <T>(fn: () => T) => T }[] {
  const paths = [{ path: 'scalar', on: false }, ...(vectorKernels(true) ? [{ path: 'avx2', on: true }] : [])];
  vectorKernels(vectorByDefault);
  return paths.map(({ path, on }) => ({
    path,
    run: <T>(fn: () => T): T => {
      vectorKernels(on);
      try {
        return noGrad(fn);
      } finally {
        vectorKernels(vectorByDefault);
      }
    },
  }));
}

describe('groupedAttention: fused decode loop = libtorch attention', () => {
  test(`the vector path is ${vectorByDefault ? 'on' : 'off'} by default (${process.arch})`, () => {
    if (process.arch !== 'x64') return assert.equal(vectorByDefault, false);
    if (!existsSync('/proc/cpuinfo')) return;
    const flags = new Set((/^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '').trim().split(/\s+/));
    const expected = flags.has('avx2') && flags.has('fma') && process.env.RLHF_SCALAR_KERNELS === undefined;
    assert.equal(vectorByDefault, expected, `/proc/cpuinfo: avx2 ${flags.has('avx2')}, fma ${flags.has('fma')}`);
  });
  for (const hs of [8, 12, 16]) {
    for (const L of [1, 7, 8, 9, 29, 64]) {
      test(`hs ${hs}, ${L} keys, 8 query heads over 4 kv heads, T 1 and 3, padding bias`, () => scope(() => {
        const B = 3;
        const cacheK = randn([B, 4, 80, hs]);
        const cacheV = randn([B, 4, 80, hs]);
        const k = cacheK.narrow(2, 0, L); // a strided view of a preallocated cache, as decoding passes it
        const v = cacheV.narrow(2, 0, L);
        for (const T of [1, 3]) {
          if (T > L) continue;
          const bias = zeros([B, 1, T, L]);
          if (L > 2) bias.narrow(3, 0, 2).select(0, 1).copy_(full([1, T, 2], -Infinity)); // row 1: two padded keys
          const q = randn([B, 8, T, hs]);
          // Bound (test/tolerance.ts): a score is an hs-term dot product (terms ≤ max|q|·max|k|, scaled by
          // 1/√hs), off by Δs; softmax turns Δs into a relative 2Δs on each weight, its normaliser and the
          // value mix are L-term sums of positive weights (relative γ_L each): |Δout| ≤ max|v|·(2Δs + 2·2γ_L).
          const absMax = (t: Tensor) => t.abs().max().item();
          const ds = sumBound(hs, (hs * absMax(q) * absMax(k)) / Math.sqrt(hs));
          const tol = absMax(v) * (2 * ds + 2 * sumBound(L, 1));
          for (const causal of [false, true]) {
            const reference = groupedAttention(q.clone().requiresGrad_(), k, v, { bias, causal }).detach(); // composite path
            for (const { path, run } of fusedPaths()) {
              const d = maxAbsDiff(run(() => groupedAttention(q, k, v, { bias, causal })), reference);
              reportBound(`fused attention (${path}) vs libtorch's`, d, tol, 1e-5);
              assert.ok(d <= tol, `${path}: hs ${hs} L ${L} T ${T} causal ${causal}: max |Δ| ${d} > ${tol}`);
            }
          }
        }
      }));
    }
  }

  test('a row whose every key is masked gives NaN on both paths', () => scope(() => {
    const q = randn([1, 2, 1, 8]);
    const k = randn([1, 1, 5, 8]);
    const v = randn([1, 1, 5, 8]);
    const bias = full([1, 1, 1, 5], -Infinity);
    for (const { path, run } of fusedPaths()) {
      const fused = run(() => groupedAttention(q, k, v, { bias }));
      assert.ok((fused.data() as Float32Array).every((x) => Number.isNaN(x)), path);
    }
  }));
});

describe('sampleCdf: one native pass = the float64 tensor chain', () => {
  test('random rows with filtered (zero) tokens and edge uniforms give the same tokens', () => scope(() => {
    const B = 64;
    const V = 512;
    const logits = randn([B, V]).mul(3);
    const filtered = logits.maskedFill(randn([B, V]).gt(0.5), -Infinity); // ~30% of tokens at probability 0
    const probs = filtered.softmax(-1);
    const u = Float64Array.from({ length: B }, (_, i) => (i === 0 ? 0 : i === 1 ? 1 - 2 ** -53 : ((i * 0.6180339887498949) % 1)));
    const cdf = probs.double().cumsum(-1);
    const reference = cdf.le(tensor(u, { shape: [B, 1] }).mul(cdf.narrow(-1, V - 1, 1))).sum(-1).clamp(0, V - 1);
    const drawn = sampleCdf(probs, u);
    assert.deepEqual(Array.from(drawn.data() as BigInt64Array), Array.from(reference.data() as BigInt64Array));
    const p = probs.data() as Float32Array;
    for (let i = 0; i < B; i++) assert.ok(p[i * V + Number((drawn.data() as BigInt64Array)[i])]! > 0, `row ${i} drew a filtered token`);
  }));

  test('bad input: a clear error', () => scope(() => {
    assert.throws(() => sampleCdf(randn([2, 5]).softmax(-1), new Float64Array(3)), /3 uniforms for 2 rows/);
  }));
});

describe('sampleLogits: the next token and its raw log-prob in one pass per row', () => {
  const B = 256;
  const V = 509; // not a multiple of 8: a partial last block
  const uniforms = Float64Array.from({ length: B }, (_, i) => (i === 0 ? 0 : i === 1 ? 1 - 2 ** -53 : ((i * 0.6180339887498949) % 1)));
  const asNumbers = (t: Tensor) => Array.from(t.data() as BigInt64Array, Number);

  for (const temperature of [1, 0.7, 1.6]) {
    test(`temperature ${temperature}: the tokens sampleCdf draws from softmax(logits / T), the log-probs of log_softmax(logits)`, () => scope(() => noGrad(() => {
      const logits = randn([B, V]).mul(3);
      const reference = asNumbers(sampleCdf(logits.div(temperature).softmax(-1), uniforms));
      for (const { path, run } of fusedPaths()) {
        const { tokens, logprobs } = run(() => sampleLogits(logits, temperature, uniforms));
        const drawn = asNumbers(tokens);
        // Its weights are its own float32 exp, not libtorch's softmax: a uniform within rounding of a cdf
        // step may fall on the other side, which these seeded draws never do.
        assert.deepEqual(drawn, reference, path);
        const want = logits.logSoftmax(-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1);
        const tol = logSoftmaxBound(V, logits.abs().max().item());
        reportBound(`sampleLogits (${path}) log-probs vs log_softmax`, maxAbsDiff(logprobs, want), tol, 1e-5);
        assert.ok(maxAbsDiff(logprobs, want) <= tol, `${path}: log-probs (bound ${tol})`);
        assert.deepEqual(Array.from(run(() => gatherLogprobs(logits, tokens)).data() as Float32Array), Array.from(logprobs.data() as Float32Array), `${path}: tokenLogprobs`);
      }
    })));
  }

  test('the vector and scalar paths draw the same tokens', () => scope(() => noGrad(() => {
    const logits = randn([B, V]).mul(2);
    const [a, b] = fusedPaths().map(({ run }) => run(() => sampleLogits(logits, 1, uniforms)));
    if (!b) return;
    assert.deepEqual(asNumbers(b.tokens), asNumbers(a!.tokens));
    reportBound('sampleLogits vector vs scalar log-probs', maxAbsDiff(a!.logprobs, b.logprobs), logSoftmaxBound(V, logits.abs().max().item()), 1e-6);
    assert.ok(maxAbsDiff(a!.logprobs, b.logprobs) <= logSoftmaxBound(V, logits.abs().max().item()));
  })));

  test('greedy is the first maximal logit; a −∞ logit is never drawn, even at u = 0 and u → 1', () => scope(() => noGrad(() => {
    const ties = tensor(Float32Array.of(0, 3, 1, 3, -Infinity, 2, 3, 0, 1), { shape: [1, 9] });
    for (const { path, run } of fusedPaths()) assert.deepEqual(asNumbers(run(() => sampleLogits(ties, 0, new Float64Array(1))).tokens), [1], path);
    const logits = randn([B, V]).maskedFill(randn([B, V]).gt(0.5), -Infinity);
    const l = logits.data() as Float32Array;
    for (const { path, run } of fusedPaths()) {
      const drawn = asNumbers(run(() => sampleLogits(logits, 1, uniforms)).tokens);
      drawn.forEach((t, i) => assert.ok(l[i * V + t]! > -Infinity, `${path}: row ${i} drew a masked token`));
    }
  })));

  test('bad input: a clear error', () => scope(() => {
    assert.throws(() => sampleLogits(randn([2, 5]), 1, new Float64Array(3)), /3 uniforms for 2 rows/);
    assert.throws(() => sampleLogits(randn([2, 5]).double(), 1, new Float64Array(2)), /float32 CPU logits \(B, V\)/);
    assert.throws(() => gatherLogprobs(randn([2, 5]), tensor(BigInt64Array.of(1n, 5n))), /token 5 outside the vocabulary of 5/);
  }));
});

describe('fused loops over several threads', () => {
  test('rmsNorm, rotary and groupedAttention give the same bits on 1 and 2 threads', () => scope(() => {
    const before = getNumThreads();
    const x = randn([64, 5, 64]);
    const w = randn([64]);
    const q = randn([64, 8, 1, 8]);
    const k = randn([64, 4, 37, 8]);
    const v = randn([64, 4, 37, 8]);
    const bias = zeros([64, 1, 1, 37]);
    const cos = randn([64, 1, 1, 8]);
    const sin = randn([64, 1, 1, 8]);
    const run = (threads: number) => {
      setNumThreads(threads, { blas: 1 });
      return noGrad(() => [rmsNorm(x, w, 1e-5), rotary(q, cos, sin), groupedAttention(q, k, v, { bias, causal: true })].map((t) => Buffer.from((t.data() as Float32Array).buffer)));
    };
    try {
      const one = run(1);
      const two = run(2);
      one.forEach((b, i) => assert.ok(b.equals(two[i]!), ['rmsNorm', 'rotary', 'groupedAttention'][i]));
    } finally {
      setNumThreads(before.torch, { blas: before.blas ?? before.torch });
    }
  }));
});
