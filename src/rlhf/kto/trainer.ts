/**
 * Kahneman–Tversky Optimization (`rlhf train kto`; Ethayarajh et al. 2024) on unpaired feedback. The loop
 * reads: reference log-probs (once, cached; DPO's cache) → per step: completions → policy log-probs (one
 * forward of B sequences) → reference point z0 → KTO loss over the step's completion count → backward
 * (accumulated) → clip → schedule → step → log → evaluate → checkpoint.
 *
 * Everything around the loop is shared: the step plan, schedule, checkpoints and resume (../offline.ts),
 * the reference cache, pair scoring and held-out evaluation (../reference.ts). Held-out evaluation is on
 * preference PAIRS with KTO's own implicit reward β(log π − log π_ref), exactly DPO's.
 */
import { mean } from '../../stats.js';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { scope, setNumThreads, tensor } from '../../tensor/index.js';
import { loadModel, resolveModelDir, tokenizerFiles } from '../../models/hub.js';
import { disposePolicy, savePolicy, trainablePart } from '../../models/adapted.js';
import type { CausalLM } from '../../models/common.js';
import { scoreCompletions } from '../../generate/score.js';
import { cannotFit, loadTokenizer, type Tokenizer } from '../../text/index.js';
import { loadFeedback, type BinaryRecord } from '../../data/index.js';
import { loadRewardRecords } from '../../reward/pairs.js';
import { ktoLoss, ktoReferencePoint, PREFERENCE_LOSSES } from '../core/preference.js';
import { type OfflineRunOptions, openPolicyRun, policyAndReference, policyLoop, progressLine, resumable, StepPlan } from '../offline.js';
import { runEpochLoop } from '../../nn/train-loop.js';
import { withRunLock } from '../../run-dir.js';
import {
  checkTokenizers, evaluatePolicyPairs, impliedPairs, pairCompletions, type PairEval, referenceLogprobs, tokenPairs, wrongShapeError,
  type TokenCompletion, type TokenPair,
} from '../reference.js';
import { checkKtoConfig, type KtoConfig } from './config.js';
import { writeAtomic } from '../../atomic.js';

/** A completion as token ids with its label. */
export interface TokenLabelled extends TokenCompletion {
  desirable: boolean;
}

// ---- data

/** Records as token ids, split where the prompt encoded alone ends (as the pair trainers split); over maxTokens dropped. */
export function tokenizeLabelled(records: readonly BinaryRecord[], tok: Tokenizer, maxTokens: number): { items: TokenLabelled[]; tooLong: number } {
  const items: TokenLabelled[] = [];
  let tooLong = 0;
  for (const r of records) {
    // Measured before it is encoded: a record whose characters alone are too many costs nothing.
    const ids = cannotFit(tok, maxTokens, r.prompt, r.completion) ? null : tok.encode(r.prompt + r.completion, { addBos: true });
    if (ids === null || ids.length > maxTokens) {
      tooLong++;
      continue;
    }
    const promptLen = r.prompt ? tok.encode(r.prompt, { addBos: true }).length : 1;
    items.push({ prompt: ids.slice(0, promptLen), completion: ids.slice(promptLen), desirable: r.label });
  }
  return { items, tooLong };
}

async function prepareData(cfg: KtoConfig, tok: Tokenizer, say: (l: string) => void) {
  let train: Awaited<ReturnType<typeof loadFeedback>>;
  try {
    train = await loadFeedback(cfg.data.path, { format: 'binary', skipInvalid: cfg.data.skipInvalid });
  } catch (e) {
    throw (await wrongShapeError(e, 'unpaired', 'kto')) ?? e;
  }
  const t = tokenizeLabelled(train.records as BinaryRecord[], tok, cfg.data.maxTokens);
  const items = cfg.data.limit > 0 ? t.items.slice(0, cfg.data.limit) : t.items;
  let test: { pairs: TokenPair[]; tooLong: number } = { pairs: [], tooLong: 0 };
  let testInvalid = 0;
  if (cfg.data.testPath) {
    const src = { path: cfg.data.testPath, testPath: cfg.data.testPath, format: cfg.data.testFormat, splitSeed: 0, splitRatio: 0, skipInvalid: cfg.data.skipInvalid };
    try {
      const r = await loadRewardRecords(src, 'test');
      testInvalid = r.invalid;
      test = tokenPairs(impliedPairs(r.records), tok, cfg.data.maxTokens);
    } catch (e) {
      throw (await wrongShapeError(e, 'paired', 'kto evaluation (data.testPath)')) ?? e;
    }
  }
  const desirable = items.filter((x) => x.desirable).length;
  const dropped = { invalid: train.report.invalid.count + testInvalid, tooLong: t.tooLong + test.tooLong };
  say(`${items.length} training completions (${desirable} desirable, ${items.length - desirable} undesirable), ${test.pairs.length} held-out pairs (${dropped.invalid} invalid, ${dropped.tooLong} over ${cfg.data.maxTokens} tokens)`);
  return { train: items, test: test.pairs, desirable, dropped };
}

// ---- the run

/** What trainKto returns: steps, completions used and dropped, the held-out pair evaluation. */
export interface KtoRunSummary {
  out: string;
  steps: number;
  resumedFrom: number | null;
  seconds: number;
  trainCompletions: number;
  desirable: number;
  undesirable: number;
  heldOutPairs: number;
  dropped: { invalid: number; tooLong: number };
  /** Whether the reference log-probs came from out/reference-logprobs.json. */
  referenceCached: boolean;
  /** Final held-out implicit-reward evaluation on pairs (null without data.testPath). */
  eval: PairEval | null;
}

