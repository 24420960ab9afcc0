/**
 * GPT-2 (src/models/gpt2.ts) on tiny configs: HF parameter names and Conv1D shapes, init, golden logits
 * from a transcription of transformers' modeling_gpt2.py, and the invariants generation relies on:
 * KV-cache decoding == full recomputation, left-padded batch == each row alone. Float comparisons use the
 * bounds of test/tolerance.ts.
 * Tags: @numeric
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { crossEntropy, manualSeed, noGrad, randint, scope, type Tensor, tensor, zeros, ones, cat } from '../../src/tensor/index.js';
import { Gpt2LMHeadModel, gpt2StateFromHf, parseGpt2Config } from '../../src/models/gpt2.js';
import { assertClose, assertThrowsMessage, liveTensors } from './helpers.js';
import { gpt2Dims, logitBound, sumBound } from '../tolerance.js';
import { reportBound } from '../env.js';

const RAW = { model_type: 'gpt2', n_embd: 32, n_layer: 2, n_head: 4, vocab_size: 101, n_positions: 64, initializer_range: 0.2 };
const V = 101;

/** A model seeded for reproducibility; disposed after `fn`, which runs in a scope without gradients. */
function withModel(raw: Record<string, unknown>, seed: number, fn: (m: Gpt2LMHeadModel) => void): void {
  manualSeed(seed);
  const m = new Gpt2LMHeadModel(parseGpt2Config(raw, 'test config'));
  try {
    scope(() => noGrad(() => fn(m)));
  } finally {
    m.dispose();
  }
}

function maxDiff(a: Tensor, b: Tensor): number {
  assert.deepEqual(a.shape, b.shape);
  return scope(() => a.sub(b).abs().max().item());
}

const ids = (rows: number[][]) => tensor(rows, { dtype: 'int64' });

let live = 0;
beforeEach(() => {
  live = liveTensors();
});
afterEach(() => {
  assert.equal(liveTensors(), live, 'the test leaked native tensors');
});

describe('parseGpt2Config', () => {
  test('reads HF fields with their defaults', () => {
    const c = parseGpt2Config({ ...RAW, eos_token_id: [100, 7], bos_token_id: 100 });
    assert.equal(c.architecture, 'gpt2');
    assert.equal(c.hiddenSize, 32);
    assert.equal(c.headDim, 8);
    assert.equal(c.innerSize, 128);
    assert.equal(c.maxPositions, 64);
    assert.equal(c.layerNormEps, 1e-5);
    assert.equal(c.geluApproximate, 'tanh');
    assert.equal(c.tieWordEmbeddings, true);
    assert.equal(c.scaleAttnWeights, true);
    assert.equal(c.scaleAttnByInverseLayerIdx, false);
    assert.deepEqual(c.eosTokenIds, [100, 7]);
    assert.equal(c.bosTokenId, 100);
    assert.equal(c.padTokenId, null);
    const d = parseGpt2Config({ ...RAW, activation_function: 'gelu', n_inner: 48, tie_word_embeddings: false, eos_token_id: 5 });
    assert.equal(d.geluApproximate, 'none');
    assert.equal(d.innerSize, 48);
    assert.equal(d.tieWordEmbeddings, false);
    assert.deepEqual(d.eosTokenIds, [5]);
  });

  test('errors name the field', () => {
    const { n_embd: _, ...noEmbd } = RAW;
    assertThrowsMessage(() => parseGpt2Config(noEmbd, 'gpt2/config.json'), /gpt2\/config\.json: field 'n_embd': missing/);
    assertThrowsMessage(() => parseGpt2Config({ ...RAW, activation_function: 'swish' }), /field 'activation_function': 'swish' is not supported/);
    assertThrowsMessage(() => parseGpt2Config({ ...RAW, n_head: 5 }), /field 'n_head': 5 does not divide n_embd 32/);
  });
});

