/**
 * Direct Preference Optimization (`rlhf train dpo`; Rafailov et al. 2023). The loop reads: reference
 * log-probs (once, cached) → per step: pairs → policy log-probs of chosen and rejected (one forward of
 * 2B sequences) → preference loss over the step's pair count → backward (accumulated) → clip → schedule
 * → step → log → evaluate → checkpoint.
 *
 * The reference is frozen, so its summed completion log-probs are computed once for every training and
 * held-out pair (no gradient, batched), kept in memory and in out/reference-logprobs.json under a hash
 * of the reference and the tokenized data; a resumed run reads them back, and the reference model is
 * disposed before training starts. Implicit rewards are β(log π − log π_ref) of each response (summed
 * over completion tokens; prompt tokens never count).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { clipGradNorm, noGrad, scope, setNumThreads, type Tensor, tensor } from '../../tensor/index.js';
import { loadModel, readJson, resolveModelDir, saveModel, tokenizerFiles } from '../../models/hub.js';
import type { CausalLM } from '../../models/common.js';
import { scoreCompletions } from '../../generate/score.js';
import { loadTokenizer, type Tokenizer } from '../../text/index.js';
import type { PairRecord } from '../../data/index.js';
import { loadRewardRecords, tokenizeRecords, type RewardRecord } from '../../reward/pairs.js';
import { pairAccuracy, PREFERENCE_LOSSES, type PreferenceLossType } from '../core/preference.js';
import { openRun, progressLine, resumable, StepPlan } from '../offline.js';
import { checkDpoConfig, type DpoConfig } from './config.js';

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
function tokenPairs(records: readonly PairRecord[], tok: Tokenizer, maxTokens: number): { pairs: TokenPair[]; tooLong: number } {
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

/** The cache key: the reference (its directory, config and weights file's size and time) and the token ids of every pair. */
function referenceKey(refDir: string, train: readonly TokenPair[], test: readonly TokenPair[]): string {
  const weights = ['model.safetensors', 'model.safetensors.index.json'].filter((f) => existsSync(join(refDir, f))).map((f) => {
    const s = statSync(join(refDir, f));
    return [f, s.size, s.mtimeMs];
  });
  return createHash('sha256').update(JSON.stringify({ refDir, config: readJson(join(refDir, 'config.json')), weights, train, test })).digest('hex');
}

interface ReferenceCache {
  key: string;
  train: { chosen: number[]; rejected: number[] };
  test: { chosen: number[]; rejected: number[] };
}

/**
 * The reference's summed log-probs of the training and held-out pairs: read from out/reference-logprobs.json
 * when its key matches, else computed (the reference loaded, scored, disposed) and written atomically.
 * JSON holds float32 values exactly, so a resumed run sees the very numbers the first run trained on.
 */