/**
 * Trains the policy under `cfg` into cfg.out (locked for the run), resuming from its checkpoint when it
 * holds this configuration.
 */
export async function trainKto(cfg: KtoConfig, opts: OfflineRunOptions = {}): Promise<KtoRunSummary> {
  checkKtoConfig(cfg);
  return withRunLock(cfg.out, () => runKto(cfg, opts));
}

/** A metric's mean, null when the step had none of that kind. */
const meanOrNull = (x: number[]) => (x.length ? mean(x) : null);

async function runKto(cfg: KtoConfig, opts: OfflineRunOptions): Promise<KtoRunSummary> {
  const t0 = Date.now();
  const say = progressLine('[train kto]', opts.progress);
  const load = opts.loadModel ?? loadModel;
  if (!cfg.data.path) throw new Error('data.path is required (unpaired {prompt, completion, label} JSONL)');
  if (cfg.train.threads > 0) setNumThreads(cfg.train.threads);
  const policyDir = resolveModelDir(cfg.model.policy);
  const refDir = resolveModelDir(cfg.model.reference || cfg.model.policy);
  const tok = loadTokenizer(policyDir);
  checkTokenizers(tok, loadTokenizer(refDir), { policy: cfg.model.policy, reference: cfg.model.reference || cfg.model.policy });
  const d = await prepareData(cfg, tok, say);
  const plan = new StepPlan(d.train.length, cfg.train, cfg.seed);
  resumable(cfg.out, cfg, opts.fresh ?? false, say); // refuse another configuration's directory before writing to it
  mkdirSync(cfg.out, { recursive: true });
  const test = pairCompletions(d.test);
  const { policy: p, ref } = policyAndReference(policyDir, cfg.lora, { seed: cfg.seed, load }, (loadRef) =>
    referenceLogprobs(cfg.out, refDir, { train: d.train, testChosen: test.chosen, testRejected: test.rejected }, cfg.train.batchSize, say, loadRef));
  const refTest = { chosen: ref.logprobs.testChosen, rejected: ref.logprobs.testRejected };
  const policy: CausalLM = p.model.train();
  try {
    const run = openPolicyRun(cfg.out, cfg, trainablePart(p), cfg.train, opts.fresh ?? false, say);
    if (run.resumedFrom !== null) say(`resuming from step ${run.resumedFrom}`);
    const evaluate = (step: number, final: boolean): PairEval | null => {
      if (d.test.length === 0) return null;
      const e = evaluatePolicyPairs(policy, d.test, refTest, PREFERENCE_LOSSES.sigmoid, { beta: cfg.loss.beta, labelSmoothing: 0 }, cfg.train.batchSize);
      run.logMetrics({ step, eval: { ...e, ...(final ? { final } : {}) } });
      say(`eval at step ${step}: held-out implicit-reward accuracy ${e.accuracy.toFixed(3)}, margin ${e.margin.toFixed(4)} (n ${e.n})`);
      return e;
    };
    try {
      const step = await runEpochLoop({
        ...policyLoop(run, trainablePart(p), plan, cfg.train, { out: cfg.out, t0, say, signal: opts.signal }),
        // The loss of a step is a mean over all its micro-batches' completions.
        step: (micro) => {
          const inStep = micro.reduce((n, m) => n + m.length, 0);
          let loss = 0;
          let kl = 0;
          const up: number[] = [];
          const down: number[] = [];
          for (const idx of micro) {
            scope(() => {
              const items = idx.map((i) => d.train[i]!);
              const lp = scoreCompletions(policy, items.map((x) => x.prompt), items.map((x) => x.completion)).logprobs.sum(1); // (B)
              const refLp = Float32Array.from(idx, (i) => ref.logprobs.train[i]!);
              const z0 = ktoReferencePoint(lp.data() as Float32Array, refLp);
              const desirable = tensor(Float32Array.from(items, (x) => (x.desirable ? 1 : 0)));
              const out = ktoLoss({ policy: lp, reference: tensor(refLp), desirable, z0 }, cfg.loss);
              const l = out.losses.sum().div(inStep);
              l.backward();
              loss += l.item();
              kl += (z0 * idx.length) / inStep;
              (out.rewards.data() as Float32Array).forEach((r, j) => (items[j]!.desirable ? up : down).push(r));
            });
          }
          return { loss, metrics: { kl, desirableReward: meanOrNull(up), undesirableReward: meanOrNull(down) } };
        },
        describe: (r) => {
          const [dr, ur] = [r.metrics.desirableReward as number | null, r.metrics.undesirableReward as number | null];
          return `loss ${r.loss.toFixed(4)} z0 ${(r.metrics.kl as number).toFixed(4)} reward +${dr?.toFixed(4) ?? '–'} / −${ur?.toFixed(4) ?? '–'} lr ${r.lr.toExponential(2)}`;
        },
        evaluate: (step) => evaluate(step, false),
      });
      savePolicy(p, join(cfg.out, 'model'), { extraFiles: tokenizerFiles(policyDir), adapterDir: join(cfg.out, 'adapter'), baseModel: cfg.model.policy });
      const final = evaluate(step, true);
      if (final) writeAtomic(join(cfg.out, 'eval.json'), JSON.stringify(final, null, 2));
      return {
        out: cfg.out, steps: step, resumedFrom: run.resumedFrom, seconds: (Date.now() - t0) / 1000, trainCompletions: d.train.length,
        desirable: d.desirable, undesirable: d.train.length - d.desirable, heldOutPairs: d.test.length, dropped: d.dropped, referenceCached: ref.cached, eval: final,
      };
    } finally {
      run.opt.dispose();
    }
  } finally {
    disposePolicy(p);
  }
}
