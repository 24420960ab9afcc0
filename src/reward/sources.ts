/**
 * Reward sources behind one interface: what scores a rollout. A source sees the prompts and completions
 * as text and as the policy's token ids, and returns one reward per sequence — plus, where it can, the
 * spread of an ensemble's members and token-level (dense) rewards whose sum is the sequence reward.
 *
 * - `functionReward`: a TypeScript function of the text (rule-based or verifiable rewards; the AFINN
 *   sentiment of src/reward/functions.ts). A throw or a non-finite value is an error naming the sample.
 * - `modelReward`: a trained reward model or ensemble (its default aggregation, and the members' spread).
 *   When the reward model shares the policy's tokenizer it scores the policy's ids directly; otherwise the
 *   text is re-encoded with its own. Dense mode reads the head at every completion position and gives
 *   token t the increment r(prefix ≤ t) − r(prefix < t): a telescoping sum equal to the sequence reward.
 * - `combinedReward`: a weighted sum of sources.
 *
 * `parseRewardSpec` reads the config's form: `function:NAME` or `model:DIR` ('stories260k'-style names too).
 */
import { cat, noGrad, scope } from '../tensor/index.js';
import { leftPad } from '../generate/generate.js';
import { resolveModelDir } from '../models/hub.js';
import { loadTokenizer, type Tokenizer } from '../text/index.js';
import { loadRewardEnsemble, type RewardEnsemble } from './ensemble-model.js';
import { REWARD_FUNCTIONS } from './functions.js';

/** A rollout as the reward sees it. */
export interface RewardInput {
  prompts: readonly string[];
  completions: readonly string[];
  /** The policy's ids: prompt (BOS included) and completion (an ending EOS included when sampled). */
  promptIds: readonly (readonly number[])[];
  completionIds: readonly (readonly number[])[];
}

/** A reward source's scores: one reward per completion, an ensemble's spread, optional per-token rewards (dense). */
export interface RewardOutput {
  /** One reward per sequence. */
  rewards: number[];
  /** Ensemble members' standard deviation per sequence (null for a single model or a function). */
  spread: number[] | null;
  /** Per completion token (length |completion_i|), summing to rewards[i]; null when the source has none. */
  tokenRewards: number[][] | null;
}

/** What the policy trainers optimise against: a named scorer of completions (a function, a reward model or ensemble, a weighted sum). */
export interface RewardSource {
  readonly name: string;
  score(input: RewardInput): RewardOutput;
  dispose(): void;
}

/** Checks every reward is a finite number, naming the source and the sample otherwise. */
function checkFinite(name: string, rewards: readonly number[], input: RewardInput): void {
  rewards.forEach((r, i) => {
    if (typeof r !== 'number' || !Number.isFinite(r)) {
      throw new Error(`reward '${name}' returned ${String(r)} for sample ${i} (completion ${JSON.stringify(input.completions[i]!.slice(0, 80))}): rewards must be finite numbers`);
    }
  });
}

/** A function of (completion text, prompt text) as a reward source. */
export function functionReward(name: string, fn: (completion: string, prompt: string) => number): RewardSource {
  return {
    name,
    score(input) {
      const rewards = input.completions.map((c, i) => {
        try {
          return fn(c, input.prompts[i]!);
        } catch (e) {
          throw new Error(`reward '${name}' threw on sample ${i} (completion ${JSON.stringify(c.slice(0, 80))}): ${(e as Error).message}`);
        }
      });
      checkFinite(name, rewards, input);
      return { rewards, spread: null, tokenRewards: null };
    },
    dispose() {},
  };
}

/** True when two tokenizers agree on vocabulary size and on the ids of a probe text. */
export function sameTokenizer(a: Tokenizer, b: Tokenizer): boolean {
  const probe = 'Once upon a time, a happy dog said: "Hello, world!" 42 times.';
  if (a.vocabSize !== b.vocabSize) return false;
  const x = a.encode(probe, { addBos: false });
  const y = b.encode(probe, { addBos: false });
  return x.length === y.length && x.every((t, i) => t === y[i]);
}

/** How a reward model or ensemble scores a policy's completions: both tokenizers, dense per-prefix scores, rows per forward. */
export interface ModelRewardOptions {
  /** The reward model's tokenizer (for re-encoding when it differs from the policy's). */
  tokenizer: Tokenizer;
  /** The policy's tokenizer: ids are passed through when the two agree. */
  policyTokenizer: Tokenizer;
  /** Token-level rewards from per-prefix scores (see the header). */
  dense?: boolean;
  /** Rows per forward. */
  batchSize?: number;
  name?: string;
}

