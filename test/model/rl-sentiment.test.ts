/**
 * PPO and GRPO at small size on stories260K with a real external reward — npm `sentiment`'s AFINN-165
 * comparative score of the completion (per word, so length cannot be gamed): each must raise the mean
 * reward of fresh samples by at least 3 standard errors (of the difference) over the initial policy, at
 * mean KL ≤ 20 nats, with distinct-2 at least 0.8× the initial policy's (no collapse into repetition).
 * The full-size figures (256 samples, 30 steps) are in configs/ppo-stories.yaml / grpo-stories.yaml runs.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { validateConfig } from '../../src/config.js';
import type { EvalRow, OnlineRunSummary } from '../../src/rlhf/online/trainer.js';
import { PPO_DEFAULTS, PPO_SCHEMA } from '../../src/rlhf/ppo/config.js';
import { trainPpo } from '../../src/rlhf/ppo/trainer.js';
import { GRPO_DEFAULTS, GRPO_SCHEMA } from '../../src/rlhf/grpo/config.js';
import { trainGrpo } from '../../src/rlhf/grpo/trainer.js';

const TMP = mkdtempSync(join(tmpdir(), 'rlhf-rl-sentiment-'));
after(() => rmSync(TMP, { recursive: true, force: true }));
const quiet = () => {};

function assertImproved(s: OnlineRunSummary): void {
  const a = s.initial as EvalRow;
  const b = s.final as EvalRow;
  const se = Math.hypot(a.rewardSe, b.rewardSe);
  const z = (b.reward - a.reward) / se;
  const what = `${s.algorithm}: reward ${a.reward.toFixed(4)} → ${b.reward.toFixed(4)} (${z.toFixed(1)} s.e.), KL ${b.kl.toFixed(2)}, distinct-2 ${a.distinct2.toFixed(3)} → ${b.distinct2.toFixed(3)}`;
  assert.ok(z >= 3, what);
  assert.ok(b.kl <= 20, what);
  assert.ok(b.distinct2 >= 0.8 * a.distinct2, what);
}

const common = { reward: { sources: ['function:afinn_comparative'] }, train: { steps: 12, lr: 3e-4, evalSamples: 128, checkpointEvery: 0, threads: 1 } };

test('PPO (value head) raises AFINN sentiment by ≥ 3 s.e. at KL ≤ 20 without collapse', async () => {
  const cfg = validateConfig({ ...common, out: join(TMP, 'ppo'), train: { ...common.train, epochs: 2, miniBatchSize: 32 } }, PPO_DEFAULTS, PPO_SCHEMA, 'test');
  assertImproved(await trainPpo(cfg, { progress: quiet }));
});

test('GRPO raises AFINN sentiment by ≥ 3 s.e. at KL ≤ 20 without collapse', async () => {
  const cfg = validateConfig({ ...common, out: join(TMP, 'grpo') }, GRPO_DEFAULTS, GRPO_SCHEMA, 'test');
  assertImproved(await trainGrpo(cfg, { progress: quiet }));
});
