/**
 * Direct Preference Optimization (`rlhf train dpo`; Rafailov et al. 2023) and the paired family that is
 * a loss of the same loop (`loss.type`: IPO, robust DPO, SimPO, ORPO; `rlhf train ipo|simpo|orpo`). The
 * loop reads: reference log-probs (once, cached) → per step: pairs → policy log-probs of chosen and
 * rejected (one forward of 2B sequences) → preference loss over the step's pair count → backward
 * (accumulated) → clip → schedule → step → log → evaluate → checkpoint.
 *
 * The reference is frozen, so its summed completion log-probs are computed once for every training and
 * held-out pair (no gradient, batched), kept in memory and in out/reference-logprobs.json under a hash
 * of the reference and the tokenized data; a resumed run reads them back, and the reference model is
 * disposed before training starts. The reference-free losses (SimPO, ORPO) skip all of it: no reference
 * is loaded, scored or cached. Implicit rewards are each loss's own (β(log π − log π_ref) for DPO, IPO
 * and robust DPO; length-normalised log-probs for SimPO and ORPO), over completion tokens only.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { FeedbackError, readLines } from '../../data/index.js';
import { noGrad, scope, setNumThreads, type Tensor, tensor } from '../../tensor/index.js';
import { loadModel, readJson, resolveModelDir, saveModel, tokenizerFiles } from '../../models/hub.js';
import type { CausalLM } from '../../models/common.js';
import { scoreCompletions } from '../../generate/score.js';
import { loadTokenizer, type Tokenizer } from '../../text/index.js';
import type { PairRecord } from '../../data/index.js';
import { loadRewardRecords, tokenizeRecords, type RewardRecord } from '../../reward/pairs.js';
import { pairAccuracy, PREFERENCE_LOSSES, REFERENCE_FREE, type PreferenceBatch, type PreferenceLossFn, type PreferenceLossType, type PreferenceParams } from '../core/preference.js';
import { openRun, policyLoop, progressLine, resumable, StepPlan } from '../offline.js';
import { runEpochLoop } from '../../nn/train-loop.js';
import { withRunLock } from '../../run-dir.js';
import { checkDpoConfig, type DpoConfig } from './config.js';
import { writeAtomic, readJsonFile } from '../../atomic.js';

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
export function scoreSequences(model: CausalLM, items: readonly TokenCompletion[], batchSize: number): Float32Array {
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
    logprobs = Object.fromEntries(names.map((k) => [k, scoreSequences(ref, sets[k], batchSize)])) as Record<K, Float32Array>;
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
export interface DpoEval {
  accuracy: number;
  margin: number;
  chosenReward: number;
  rejectedReward: number;
  n: number;
}

export function rewardStats(chosen: ArrayLike<number>, rejected: ArrayLike<number>): DpoEval {
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
function lossBatch(lp: Tensor, pairs: readonly TokenPair[], idx: readonly number[], ref: PairLogprobs | null): PreferenceBatch {
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
export function evaluatePairs(policy: CausalLM, pairs: readonly TokenPair[], ref: PairLogprobs | null, lossFn: PreferenceLossFn, params: PreferenceParams, batchSize: number): DpoEval {
  const lp = scorePairs(policy, pairs, batchSize);
  const idx = pairs.map((_, i) => i);
  const { chosen, rejected } = scope(() => {
    const out = lossFn(lossBatch(tensor(Float32Array.from([...lp.chosen, ...lp.rejected])), pairs, idx, ref), params);
    return { chosen: out.chosenRewards.data() as Float32Array, rejected: out.rejectedRewards.data() as Float32Array };
  });
  return rewardStats(chosen, rejected);
}

// ---- the run

export interface DpoRunSummary {
  out: string;
  steps: number;
  resumedFrom: number | null;
  seconds: number;
  trainPairs: number;
  heldOutPairs: number;
  dropped: { invalid: number; tooLong: number };
  /** Whether the reference log-probs came from out/reference-logprobs.json (null: a reference-free loss, none used). */
  referenceCached: boolean | null;
  /** Final held-out implicit-reward evaluation (null without held-out pairs). */
  eval: DpoEval | null;
}

