/**
 * The fused decoder step (native/decode.cpp: every layer of a Llama-family decode step in one call)
 * against the layer-by-layer path it replaces, on random-weight models: grouped-query heads in groups of
 * 1, 2, 3 and 4, head sizes 8 (the vector kernels) and 16, q/k/v, o and MLP biases, an MLP width that is
 * not a multiple of 8. A left-padded mixed-length batch is prefilled and then decoded step by step with
 * an attention mask; every step's logits must agree within the float32 bound of test/tolerance.ts (the
 * two paths sum in other orders), and greedy generation must give the same tokens with log-probs within
 * theirs, on the vector and the scalar kernels, and batches of one and two rows (a GEMM path of their own)
 * too. A batch split over two threads must give the same logits as one thread (exactly on the vector path,
 * where each row is the same code by construction); bad input to decoderStep is refused with the layer and weight named.
 * Tags: @numeric
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { generate, leftPad, positionsFromMask } from '../../src/generate/generate.js';
import { fusedDecode, LlamaForCausalLM, parseLlamaConfig } from '../../src/models/llama.js';
import { cat, decoderStep, getNumThreads, manualSeed, noGrad, ones, randn, scope, setNumThreads, type Tensor, tensor, vectorKernels, zeros } from '../../src/tensor/index.js';
import { llamaDims, logitBound, logprobBound, maxAbsLogit } from '../tolerance.js';
import { reportBound } from '../env.js';

const BASE = {
  model_type: 'llama', vocab_size: 64, hidden_size: 64, intermediate_size: 44, num_hidden_layers: 2,
  num_attention_heads: 8, num_key_value_heads: 4, max_position_embeddings: 64, rms_norm_eps: 1e-5,
  tie_word_embeddings: false, bos_token_id: 1, eos_token_id: 2,
};
const CONFIGS: { name: string; raw: Record<string, unknown> }[] = [
  { name: 'hs 8, 8 heads over 4 kv heads', raw: BASE },
  { name: 'hs 8, 8 heads over 2 kv heads', raw: { ...BASE, num_key_value_heads: 2 } },
  { name: 'hs 8, no grouping (8 kv heads)', raw: { ...BASE, num_key_value_heads: 8 } },
  { name: 'hs 8, 6 heads over 2 kv heads, Qwen2 q/k/v biases', raw: { ...BASE, model_type: 'qwen2', hidden_size: 48, num_attention_heads: 6, num_key_value_heads: 2 } },
  { name: 'hs 16, 4 heads over 2 kv heads, attention and MLP biases', raw: { ...BASE, num_attention_heads: 4, num_key_value_heads: 2, attention_bias: true, mlp_bias: true } },
];
const PROMPTS = [[1, 5, 9, 33, 2, 17, 40], [1, 60], [1, 12, 13, 14]];
const STEPS = 12;

/** Every parameter from N(0, 0.3²), biases and norm weights too, so a weight the fused step drops shows. */
function randomLlama(raw: Record<string, unknown>, seed: number): LlamaForCausalLM {
  manualSeed(seed);
  const m = new LlamaForCausalLM(parseLlamaConfig(raw, 'test config'));
  noGrad(() => scope(() => {
    for (const p of m.parameters()) p.copy_(randn(p.shape).mul(0.3));
  }));
  return m.eval();
}

/** Prefill, then STEPS decode steps of fixed tokens with a growing attention mask: each step's logits (B, V). */
function stepLogits(m: LlamaForCausalLM, prompts: readonly (readonly number[])[], fused: boolean): Float32Array[] {
  const was = fusedDecode(fused);
  try {
    return noGrad(() => scope(() => {
      const b = prompts.length;
      const { ids, mask } = leftPad(prompts);
      const cache = m.newCache(b, ids.size(1) + STEPS);
      try {
        let attn: Tensor = mask;
        let positions = positionsFromMask(mask);
        const out = [m.forward(ids, { cache, attentionMask: attn, positionIds: positions, lastOnly: true }).data() as Float32Array];
        for (let s = 0; s < STEPS; s++) {
          const next = tensor(BigInt64Array.from(prompts, (_, i) => BigInt((5 * i + 3 * s + 1) % 64)), { shape: [b, 1] });
          attn = cat([attn, ones([b, 1], { dtype: 'int64' })], 1);
          positions = positions.narrow(1, positions.size(1) - 1, 1).add(1);
          out.push(m.forward(next, { cache, attentionMask: attn, positionIds: positions, lastOnly: true }).data() as Float32Array);
        }
        return out;
      } finally {
        cache.dispose();
      }
    }));
  } finally {
    fusedDecode(was);
  }
}

