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
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { scope, setNumThreads } from '../../tensor/index.js';
import { loadModel, resolveModelDir, tokenizerFiles } from '../../models/hub.js';
import { disposePolicy, savePolicy, trainablePart } from '../../models/adapted.js';
import type { CausalLM } from '../../models/common.js';
import { loadTokenizer, type Tokenizer } from '../../text/index.js';
import { loadRewardRecords } from '../../reward/pairs.js';
import { PREFERENCE_LOSSES, REFERENCE_FREE } from '../core/preference.js';
import { type OfflineRunOptions, openPolicyRun, policyLoop, policyAndReference, progressLine, resumable, StepPlan } from '../offline.js';
import {
  checkTokenizers, evaluatePolicyPairs, impliedPairs, pairCompletions, pairLossBatch, pairSequenceLogprobs, type PairEval,
  referenceLogprobs, rewardStats, tokenPairs, type TokenPair, wrongShapeError,
} from '../reference.js';
import { runEpochLoop } from '../../nn/train-loop.js';
import { withRunLock } from '../../run-dir.js';
import { checkDpoConfig, type DpoConfig } from './config.js';
import { writeAtomic } from '../../atomic.js';

/** DPO's held-out evaluation: the pair evaluation of src/rlhf/reference.ts. */
export type DpoEval = PairEval;

// ---- the run

/** What trainDpo returns: steps, pairs used and dropped, whether the reference log-probs were cached, the held-out evaluation. */
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

/** DPO's run options: the offline trainers' own (src/rlhf/offline.ts). */
export type DpoRunOptions = OfflineRunOptions;

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
  if (REFERENCE_FREE.has(cfg.loss.type)) {
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
  const referenceFree = REFERENCE_FREE.has(cfg.loss.type);
  if (!referenceFree) checkTokenizers(tok, loadTokenizer(refDir), { policy: cfg.model.policy, reference: cfg.model.reference || cfg.model.policy });
  const d = await prepareData(cfg, tok, say);
  const plan = new StepPlan(d.train.length, cfg.train, cfg.seed);
  resumable(cfg.out, cfg, opts.fresh ?? false, say); // refuse another configuration's directory before writing to it
  mkdirSync(cfg.out, { recursive: true });
  const { policy: p, ref } = policyAndReference(policyDir, cfg.lora, { seed: cfg.seed, load }, (loadRef) => pairReference(cfg, refDir, d.train, d.test, say, loadRef));
  const policy = p.model.train();
  try {
    const run = openPolicyRun(cfg.out, cfg, trainablePart(p), cfg.train, opts.fresh ?? false, say);
    if (run.resumedFrom !== null) say(`resuming from step ${run.resumedFrom}`);
    const lossFn = PREFERENCE_LOSSES[cfg.loss.type];
    const evaluate = (step: number, final: boolean): DpoEval | null => {
      if (d.test.length === 0) return null;
      const e = evaluatePolicyPairs(policy, d.test, ref?.test ?? null, lossFn, cfg.loss, cfg.train.batchSize);
      run.logMetrics({ step, eval: { ...e, ...(final ? { final } : {}) } });
      say(`eval at step ${step}: held-out implicit-reward accuracy ${e.accuracy.toFixed(3)}, margin ${e.margin.toFixed(4)} (n ${e.n})`);
      return e;
    };
    try {
      const step = await runEpochLoop({
        ...policyLoop(run, trainablePart(p), plan, cfg.train, { out: cfg.out, t0, say, signal: opts.signal }),
        // The loss of a step is a mean over all its micro-batches' pairs.
        step: (micro) => {
          const pairsInStep = micro.reduce((n, m) => n + m.length, 0);
          let loss = 0;
          const chosenRewards: number[] = [];
          const rejectedRewards: number[] = [];
          for (const idx of micro) {
            scope(() => {
              const lp = pairSequenceLogprobs(policy, idx.map((i) => d.train[i]!)); // (2B)
              const out = lossFn(pairLossBatch(lp, d.train, idx, ref?.train ?? null), cfg.loss);
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
      savePolicy(p, join(cfg.out, 'model'), { extraFiles: tokenizerFiles(policyDir), adapterDir: join(cfg.out, 'adapter'), baseModel: cfg.model.policy });
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
    disposePolicy(p);
  }
}
