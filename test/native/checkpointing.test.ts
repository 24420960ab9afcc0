/**
 * Gradient checkpointing of transformer blocks (src/models/checkpointing.ts: a no-graph forward keeping each
 * block's input, then each block recomputed with a graph from the last) gives the gradients of one ordinary
 * backward, for Llama, Qwen2 (q/k/v biases), Qwen3 (q/k norms), Mistral with a sliding window and GPT-2
 * blocks, on a left-padded batch (the attention bias and positions are constants the recompute reuses):
 * every parameter's gradient within the float32 bound of test/tolerance.ts and 1e-5 of the largest. And it
 * saves memory: on 6 blocks whose activations outweigh their weights, the backward's peak native bytes
 * above what was held before are at most 60% of a plain backward's.
 * Tags: @numeric
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { headLogprobs } from '../../src/generate/score.js';
import { leftPad, positionsFromMask } from '../../src/generate/generate.js';
import { checkpointedBackward } from '../../src/models/checkpointing.js';
import type { CausalLM, ForwardOptions } from '../../src/models/common.js';
import { Gpt2LMHeadModel, parseGpt2Config } from '../../src/models/gpt2.js';
import { loadModel } from '../../src/models/hub.js';
import { LlamaForCausalLM, parseLlamaConfig } from '../../src/models/llama.js';
import { manualSeed, noGrad, ones, peakDuring, randn, scope, type Tensor, tensor } from '../../src/tensor/index.js';
import { gpt2Dims, gradientBound, llamaDims } from '../tolerance.js';
import { reportBound } from '../env.js';

const FIXTURES = new URL('../../../test/fixtures/hf-models/', import.meta.url).pathname;
const ROWS = [[1, 5, 9, 33, 2, 17, 40, 41, 7], [1, 60, 12, 3], [1, 12, 13, 14, 15, 16]];
const LLAMA = { model_type: 'llama', vocab_size: 64, hidden_size: 32, intermediate_size: 40, num_hidden_layers: 3, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 64, bos_token_id: 1, eos_token_id: 2 };

/** Every parameter from N(0, 0.3²) so that no gradient is near zero by construction. */
function randomize<M extends CausalLM>(m: M, seed: number): M {
  manualSeed(seed);
  noGrad(() => scope(() => {
    for (const p of m.parameters()) p.copy_(randn(p.shape).mul(0.3));
  }));
  return m;
}

const MODELS: { name: string; make: () => CausalLM }[] = [
  { name: 'Llama', make: () => randomize(new LlamaForCausalLM(parseLlamaConfig(LLAMA)), 1) },
  { name: 'Qwen2 (q/k/v biases)', make: () => randomize(new LlamaForCausalLM(parseLlamaConfig({ ...LLAMA, model_type: 'qwen2' })), 2) },
  { name: 'Qwen3 (q/k norms)', make: () => loadModel(`${FIXTURES}qwen3`) },
  { name: 'Mistral (sliding window 5)', make: () => loadModel(`${FIXTURES}mistral-window`) },
  { name: 'GPT-2', make: () => randomize(new Gpt2LMHeadModel(parseGpt2Config({ model_type: 'gpt2', n_embd: 32, n_layer: 3, n_head: 4, vocab_size: 64, n_positions: 64 })), 3) },
];

/** Σ w·log p of the next tokens of a left-padded batch, through the model's head. */
function loss(m: CausalLM, ids: Tensor, mask: Tensor, h: Tensor): Tensor {
  const t = ids.size(1);
  const lp = headLogprobs(m, h.narrow(1, 0, t - 1), ids.narrow(1, 1, t - 1)).logprobs; // (B, T−1)
  const w = mask.narrow(1, 1, t - 1).float().mul(tensor(Float32Array.from({ length: ids.size(0) * (t - 1) }, (_, i) => 1 + (i % 3)), { shape: [ids.size(0), t - 1] }));
  return lp.mul(w).sum().neg();
}

function grads(m: CausalLM, checkpointed: boolean): Float32Array[] {
  for (const p of m.parameters()) p.zeroGrad();
  scope(() => {
    const { ids, mask } = leftPad(ROWS);
    const opts: ForwardOptions = { attentionMask: mask, positionIds: positionsFromMask(mask) };
    if (checkpointed) checkpointedBackward(m, ids, opts, (h) => loss(m, ids, mask, h));
    else loss(m, ids, mask, m.hidden(ids, opts)).backward();
  });
  return m.parameters().map((p) => p.grad!.data() as Float32Array);
}

describe('gradient checkpointing gives the gradients of one backward', () => {
  for (const { name, make } of MODELS) {
    test(name, () => {
      const m = make();
      try {
        const plain = grads(m, false);
        const ckpt = grads(m, true);
        const scale = Math.max(...plain.map((g) => g.reduce((a, v) => Math.max(a, Math.abs(v)), 0)));
        const worst = Math.max(...plain.map((g, i) => g.reduce((a, v, j) => Math.max(a, Math.abs(v - ckpt[i]![j]!)), 0)));
        const dims = m instanceof Gpt2LMHeadModel ? gpt2Dims(m.config) : llamaDims((m as LlamaForCausalLM).config);
        const bound = Math.min(gradientBound(dims, 9, 3 * 8, scale), 1e-5 * scale);
        reportBound(`checkpointed vs plain gradients (${name})`, worst, bound, 1e-5);
        assert.ok(worst <= bound, `max |Δ grad| ${worst} > ${bound} (largest gradient ${scale})`);
        assert.ok(plain.every((g) => g.some((v) => v !== 0)), 'a parameter got no gradient: the comparison would not see it');
      } finally {
        m.dispose();
      }
    });
  }
});

test('checkpointing lowers the peak memory of a backward whose activations dominate', () => {
  const m = randomize(new LlamaForCausalLM(parseLlamaConfig({ ...LLAMA, hidden_size: 64, intermediate_size: 172, num_hidden_layers: 6, max_position_embeddings: 256 })), 4);
  try {
    const rows = Array.from({ length: 8 }, (_, b) => Array.from({ length: 192 }, (_, t) => 1 + ((b * 31 + t * 7) % 63)));
    const peak = (checkpointed: boolean) => peakDuring(() => scope(() => {
      for (const p of m.parameters()) p.zeroGrad();
      const ids = tensor(rows, { dtype: 'int64' });
      const mask = ones(ids.shape, { dtype: 'int64' });
      if (checkpointed) checkpointedBackward(m, ids, {}, (h) => loss(m, ids, mask, h));
      else loss(m, ids, mask, m.hidden(ids)).backward();
    })).extraBytes;
    peak(false); // warm: gradients allocated once
    const [plain, ckpt] = [peak(false), peak(true)];
    reportBound('checkpointed backward peak bytes / plain', ckpt / plain, 0.6, 0.6);
    assert.ok(ckpt <= 0.6 * plain, `checkpointed peak ${ckpt} B vs plain ${plain} B`);
  } finally {
    m.dispose();
  }
});
