/**
 * LoRA (src/nn/lora.ts) and its PEFT layout (src/models/peft.ts) on the tiny random Qwen3 of
 * test/fixtures/hf-models: with B = 0 the adapted model is the base exactly; after a few AdamW steps only
 * the adapters have changed, the disabled adapters give the base logits bit for bit (the reference of a
 * LoRA policy), merge → forward equals the adapter forward and unmerge gives the base back, within the
 * float32 bound of the extra sum (and 1e-5 relative); adapters written by Python peft 0.21 load and give
 * peft's logits, and the adapter rlhf-ts writes loads in peft with the same logits (fixtures by
 * scripts/fixtures/peft_adapters.py); adapter_config.json fields peft has and LoRA here does not are refused by name.
 * Tags: @numeric
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { loadModel } from '../../src/models/hub.js';
import type { LlamaForCausalLM } from '../../src/models/llama.js';
import { loadPeftAdapter, PEFT_CONFIG_FILE, PEFT_WEIGHTS_FILE } from '../../src/models/peft.js';
import { applyLora, LORA_DEFAULTS, type LoraAdapters } from '../../src/nn/lora.js';
import { readSafetensorsFile } from '../../src/nn/safetensors.js';
import { AdamW, crossEntropy, Generator, noGrad, scope, type Tensor, tensor } from '../../src/tensor/index.js';
import { gamma, llamaDims, logitBound } from '../tolerance.js';
import { reportBound } from '../env.js';
import { BASE_DIR, RLHF_LORA, writeRlhfAdapter } from './lora-fixture.js';

const PEFT = new URL('../../../test/fixtures/peft/', import.meta.url).pathname;
const TMP = mkdtempSync(join(tmpdir(), 'rlhf-lora-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

interface Expected {
  ids: number[][];
  logits: number[];
}
const IDS: number[][] = (JSON.parse(readFileSync(join(BASE_DIR, 'expected.json'), 'utf8')) as Expected).ids;
const expected = (name: string): Expected => JSON.parse(readFileSync(join(PEFT, name, 'expected.json'), 'utf8')) as Expected;
const logits = (m: LlamaForCausalLM): Float32Array => scope(() => noGrad(() => m.forward(tensor(IDS, { dtype: 'int64' })).data() as Float32Array));
const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
const maxAbs = (a: ArrayLike<number>): number => Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
const same = (a: Float32Array, b: Float32Array): boolean => a.length === b.length && a.every((v, i) => v === b[i]);
const base = (): LlamaForCausalLM => loadModel(BASE_DIR) as LlamaForCausalLM;

/** The logit bound for two evaluations of the same network, one path longer by the adapter's extra reductions. */
function bound(m: LlamaForCausalLM, scale: number): number {
  return logitBound(llamaDims(m.config), IDS[0]!.length, scale) + 2 * gamma(m.config.hiddenSize + m.config.intermediateSize) * Math.max(1, scale);
}