/** A reward model or ensemble (owned: disposed with the source) as a reward source. */
export function modelReward(model: RewardEnsemble, opts: ModelRewardOptions): RewardSource {
  const direct = sameTokenizer(opts.tokenizer, opts.policyTokenizer);
  const batch = opts.batchSize ?? 64;
  const name = opts.name ?? 'reward-model';
  return {
    name,
    score(input) {
      const seqs = input.promptIds.map((p, i) => (direct ? [...p, ...input.completionIds[i]!] : opts.tokenizer.encode(input.prompts[i]! + input.completions[i]!)));
      const ctx = model.models[0]!.config.maxPositions;
      seqs.forEach((s, i) => {
        if (s.length > ctx) throw new Error(`${name}: sample ${i} has ${s.length} tokens, over the reward model's context of ${ctx}`);
      });
      const rewards: number[] = [];
      const spread: number[] | null = model.size > 1 ? [] : null;
      const tokenRewards: number[][] | null = opts.dense && direct ? [] : null;
      noGrad(() => {
        for (let i = 0; i < seqs.length; i += batch) {
          scope(() => {
            const rows = seqs.slice(i, i + batch);
            const { ids, mask } = leftPad(rows);
            if (tokenRewards) {
              // Per-position scores of every member (K, B, T), aggregated per position.
              const perModel = model.models.map((m) => m.tokenScores(ids, mask)); // each (B, T, H_m)
              const all = perModel.length === 1 ? perModel[0]! : cat(perModel, 2); // (B, T, K)
              const [b, t, k] = all.shape as [number, number, number];
              const agg = model.aggregate(all.permute(2, 0, 1).reshape(k, b * t)); // (B·T)
              const r = agg.reward.reshape(b, t).data() as Float32Array;
              const u = agg.uncertainty.reshape(b, t).data() as Float32Array;
              rows.forEach((_, j) => {
                const a = input.completionIds[i + j]!.length;
                const last = (j + 1) * t - 1;
                rewards.push(r[last]!);
                spread?.push(u[last]!);
                // token c (0-based) ends at column t − a + c; its increment over the prefix before it.
                tokenRewards.push(Array.from({ length: a }, (_, c) => r[last - a + 1 + c]! - r[last - a + c]!));
              });
            } else {
              const members = model.rewards(ids, mask); // (K, B)
              const agg = model.aggregate(members);
              rewards.push(...(agg.reward.data() as Float32Array));
              spread?.push(...(agg.uncertainty.data() as Float32Array));
            }
          });
        }
      });
      checkFinite(name, rewards, input);
      return { rewards, spread, tokenRewards };
    },
    dispose: () => model.dispose(),
  };
}

/** Σ_k w_k · source_k; spread and token rewards combine the same way where every part has them. */
export function combinedReward(parts: readonly { source: RewardSource; weight: number }[]): RewardSource {
  if (parts.length === 0) throw new Error('a combined reward needs at least one source');
  return {
    name: parts.map((p) => `${p.weight}·${p.source.name}`).join(' + '),
    score(input) {
      const outs = parts.map((p) => p.source.score(input));
      const rewards = input.completions.map((_, i) => parts.reduce((s, p, k) => s + p.weight * outs[k]!.rewards[i]!, 0));
      const dense = outs.every((o) => o.tokenRewards) ? input.completionIds.map((c, i) => c.map((_, t) => parts.reduce((s, p, k) => s + p.weight * outs[k]!.tokenRewards![i]![t]!, 0))) : null;
      const spreads = outs.filter((o) => o.spread);
      const spread = spreads.length ? input.completions.map((_, i) => Math.sqrt(spreads.reduce((s, o) => s + o.spread![i]! ** 2, 0))) : null;
      return { rewards, spread, tokenRewards: dense };
    },
    dispose: () => parts.forEach((p) => p.source.dispose()),
  };
}

/**
 * A source from its config form: `function:NAME` (REWARD_FUNCTIONS) or `model:DIR` (a reward-model or
 * ensemble directory).
 */
export function parseRewardSpec(spec: string, policyTokenizer: Tokenizer, opts: { dense?: boolean } = {}): RewardSource {
  const colon = spec.indexOf(':');
  const kind = colon < 0 ? '' : spec.slice(0, colon);
  const arg = spec.slice(colon + 1);
  if (kind === 'function') {
    const fn = REWARD_FUNCTIONS[arg];
    if (!fn) throw new Error(`unknown reward function '${arg}' in '${spec}': known ${Object.keys(REWARD_FUNCTIONS).join(', ')}`);
    return functionReward(arg, (c) => fn(c));
  }
  if (kind === 'model') {
    const dir = resolveModelDir(arg);
    const ens = loadRewardEnsemble(dir);
    return modelReward(ens, { tokenizer: loadTokenizer(dir), policyTokenizer, dense: opts.dense, name: `model:${arg}` });
  }
  throw new Error(`reward source '${spec}' must be 'function:NAME' or 'model:DIR'`);
}
