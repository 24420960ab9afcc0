/**
 * Qwen3 and sliding-window attention against Hugging Face transformers 5.18, and every config.json field
 * honoured or refused. Fixtures (test/fixtures/hf-models, made by scripts/fixtures/hf_models.py): a tiny
 * random Qwen3 (per-head q/k RMSNorm, tied head, head_dim ≠ hidden/heads), Mistral with a 5-position
 * window over 14 positions, and Qwen3 with a 4-position window on its middle layer only, each with HF's
 * logits. Checked here: the full forward equals HF's; the KV-cache decode (layer by layer, and the fused
 * native step where it covers the model) equals the full forward step by step, past the window, on a
 * left-padded batch too; a save → load round trip keeps config.json and the logits; and leaving out the
 * q/k norms or the window moves the logits far beyond the bound (the comparisons have teeth).
 * Bounds: test/tolerance.ts's logitBound (the two sides sum in other orders).
 * Tags: @numeric
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { leftPad, positionsFromMask } from '../../src/generate/generate.js';
import { loadModel, parseConfig, readJson, saveModel } from '../../src/models/hub.js';
import { fusedDecode, fusedDecodeFallback, type LlamaConfig, LlamaForCausalLM, parseLlamaConfig } from '../../src/models/llama.js';
import { cat, noGrad, scope, type Tensor, tensor } from '../../src/tensor/index.js';
import { llamaDims, logitBound } from '../tolerance.js';
import { reportBound } from '../env.js';

const FIXTURES = new URL('../../../test/fixtures/hf-models/', import.meta.url).pathname;
const NAMES = ['qwen3', 'mistral-window', 'qwen3-window'] as const;
const TMP = mkdtempSync(join(tmpdir(), 'rlhf-hf-parity-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

interface Expected {
  ids: number[][];
  shape: [number, number, number];
  logits: number[];
}
const expected = (name: string): Expected => JSON.parse(readFileSync(join(FIXTURES, name, 'expected.json'), 'utf8')) as Expected;
const ids = (rows: readonly (readonly number[])[]): Tensor => tensor(rows.map((r) => [...r]), { dtype: 'int64' });
const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
/** The object without its undefined entries (a test's way to delete a field from a config). */
const defined = (raw: Record<string, unknown>): Record<string, unknown> => Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined));
const maxAbs = (a: ArrayLike<number>): number => Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);

function fullLogits(m: LlamaForCausalLM, rows: readonly (readonly number[])[]): Float32Array {
  return scope(() => noGrad(() => m.forward(ids(rows)).data() as Float32Array));
}

/** Prefill `prefill` positions of a left-padded batch, then decode the rest one position at a time: logits (B, T, V) of the real positions, as a full masked forward lays them out. */
function cachedLogits(m: LlamaForCausalLM, rows: readonly (readonly number[])[], prefill: number, fused: boolean): { cached: Float32Array; full: Float32Array } {
  const was = fusedDecode(fused);
  try {
    return scope(() => noGrad(() => {
      const { ids: all, mask } = leftPad(rows);
      const [b, t] = all.shape as [number, number];
      const positions = positionsFromMask(mask);
      const full = m.forward(all, { attentionMask: mask, positionIds: positions });
      const cache = m.newCache(b, t);
      try {
        const parts = [m.forward(all.narrow(1, 0, prefill), { cache, attentionMask: mask.narrow(1, 0, prefill), positionIds: positions.narrow(1, 0, prefill) })];
        for (let s = prefill; s < t; s++) {
          parts.push(m.forward(all.narrow(1, s, 1), { cache, attentionMask: mask.narrow(1, 0, s + 1), positionIds: positions.narrow(1, s, 1) }));
        }
        // Padded positions' logits are garbage on both sides: compare real positions only.
        const real = mask.bool().unsqueeze(2).expand(b, t, m.config.vocabSize);
        return { cached: cat(parts, 1).maskedFill(real.logicalNot(), 0).data() as Float32Array, full: full.maskedFill(real.logicalNot(), 0).data() as Float32Array };
      } finally {
        cache.dispose();
      }
    }));
  } finally {
    fusedDecode(was);
  }
}

