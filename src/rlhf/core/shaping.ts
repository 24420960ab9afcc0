/**
 * Reward shaping before advantages: clipping, running normalisation, and the penalties for a missing
 * end-of-sequence token and for length. Pure functions over per-sequence rewards (plain numbers: B is
 * small and this is not a hot path).
 */

/** clip(r, −bound, bound); bound 0 = no clipping (OpenRLHF's reward_clip_range, TRL's cliprange_reward). */
export function clipRewards(rewards: readonly number[], bound: number): number[] {
  if (bound < 0) throw new Error(`reward clip bound must be ≥ 0, got ${bound}`);
  return bound === 0 ? [...rewards] : rewards.map((r) => Math.min(bound, Math.max(-bound, r)));
}

/**
 * Running mean and variance of every reward seen so far (Chan et al.'s parallel update of Welford's
 * algorithm), for normalising rewards across RL steps as TRL's `RunningMoments` does. The state is three
 * numbers, saved in checkpoints so a resumed run normalises as an uninterrupted one would.
 */
export class RunningMoments {
  constructor(public mean = 0, public variance = 1, public count = 0) {}

  update(xs: readonly number[]): void {
    const n = xs.length;
    if (n === 0) return;
    const m = xs.reduce((a, x) => a + x, 0) / n;
    const v = xs.reduce((a, x) => a + (x - m) ** 2, 0) / n; // population variance of the batch
    const total = this.count + n;
    const delta = m - this.mean;
    const m2 = (this.count === 0 ? 0 : this.variance * this.count) + v * n + (delta * delta * this.count * n) / total;
    this.mean += (delta * n) / total;
    this.variance = m2 / total;
    this.count = total;
  }

  get std(): number {
    return Math.sqrt(this.variance);
  }

  state(): { mean: number; variance: number; count: number } {
    return { mean: this.mean, variance: this.variance, count: this.count };
  }
}

/** (r − mean) / (std + ε) with the running moments after adding this batch (`center` false: r / (std + ε)). */
export function normaliseRewards(rewards: readonly number[], moments: RunningMoments, opts: { center?: boolean; eps?: number } = {}): number[] {
  moments.update(rewards);
  const shift = opts.center === false ? 0 : moments.mean;
  const scale = moments.std + (opts.eps ?? 1e-8);
  return rewards.map((r) => (r - shift) / scale);
}

/**
 * Missing-EOS penalty (TRL's `missing_eos_penalty`): a completion cut off at the token budget, without
 * ending on its own, gets `penalty` subtracted — so the policy is not rewarded for text that never ends.
 */
export function missingEosPenalty(rewards: readonly number[], endedOnEos: readonly boolean[], penalty: number): number[] {
  return rewards.map((r, i) => (endedOnEos[i] ? r : r - penalty));
}

/**
 * Length penalty: r − coef · max(0, |y| − target) tokens (target 0: every token costs coef). Counters
 * the length bias reward models learn (Singhal et al. 2023, "A long way to go").
 */
export function lengthPenalty(rewards: readonly number[], lengths: readonly number[], coef: number, target = 0): number[] {
  return rewards.map((r, i) => r - coef * Math.max(0, lengths[i]! - target));
}
