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
 * - `combinedReward`: a weighted sum of sources, scored concurrently.
 * - `moduleReward` (src/reward/module.ts): the user's own function, `module:./file.mjs#export`.
 * - `remoteReward` (src/reward/remote.ts): a server speaking OpenRLHF's `/get_reward` protocol, `http(s)://…`.
 * - `judgeReward` (src/reward/judge.ts): an LLM judge behind any OpenAI-compatible endpoint, `judge:URL#model=…`.
 *
 * Scoring may be asynchronous (a module may await, a server answers later): `score` returns the output or a
 * promise of it, and callers await it. The built-in sources stay synchronous (`SyncRewardSource`), so the
 * await costs them one microtask per batch.
 *
 * A source that fails for a reason outside the run's control (a module that throws, a server that is down
 * or answers badly) throws `RewardSourceError`; the online trainers stop on it with a checkpoint to resume.
 *
 * `parseRewardSpec` reads the config's form through `REWARD_SPEC_KINDS`: `function:NAME`, `model:DIR`
 * ('stories260k'-style names too), `module:PATH#EXPORT`, `http://…` / `https://…`.
 */
import { cat, noGrad, scope } from '../tensor/index.js';
import { leftPad } from '../generate/generate.js';
import { resolveModelDir } from '../models/hub.js';
import { loadTokenizer, type Tokenizer } from '../text/index.js';
import { loadRewardEnsemble, type RewardEnsemble } from './ensemble-model.js';
import { REWARD_FUNCTIONS } from './functions.js';
import { Judge, judgeReward, parseJudgeSpec } from './judge.js';
import { moduleReward } from './module.js';
import { remoteReward } from './remote.js';

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

/**
 * What the policy trainers optimise against: a named scorer of completions (a function, a reward model or
 * ensemble, a user module, a remote server, a weighted sum). `score` may return a promise; await it.
 */
export interface RewardSource {
  readonly name: string;
  score(input: RewardInput): RewardOutput | Promise<RewardOutput>;
  /** Loads what the source needs before its first score (a module's import), so a bad spec fails before any sampling. */
  ready?(): Promise<void>;
  dispose(): void;
}

/** A source that scores without waiting (the built-in function and reward-model sources). */
export interface SyncRewardSource extends RewardSource {
  score(input: RewardInput): RewardOutput;
}

/**
 * A reward source failed for a reason outside the run (the user's module threw or returned a non-number,
 * a server is down, timed out or answered malformed JSON): the message names the source and, where there
 * is one, the sample. The online trainers stop on it with a checkpoint to resume from.
 */
export class RewardSourceError extends Error {
  constructor(readonly source: string, message: string) {
    super(message);
    this.name = 'RewardSourceError';
  }
}

/** A completion as quoted in errors: its first 80 characters. */
export function quoteCompletion(c: string): string {
  return JSON.stringify(c.slice(0, 80));
}

/** Checks every reward is a finite number, naming the source and the sample otherwise. */
export function checkFinite(name: string, rewards: readonly unknown[], input: RewardInput): asserts rewards is number[] {
  if (rewards.length !== input.completions.length) {
    throw new RewardSourceError(name, `reward '${name}' returned ${rewards.length} rewards for a batch of ${input.completions.length} samples`);
  }
  rewards.forEach((r, i) => {
    if (typeof r !== 'number' || !Number.isFinite(r)) {
      throw new RewardSourceError(name, `reward '${name}' returned ${String(r)} for sample ${i} (completion ${quoteCompletion(input.completions[i]!)}): rewards must be finite numbers`);
    }
  });
}

