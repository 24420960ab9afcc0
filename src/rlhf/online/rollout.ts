/**
 * Rollout and scoring, the first two phases of every online RL step: sample completions from the
 * policy, then read the old log-probs (and values), the reference's log-probs and the rewards.
 * Also the evaluation on fresh samples every trainer (and the demo) reports: reward with its standard
 * error, KL to the reference, length, distinct-2.
 */
import { meanSe } from '../../stats.js';
import { keep, noGrad, scope, type Tensor, zeros } from '../../tensor/index.js';
import type { CausalLM } from '../../models/common.js';
import { type FinishReason, generate } from '../../generate/generate.js';
import type { Tokenizer } from '../../text/index.js';
import type { RewardOutput, RewardSource } from '../../reward/sources.js';
import { actorForward, type ActionBatch, criticForward, packActions, referenceLogProbs, type ValueHead } from './actor.js';
import type { RewardModel } from '../../reward/model.js';

export interface SamplingSettings {
  maxNewTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  /** Sample all maxNewTokens tokens, never stopping at an end-of-sequence id (benchmarks: fixed shapes). */
  ignoreEos?: boolean;
}

/** Sampled completions with their text. */
export interface Samples {
  prompts: string[];
  promptIds: number[][];
  completionIds: number[][];
  completions: string[];
  finish: FinishReason[];
}

/** Encodes prompts ('' = BOS only) with the policy's tokenizer. */
export function encodePrompts(tok: Tokenizer, prompts: readonly string[]): number[][] {
  return prompts.map((p, i) => {
    const ids = tok.encode(p, { addBos: true });
    if (ids.length === 0) throw new Error(`prompt ${i} encodes to no tokens and the tokenizer has no BOS`);
    return ids;
  });
}

/**
 * Samples one completion per prompt row. Row i draws from stream `streamBase + i` of `seed`, so a
 * rollout is a pure function of (weights, prompts, seed): a resumed run resamples exactly. The completion
 * keeps a sampled end-of-sequence token (the policy chose to stop: that choice is trained too); its text
 * is decoded without special tokens, prompt-relative (text = decode(prompt + completion) − decode(prompt)).
 */
export function sample(policy: CausalLM, tok: Tokenizer, prompts: readonly string[], s: SamplingSettings, seed: number, streamBase = 0): Samples {
  const promptIds = encodePrompts(tok, prompts);
  const out = generate(policy, promptIds, {
    maxNewTokens: s.maxNewTokens, temperature: s.temperature, topK: s.topK || undefined, topP: s.topP < 1 ? s.topP : undefined,
    seed, streams: promptIds.map((_, i) => streamBase + i), includeEos: true, ...(s.ignoreEos ? { eosTokenIds: [] } : {}),
  });
  const completionIds = out.map((c) => c.tokens);
  const completions = promptIds.map((p, i) => tok.decode([...p, ...completionIds[i]!]).slice(tok.decode(p).length));
  return { prompts: [...prompts], promptIds, completionIds, completions, finish: out.map((c) => c.finishReason) };
}

/** A sampled rollout with everything the update reads; tensors are owned (disposeScored). */
export interface Scored extends Samples {
  batch: ActionBatch;
  /**
   * Filled by the update's own forward, not by scoring (see scoreRollout's `oldFromUpdate`): until the
   * update has run, oldLogProbs is an all-zero placeholder and entropy is NaN.
   */
  oldFromUpdate: boolean;
  oldLogProbs: Tensor;
  refLogProbs: Tensor;
  /** Values under the critic before the update (null without a critic). */
  oldValues: Tensor | null;
  /** The reward source's output (before shaping). */
  reward: RewardOutput;
  /** Mean per-token entropy of the sampling policy over the rollout's completion tokens. */
  entropy: number;
}

export interface Critic {
  head: ValueHead | null;
  model: RewardModel | null;
}

/**
 * Scoring: old log-probs + values (one policy pass), reference log-probs, rewards. With `oldFromUpdate`
 * the policy pass is skipped: when the rollout gets exactly one optimiser step (one epoch, one mini-batch)
 * and nothing before the update reads them, every micro-batch's forward in the update runs on the very
 * weights that sampled the rollout, so its detached log-probs are the old ones (TRL's GRPOTrainer does the
 * same with num_iterations = 1); the update fills oldLogProbs and entropy from that forward.
 */
export async function scoreRollout(s: Samples, policy: CausalLM, reference: CausalLM, critic: Critic | null, reward: RewardSource, opts: { oldFromUpdate?: boolean } = {}): Promise<Scored> {
  // The reward first: a source that fails (a module that throws, a server that is down) leaves no tensors behind.
  const r = await reward.score({ prompts: s.prompts, completions: s.completions, promptIds: s.promptIds, completionIds: s.completionIds });
  return scoredRollout(s, policy, reference, critic, r, opts);
}

