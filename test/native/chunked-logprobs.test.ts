/**
 * Log-probs from the LM head over chunks of positions (src/generate/score.ts headLogprobs) against the
 * full-logits path they replace (gather(z) − logsumexp(z) over the whole (B, T, V)), on the tiny random
 * Qwen3 of test/fixtures/hf-models with a chunk budget that forces 1-, 3- and 5-position chunks: the
 * log-probs, the entropies and every parameter's gradient of a weighted log-prob loss agree within the
 * float32 bounds of test/tolerance.ts (a chunk's matmul may block its sums otherwise than the whole one).
 * Tags: @numeric
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { headLogprobs, logitsChunkBudget, tokenLogprobs } from '../../src/generate/score.js';
import { loadModel } from '../../src/models/hub.js';
import type { LlamaForCausalLM } from '../../src/models/llama.js';
import { noGrad, scope, type Tensor, tensor } from '../../src/tensor/index.js';
import { gradientBound, llamaDims, logitBound, logprobBound, logSoftmaxBound } from '../tolerance.js';
import { reportBound } from '../env.js';

const DIR = new URL('../../../test/fixtures/hf-models/qwen3/', import.meta.url).pathname;
const IDS = [[1, 5, 9, 33, 2, 17, 40, 41, 7, 88, 3, 12, 60, 61], [1, 95, 12, 13, 14, 4, 4, 4, 50, 51, 52, 0, 9, 10]];
const WEIGHTS = Float32Array.from({ length: 2 * 13 }, (_, i) => ((i * 7) % 5) - 2);
const defaultBudget = logitsChunkBudget();
after(() => logitsChunkBudget(defaultBudget));

/** The full-logits path: the whole (B, T, V) logits, then gather − logsumexp and the entropy. */
function full(m: LlamaForCausalLM, ids: Tensor): { lp: Tensor; ent: Tensor } {
  const z = m.forward(ids).narrow(1, 0, ids.size(1) - 1); // (B, T−1, V)
  const lse = z.logsumexp(-1);
  return { lp: z.gather(-1, ids.narrow(1, 1, ids.size(1) - 1).unsqueeze(-1)).squeeze(-1).sub(lse), ent: lse.sub(z.softmax(-1).mul(z).sum(-1)) };
}

function chunked(m: LlamaForCausalLM, ids: Tensor): { lp: Tensor; ent: Tensor } {
  const t = ids.size(1);
  const r = headLogprobs(m, m.hidden(ids).narrow(1, 0, t - 1), ids.narrow(1, 1, t - 1), { entropy: true });
  return { lp: r.logprobs, ent: r.entropy! };
}

const maxAbsDiff = (a: Float32Array, b: Float32Array): number => a.reduce((mx, v, i) => Math.max(mx, Math.abs(v - b[i]!)), 0);
const maxAbs = (a: Float32Array): number => a.reduce((mx, v) => Math.max(mx, Math.abs(v)), 0);

describe('chunked LM-head log-probs = the full-logits path', () => {
  for (const positions of [1, 3, 5]) {
    test(`chunks of ${positions} positions: log-probs, entropies, tokenLogprobs and gradients`, () => {
      const m = loadModel(DIR) as LlamaForCausalLM;
      try {
        const ids = tensor(IDS, { dtype: 'int64' });
        const v = m.config.vocabSize;
        logitsChunkBudget(4 * IDS.length * v * positions);
        const [a, b, viaScore, ea, eb] = noGrad(() => scope(() => {
          const x = chunked(m, ids);
          const y = full(m, ids);
          return [x.lp.data(), y.lp.data(), tokenLogprobs(m, ids, null).data(), x.ent.data(), y.ent.data()] as Float32Array[];
        }));
        const maxLogit = noGrad(() => scope(() => m.forward(ids).abs().max().item()));
        const bound = logprobBound(llamaDims(m.config), IDS[0]!.length, maxLogit, v) + logSoftmaxBound(v, maxLogit);
        const d = maxAbsDiff(a!, b!);
        reportBound('chunked head log-probs vs full logits', d, bound, 1e-5);
        assert.ok(d <= bound, `log-probs: ${d} > ${bound}`);
        assert.ok(maxAbsDiff(viaScore!, b!) <= bound, 'tokenLogprobs');
        // H = lse − Σ p·z moves by at most 2·max|z|·(its logits' move) (|∂H/∂z_i| = p_i·|z_i − E z|), plus its own sums' rounding.
        const zMove = logitBound(llamaDims(m.config), IDS[0]!.length, maxLogit);
        const entBound = 4 * maxLogit * zMove + 2 * logSoftmaxBound(v, maxLogit);
        assert.ok(maxAbsDiff(ea!, eb!) <= entBound, `entropy: ${maxAbsDiff(ea!, eb!)} > ${entBound}`);

        // Gradients of Σ w·log p through both paths, every parameter.
        const grads = (f: (m: LlamaForCausalLM, ids: Tensor) => { lp: Tensor }) => {
          for (const p of m.parameters()) p.zeroGrad();
          scope(() => f(m, ids).lp.mul(tensor(WEIGHTS, { shape: [2, 13] })).sum().backward());
          return m.parameters().map((p) => p.grad!.data() as Float32Array);
        };
        const ga = grads(chunked);
        const gb = grads(full);
        const worst = Math.max(...ga.map((g, i) => maxAbsDiff(g, gb[i]!)));
        const gbound = gradientBound(llamaDims(m.config), IDS[0]!.length, 2 * 13, Math.max(...gb.map(maxAbs)));
        reportBound('chunked head gradients vs full logits', worst, gbound, 1e-5);
        assert.ok(worst <= gbound, `gradients: ${worst} > ${gbound}`);
        assert.ok(Math.max(...gb.map(maxAbs)) > 100 * gbound, 'gradients too small for the comparison to mean anything');
      } finally {
        m.dispose();
        logitsChunkBudget(defaultBudget);
      }
    });
  }

  test('a bad chunk budget is refused', () => {
    assert.throws(() => logitsChunkBudget(0), /positive number of bytes/);
    assert.throws(() => logitsChunkBudget(Number.NaN), /positive number of bytes/);
  });
});
