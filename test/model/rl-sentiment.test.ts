/**
 * PPO, GRPO and RLOO at small size on stories260K with a real external reward — npm `sentiment`'s AFINN-165
 * comparative score of the completion (per word, so length cannot be gamed): each must raise the mean
 * reward of fresh samples by at least 3 standard errors (of the difference) over the initial policy, at
 * mean KL ≤ 20 nats, with distinct-2 at least 0.8× the initial policy's (no collapse into repetition), for
 * any seed (RLHF_TEST_SEED; `npm run test:matrix` runs several). PPO runs 16 on-policy steps (one pass over
 * each rollout) at lr 2e-4 with GAE's λ = 1: its value head starts untrained, and λ < 1 bootstraps on that
 * noise (12 steps at 3e-4, λ 0.95, two passes gained 1.5–3.5 s.e. across seeds and processors); a second
 * pass over each rollout let distinct-2 fall to 0.75× on libtorch 2.x. As set: 6.0–9.6 s.e., distinct-2
 * ≥ 0.86× over seeds 0–5, both kernel paths, libtorch 1.13 and 2.13.
 * The full-size figures (256 samples, 30 steps) are in configs/ppo-stories.yaml / grpo-stories.yaml runs.
 * Tags: @learning
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { validateConfig } from '../../src/config.js';
import { PPO_DEFAULTS, PPO_SCHEMA } from '../../src/rlhf/ppo/config.js';
import { trainPpo } from '../../src/rlhf/ppo/trainer.js';
import { GRPO_DEFAULTS, GRPO_SCHEMA } from '../../src/rlhf/grpo/config.js';
import { trainGrpo } from '../../src/rlhf/grpo/trainer.js';
import { RLOO_DEFAULTS, RLOO_SCHEMA } from '../../src/rlhf/rloo/config.js';
import { trainRloo } from '../../src/rlhf/rloo/trainer.js';
import { TEST_SEED, TEST_THREADS } from '../env.js';
import { assertImproved } from './improved.js';

const TMP = mkdtempSync(join(tmpdir(), 'rlhf-rl-sentiment-'));
after(() => rmSync(TMP, { recursive: true, force: true }));
const quiet = () => {};

const common = { seed: TEST_SEED, reward: { sources: ['function:afinn_comparative'] }, train: { steps: 12, lr: 3e-4, evalSamples: 128, checkpointEvery: 0, threads: TEST_THREADS } };

test('PPO (value head) raises AFINN sentiment by ≥ 3 s.e. at KL ≤ 20 without collapse', async () => {
  const cfg = validateConfig({ ...common, out: join(TMP, 'ppo'), ppo: { lambda: 1 }, train: { ...common.train, steps: 16, lr: 2e-4, epochs: 1, miniBatchSize: 32 } }, PPO_DEFAULTS, PPO_SCHEMA, 'test');
  assertImproved(await trainPpo(cfg, { progress: quiet }));
});

test('GRPO raises AFINN sentiment by ≥ 3 s.e. at KL ≤ 20 without collapse', async () => {
  const cfg = validateConfig({ ...common, out: join(TMP, 'grpo') }, GRPO_DEFAULTS, GRPO_SCHEMA, 'test');
  assertImproved(await trainGrpo(cfg, { progress: quiet }));
});

test('RLOO raises AFINN sentiment by ≥ 3 s.e. at KL ≤ 20 without collapse', async () => {
  const cfg = validateConfig({ ...common, out: join(TMP, 'rloo') }, RLOO_DEFAULTS, RLOO_SCHEMA, 'test');
  assertImproved(await trainRloo(cfg, { progress: quiet }));
});
