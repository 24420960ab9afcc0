/**
 * Best-of-N sampling: N completions per prompt from the policy, scored by any reward source; the best is
 * kept. Its KL from the policy is analytic, KL_bon = log N − (N − 1)/N (Stiennon et al. 2020; Gao et
 * al. 2022), the x-axis of the best-of-N over-optimisation curve.
 */
import type { CausalLM } from '../models/common.js';
import type { Tokenizer } from '../text/index.js';
import type { RewardSource } from '../reward/sources.js';
import { sample, type SamplingSettings } from './online/rollout.js';

/** KL(π_bon ‖ π) of best-of-n, in nats. */
export function klBestOfN(n: number): number {
  if (!(Number.isInteger(n) && n >= 1)) throw new Error(`best-of-n needs an integer n ≥ 1, got ${n}`);
  return Math.log(n) - (n - 1) / n;
}

/** Best-of-N for one prompt: the best completion, every candidate's reward and text. */
export interface BestOfNResult {
  prompt: string;
  /** The best completion's text, tokens and reward. */
  text: string;
  tokens: number[];
  reward: number;
  /** Every candidate's reward, in sampling order; `best` indexes it. */
  rewards: number[];
  best: number;
  /** All candidates' texts (for scoring them with another reward, e.g. gold). */
  candidates: string[];
}

/**
 * For each prompt, N samples (streams p·N … p·N + N − 1 of `seed`, so the first k candidates of best-of-N
 * are exactly best-of-k's: one sampling run serves every k ≤ N) scored by `reward`; ties keep the first.
 */
export async function bestOfN(policy: CausalLM, tok: Tokenizer, reward: RewardSource, prompts: readonly string[], n: number, s: SamplingSettings, opts: { seed: number; batchSize?: number; progress?: (line: string) => void }): Promise<BestOfNResult[]> {
  klBestOfN(n);
  const rows = prompts.flatMap((p) => Array.from({ length: n }, () => p));
  const bs = opts.batchSize ?? 64;
  const texts: string[] = [];
  const tokens: number[][] = [];
  const rewards: number[] = [];
  for (let i = 0; i < rows.length; i += bs) {
    const part = sample(policy, tok, rows.slice(i, i + bs), s, opts.seed, i);
    rewards.push(...(await reward.score(part)).rewards);
    texts.push(...part.completions);
    tokens.push(...part.completionIds);
    opts.progress?.(`scored ${texts.length}/${rows.length} candidates`); // a progress bar on a terminal
  }
  return prompts.map((prompt, p) => {
    const rs = rewards.slice(p * n, (p + 1) * n);
    const best = rs.reduce((b, r, k) => (r > rs[b]! ? k : b), 0);
    return { prompt, text: texts[p * n + best]!, tokens: tokens[p * n + best]!, reward: rs[best]!, rewards: rs, best, candidates: texts.slice(p * n, (p + 1) * n) };
  });
}

/** The best of the first k candidates of each result (k ≤ N): best-of-k from a best-of-N run. */
export function bestOfFirst(results: readonly BestOfNResult[], k: number): { index: number; reward: number }[] {
  return results.map((r) => {
    if (k > r.rewards.length) throw new Error(`best-of-${k} from ${r.rewards.length} candidates`);
    const rs = r.rewards.slice(0, k);
    const index = rs.reduce((b, x, j) => (x > rs[b]! ? j : b), 0);
    return { index, reward: rs[index]! };
  });
}