/** A function of (completion text, prompt text) as a reward source. */
export function functionReward(name: string, fn: (completion: string, prompt: string) => number): SyncRewardSource {
  return {
    name,
    score(input) {
      const rewards = input.completions.map((c, i) => {
        try {
          return fn(c, input.prompts[i]!);
        } catch (e) {
          throw new RewardSourceError(name, `reward '${name}' threw on sample ${i} (completion ${quoteCompletion(c)}): ${(e as Error).message}`);
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
export function modelReward(model: RewardEnsemble, opts: ModelRewardOptions): SyncRewardSource {
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

/**
 * Σ_k w_k · source_k; spread and token rewards combine the same way where every part has them. The parts
 * are scored concurrently (a remote server's wait overlaps the others' work); all synchronous parts give a
 * synchronous result.
 */
export function combinedReward(parts: readonly { source: RewardSource; weight: number }[]): RewardSource {
  if (parts.length === 0) throw new Error('a combined reward needs at least one source');
  const combine = (input: RewardInput, outs: readonly RewardOutput[]): RewardOutput => {
      const rewards = input.completions.map((_, i) => parts.reduce((s, p, k) => s + p.weight * outs[k]!.rewards[i]!, 0));
      const dense = outs.every((o) => o.tokenRewards) ? input.completionIds.map((c, i) => c.map((_, t) => parts.reduce((s, p, k) => s + p.weight * outs[k]!.tokenRewards![i]![t]!, 0))) : null;
      const spreads = outs.filter((o) => o.spread);
      const spread = spreads.length ? input.completions.map((_, i) => Math.sqrt(spreads.reduce((s, o) => s + o.spread![i]! ** 2, 0))) : null;
      return { rewards, spread, tokenRewards: dense };
  };
  return {
    name: parts.map((p) => `${p.weight}·${p.source.name}`).join(' + '),
    score(input) {
      const outs = parts.map((p) => p.source.score(input));
      if (outs.some((o) => o instanceof Promise)) return Promise.all(outs).then((o) => combine(input, o));
      return combine(input, outs as RewardOutput[]);
    },
    ready: async () => {
      await Promise.all(parts.map((p) => p.source.ready?.()));
    },
    dispose: () => parts.forEach((p) => p.source.dispose()),
  };
}

/** What a spec's builder gets besides its argument: the policy's tokenizer and the config's dense flag. */
export interface RewardSpecContext {
  policyTokenizer: Tokenizer;
  dense?: boolean;
}

/** A spec kind's builder: the text after `KIND:` (the whole spec for a URL) → a source. */
export type RewardSpecBuilder = (arg: string, spec: string, ctx: RewardSpecContext) => RewardSource;

/** A `model:DIR` source: a reward-model or ensemble directory ('stories260k'-style names too), synchronous. */
export function loadModelReward(dirOrName: string, policyTokenizer: Tokenizer, opts: { dense?: boolean } = {}): SyncRewardSource {
  const dir = resolveModelDir(dirOrName);
  return modelReward(loadRewardEnsemble(dir), { tokenizer: loadTokenizer(dir), policyTokenizer, dense: opts.dense, name: `model:${dirOrName}` });
}

/** The reward spec kinds, by the prefix before the first colon; a new kind is one entry. */
export const REWARD_SPEC_KINDS: Readonly<Record<string, RewardSpecBuilder>> = {
  function: (arg, spec) => {
    const fn = REWARD_FUNCTIONS[arg];
    if (!fn) throw new Error(`unknown reward function '${arg}' in '${spec}': known ${Object.keys(REWARD_FUNCTIONS).join(', ')}`);
    return functionReward(arg, (c) => fn(c));
  },
  model: (arg, _spec, ctx) => loadModelReward(arg, ctx.policyTokenizer, { dense: ctx.dense }),
  module: (arg) => moduleReward(arg),
  judge: (arg) => judgeReward(new Judge(parseJudgeSpec(arg))),
  http: (_arg, spec) => remoteReward(spec),
  https: (_arg, spec) => remoteReward(spec),
};

/**
 * A source from its config form (REWARD_SPEC_KINDS): `function:NAME`, `model:DIR`, `module:PATH#EXPORT`
 * (src/reward/module.ts), `http(s)://HOST/get_reward[#options]` (src/reward/remote.ts).
 */
export function parseRewardSpec(spec: string, policyTokenizer: Tokenizer, opts: { dense?: boolean } = {}): RewardSource {
  const colon = spec.indexOf(':');
  const kind = colon < 0 ? '' : spec.slice(0, colon);
  const build = REWARD_SPEC_KINDS[kind];
  if (!build) throw new Error(`reward source '${spec}' must be one of ${Object.keys(REWARD_SPEC_KINDS).map((k) => SPEC_FORMS[k] ?? `${k}:…`).join(', ')}`);
  return build(spec.slice(colon + 1), spec, { policyTokenizer, dense: opts.dense });
}

const SPEC_FORMS: Readonly<Record<string, string>> = {
  function: "'function:NAME'",
  model: "'model:DIR'",
  module: "'module:./file.mjs#export'",
  judge: "'judge:http://HOST/v1#model=NAME'",
  http: "'http://HOST:PORT/get_reward'",
  https: "'https://…'",
};
