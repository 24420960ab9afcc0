// Reward model → DPO → PPO from TypeScript, at toy sizes on the embedded stories260K (seconds on one core).
// Usage: node dist/examples/reward-dpo-ppo.js [WORK_DIR]
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DPO_DEFAULTS,
  DPO_SCHEMA,
  PPO_DEFAULTS,
  PPO_SCHEMA,
  REWARD_DEFAULTS,
  REWARD_SCHEMA,
  loadModel,
  loadTokenizer,
  makeConfig,
  resolveModelDir,
  sentimentPairs,
  trainDpo,
  trainPpo,
  trainRewardModel,
  writePairs,
} from 'rlhf-ts';

const work = process.argv[2] ?? mkdtempSync(join(tmpdir(), 'rlhf-ts-example-'));
mkdirSync(work, { recursive: true });
const quiet = { progress: () => {} };

// 1. Preference pairs: two samples of stories260K per prompt, the more positive one (AFINN) chosen.
const base = resolveModelDir('stories260k');
const sampler = loadModel(base);
const pairs = sentimentPairs(sampler, loadTokenizer(base), { n: 64, seed: 0, maxNewTokens: 24 });
sampler.dispose();
const data = join(work, 'pairs.jsonl');
writePairs(data, pairs);

// 2. A reward model on those pairs (Bradley–Terry), on stories260K's backbone.
const rm = await trainRewardModel(
  makeConfig(REWARD_DEFAULTS, REWARD_SCHEMA, {
    out: join(work, 'rm'),
    data: { path: data, format: 'pairwise' },
    train: { epochs: 2, batchSize: 16, lr: 3e-3 },
  }),
  quiet,
);
console.log(`reward model: held-out accuracy ${rm.eval?.accuracy.toFixed(3)} on ${rm.heldOutPairs} pairs`);

// 3. DPO on the same pairs, the reference being the initial policy.
const dpo = await trainDpo(
  makeConfig(DPO_DEFAULTS, DPO_SCHEMA, {
    out: join(work, 'dpo'),
    data: { path: data },
    train: { epochs: 1, batchSize: 16 },
  }),
  quiet,
);
console.log(`DPO: ${dpo.steps} steps, held-out implicit-reward accuracy ${dpo.eval?.accuracy.toFixed(3)}`);

// 4. PPO from the DPO policy against the reward model, KL to the DPO policy.
const ppo = await trainPpo(
  makeConfig(PPO_DEFAULTS, PPO_SCHEMA, {
    out: join(work, 'ppo'),
    model: { policy: join(dpo.out, 'model') },
    reward: { sources: [`model:${join(rm.out, 'model')}`] },
    rollout: { prompts: 4, samplesPerPrompt: 2, maxNewTokens: 16 },
    train: { steps: 2, miniBatchSize: 4, evalSamples: 8 },
  }),
  quiet,
);
console.log(`PPO: ${ppo.steps} steps, reward ${ppo.initial?.reward.toFixed(3)} → ${ppo.final?.reward.toFixed(3)}, policy in ${ppo.out}/model`);