export interface DpoRunOptions {
  fresh?: boolean;
  progress?: (line: string) => void;
  /** Stops before the next step with a checkpoint written (InterruptedError); a rerun resumes. */
  signal?: AbortSignal;
  /** How the policy and the reference are loaded from their directories (default src/models/hub.ts loadModel). */
  loadModel?: (dir: string) => CausalLM;
}

/** The command a loss type is trained by, for messages. */
export const methodName = (lossType: string): string => (lossType === 'sigmoid' ? 'dpo' : lossType);

async function prepareData(cfg: DpoConfig, tok: Tokenizer, say: (l: string) => void) {
  const load = async (part: 'train' | 'test') => {
    try {
      return await loadRewardRecords(cfg.data, part);
    } catch (e) {
      throw (await wrongShapeError(e, 'paired', `${methodName(cfg.loss.type)} (loss.type ${cfg.loss.type})`)) ?? e;
    }
  };
  const trainRaw = await load('train');
  const testRaw = await load('test');
  const train = tokenPairs(impliedPairs(trainRaw.records), tok, cfg.data.maxTokens);
  const test = tokenPairs(impliedPairs(testRaw.records), tok, cfg.data.maxTokens);
  const pairs = cfg.data.limit > 0 ? train.pairs.slice(0, cfg.data.limit) : train.pairs;
  // Split from one file, both parts read all of it: count its invalid lines once.
  const invalid = trainRaw.invalid + (cfg.data.testPath ? testRaw.invalid : 0);
  const dropped = { invalid, tooLong: train.tooLong + test.tooLong };
  say(`${pairs.length} training pairs, ${test.pairs.length} held out (${invalid} invalid, ${dropped.tooLong} over ${cfg.data.maxTokens} tokens)`);
  return { train: pairs, test: test.pairs, dropped };
}

/** The reference's log-probs of the training and held-out pairs (null for a reference-free loss: nothing is loaded). */
function pairReference(cfg: DpoConfig, refDir: string, train: readonly TokenPair[], test: readonly TokenPair[], say: (l: string) => void, load: (dir: string) => CausalLM) {
  if (REFERENCE_FREE.has(cfg.loss.type as PreferenceLossType)) {
    say(`loss ${cfg.loss.type} is reference-free: no reference model is loaded`);
    return null;
  }
  const [tr, te] = [pairCompletions(train), pairCompletions(test)];
  const r = referenceLogprobs(cfg.out, refDir, { trainChosen: tr.chosen, trainRejected: tr.rejected, testChosen: te.chosen, testRejected: te.rejected }, cfg.train.batchSize, say, load);
  return {
    train: { chosen: r.logprobs.trainChosen, rejected: r.logprobs.trainRejected },
    test: { chosen: r.logprobs.testChosen, rejected: r.logprobs.testRejected },
    cached: r.cached,
  };
}

/**
 * Trains the policy under `cfg` (any paired loss.type) into cfg.out (locked for the run), resuming from
 * its checkpoint when it holds this configuration.
 */
export async function trainDpo(cfg: DpoConfig, opts: DpoRunOptions = {}): Promise<DpoRunSummary> {
  checkDpoConfig(cfg);
  return withRunLock(cfg.out, () => runDpo(cfg, opts));
}

