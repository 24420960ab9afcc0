/**
 * `lora:` in every trainer on stories260K, a few steps each: SFT, DPO, KTO, reward models (the score head
 * trained in full beside the adapters) and PPO (a value head on the shared backbone). What must hold:
 *   - only the adapters (and a head) change: every weight LoRA does not target is saved bit for bit as the
 *     base's, and the checkpoint holds the adapters, not the model;
 *   - the reference is the policy with its adapters disabled: DPO's cached reference log-probs equal the base
 *     model's exactly, and DPO's first loss is ln 2 (B = 0: policy = reference); PPO's first KL is 0;
 *   - model/ (merged) and adapter/ (PEFT layout) describe the same policy: base + adapter/ = model/.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { deepMerge, validateConfig } from '../../src/config.js';
import { loadModel } from '../../src/models/hub.js';
import { loadPeftAdapter } from '../../src/models/peft.js';
import { readSafetensorsFile } from '../../src/nn/safetensors.js';
import { noGrad, scope, tensor } from '../../src/tensor/index.js';
import { DPO_DEFAULTS, DPO_SCHEMA } from '../../src/rlhf/dpo/config.js';
import { trainDpo } from '../../src/rlhf/dpo/trainer.js';
import { KTO_DEFAULTS, KTO_SCHEMA } from '../../src/rlhf/kto/config.js';
import { trainKto } from '../../src/rlhf/kto/trainer.js';
import { SFT_DEFAULTS, SFT_SCHEMA } from '../../src/rlhf/sft/config.js';
import { trainSft } from '../../src/rlhf/sft/trainer.js';
import { PPO_DEFAULTS, PPO_SCHEMA } from '../../src/rlhf/ppo/config.js';
import { trainPpo } from '../../src/rlhf/ppo/trainer.js';
import { REWARD_DEFAULTS, REWARD_SCHEMA } from '../../src/reward/config.js';
import { trainRewardModel } from '../../src/reward/train.js';
import { STORIES260K, logitBound } from '../tolerance.js';
import { TEST_THREADS, useTestThreads } from '../env.js';

const TMP = mkdtempSync(join(tmpdir(), 'rlhf-lora-trainers-'));
const PAIRS = new URL('../../../test/fixtures/feedback-rm/pairs.jsonl', import.meta.url).pathname;
const LABELS = join(TMP, 'labels.jsonl');
const LORA = { r: 4, alpha: 8, targetModules: ['q_proj', 'v_proj', 'down_proj'] };
const quiet = { progress: () => {} };
const baseState = (): Map<string, Float32Array> => {
  const m = loadModel('stories260k');
  try {
    return new Map([...m.stateDict()].map(([k, t]) => [k, t.data() as Float32Array]));
  } finally {
    m.dispose();
  }
};
const same = (a: ArrayLike<number>, b: ArrayLike<number>): boolean => a.length === b.length && Array.from(a).every((v, i) => v === b[i]);
const metrics = (out: string): Record<string, unknown>[] => readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);

before(() => {
  useTestThreads();
  const lines = readFileSync(PAIRS, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { prompt: string; chosen: string; rejected: string });
  writeFileSync(LABELS, lines.flatMap((p) => [{ prompt: p.prompt, completion: p.chosen, label: true }, { prompt: p.prompt, completion: p.rejected, label: false }]).map((r) => JSON.stringify(r)).join('\n') + '\n');
});
after(() => rmSync(TMP, { recursive: true, force: true }));

/** Every saved weight LoRA does not target is the base's bit for bit; the targeted ones moved; the checkpoint holds adapters only. */
function checkOnlyAdaptersChanged(out: string, checkpointFile = 'model.safetensors'): void {
  const base = baseState();
  const saved = readSafetensorsFile(join(out, 'model', 'model.safetensors')).tensors;
  let moved = 0;
  for (const [k, v] of base) {
    const t = saved.get(k);
    if (!t) continue; // the tied head of a reward model is not saved
    const values = new Float32Array(t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + t.data.byteLength));
    const targeted = /\.(q_proj|v_proj|down_proj)\.weight$/.test(k);
    if (!targeted) assert.ok(same(values, v), `${k} changed but LoRA does not target it`);
    else if (!same(values, v)) moved++;
  }
  assert.ok(moved > 0, 'no targeted weight moved');
  const ckpt = [...readSafetensorsFile(join(out, 'checkpoint', checkpointFile)).tensors.keys()];
  assert.ok(ckpt.length > 0 && ckpt.every((k) => /lora_[AB]\.weight$/.test(k)), `checkpoint holds ${ckpt.slice(0, 3).join(', ')}…`);
}