describe('Gpt2LMHeadModel', () => {
  test('state-dict keys are HF names; Conv1D weights are stored (in, out)', () => {
    withModel(RAW, 0, (m) => {
      const want = new Map<string, number[]>([
        ['transformer.wte.weight', [V, 32]],
        ['transformer.wpe.weight', [64, 32]],
      ]);
      for (let i = 0; i < 2; i++) {
        const p = `transformer.h.${i}.`;
        want.set(`${p}ln_1.weight`, [32]).set(`${p}ln_1.bias`, [32]);
        want.set(`${p}attn.c_attn.weight`, [32, 96]).set(`${p}attn.c_attn.bias`, [96]);
        want.set(`${p}attn.c_proj.weight`, [32, 32]).set(`${p}attn.c_proj.bias`, [32]);
        want.set(`${p}ln_2.weight`, [32]).set(`${p}ln_2.bias`, [32]);
        want.set(`${p}mlp.c_fc.weight`, [32, 128]).set(`${p}mlp.c_fc.bias`, [128]);
        want.set(`${p}mlp.c_proj.weight`, [128, 32]).set(`${p}mlp.c_proj.bias`, [32]);
      }
      want.set('transformer.ln_f.weight', [32]).set('transformer.ln_f.bias', [32]);
      const state = m.stateDict();
      assert.deepEqual([...state.keys()].sort(), [...want.keys()].sort());
      for (const [k, shape] of want) assert.deepEqual(state.get(k)!.shape, shape, k);
    });
  });

  test('tied: logits = h · wteᵀ and no lm_head; untied: its own lm_head.weight', () => {
    const x = [[1, 2, 3, 4]];
    withModel(RAW, 0, (m) => {
      assert.equal(m.lm_head, null);
      const logits = m.forward(ids(x));
      assert.deepEqual(logits.shape, [1, 4, V]);
      assert.equal(maxDiff(logits, m.hidden(ids(x)).matmul(m.transformer.wte.weight.T)), 0);
    });
    withModel({ ...RAW, tie_word_embeddings: false }, 0, (m) => {
      const head = m.stateDict().get('lm_head.weight');
      assert.deepEqual(head?.shape, [V, 32]);
      assert.equal(m.numParameters(), 30_752 + V * 32);
      assert.ok(maxDiff(head!, m.transformer.wte.weight) > 0.1, 'the head is a separate parameter');
      // Bound: one 32-term dot product per logit, summed in another order: 2γ₃₂·Σ|h_i·w_i| (test/tolerance.ts).
      const h = m.hidden(ids(x));
      const bound = sumBound(32, h.abs().matmul(head!.abs().T).max().item());
      reportBound('GPT-2 forward vs hidden · headᵀ', maxDiff(m.forward(ids(x)), h.matmul(head!.T)), bound, 1e-5);
      assert.ok(maxDiff(m.forward(ids(x)), h.matmul(head!.T)) <= bound);
    });
  });

  test("init follows HF _init_weights, with GPT-2's scaled c_proj", () => {
    withModel(RAW, 0, (m) => {
      const s = m.stateDict();
      const std = (k: string) => s.get(k)!.std().item();
      const near = (k: string, want: number, rel: number) => assert.ok(Math.abs(std(k) / want - 1) < rel, `${k}: std ${std(k)}, want ≈ ${want}`);
      near('transformer.wte.weight', 0.2, 0.1);
      near('transformer.wpe.weight', 0.2, 0.1);
      near('transformer.h.0.attn.c_attn.weight', 0.2, 0.1);
      near('transformer.h.1.mlp.c_fc.weight', 0.2, 0.1);
      // σ / √(2 · n_layer) = 0.2 / 2
      near('transformer.h.0.attn.c_proj.weight', 0.1, 0.15);
      near('transformer.h.1.mlp.c_proj.weight', 0.1, 0.1);
      for (const [k, t] of s) {
        if (k.endsWith('.bias')) assert.equal(t.abs().max().item(), 0, k);
        if (/ln_(1|2|f)\.weight$/.test(k)) assert.equal(t.sub(1).abs().max().item(), 0, k);
      }
    });
  });

  test('matches a transcription of HF modeling_gpt2.py (golden logits)', () => {
    // Weights from `patterned` (also in the Python reference); ids [[5, 17, 99, 3, 42, 42, 0]]. Logits
    // [0, t, :6] for t = 0 and 6, computed under torch 1.13 by HF's GPT2Attention._attn (explicit matmul,
    // causal `bias` buffer, finfo.min), Conv1D's addmm, NewGELUActivation, and F.linear for the head.
    const x = [[5, 17, 99, 3, 42, 42, 0]];
    const golden = [
      {
        raw: RAW,
        pos0: [0.7920461, -0.4415358, -1.2612418, 1.546666, 0.6096388, -0.3158818],
        pos6: [-0.4248271, -1.3326427, -0.116133, 1.1624407, -0.019744, 0.612292],
      },
      {
        // Every option away from its default: untied head, exact GELU, n_inner, unscaled and layer-scaled scores.
        raw: { ...RAW, tie_word_embeddings: false, activation_function: 'gelu', n_inner: 48, scale_attn_weights: false, scale_attn_by_inverse_layer_idx: true },
        pos0: [0.0243081, 0.7262914, -0.4435655, 1.2783809, 0.9826677, 0.9567521],
        pos6: [-0.5323603, 0.8554368, -0.6950331, 1.3043739, 0.7068731, -0.1176498],
      },
    ];
    for (const g of golden) {
      withModel(g.raw, 0, (m) => {
        m.loadStateDict(new Map([...m.stateDict()].map(([k, t]) => [k, patterned(k, t.shape)])));
        const logits = m.forward(ids(x));
        // Bound: our float32 against the transcription's exact values (half the bound of two float32 runs),
        // plus the 7 printed digits.
        const atol = logitBound(gpt2Dims(m.config), x[0]!.length, logits.abs().max().item()) / 2 + 5e-8;
        const got = [...(logits.select(0, 0).select(0, 0).narrow(0, 0, 6).data() as Float32Array), ...(logits.select(0, 0).select(0, 6).narrow(0, 0, 6).data() as Float32Array)];
        reportBound('GPT-2 golden logits (transcription of modeling_gpt2.py)', Math.max(...got.map((v, i) => Math.abs(v - [...g.pos0, ...g.pos6][i]!))), atol, 1e-5);
        assertClose(logits.select(0, 0).select(0, 0).narrow(0, 0, 6), g.pos0, { atol, rtol: 0 }, 'position 0');
        assertClose(logits.select(0, 0).select(0, 6).narrow(0, 0, 6), g.pos6, { atol, rtol: 0 }, 'position 6');
      });
    }
  });

  test('KV-cache decoding equals full recomputation', () => {
    withModel(RAW, 1, (m) => {
      const seq = randint(0, V, [2, 12]);
      const full = m.forward(seq); // (2, 12, V)
      const cache = m.newCache(2, 16);
      try {
        let worst = maxDiff(m.forward(seq.narrow(1, 0, 5), { cache }), full.narrow(1, 0, 5)); // prefill
        for (let t = 5; t < 9; t++) worst = Math.max(worst, maxDiff(m.forward(seq.narrow(1, t, 1), { cache }), full.narrow(1, t, 1)));
        // a multi-token step after the prefill, read through lastOnly
        const last = m.forward(seq.narrow(1, 9, 3), { cache, lastOnly: true });
        assert.deepEqual(last.shape, [2, 1, V]);
        worst = Math.max(worst, maxDiff(last, full.narrow(1, 11, 1)));
        assert.equal(cache.length, 12);
        const bound = logitBound(gpt2Dims(m.config), 12, full.abs().max().item());
        reportBound('GPT-2 KV cache vs recompute (logits)', worst, bound, 1e-4);
        assert.ok(worst <= bound, `max |Δlogit| ${worst} > ${bound}`);
      } finally {
        cache.dispose();
      }
    });
  });

  test('a left-padded batch gives each row what it gives alone, prefill and cached decoding', () => {
    const rows = [[7, 3, 9, 1, 4, 8], [2, 5, 6], [11]];
    const next = [[13, 14], [15, 16], [17, 18]];
    const width = 6;
    const pad = 0;
    withModel({ ...RAW, pad_token_id: pad }, 2, (m) => {
      const padded = ids(rows.map((r) => [...Array(width - r.length).fill(pad), ...r]));
      let mask = tensor(rows.map((r) => [...Array(width - r.length).fill(0), ...Array(r.length).fill(1)]), { dtype: 'int64' }); // (3, 6)
      const cache = m.newCache(3, width + 2);
      try {
        const positionIds = mask.cumsum(1).sub(1).clamp(0); // (3, 6)
        const batch = [m.forward(padded, { attentionMask: mask, positionIds, cache, lastOnly: true })];
        for (let s = 0; s < 2; s++) {
          mask = cat([mask, ones([3, 1], { dtype: 'int64' })], 1); // (3, L)
          const pos = mask.sum(1, true).sub(1); // (3, 1): the new token's position in its own row
          batch.push(m.forward(ids(next.map((n) => [n[s]!])), { attentionMask: mask, positionIds: pos, cache }));
        }
        rows.forEach((r, i) => {
          const alone = m.forward(ids([[...r, ...next[i]!]])); // (1, len + 2, V)
          const bound = logitBound(gpt2Dims(m.config), width + 2, alone.abs().max().item());
          for (let s = 0; s < 3; s++) {
            const d = maxDiff(batch[s]!.narrow(0, i, 1).squeeze(1), alone.select(1, r.length - 1 + s));
            reportBound('GPT-2 left-padded batch vs alone (logits)', d, bound, 1e-4);
            assert.ok(d <= bound, `row ${i}, step ${s}: max |Δlogit| ${d} > ${bound}`);
          }
        });
      } finally {
        cache.dispose();
      }
    });
  });

  test('loadStateDict of its own state gives identical logits', () => {
    const x = ids([[1, 50, 100, 7]]);
    withModel(RAW, 3, (a) => {
      withModel(RAW, 4, (b) => {
        assert.ok(maxDiff(a.forward(x), b.forward(x)) > 1e-2, 'different seeds give different models');
        b.loadStateDict(a.stateDict());
        assert.equal(maxDiff(a.forward(x), b.forward(x)), 0);
      });
    });
    x.dispose();
  });

  test('gradients reach every parameter, the tied embedding through both uses', () => {
    manualSeed(5);
    const m = new Gpt2LMHeadModel(parseGpt2Config(RAW));
    try {
      scope(() => {
        const seq = randint(0, V, [2, 6]);
        const logits = m.forward(seq.narrow(1, 0, 5));
        crossEntropy(logits.reshape(-1, V), seq.narrow(1, 1, 5).reshape(-1)).backward();
        for (const [k, p] of m.namedParameters()) {
          const g = p.grad;
          assert.ok(g && g.abs().max().item() > 0, `${k} has no gradient`);
        }
      });
    } finally {
      m.dispose();
    }
  });

  test('token ids outside the vocabulary, bad dtypes and overlong inputs fail clearly', () => {
    withModel(RAW, 0, (m) => {
      assertThrowsMessage(() => m.forward(ids([[1, V]])), /token id 101 is outside the vocabulary \(size 101\)/);
      assertThrowsMessage(() => m.forward(ids([[-1, 2]])), /token id -1 is outside the vocabulary/);
      assertThrowsMessage(() => m.forward(zeros([1, 3])), /input ids must be int64 or int32, got float32/);
      assertThrowsMessage(() => m.forward(zeros([1, 65], { dtype: 'int64' })), /65 positions exceeds the model's maximum of 64/);
    });
  });
});

describe('gpt2StateFromHf', () => {
  test('adds the transformer. prefix, drops mask buffers and a tied lm_head', () => {
    const x = ids([[3, 1, 4, 1, 5]]);
    withModel(RAW, 6, (src) => {
      // An old-style checkpoint: bare GPT2Model keys, causal-mask buffers, and the tied head saved too.
      const hf = new Map<string, Tensor>();
      for (const [k, t] of src.stateDict()) hf.set(k.replace(/^transformer\./, ''), t);
      for (let i = 0; i < 2; i++) {
        hf.set(`h.${i}.attn.bias`, ones([64, 64]).tril().bool().reshape(1, 1, 64, 64));
        hf.set(`h.${i}.attn.masked_bias`, tensor(-1e4));
      }
      hf.set('lm_head.weight', src.transformer.wte.weight.clone());
      const state = gpt2StateFromHf(hf);
      assert.deepEqual([...state.keys()].sort(), [...src.stateDict().keys()].sort());
      withModel(RAW, 7, (dst) => {
        dst.loadStateDict(state);
        assert.equal(maxDiff(dst.forward(x), src.forward(x)), 0);
      });
    });
    // Prefixed keys pass through; a head that differs from wte is kept for an untied model.
    const untied = { ...RAW, tie_word_embeddings: false };
    withModel(untied, 8, (src) => {
      const state = gpt2StateFromHf(new Map([...src.stateDict(), ['transformer.h.0.attn.masked_bias', tensor(-1e4)]]));
      assert.ok(state.has('lm_head.weight'));
      withModel(untied, 9, (dst) => {
        dst.loadStateDict(state);
        assert.equal(maxDiff(dst.forward(x), src.forward(x)), 0);
      });
    });
    x.dispose();
  });
});

/**
 * Deterministic weights both this test and the Python reference compute exactly: integer arithmetic
 * mod 2003, scaled in float64 and rounded once to float32. LayerNorm weights near 1, biases small.
 */
function patterned(name: string, shape: readonly number[]): Tensor {
  let h = 0;
  for (let j = 0; j < name.length; j++) h += name.charCodeAt(j) * (j + 1);
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  const norm = /ln_(1|2|f)\.weight$/.test(name);
  const bias = name.endsWith('.bias');
  for (let i = 0; i < n; i++) {
    const f = ((i * i * 7919 + i * 104723 + h * 7907) % 2003) / 2003 - 0.5;
    out[i] = norm ? 1 + 0.4 * f : bias ? 0.2 * f : 0.5 * f;
  }
  return tensor(out, { shape });
}
