/**
 * What the offline preference trainers (DPO and its family, KTO) share below their loops: preference pairs
 * as token ids, summed completion log-probs of pairs and of single completions, the frozen reference's
 * log-probs computed once and cached in the run directory (out/reference-logprobs.json, keyed by the
 * reference and the tokenized data), and held-out evaluation by a loss's implicit rewards. Its own module
 * so that no algorithm folder imports another's trainer.
 */
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { FeedbackError, readLines, type PairRecord } from '../data/index.js';
import { noGrad, scope, type Tensor, tensor } from '../tensor/index.js';
import { readJson } from '../models/hub.js';
import type { CausalLM } from '../models/common.js';
import { scoreCompletions } from '../generate/score.js';
import type { Tokenizer } from '../text/index.js';
import { tokenizeRecords, type RewardRecord } from '../reward/pairs.js';
import { pairAccuracy, type PreferenceBatch, type PreferenceLossFn, type PreferenceParams } from './core/preference.js';
import { readJsonFile, writeAtomic } from '../atomic.js';

/** A preference pair as token ids: the prompt (BOS first) and each response's completion tokens. */
export interface TokenPair {
  prompt: number[];
  chosen: number[];
  rejected: number[];
}

/** Summed completion log-probs of each pair's chosen and rejected response. */
export interface PairLogprobs {
  chosen: Float32Array;
  rejected: Float32Array;
}

// ---- data

/** A ranking's implied pairs (i better than j for every i < j), each a PairRecord; pairs pass through. */
export function impliedPairs(records: readonly RewardRecord[]): PairRecord[] {
  return records.flatMap((r): PairRecord[] => {
    if (r.kind === 'pair') return [r];
    if (r.kind !== 'ranking') throw new Error(`a ${r.kind} record (${r.meta.file}:${r.meta.line}) is not a preference`);
    const out: PairRecord[] = [];
    for (let i = 0; i < r.responses.length; i++) {
      for (let j = i + 1; j < r.responses.length; j++) out.push({ kind: 'pair', prompt: r.prompt, chosen: r.responses[i]!, rejected: r.responses[j]!, meta: r.meta });
    }
    return out;
  });
}

/** Pairs as token ids, split at the prompt boundary tokenizeRecords found (prompt + response encoded together). */
export function tokenPairs(records: readonly PairRecord[], tok: Tokenizer, maxTokens: number): { pairs: TokenPair[]; tooLong: number } {
  const t = tokenizeRecords(records, tok, maxTokens);
  return {
    tooLong: t.tooLong,
    pairs: t.records.map(({ seqs: [c, r], lens: [lc, lr] }) => ({ prompt: c!.slice(0, c!.length - lc!), chosen: c!.slice(c!.length - lc!), rejected: r!.slice(r!.length - lr!) })),
  };
}

/**
 * The policy and the reference must read text the same way: the same vocabulary size and the same ids
 * for a probe string with BOS, digits, punctuation and a non-ASCII character.
 */
export function checkTokenizers(policy: Tokenizer, reference: Tokenizer, names: { policy: string; reference: string }): void {
  const where = `policy '${names.policy}' and reference '${names.reference}'`;
  if (policy.vocabSize !== reference.vocabSize) {
    throw new Error(`tokenizers of ${where} differ: vocabulary of ${policy.vocabSize} vs ${reference.vocabSize} tokens; DPO needs one tokenizer for both`);
  }
  const probe = 'Once upon a time, Tom said: "Hello, 42 friends!" ünd';
  const a = policy.encode(probe, { addBos: true });
  const b = reference.encode(probe, { addBos: true });
  if (a.length !== b.length || a.some((x, i) => x !== b[i])) {
    throw new Error(`tokenizers of ${where} differ: ${JSON.stringify(probe)} encodes to [${a.slice(0, 8).join(', ')}…] vs [${b.slice(0, 8).join(', ')}…]; DPO needs one tokenizer for both`);
  }
}

/**
 * The error for a file that holds the other kind of data than the method reads: a paired method given
 * unpaired {prompt, completion, label} records (KTO's `binary` format), or KTO given pairs. `e` is the
 * parser's error at the first bad line; the line is read again to see what it holds. Null when it is
 * just a malformed record.
 */