async function runDpo(cfg: DpoConfig, opts: DpoRunOptions): Promise<DpoRunSummary> {
  const t0 = Date.now();
  const say = progressLine(`[train ${methodName(cfg.loss.type)}]`, opts.progress);
  const load = opts.loadModel ?? loadModel;
  if (cfg.train.threads > 0) setNumThreads(cfg.train.threads);
  const policyDir = resolveModelDir(cfg.model.policy);
  const refDir = resolveModelDir(cfg.model.reference || cfg.model.policy);
  const tok = loadTokenizer(policyDir);
  const referenceFree = REFERENCE_FREE.has(cfg.loss.type as PreferenceLossType);
  if (!referenceFree) checkTokenizers(tok, loadTokenizer(refDir), { policy: cfg.model.policy, reference: cfg.model.reference || cfg.model.policy });
  const d = await prepareData(cfg, tok, say);
  const plan = new StepPlan(d.train.length, cfg.train, cfg.seed);
  resumable(cfg.out, cfg, opts.fresh ?? false, say); // refuse another configuration's directory before writing to it
  mkdirSync(cfg.out, { recursive: true });
  const ref = pairReference(cfg, refDir, d.train, d.test, say, load);

  const policy = load(policyDir).train();
  try {
    const run = openRun(cfg.out, cfg, policy, cfg.train, opts.fresh ?? false, say);
    if (run.resumedFrom !== null) say(`resuming from step ${run.resumedFrom}`);
    const lossFn = PREFERENCE_LOSSES[cfg.loss.type as PreferenceLossType];
    const evaluate = (step: number, final: boolean): DpoEval | null => {
      if (d.test.length === 0) return null;
      const e = evaluatePairs(policy, d.test, ref?.test ?? null, lossFn, cfg.loss, cfg.train.batchSize);
      run.logMetrics({ step, eval: { ...e, ...(final ? { final } : {}) } });
      say(`eval at step ${step}: held-out implicit-reward accuracy ${e.accuracy.toFixed(3)}, margin ${e.margin.toFixed(4)} (n ${e.n})`);
      return e;
    };
    try {
      const step = await runEpochLoop({
        ...policyLoop(run, policy, plan, cfg.train, { out: cfg.out, t0, say, signal: opts.signal }),
        // The loss of a step is a mean over all its micro-batches' pairs.
        step: (micro) => {
          const pairsInStep = micro.reduce((n, m) => n + m.length, 0);
          let loss = 0;
          const chosenRewards: number[] = [];
          const rejectedRewards: number[] = [];
          for (const idx of micro) {
            scope(() => {
              const lp = pairSequenceLogprobs(policy, idx.map((i) => d.train[i]!)); // (2B)
              const out = lossFn(lossBatch(lp, d.train, idx, ref?.train ?? null), cfg.loss);
              const l = out.losses.sum().div(pairsInStep);
              l.backward();
              loss += l.item();
              chosenRewards.push(...(out.chosenRewards.data() as Float32Array));
              rejectedRewards.push(...(out.rejectedRewards.data() as Float32Array));
            });
          }
          const s = rewardStats(chosenRewards, rejectedRewards);
          return { loss, metrics: { accuracy: s.accuracy, margin: s.margin, chosenReward: s.chosenReward, rejectedReward: s.rejectedReward } };
        },
        describe: (r) => `loss ${r.loss.toFixed(4)} acc ${(r.metrics.accuracy as number).toFixed(3)} margin ${(r.metrics.margin as number).toFixed(4)} lr ${r.lr.toExponential(2)}`,
        evaluate: (step) => evaluate(step, false),
      });
      saveModel(policy, join(cfg.out, 'model'), { extraFiles: tokenizerFiles(policyDir) });
      const final = evaluate(step, true);
      if (final) writeAtomic(join(cfg.out, 'eval.json'), JSON.stringify(final, null, 2));
      return {
        out: cfg.out, steps: step, resumedFrom: run.resumedFrom, seconds: (Date.now() - t0) / 1000,
        trainPairs: d.train.length, heldOutPairs: d.test.length, dropped: d.dropped, referenceCached: ref?.cached ?? null, eval: final,
      };
    } finally {
      run.opt.dispose();
    }
  } finally {
    policy.dispose();
  }
}