describe('Qwen3 and sliding windows match Hugging Face transformers', () => {
  for (const name of NAMES) {
    test(`${name}: full forward = transformers' logits`, () => {
      const m = loadModel(join(FIXTURES, name)) as LlamaForCausalLM;
      try {
        const want = expected(name);
        const got = fullLogits(m, want.ids);
        const bound = logitBound(llamaDims(m.config), want.ids[0]!.length, maxAbs(want.logits));
        const d = maxAbsDiff(got, want.logits);
        reportBound(`${name} vs transformers (logits)`, d, bound, 1e-5);
        assert.ok(d <= bound, `max |Δ logit| ${d} > ${bound}`);
        // 1e-5 relative to the largest logit, the bar, holds too on these sizes.
        assert.ok(d <= 1e-5 * Math.max(1, maxAbs(want.logits)), `max |Δ logit| ${d} over 1e-5 relative`);
      } finally {
        m.dispose();
      }
    });

    test(`${name}: KV-cache decode = full recompute, past the window, left-padded`, () => {
      const m = loadModel(join(FIXTURES, name)) as LlamaForCausalLM;
      try {
        const rows = [expected(name).ids[0]!, expected(name).ids[1]!.slice(0, 9), [1, 7, 70]];
        const paths = fusedDecodeFallback(m.config) === null ? [false, true] : [false];
        for (const fused of paths) {
          const { cached, full } = cachedLogits(m, rows, 3, fused);
          const bound = logitBound(llamaDims(m.config), rows[0]!.length, maxAbs(full));
          const d = maxAbsDiff(cached, full);
          reportBound(`${name} cached decode (${fused ? 'fused' : 'layer by layer'}) vs full`, d, bound, 1e-4);
          assert.ok(d <= bound, `${fused ? 'fused' : 'layer-by-layer'} decode: max |Δ logit| ${d} > ${bound}`);
        }
      } finally {
        m.dispose();
      }
    });
  }

  test('leaving out the q/k norms or the window moves the logits far beyond the bound', () => {
    for (const [name, change] of [['qwen3', { qkNorm: false }], ['mistral-window', { slidingWindow: null }], ['qwen3-window', { slidingLayers: [false, false, false] as boolean[] }]] as const) {
      const m = loadModel(join(FIXTURES, name)) as LlamaForCausalLM;
      const config: LlamaConfig = { ...m.config, ...change };
      const wrong = new LlamaForCausalLM(config);
      try {
        const state = m.stateDict();
        if (!config.qkNorm) for (const k of [...state.keys()]) if (/_norm\.weight$/.test(k) && /self_attn/.test(k)) state.delete(k);
        wrong.loadStateDict(state);
        const want = expected(name);
        const d = maxAbsDiff(fullLogits(wrong, want.ids), want.logits);
        const bound = logitBound(llamaDims(m.config), want.ids[0]!.length, maxAbs(want.logits));
        assert.ok(d > 10 * bound, `${name} with ${JSON.stringify(change)}: max |Δ logit| ${d} is not ≫ ${bound}`);
      } finally {
        m.dispose();
        wrong.dispose();
      }
    }
  });

  test('save → load keeps config.json (q/k norms, windows, tied head) and the logits exactly', () => {
    for (const name of NAMES) {
      const m = loadModel(join(FIXTURES, name)) as LlamaForCausalLM;
      const dir = join(TMP, name);
      try {
        saveModel(m, dir);
        const back = loadModel(dir) as LlamaForCausalLM;
        try {
          const original = parseConfig(readJson(join(FIXTURES, name, 'config.json')), name);
          assert.deepEqual(back.config, original);
          const rows = expected(name).ids;
          assert.deepEqual(fullLogits(back, rows), fullLogits(m, rows));
        } finally {
          back.dispose();
        }
      } finally {
        m.dispose();
      }
    }
  });

  test('the fused decode step covers Mistral\'s window and says why it skips Qwen3 and per-layer windows', () => {
    const config = (name: string) => parseConfig(readJson(join(FIXTURES, name, 'config.json')), name) as LlamaConfig;
    assert.equal(fusedDecodeFallback(config('mistral-window')), null);
    assert.match(fusedDecodeFallback(config('qwen3')) ?? '', /q\/k RMSNorm/);
    assert.match(fusedDecodeFallback({ ...config('mistral-window'), slidingLayers: [true, false, true] }) ?? '', /only some layers/);
  });
});

describe('every config.json field is honoured or refused by name', () => {
  const base = readJson(join(FIXTURES, 'qwen3', 'config.json'));
  const llama = { model_type: 'llama', vocab_size: 8, hidden_size: 8, intermediate_size: 8, num_hidden_layers: 1, num_attention_heads: 2 };
  const refused: [string, Record<string, unknown>, RegExp][] = [
    ['an unknown field', { ...base, rope_interleaved_blocks: 2 }, /field 'rope_interleaved_blocks' is not implemented for model_type 'qwen3'/],
    ['a window on Llama (transformers ignores it there)', { ...llama, sliding_window: 4 }, /field 'sliding_window' is not implemented for model_type 'llama'/],
    ['attention dropout', { ...base, attention_dropout: 0.1 }, /field 'attention_dropout': 0.1 is not implemented/],
    ['Qwen2-VL multimodal rotary', { ...base, model_type: 'qwen2', attention_bias: undefined, use_mrope: true }, /field 'use_mrope'/],
    ['tensor-parallel slices', { ...llama, pretraining_tp: 2 }, /field 'pretraining_tp'/],
    ['layer_types of the wrong length', { ...base, use_sliding_window: true, layer_types: ['full_attention'] }, /field 'layer_types': expected 3 entries/],
    ['an unsupported rotary scaling', { ...base, rope_parameters: { rope_type: 'yarn', rope_theta: 10000, factor: 4 } }, /field 'rope_parameters': rope_scaling type 'yarn' is not supported/],
    ['a GPT-2 cross-attention', { model_type: 'gpt2', vocab_size: 8, n_embd: 8, n_head: 2, n_layer: 1, n_positions: 8, add_cross_attention: true }, /field 'add_cross_attention'/],
  ];
  for (const [what, raw, message] of refused) {
    test(`refused: ${what}`, () => {
      assert.throws(() => parseConfig(defined(raw), 'x/config.json'), (e: Error) => message.test(e.message) && e.message.startsWith('x/config.json'));
    });
  }

  test('honoured: the published configs of transformers 4.x (rope_theta) and 5.x (rope_parameters) read alike', () => {
    const v4 = { ...base, rope_parameters: undefined, rope_theta: 1000000, rope_scaling: null, torch_dtype: 'bfloat16', transformers_version: '4.51.0' };
    const a = parseLlamaConfig(defined(v4));
    const b = parseLlamaConfig(base);
    assert.equal(a.ropeTheta, 1000000);
    assert.deepEqual({ ...a }, { ...b });
    // Qwen2.5's published config: a window size with use_sliding_window false means no window.
    const qwen2 = parseLlamaConfig(defined({ ...v4, model_type: 'qwen2', attention_bias: undefined, sliding_window: 32768, use_sliding_window: false }));
    assert.equal(qwen2.slidingWindow, null);
    assert.ok(qwen2.qkvBias && !qwen2.qkNorm);
  });
});