export async function wrongShapeError(e: unknown, wants: 'paired' | 'unpaired', method: string): Promise<Error | null> {
  if (!(e instanceof FeedbackError)) return null;
  let raw: unknown;
  for await (const { line, text } of readLines(e.file)) {
    if (line !== e.line) continue;
    try {
      raw = JSON.parse(text);
    } catch {
      return null;
    }
    break;
  }
  if (raw === null || typeof raw !== 'object') return null;
  const has = (k: string) => Object.hasOwn(raw as object, k);
  if (wants === 'paired' && has('completion') && has('label') && !has('chosen')) {
    return new Error(`${e.file}:${e.line}: an unpaired record {prompt, completion, label} (KTO's binary format), but ${method} needs pairs {prompt, chosen, rejected}: use \`rlhf train kto\` for unpaired data`);
  }
  if (wants === 'unpaired' && has('chosen') && has('rejected') && !has('completion')) {
    return new Error(`${e.file}:${e.line}: a preference pair {prompt, chosen, rejected}, but ${method} needs unpaired records {prompt, completion, label} (format binary): use \`rlhf train dpo|ipo|simpo|orpo\` for pairs, or \`rlhf sample sentiment-labels\` for KTO data`);
  }
  return null;
}

// ---- log-probs

/** Summed completion log-probs (2B) of B pairs, chosen first then rejected, in one forward of 2B sequences. */
export function pairSequenceLogprobs(model: CausalLM, pairs: readonly TokenPair[]): Tensor {
  const prompts = [...pairs.map((p) => p.prompt), ...pairs.map((p) => p.prompt)];
  const completions = [...pairs.map((p) => p.chosen), ...pairs.map((p) => p.rejected)];
  return scoreCompletions(model, prompts, completions).logprobs.sum(1); // (2B)
}

/** Summed completion log-probs of every pair, batchSize pairs per forward, no gradient. */
export function scorePairs(model: CausalLM, pairs: readonly TokenPair[], batchSize: number): PairLogprobs {
  const chosen = new Float32Array(pairs.length);
  const rejected = new Float32Array(pairs.length);
  noGrad(() => {
    for (let i = 0; i < pairs.length; i += batchSize) {
      const batch = pairs.slice(i, i + batchSize);
      const lp = scope(() => pairSequenceLogprobs(model, batch).data() as Float32Array);
      chosen.set(lp.subarray(0, batch.length), i);
      rejected.set(lp.subarray(batch.length), i);
    }
  });
  return { chosen, rejected };
}

/** A prompt (BOS first) and a completion as token ids: what the reference scores. */
export interface TokenCompletion {
  prompt: number[];
  completion: number[];
}

/** Summed completion log-probs of single completions, batchSize per forward, no gradient. */
export function sequenceLogprobs(model: CausalLM, items: readonly TokenCompletion[], batchSize: number): Float32Array {
  const out = new Float32Array(items.length);
  noGrad(() => {
    for (let i = 0; i < items.length; i += batchSize) {
      const b = items.slice(i, i + batchSize);
      out.set(scope(() => scoreCompletions(model, b.map((x) => x.prompt), b.map((x) => x.completion)).logprobs.sum(1).data() as Float32Array), i);
    }
  });
  return out;
}

/** A pair list as the two completion lists the reference scores. */
export function pairCompletions(pairs: readonly TokenPair[]): { chosen: TokenCompletion[]; rejected: TokenCompletion[] } {
  return {
    chosen: pairs.map((p) => ({ prompt: p.prompt, completion: p.chosen })),
    rejected: pairs.map((p) => ({ prompt: p.prompt, completion: p.rejected })),
  };
}

/** The cache key: the reference (its directory, config and weights file's size and time) and the token ids of every set. */
function referenceKey(refDir: string, sets: Readonly<Record<string, readonly TokenCompletion[]>>): string {
  const weights = ['model.safetensors', 'model.safetensors.index.json'].filter((f) => existsSync(join(refDir, f))).map((f) => {
    const s = statSync(join(refDir, f));
    return [f, s.size, s.mtimeMs];
  });
  return createHash('sha256').update(JSON.stringify({ refDir, config: readJson(join(refDir, 'config.json')), weights, sets })).digest('hex');
}

interface ReferenceCache {
  key: string;
  sets: Record<string, number[]>;
}