describe('LoRA adapters', () => {
  test('with B = 0 the adapted model is the base model exactly, and only adapters train', () => {
    const m = base();
    const before = logits(m);
    const adapters = applyLora(m, LORA_DEFAULTS, { generator: new Generator(1) });
    try {
      assert.ok(same(logits(m), before), 'B = 0 changed the logits');
      assert.equal(adapters.adapters.size, 7 * m.config.numLayers);
      assert.equal(m.trainableParameters().length, 0);
      assert.equal(adapters.trainableParameters().length, 2 * adapters.adapters.size);
      assert.ok(adapters.stateDict().has('model.layers.0.self_attn.q_proj.lora_A.weight'));
    } finally {
      adapters.detach();
      m.dispose();
    }
  });

  test('after training: only adapters changed; disabled = base exactly; merge = adapter forward; unmerge restores the base weights', () => {
    const m = base();
    const baseLogits = logits(m);
    const baseState = new Map([...m.stateDict()].map(([k, t]) => [k, t.data() as Float32Array]));
    const adapters = applyLora(m, { ...LORA_DEFAULTS, r: 4, alpha: 8, targetModules: ['q_proj', 'v_proj', 'down_proj'] }, { generator: new Generator(2) });
    try {
      // The model is frozen: what an optimiser sees is the adapters' A and B only.
      assert.equal([...m.trainableParameters(), ...adapters.trainableParameters()].length, 2 * 3 * m.config.numLayers);
      trainWith(m, adapters, 5);
      for (const [k, t] of m.stateDict()) assert.ok(same(t.data() as Float32Array, baseState.get(k)!), `base parameter ${k} changed`);
      const adapted = logits(m);
      assert.ok(maxAbsDiff(adapted, baseLogits) > 0.05, 'training did not move the adapted model');
      assert.ok(same(adapters.disabled(() => logits(m)), baseLogits), 'disabled adapters differ from the base');

      adapters.merge();
      const merged = logits(m);
      const b = bound(m, maxAbs(adapted));
      const d = maxAbsDiff(merged, adapted);
      reportBound('LoRA merged vs adapter forward (logits)', d, b, 1e-5);
      assert.ok(d <= b && d <= 1e-5 * Math.max(1, maxAbs(adapted)), `merged vs adapter forward: ${d} (bound ${b})`);
      assert.throws(() => adapters.disabled(() => 0), /merged/);
      adapters.unmerge();
      // The weights are the base's again up to the rounding of W + Δ − Δ; the adapters are active again.
      const back = adapters.disabled(() => maxAbsDiff(logits(m), baseLogits));
      assert.ok(back <= bound(m, maxAbs(baseLogits)), `unmerged weights vs base: ${back}`);
      assert.ok(maxAbsDiff(logits(m), adapted) <= b, 'unmerged adapter forward');
    } finally {
      adapters.detach();
      m.dispose();
    }
  });

  test('a target list that matches nothing names the layers there are; a non-Linear target is named', () => {
    const m = base();
    try {
      assert.throws(() => applyLora(m, { ...LORA_DEFAULTS, targetModules: ['qkv'] }), /matches no layer.*q_proj.*down_proj/);
      assert.throws(() => applyLora(m, { ...LORA_DEFAULTS, targetModules: ['q_norm'] }), /'model\.layers\.0\.self_attn\.q_norm' is a RMSNorm, not a Linear/);
    } finally {
      m.dispose();
    }
  });
});

