/**
 * REINFORCE with a moving-average baseline: the advantage of sequence i is R_i − b (broadcast to its
 * tokens), with R_i the shaped reward minus β·KL_i, and b the exponential moving average of past steps'
 * mean R. The baseline uses only earlier steps (plus, on the first, the first step's mean), so it does not
 * depend on the sample it is subtracted from beyond 1/B — the usual moving-baseline trade.
 */
import { tensor } from '../../tensor/index.js';
import { type Algorithm, type OnlineRunOptions, type OnlineRunSummary, trainOnline } from '../online/trainer.js';
import { broadcastToTokens, sequenceKlPenalty } from '../online/token-rewards.js';
import type { ReinforceConfig } from './config.js';

/** The baseline's update b ← m·b + (1 − m)·mean(R); `b` null (no step yet) starts it at mean(R). */
export function movingBaseline(b: number | null, returns: readonly number[], momentum: number): number {
  const m = returns.reduce((a, x) => a + x, 0) / returns.length;
  return b === null ? m : momentum * b + (1 - momentum) * m;
}

/**
 * A REINFORCE algorithm with its own baseline state (one per run: the state lives in the closure and is
 * saved in the run's checkpoints through state()/load()).
 */
export function reinforceAlgorithm(): Algorithm<ReinforceConfig> {
  let b: number | null = null;
  return {
    name: 'reinforce',
    klInLoss: false,
    critic: () => null,
    advantages(r, rewards, klCoef, c) {
      const penalty = sequenceKlPenalty(r, klCoef, c.kl.estimator); // −β·KL per sequence
      const total = rewards.map((x, i) => x + penalty[i]!);
      // The first step's baseline is its own mean; afterwards the average of earlier steps only.
      const baseline = b ?? movingBaseline(null, total, c.reinforce.baselineMomentum);
      b = movingBaseline(b, total, c.reinforce.baselineMomentum);
      return { advantages: broadcastToTokens(tensor(Float32Array.from(total, (x) => x - baseline)), r), returns: null };
    },
    state: () => ({ baseline: b }),
    load(s) {
      b = (s as { baseline: number | null }).baseline;
    },
    check(c) {
      if (!(c.reinforce.baselineMomentum < 1)) throw new Error(`reinforce.baselineMomentum must be in [0, 1) (1 would freeze the baseline), got ${c.reinforce.baselineMomentum}`);
    },
  };
}

/** Trains a policy with REINFORCE and a moving-average baseline (Williams 1992) on the shared online loop. */
export function trainReinforce(cfg: ReinforceConfig, opts: OnlineRunOptions = {}): Promise<OnlineRunSummary> {
  return trainOnline(cfg, reinforceAlgorithm(), opts);
}
