/**
 * The bar every small online RL run in the suite must clear (PPO, GRPO, RLOO, ReMax, REINFORCE(++), RAFT):
 * the mean reward of fresh samples rises by at least 3 standard errors (of the difference) over the initial
 * policy, at mean KL ≤ 20 nats, with distinct-2 at least 0.8× the initial policy's (no collapse into
 * repetition). Each run reports its margin for `npm run test:matrix` (test/env.ts).
 */
import assert from 'node:assert/strict';
import type { EvalRow } from '../../src/rlhf/online/trainer.js';
import { reportMargin } from '../env.js';

export function assertImproved(s: { algorithm: string; initial: EvalRow | null; final: EvalRow | null }): void {
  const a = s.initial as EvalRow;
  const b = s.final as EvalRow;
  const se = Math.hypot(a.rewardSe, b.rewardSe);
  const z = (b.reward - a.reward) / se;
  reportMargin({ test: s.algorithm, metric: 's.e. gained', value: z, bar: 3 });
  const what = `${s.algorithm}: reward ${a.reward.toFixed(4)} → ${b.reward.toFixed(4)} (${z.toFixed(1)} s.e.), KL ${b.kl.toFixed(2)}, distinct-2 ${a.distinct2.toFixed(3)} → ${b.distinct2.toFixed(3)}`;
  assert.ok(z >= 3, what);
  assert.ok(b.kl <= 20, what);
  assert.ok(b.distinct2 >= 0.8 * a.distinct2, what);
}