function referenceLogprobs(cfg: DpoConfig, refDir: string, train: readonly TokenPair[], test: readonly TokenPair[], say: (l: string) => void): { train: PairLogprobs; test: PairLogprobs; cached: boolean } {
  const path = join(cfg.out, 'reference-logprobs.json');
  const key = referenceKey(refDir, train, test);
  const f32 = (x: { chosen: number[]; rejected: number[] }): PairLogprobs => ({ chosen: Float32Array.from(x.chosen), rejected: Float32Array.from(x.rejected) });
  if (existsSync(path)) {
    const c = JSON.parse(readFileSync(path, 'utf8')) as ReferenceCache;
    if (c.key === key) {
      say(`reference log-probs read from ${path}`);
      return { train: f32(c.train), test: f32(c.test), cached: true };
    }
  }
  const t0 = Date.now();
  const ref = loadModel(refDir);
  let out: { train: PairLogprobs; test: PairLogprobs };
  try {
    out = { train: scorePairs(ref, train, cfg.train.batchSize), test: scorePairs(ref, test, cfg.train.batchSize) };
  } finally {
    ref.dispose();
  }
  const arr = (x: PairLogprobs) => ({ chosen: [...x.chosen], rejected: [...x.rejected] });
  writeFileSync(`${path}.tmp`, JSON.stringify({ key, train: arr(out.train), test: arr(out.test) } satisfies ReferenceCache));
  renameSync(`${path}.tmp`, path);
  say(`reference log-probs of ${train.length + test.length} pairs computed in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return { ...out, cached: false };
}

// ---- evaluation

/** Held-out implicit-reward evaluation: accuracy (ties ½), mean margin β(h), pairs n. */
export interface DpoEval {
  accuracy: number;
  margin: number;
  chosenReward: number;
  rejectedReward: number;
  n: number;
}

function rewardStats(chosen: ArrayLike<number>, rejected: ArrayLike<number>): DpoEval {
  const n = chosen.length;
  let c = 0;
  let r = 0;
  for (let i = 0; i < n; i++) {
    c += chosen[i]!;
    r += rejected[i]!;
  }
  return { accuracy: pairAccuracy(chosen, rejected), margin: (c - r) / n, chosenReward: c / n, rejectedReward: r / n, n };
}

/** Implicit rewards of the held-out pairs under the current policy. */
export function evaluatePairs(policy: CausalLM, pairs: readonly TokenPair[], ref: PairLogprobs, beta: number, batchSize: number): DpoEval {
  const lp = scorePairs(policy, pairs, batchSize);
  return rewardStats(lp.chosen.map((x, i) => beta * (x - ref.chosen[i]!)), lp.rejected.map((x, i) => beta * (x - ref.rejected[i]!)));
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
  /** Whether the reference log-probs came from out/reference-logprobs.json. */
  referenceCached: boolean;
  /** Final held-out implicit-reward evaluation (null without held-out pairs). */
  eval: DpoEval | null;
}

export interface DpoRunOptions {
  fresh?: boolean;
  progress?: (line: string) => void;
}

async function prepareData(cfg: DpoConfig, tok: Tokenizer, say: (l: string) => void) {
  const trainRaw = await loadRewardRecords(cfg.data, 'train');
  const testRaw = await loadRewardRecords(cfg.data, 'test');
  const train = tokenPairs(impliedPairs(trainRaw.records), tok, cfg.data.maxTokens);
  const test = tokenPairs(impliedPairs(testRaw.records), tok, cfg.data.maxTokens);
  const pairs = cfg.data.limit > 0 ? train.pairs.slice(0, cfg.data.limit) : train.pairs;
  // Split from one file, both parts read all of it: count its invalid lines once.
  const invalid = trainRaw.invalid + (cfg.data.testPath ? testRaw.invalid : 0);
  const dropped = { invalid, tooLong: train.tooLong + test.tooLong };
  say(`${pairs.length} training pairs, ${test.pairs.length} held out (${invalid} invalid, ${dropped.tooLong} over ${cfg.data.maxTokens} tokens)`);
  return { train: pairs, test: test.pairs, dropped };
}

export async function trainDpo(cfg: DpoConfig, opts: DpoRunOptions = {}): Promise<DpoRunSummary> {
  const t0 = Date.now();
  const say = progressLine('[train dpo]', opts.progress);
  checkDpoConfig(cfg);
  if (cfg.train.threads > 0) setNumThreads(cfg.train.threads);
  const policyDir = resolveModelDir(cfg.model.policy);
  const refDir = resolveModelDir(cfg.model.reference || cfg.model.policy);
  const tok = loadTokenizer(policyDir);
  checkTokenizers(tok, loadTokenizer(refDir), { policy: cfg.model.policy, reference: cfg.model.reference || cfg.model.policy });
  const d = await prepareData(cfg, tok, say);
  const plan = new StepPlan(d.train.length, cfg.train, cfg.seed);
  resumable(cfg.out, cfg, opts.fresh ?? false); // refuse another configuration's directory before writing to it
  mkdirSync(cfg.out, { recursive: true });
  const ref = referenceLogprobs(cfg, refDir, d.train, d.test, say);

  const policy = loadModel(policyDir).train();
  try {
    const run = openRun(cfg.out, cfg, policy, cfg.train, opts.fresh ?? false);
    if (run.resumedFrom !== null) say(`resuming from step ${run.resumedFrom}`);
    const lossFn = PREFERENCE_LOSSES[cfg.loss.type as PreferenceLossType];
    const evaluate = (step: number, final: boolean): DpoEval | null => {
      if (d.test.length === 0) return null;
      const e = evaluatePairs(policy, d.test, ref.test, cfg.loss.beta, cfg.train.batchSize);
      run.logMetrics({ step, eval: { ...e, ...(final ? { final } : {}) } });
      say(`eval at step ${step}: held-out implicit-reward accuracy ${e.accuracy.toFixed(3)}, margin ${e.margin.toFixed(4)} (n ${e.n})`);
      return e;
    };
    let step = run.resumedFrom ?? 0;
    try {
      while (step < plan.totalSteps) {
        // ---- one optimiser step over gradAccum micro-batches; the loss is a mean over all their pairs
        const lr = plan.lr(step);
        run.opt.setLr(lr);
        const micro = plan.step(step).filter((m) => m.length > 0);
        const pairsInStep = micro.reduce((n, m) => n + m.length, 0);
        let loss = 0;
        const chosenRewards: number[] = [];
        const rejectedRewards: number[] = [];
        for (const idx of micro) {
          scope(() => {
            const lp = pairSequenceLogprobs(policy, idx.map((i) => d.train[i]!)); // (2B)
            const b = idx.length;
            const refOf = (x: Float32Array) => tensor(Float32Array.from(idx, (i) => x[i]!));
            const out = lossFn({ policyChosen: lp.narrow(0, 0, b), policyRejected: lp.narrow(0, b, b), refChosen: refOf(ref.train.chosen), refRejected: refOf(ref.train.rejected) }, cfg.loss);
            const l = out.losses.sum().div(pairsInStep);
            l.backward();
            loss += l.item();
            chosenRewards.push(...(out.chosenRewards.data() as Float32Array));
            rejectedRewards.push(...(out.rejectedRewards.data() as Float32Array));
          });
        }
        const gradNorm = cfg.train.clipGradNorm > 0 ? clipGradNorm(policy.trainableParameters(), cfg.train.clipGradNorm) : null;
        run.opt.step();
        run.opt.zeroGrad();
        step++;
        // ---- log, evaluate, checkpoint
        const s = rewardStats(chosenRewards, rejectedRewards);
        run.logMetrics({ step, loss, accuracy: s.accuracy, margin: s.margin, chosenReward: s.chosenReward, rejectedReward: s.rejectedReward, lr, gradNorm, seconds: (Date.now() - t0) / 1000 });
        say(`step ${step}/${plan.totalSteps} loss ${loss.toFixed(4)} acc ${s.accuracy.toFixed(3)} margin ${s.margin.toFixed(4)} lr ${lr.toExponential(2)}`);
        if (cfg.train.evalEvery > 0 && step % cfg.train.evalEvery === 0 && step < plan.totalSteps) evaluate(step, false);
        if (cfg.train.checkpointEvery > 0 && step % cfg.train.checkpointEvery === 0) run.checkpoint(step);
      }
      run.checkpoint(step);
      saveModel(policy, join(cfg.out, 'model'), { extraFiles: tokenizerFiles(policyDir) });
      const final = evaluate(step, true);
      if (final) writeFileSync(join(cfg.out, 'eval.json'), JSON.stringify(final, null, 2));
      return {
        out: cfg.out, steps: step, resumedFrom: run.resumedFrom, seconds: (Date.now() - t0) / 1000,
        trainPairs: d.train.length, heldOutPairs: d.test.length, dropped: d.dropped, referenceCached: ref.cached, eval: final,
      };
    } finally {
      run.opt.dispose();
    }
  } finally {
    policy.dispose();
  }
}