/** The longest attention: the widest prompt, then STEPS decode steps (or 20 generated tokens). */
const KEYS = Math.max(...PROMPTS.map((p) => p.length)) + 20;
const maxAbs = (xs: readonly Float32Array[]): number => Math.max(...xs.map((x) => x.reduce((m, v) => Math.max(m, Math.abs(v)), 0)));

function maxAbsDiff(a: readonly Float32Array[], b: readonly Float32Array[]): number {
  let d = 0;
  a.forEach((x, s) => x.forEach((v, i) => (d = Math.max(d, Math.abs(v - b[s]![i]!)))));
  return d;
}

const vectorByDefault = vectorKernels();
const threadsBefore = getNumThreads();
after(() => {
  vectorKernels(vectorByDefault);
  setNumThreads(threadsBefore.torch, { blas: threadsBefore.blas ?? threadsBefore.torch });
});
const paths = [{ path: 'scalar', on: false }, ...(vectorByDefault ? [{ path: 'avx2', on: true }] : [])];

describe('decoderStep: the fused decode step = the layer-by-layer path', () => {
  test('on by default', () => assert.equal(fusedDecode(), true));
  CONFIGS.forEach(({ name, raw }, c) => {
    for (const { path, on } of paths) {
      test(`${name} (${path} kernels): every decode step's logits, and greedy generation`, () => {
        vectorKernels(on);
        const m = randomLlama(raw, 10 + c);
        try {
          const reference = stepLogits(m, PROMPTS, false);
          const fused = stepLogits(m, PROMPTS, true);
          const d = maxAbsDiff(fused, reference);
          const M = maxAbs(reference);
          reportBound('fused decode step vs layer by layer (logits)', d, logitBound(llamaDims(m.config), KEYS, M), 1e-4);
          assert.ok(d <= logitBound(llamaDims(m.config), KEYS, M), `max |Δ logits| ${d} > ${logitBound(llamaDims(m.config), KEYS, M)}`);
          const greedy = (f: boolean) => {
            fusedDecode(f);
            try {
              return generate(m, PROMPTS, { maxNewTokens: 20, temperature: 0, eosTokenIds: [] });
            } finally {
              fusedDecode(true);
            }
          };
          const [a, b] = [greedy(false), greedy(true)];
          const lpBound = logprobBound(llamaDims(m.config), KEYS, maxAbsLogit(m, PROMPTS.map((p, i) => [...p, ...a[i]!.tokens])), m.config.vocabSize);
          reportBound('fused decode step vs layer by layer (greedy log-probs)', Math.max(0, ...a.flatMap((r, i) => r.logprobs.map((lp, j) => Math.abs(lp - b[i]!.logprobs[j]!)))), lpBound, 1e-4);
          a.forEach((r, i) => {
            assert.deepEqual(b[i]!.tokens, r.tokens, `row ${i}`);
            r.logprobs.forEach((lp, j) => assert.ok(Math.abs(lp - b[i]!.logprobs[j]!) <= lpBound, `row ${i} token ${j}: ${lp} vs ${b[i]!.logprobs[j]} (bound ${lpBound})`));
          });
        } finally {
          m.dispose();
          vectorKernels(vectorByDefault);
        }
      });
    }
  });

  for (const c of [0, 4]) {
    test(`batches of 1 and 2 (the few-row GEMM path): ${CONFIGS[c]!.name}`, () => {
      const m = randomLlama(CONFIGS[c]!.raw, 20 + c);
      try {
        for (const prompts of [PROMPTS.slice(0, 1), PROMPTS.slice(1)]) {
          const reference = stepLogits(m, prompts, false);
          const d = maxAbsDiff(stepLogits(m, prompts, true), reference);
          const bound = logitBound(llamaDims(m.config), KEYS, maxAbs(reference));
          reportBound('fused decode step, batches of 1 and 2 (logits)', d, bound, 1e-4);
          assert.ok(d <= bound, `batch ${prompts.length}: max |Δ logits| ${d} > ${bound}`);
        }
      } finally {
        m.dispose();
      }
    });
  }

  test('hidden(): a fused decode step returns the normed hidden states of the layer-by-layer path', () => scope(() => noGrad(() => {
    const m = randomLlama(BASE, 5);
    try {
      const run = (f: boolean) => {
        const was = fusedDecode(f);
        const cache = m.newCache(2, 4);
        try {
          m.hidden(tensor(BigInt64Array.of(1n, 3n, 1n, 9n), { shape: [2, 2] }), { cache });
          return m.hidden(tensor(BigInt64Array.of(7n, 8n), { shape: [2, 1] }), { cache }).data() as Float32Array;
        } finally {
          cache.dispose();
          fusedDecode(was);
        }
      };
      const reference = run(false);
      const d = maxAbsDiff([run(true)], [reference]);
      const bound = logitBound(llamaDims(m.config), 3, maxAbs([reference])); // the head's reduction is not on this path: the bound is a little wider
      reportBound('fused decode step hidden()', d, bound, 1e-5);
      assert.ok(d <= bound, `max |Δ hidden| ${d} > ${bound}`);
    } finally {
      m.dispose();
    }
  })));

  // OpenBLAS stays on one thread both times (it computes the prefill and the LM head, and its split over
  // threads has rounding of its own): what changes is the fused step's batch split alone. On the vector
  // path every row goes through our own GEMM (native/gemm.cpp), which sums each output in one fixed order
  // whatever rows share a thread: the same bits by construction. The scalar path hands each thread's rows
  // to libtorch's BLAS, whose blocking follows the row count: there the float32 bound applies.
  test('a batch split over two threads gives the logits of one thread (exactly, on the vector path)', () => {
    const m = randomLlama(BASE, 3);
    const prompts = Array.from({ length: 40 }, (_, i) => [1, ...Array.from({ length: i % 5 }, (_, j) => (7 * i + j) % 64)]);
    try {
      setNumThreads(1, { blas: 1 });
      const one = stepLogits(m, prompts, true);
      setNumThreads(2, { blas: 1 });
      const two = stepLogits(m, prompts, true);
      const bound = vectorKernels() ? 0 : logitBound(llamaDims(m.config), 5 + STEPS, maxAbs(one));
      reportBound('fused decode step, 2 threads vs 1 (logits)', maxAbsDiff(two, one), bound, 0);
      assert.ok(maxAbsDiff(two, one) <= bound, `max |Δ logits| ${maxAbsDiff(two, one)} > ${bound}`);
    } finally {
      setNumThreads(threadsBefore.torch, { blas: threadsBefore.blas ?? threadsBefore.torch });
      m.dispose();
    }
  });

  test('bad input names the layer, the weight or the cache', () => scope(() => noGrad(() => {
    const m = randomLlama(BASE, 4);
    const cache = m.newCache(2, 8);
    try {
      cache.reserve(1);
      const x = zeros([2, 64]);
      const rope = { cos: ones([2, 8]), sin: zeros([2, 8]) };
      const layer = (q: Tensor) => ({ inputNorm: ones([64]), postAttentionNorm: ones([64]), q, k: zeros([32, 64]), v: zeros([32, 64]), o: zeros([64, 64]), gate: zeros([44, 64]), up: zeros([44, 64]), down: zeros([64, 44]) });
      const good = layer(zeros([64, 64]));
      assert.deepEqual(decoderStep(x, [good, good], cache, 0, rope, null, 8, 1e-5).shape, [2, 64]);
      assert.throws(() => decoderStep(x, [good, layer(zeros([64, 32]))], cache, 0, rope, null, 8, 1e-5), /layer 1 q_proj is float32\[64,32\], expected contiguous float32\[64, 64\]/);
      assert.throws(() => decoderStep(x, [good, good], cache, 16, rope, null, 8, 1e-5), /position 16 is outside the cache's capacity/);
      assert.throws(() => decoderStep(x, [good, good], cache, 0, rope, null, 3, 1e-5), /3 query heads do not group over 4 kv heads/);
      assert.throws(() => decoderStep(x, [good], cache, 0, rope, null, 8, 1e-5), /16 weights and 2\/2 k\/v caches/);
      assert.deepEqual(decoderStep(x, [good, good], cache, 0, rope, null, 8, 1e-5, { norm: ones([64]), weight: zeros([64, 64]) }).shape, [2, 64]);
      assert.throws(() => decoderStep(x, [good, good], cache, 0, rope, null, 8, 1e-5, { norm: ones([32]), weight: zeros([64, 64]) }), /the final norm is float32\[32\], expected contiguous float32\[64\]/);
      assert.throws(() => decoderStep(x, [good, good], cache, 0, rope, null, 8, 1e-5, { norm: ones([64]), weight: zeros([64, 32]) }), /head must be a contiguous float32 \(V, 64\)/);
    } finally {
      cache.dispose();
      m.dispose();
    }
  })));
});