/**
 * The reference's summed completion log-probs of named sets of completions (DPO: the training and held-out
 * pairs' chosen and rejected; KTO: its training completions and held-out pairs): read from
 * out/reference-logprobs.json when its key matches, else computed (the reference loaded, scored, disposed)
 * and written atomically. JSON holds float32 values exactly, so a resumed run sees the very numbers the
 * first run trained on.
 */
export function referenceLogprobs<K extends string>(
  out: string, refDir: string, sets: Readonly<Record<K, readonly TokenCompletion[]>>, batchSize: number, say: (l: string) => void, load: (dir: string) => CausalLM,
): { logprobs: Record<K, Float32Array>; cached: boolean } {
  const path = join(out, 'reference-logprobs.json');
  const key = referenceKey(refDir, sets);
  const names = Object.keys(sets) as K[];
  if (existsSync(path)) {
    const c = readJsonFile<ReferenceCache>(path);
    if (c.key === key) {
      say(`reference log-probs read from ${path}`);
      return { logprobs: Object.fromEntries(names.map((k) => [k, Float32Array.from(c.sets[k]!)])) as Record<K, Float32Array>, cached: true };
    }
  }
  const t0 = Date.now();
  const ref = load(refDir);
  let logprobs: Record<K, Float32Array>;
  try {
    logprobs = Object.fromEntries(names.map((k) => [k, sequenceLogprobs(ref, sets[k], batchSize)])) as Record<K, Float32Array>;
  } finally {
    ref.dispose();
  }
  const json: ReferenceCache = { key, sets: Object.fromEntries(names.map((k) => [k, [...logprobs[k]]])) };
  writeAtomic(path, JSON.stringify(json));
  const n = names.reduce((s, k) => s + sets[k].length, 0);
  say(`reference log-probs of ${n} completions computed in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return { logprobs, cached: false };
}

// ---- evaluation

/** Held-out implicit-reward evaluation: accuracy (ties ½), mean margin, mean rewards, pairs n. */
export interface PairEval {
  accuracy: number;
  margin: number;
  chosenReward: number;
  rejectedReward: number;
  n: number;
}

export function rewardStats(chosen: ArrayLike<number>, rejected: ArrayLike<number>): PairEval {
  const n = chosen.length;
  let c = 0;
  let r = 0;
  for (let i = 0; i < n; i++) {
    c += chosen[i]!;
    r += rejected[i]!;
  }
  return { accuracy: pairAccuracy(chosen, rejected), margin: (c - r) / n, chosenReward: c / n, rejectedReward: r / n, n };
}

/** A loss's inputs for pairs `idx`: the policy's (2B) log-probs split, the reference's (when it has one), the lengths. */
export function pairLossBatch(lp: Tensor, pairs: readonly TokenPair[], idx: readonly number[], ref: PairLogprobs | null): PreferenceBatch {
  const b = idx.length;
  const t = (f: (i: number) => number) => tensor(Float32Array.from(idx, f));
  return {
    policyChosen: lp.narrow(0, 0, b), policyRejected: lp.narrow(0, b, b),
    ...(ref ? { refChosen: t((i) => ref.chosen[i]!), refRejected: t((i) => ref.rejected[i]!) } : {}),
    chosenLengths: t((i) => pairs[i]!.chosen.length), rejectedLengths: t((i) => pairs[i]!.rejected.length),
  };
}

/**
 * The loss's own implicit rewards on held-out pairs under the current policy (β(log π − log π_ref) for
 * DPO, IPO, robust DPO and KTO; length-normalised log-probs for SimPO and ORPO). `ref` is null for a
 * reference-free loss.
 */
export function evaluatePolicyPairs(policy: CausalLM, pairs: readonly TokenPair[], ref: PairLogprobs | null, lossFn: PreferenceLossFn, params: PreferenceParams, batchSize: number): PairEval {
  const lp = scorePairs(policy, pairs, batchSize);
  const idx = pairs.map((_, i) => i);
  const { chosen, rejected } = scope(() => {
    const out = lossFn(pairLossBatch(tensor(Float32Array.from([...lp.chosen, ...lp.rejected])), pairs, idx, ref), params);
    return { chosen: out.chosenRewards.data() as Float32Array, rejected: out.rejectedRewards.data() as Float32Array };
  });
  return rewardStats(chosen, rejected);
}