describe('PEFT layout, both ways with Python peft 0.21', () => {
  for (const name of ['from-peft', 'from-peft-regex']) {
    test(`${name}: peft's adapter loads and gives peft's logits`, () => {
      const m = base();
      const baseLogits = logits(m);
      const adapters = loadPeftAdapter(m, join(PEFT, name));
      try {
        const want = expected(name).logits;
        const d = maxAbsDiff(logits(m), want);
        const b = bound(m, maxAbs(want));
        reportBound(`LoRA ${name} vs peft (logits)`, d, b, 1e-5);
        assert.ok(d <= b, `max |Δ logit| ${d} > ${b}`);
        assert.ok(maxAbsDiff(baseLogits, want) > 100 * b, 'the adapter does not change the logits: the comparison has no teeth');
      } finally {
        adapters.detach();
        m.dispose();
      }
    });
  }

  test('rlhf-ts writes the committed adapter again, and peft gave the same logits with it', () => {
    const dir = join(TMP, 'mine');
    writeRlhfAdapter(dir);
    const committed = join(PEFT, 'from-rlhf-ts');
    assert.deepEqual(JSON.parse(readFileSync(join(dir, PEFT_CONFIG_FILE), 'utf8')), JSON.parse(readFileSync(join(committed, PEFT_CONFIG_FILE), 'utf8')));
    const [a, b] = [readSafetensorsFile(join(dir, PEFT_WEIGHTS_FILE)).tensors, readSafetensorsFile(join(committed, PEFT_WEIGHTS_FILE)).tensors];
    assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
    for (const [k, t] of a) assert.deepEqual(Buffer.from(t.data), Buffer.from(b.get(k)!.data), k);
    const m = base();
    const adapters = loadPeftAdapter(m, committed);
    try {
      assert.deepEqual(adapters.config, RLHF_LORA);
      const want = expected('from-rlhf-ts').logits;
      const d = maxAbsDiff(logits(m), want);
      reportBound('LoRA rlhf-ts adapter in peft vs rlhf-ts (logits)', d, bound(m, maxAbs(want)), 1e-5);
      assert.ok(d <= bound(m, maxAbs(want)), `max |Δ logit| ${d}`);
      assert.ok(adapters.disabled(() => maxAbsDiff(logits(m), want)) > 100 * bound(m, maxAbs(want)), 'no teeth');
    } finally {
      adapters.detach();
      m.dispose();
    }
  });

  const refusals: [string, Record<string, unknown>, RegExp][] = [
    ['DoRA', { use_dora: true }, /field 'use_dora': true is not implemented \(DoRA\)/],
    ['per-layer ranks', { rank_pattern: { q_proj: 8 } }, /field 'rank_pattern'/],
    ['an unknown field', { lora_magic: 1 }, /field 'lora_magic' is not implemented for PEFT LoRA/],
    ['no targets', { target_modules: [] }, /field 'target_modules'/],
  ];
  for (const [what, change, message] of refusals) {
    test(`refused by name: ${what}`, () => {
      const dir = join(TMP, `bad-${what.replace(/\W/g, '')}`);
      cpSync(join(PEFT, 'from-peft'), dir, { recursive: true });
      const raw = JSON.parse(readFileSync(join(dir, PEFT_CONFIG_FILE), 'utf8')) as Record<string, unknown>;
      writeFileSync(join(dir, PEFT_CONFIG_FILE), JSON.stringify({ ...raw, ...change }));
      const m = base();
      try {
        assert.throws(() => loadPeftAdapter(m, dir), (e: Error) => message.test(e.message) && e.message.includes(PEFT_CONFIG_FILE));
      } finally {
        m.dispose();
      }
    });
  }

  test('a weights file missing an adapted layer is refused naming the key', () => {
    const dir = join(TMP, 'bad-rank');
    cpSync(join(PEFT, 'from-peft'), dir, { recursive: true });
    const raw = JSON.parse(readFileSync(join(dir, PEFT_CONFIG_FILE), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(dir, PEFT_CONFIG_FILE), JSON.stringify({ ...raw, target_modules: ['q_proj', 'v_proj', 'down_proj', 'up_proj'] }));
    const m = base();
    try {
      assert.throws(() => loadPeftAdapter(m, dir), /missing keys: model\.layers\.0\.mlp\.up_proj\.lora_A\.weight/);
    } finally {
      m.dispose();
    }
  });
});

/** A few AdamW steps of next-token cross-entropy on IDS over the model's and the adapters' trainable parameters: the adapters move away from B = 0. */
function trainWith(m: LlamaForCausalLM, adapters: LoraAdapters, steps: number): void {
  const params: Tensor[] = [...m.trainableParameters(), ...adapters.trainableParameters()];
  m.train();
  const opt = new AdamW(params, { lr: 0.05, weightDecay: 0 });
  try {
    for (let s = 0; s < steps; s++) {
      scope(() => {
        const ids = tensor(IDS, { dtype: 'int64' });
        const t = ids.size(1);
        const z = m.forward(ids.narrow(1, 0, t - 1)); // (B, T−1, V)
        crossEntropy(z.reshape(-1, m.config.vocabSize), ids.narrow(1, 1, t - 1).reshape(-1)).backward();
      });
      opt.step();
      opt.zeroGrad();
    }
  } finally {
    opt.dispose();
    m.eval();
  }
}