/** scoreRollout with the rewards already in hand (a synchronous source's output). */
export function scoredRollout(s: Samples, policy: CausalLM, reference: CausalLM, critic: Critic | null, r: RewardOutput, opts: { oldFromUpdate?: boolean } = {}): Scored {
  const batch = packActions(s.promptIds, s.completionIds);
  const oldFromUpdate = opts.oldFromUpdate === true && critic === null;
  const { oldLogProbs, oldValues, entropy } = oldFromUpdate ? { oldLogProbs: zeros(batch.actionMask.shape), oldValues: null, entropy: NaN } : noGrad(() => scope(() => {
    const o = actorForward(policy, batch, { valueHead: critic?.head ?? null, entropy: true });
    const v = critic?.model ? criticForward(critic.model, batch) : o.values;
    return { oldLogProbs: keep(o.logProbs), oldValues: v ? keep(v) : null, entropy: o.entropy!.sum().item() / Math.max(1, batch.tokens) };
  }));
  const refLogProbs = keep(referenceLogProbs(reference, batch));
  return { ...s, batch, oldFromUpdate, oldLogProbs, refLogProbs, oldValues, reward: r, entropy };
}

export function disposeScored(r: Scored): void {
  for (const t of [r.batch.ids, r.batch.attentionMask, r.batch.positions, r.batch.actionIndex, r.batch.actionMask, r.batch.actions, r.oldLogProbs, r.refLogProbs]) t.dispose();
  r.oldValues?.dispose();
}

/** Per-sequence Σ_t (log π − log π_ref) over the sampled tokens: an unbiased estimate of KL(π‖π_ref) in nats. */
export function sequenceKl(logProbs: Tensor, refLogProbs: Tensor, mask: Tensor): number[] {
  return scope(() => [...(logProbs.sub(refLogProbs).mul(mask).sum(1).double().data() as Float64Array)]);
}

/** distinct-n over tokens where every punctuation mark is a token of its own (the online trainers' `distinct2`; lab/gold.ts distinctN counts words only): unique n-grams / all n-grams (Li et al. 2016); 0 when there are none. */
export function distinctTokenN(texts: readonly string[], n: number): number {
  const seen = new Set<string>();
  let total = 0;
  for (const t of texts) {
    const w = t.toLowerCase().match(/[\p{L}\p{N}']+|[^\s\p{L}\p{N}]/gu) ?? [];
    for (let i = 0; i + n <= w.length; i++) {
      seen.add(w.slice(i, i + n).join(' '));
      total++;
    }
  }
  return total === 0 ? 0 : seen.size / total;
}


/** The policy on fresh samples: mean reward and its standard error, KL to the reference, length, distinct-2, the fraction that ended. */
export interface PolicyEvaluation {
  n: number;
  reward: number;
  rewardSe: number;
  /** Mean per-sequence KL(π‖π_ref), nats. */
  kl: number;
  length: number;
  distinct2: number;
  /** Fraction of samples that ended on their own (an end-of-sequence token). */
  ended: number;
  samples: Samples;
  rewards: number[];
}

/**
 * Fresh samples from the policy (n rows over the prompts, cycled; an evaluation seed independent of
 * training), scored by `reward`, with their KL to the reference. Batches of `batchSize` rows.
 */
export async function evaluatePolicy(policy: CausalLM, reference: CausalLM, tok: Tokenizer, reward: RewardSource, prompts: readonly string[], s: SamplingSettings, opts: { n: number; seed: number; batchSize?: number }): Promise<PolicyEvaluation> {
  const rows = Array.from({ length: opts.n }, (_, i) => prompts[i % prompts.length]!);
  const bs = opts.batchSize ?? 64;
  const all: Samples = { prompts: [], promptIds: [], completionIds: [], completions: [], finish: [] };
  const kls: number[] = [];
  for (let i = 0; i < rows.length; i += bs) {
    const part = sample(policy, tok, rows.slice(i, i + bs), s, opts.seed, i);
    noGrad(() => scope(() => {
      const batch = packActions(part.promptIds, part.completionIds);
      const lp = actorForward(policy, batch).logProbs;
      kls.push(...sequenceKl(lp, actorForward(reference, batch).logProbs, batch.actionMask));
    }));
    for (const k of Object.keys(all) as (keyof Samples)[]) (all[k] as unknown[]).push(...part[k]);
  }
  const rewards = (await reward.score(all)).rewards;
  const r = meanSe(rewards);
  return {
    n: rows.length, reward: r.mean, rewardSe: r.se, kl: kls.reduce((a, x) => a + x, 0) / kls.length,
    length: all.completionIds.reduce((a, c) => a + c.length, 0) / rows.length,
    distinct2: distinctTokenN(all.completions, 2), ended: all.finish.filter((f) => f === 'eos').length / rows.length,
    samples: all, rewards,
  };
}