/** base + adapter/ gives model/'s logits within the float32 bound (merged vs unmerged sums). */
function checkAdapterMatchesMerged(out: string): void {
  const merged = loadModel(join(out, 'model'));
  const base = loadModel('stories260k');
  const adapters = loadPeftAdapter(base, join(out, 'adapter'));
  try {
    scope(() => noGrad(() => {
      const ids = tensor([[1, 403, 89, 21, 7, 300, 45, 2]], { dtype: 'int64' });
      const a = merged.forward(ids).data() as Float32Array;
      const b = base.forward(ids).data() as Float32Array;
      const d = a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
      const bound = logitBound(STORIES260K, 8, Math.max(...a.map(Math.abs)));
      assert.ok(d <= bound, `merged model/ vs base + adapter/: ${d} > ${bound}`);
    }));
  } finally {
    adapters.detach();
    base.dispose();
    merged.dispose();
  }
}

describe('lora: in every trainer', () => {
  test('SFT trains the adapters only; model/ = base + adapter/', async () => {
    const out = join(TMP, 'sft');
    const cfg = validateConfig({ out, data: { path: PAIRS, format: 'pairwise' }, lora: LORA, train: { batchSize: 16, maxSteps: 3, lr: 1e-2, warmupSteps: 0, threads: TEST_THREADS } }, SFT_DEFAULTS, SFT_SCHEMA, 'test');
    await trainSft(cfg, quiet);
    checkOnlyAdaptersChanged(out);
    checkAdapterMatchesMerged(out);
  });

  test('SFT with gradient checkpointing (and LoRA) logs the losses of SFT without', async () => {
    const run = async (name: string, gradientCheckpointing: boolean) => {
      const out = join(TMP, name);
      const cfg = validateConfig({ out, data: { path: PAIRS, format: 'pairwise' }, model: { gradientCheckpointing }, lora: LORA, train: { batchSize: 16, maxSteps: 3, lr: 1e-2, warmupSteps: 0, threads: TEST_THREADS } }, SFT_DEFAULTS, SFT_SCHEMA, 'test');
      await trainSft(cfg, quiet);
      return metrics(out).filter((r) => typeof r.loss === 'number').map((r) => r.loss as number);
    };
    const [plain, ckpt] = [await run('sft-plain', false), await run('sft-ckpt', true)];
    assert.equal(ckpt.length, 3);
    // The first step's loss is the same forward; later ones follow updates from gradients equal to 1e-5 relative.
    ckpt.forEach((l, i) => assert.ok(Math.abs(l - plain[i]!) <= 1e-5 * Math.abs(plain[i]!), `step ${i + 1}: ${l} vs ${plain[i]}`));
  });

  test('DPO: the reference is the policy with adapters disabled (its log-probs are the base model\'s exactly; the first loss is ln 2)', async () => {
    const out = join(TMP, 'dpo');
    const cfg = validateConfig({ out, data: { path: PAIRS, splitRatio: 0.75 }, lora: LORA, train: { batchSize: 16, maxSteps: 3, lr: 1e-2, warmupSteps: 0, threads: TEST_THREADS } }, DPO_DEFAULTS, DPO_SCHEMA, 'test');
    let loaded = 0;
    await trainDpo(cfg, { ...quiet, loadModel: (dir) => (loaded++, loadModel(dir)) });
    assert.equal(loaded, 1, 'a LoRA run loads one model: the reference is the policy itself');
    checkOnlyAdaptersChanged(out);
    // The same data with a full fine-tune: its reference is stories260K loaded from disk.
    const full = join(TMP, 'dpo-full');
    await trainDpo({ ...cfg, out: full, lora: { ...cfg.lora, r: 0 }, train: { ...cfg.train, maxSteps: 1 } }, quiet);
    const sets = (dir: string) => (JSON.parse(readFileSync(join(dir, 'reference-logprobs.json'), 'utf8')) as { sets: Record<string, number[]> }).sets;
    assert.deepEqual(sets(out), sets(full), 'the disabled adapters\' log-probs differ from the base model\'s');
    const first = metrics(out).find((r) => r.step === 1)!;
    assert.ok(Math.abs((first.loss as number) - Math.LN2) < 1e-5, `first DPO loss ${first.loss as number} is not ln 2`);
  });

  test('KTO with LoRA trains the adapters only', async () => {
    const out = join(TMP, 'kto');
    const cfg = validateConfig({ out, data: { path: LABELS }, lora: LORA, train: { batchSize: 16, maxSteps: 2, lr: 1e-2, warmupSteps: 0, threads: TEST_THREADS } }, KTO_DEFAULTS, KTO_SCHEMA, 'test');
    await trainKto(cfg, quiet);
    checkOnlyAdaptersChanged(out);
  });

  test('a reward model with LoRA trains the adapters and the score head in full', async () => {
    const out = join(TMP, 'rm');
    const cfg = validateConfig({ out, data: { path: PAIRS, format: 'pairwise' }, lora: LORA, train: { batchSize: 16, maxSteps: 2, lr: 1e-2, warmupSteps: 0, threads: TEST_THREADS } }, REWARD_DEFAULTS, REWARD_SCHEMA, 'test');
    await trainRewardModel(cfg, quiet);
    const base = baseState();
    const saved = readSafetensorsFile(join(out, 'model', 'model.safetensors')).tensors;
    for (const [k, v] of base) {
      const t = saved.get(k);
      if (!t || /\.(q_proj|v_proj|down_proj)\.weight$/.test(k)) continue;
      assert.ok(same(new Float32Array(t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + t.data.byteLength)), v), `${k} changed`);
    }
    assert.ok(saved.has('score.weight'));
    const ckpt = [...readSafetensorsFile(join(out, 'checkpoint', 'adapters.safetensors')).tensors.keys()];
    assert.ok(ckpt.every((k) => /lora_[AB]\.weight$/.test(k)) && ckpt.length === 2 * 3 * STORIES260K.layers);
  });

  test('PPO with LoRA: the reference is the policy with adapters off (first KL 0), the value head on the shared backbone', async () => {
    const out = join(TMP, 'ppo');
    const cfg = validateConfig(deepMerge({ out, lora: LORA, rollout: { prompts: 4, samplesPerPrompt: 2, maxNewTokens: 12 }, train: { steps: 3, miniBatchSize: 8, evalSamples: 4, lr: 1e-2, checkpointEvery: 0, threads: TEST_THREADS } }, {}), PPO_DEFAULTS, PPO_SCHEMA, 'test');
    await trainPpo(cfg, quiet);
    const first = metrics(out).find((r) => r.step === 1 && r.kl !== undefined)!;
    assert.equal(first.kl, 0);
    // After an update that moved the adapters (a gradient), the reference (adapters off) stays put: KL > 0.
    const rows = metrics(out).filter((r) => r.kl !== undefined && r.gradNorm !== undefined);
    const moved = rows.findIndex((r) => (r.gradNorm as number) > 0);
    assert.ok(moved >= 0 && moved + 1 < rows.length, 'no update moved the adapters before the last step');
    assert.ok((rows[moved + 1]!.kl as number) > 0, 'KL stayed 0 after an update: the reference moved with the adapters');
    checkOnlyAdaptersChanged(out, 'policy.safetensors');
    checkAdapterMatchesMerged(out);
    const ckpt = readSafetensorsFile(join(out, 'checkpoint', 'value_head.safetensors')).tensors;
    assert.ok(ckpt.size > 0);
  });
});
