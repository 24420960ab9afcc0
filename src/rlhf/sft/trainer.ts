/**
 * Supervised fine-tuning (`rlhf train sft`): a causal LM maximises the likelihood of completions given
 * their prompts. The loop reads: rows → forward (one micro-batch of rows) → completion-only loss over the
 * step's token count → backward (accumulated) → clip → schedule → step → log → evaluate → checkpoint.
 *
 * The loss of a step is −Σ log π(completion tokens) / (completion tokens in the whole step), so gradAccum
 * micro-batches give the same update as one batch of their union (the padding never enters: attention is
 * masked per example and padded positions weigh 0). Prompt positions weigh 0.
 *
 * Packing (data.packing): several examples share a row; the attention bias is block-diagonal causal, so
 * no token attends across an example boundary, and position ids restart at 0 in each example — a packed
 * row computes exactly what its examples compute alone.
 */
import { join } from 'node:path';
import { noGrad, scope, setNumThreads, type Tensor, tensor } from '../../tensor/index.js';
import { resolveModelDir, tokenizerFiles } from '../../models/hub.js';
import { disposePolicy, loadPolicy, savePolicy, trainablePart } from '../../models/adapted.js';
import type { CausalLM } from '../../models/common.js';
import { headLogprobs } from '../../generate/score.js';
import { checkpointedBackward } from '../../models/checkpointing.js';
import { loadTokenizer } from '../../text/index.js';
import { openPolicyRun, policyLoop, progressLine, StepPlan } from '../offline.js';
import { runEpochLoop } from '../../nn/train-loop.js';
import { withRunLock } from '../../run-dir.js';
import type { SftConfig } from './config.js';
import { buildRows, loadSftExamples, rowTargets, tokenizeExamples, type TokenizedExample } from './data.js';

/** A micro-batch of rows as tensors: right-padded ids, their positions, the attention bias and the target weights. */
export interface SftBatch {
  /** (R, T) token ids, padding 0. */
  ids: Tensor;
  /** (R, T) position of each token inside its own example. */
  positions: Tensor;
  /** (R, 1, T, T) additive attention bias: 0 where query t may read key j (same example, j ≤ t), −∞ elsewhere. */
  bias: Tensor;
  /** (R, T−1) 1 where token t+1 is a completion token (a target), else 0. */
  weights: Tensor;
  /** Σ weights. */
  targets: number;
}

/** Builds the tensors of rows of packed examples (a row of one example is the unpacked case). */
export function collateRows(examples: readonly TokenizedExample[], rows: readonly (readonly number[])[]): SftBatch {
  const r = rows.length;
  const t = Math.max(...rows.map((row) => row.reduce((n, i) => n + examples[i]!.ids.length, 0)));
  const ids = new BigInt64Array(r * t);
  const pos = new BigInt64Array(r * t);
  const seg = new Int32Array(r * t).fill(-1);
  const w = new Float32Array(r * (t - 1));
  let targets = 0;
  rows.forEach((row, b) => {
    let off = 0;
    row.forEach((i, s) => {
      const e = examples[i]!;
      e.ids.forEach((id, j) => {
        ids[b * t + off + j] = BigInt(id);
        pos[b * t + off + j] = BigInt(j);
        seg[b * t + off + j] = s;
        if (j >= e.promptLen) {
          w[b * (t - 1) + off + j - 1] = 1; // column c scores token c+1
          targets++;
        }
      });
      off += e.ids.length;
    });
  });
  const bias = new Float32Array(r * t * t).fill(-Infinity);
  for (let b = 0; b < r; b++) {
    for (let q = 0; q < t; q++) {
      const sq = seg[b * t + q]!;
      const base = (b * t + q) * t;
      if (sq < 0) bias[base + q] = 0; // padding attends itself: no all −∞ softmax row
      else for (let k = q; k >= 0 && seg[b * t + k] === sq; k--) bias[base + k] = 0;
    }
  }
  return {
    ids: tensor(ids, { shape: [r, t] }), positions: tensor(pos, { shape: [r, t] }),
    bias: tensor(bias, { shape: [r, 1, t, t] }), weights: tensor(w, { shape: [r, t - 1] }), targets,
  };
}

/** Per-token log-probs (R, T−1) of a collated batch: column c is log p(ids[c+1] | its example's ids ≤ c). */
export function rowLogprobs(model: CausalLM, batch: SftBatch, hidden?: Tensor): Tensor {
  const h = hidden ?? model.hidden(batch.ids, { bias: batch.bias, positionIds: batch.positions }); // (R, T, C)
  const t = batch.ids.size(1);
  return headLogprobs(model, h.narrow(1, 0, t - 1), batch.ids.narrow(1, 1, t - 1)).logprobs; // (R, T−1), the logits in chunks
}

/** The micro-batch's share of the step loss: −Σ (log-prob · weight) / tokenCount (the step's target count); from `hidden` when given. */
export function sftLoss(model: CausalLM, batch: SftBatch, tokenCount: number, hidden?: Tensor): Tensor {
  return rowLogprobs(model, batch, hidden).mul(batch.weights).sum().neg().div(Math.max(1, tokenCount));
}

/**
 * Forward and backward of a micro-batch's loss; returns the loss. With `checkpointing` the blocks are
 * recomputed in backward (src/models/checkpointing.ts): the same gradients, less activation memory.
 */
function sftBackward(model: CausalLM, batch: SftBatch, tokenCount: number, checkpointing: boolean): number {
  if (checkpointing) return checkpointedBackward(model, batch.ids, { bias: batch.bias, positionIds: batch.positions }, (h) => sftLoss(model, batch, tokenCount, h));
  const l = sftLoss(model, batch, tokenCount);
  l.backward();
  return l.item();
}

/** Mean negative log-likelihood per completion token of held-out examples (no gradient). */
export function heldOutLoss(model: CausalLM, examples: readonly TokenizedExample[], batchSize: number): { loss: number; tokens: number } {
  let sum = 0;
  let tokens = 0;
  noGrad(() => {
    for (let i = 0; i < examples.length; i += batchSize) {
      const rows = Array.from({ length: Math.min(batchSize, examples.length - i) }, (_, j) => [i + j]);
      scope(() => {
        const b = collateRows(examples, rows);
        sum -= rowLogprobs(model, b).mul(b.weights).sum().item();
        tokens += b.targets;
      });
    }
  });
  return { loss: tokens > 0 ? sum / tokens : NaN, tokens };
}

/** What trainSft returns: steps, examples used and dropped, the held-out loss. */
export interface SftRunSummary {
  out: string;
  steps: number;
  resumedFrom: number | null;
  seconds: number;
  trainExamples: number;
  /** Packed rows (= trainExamples without packing). */
  trainRows: number;
  heldOutExamples: number;
  dropped: { invalid: number; tooLong: number };
  /** Final held-out NLL per completion token (null without a held-out part). */
  eval: { loss: number; tokens: number } | null;
}

/** Options of trainSft: a fresh start, progress lines, an abort signal. */
export interface SftRunOptions {
  fresh?: boolean;
  progress?: (line: string) => void;
  /** Stops before the next step with a checkpoint written (InterruptedError); a rerun resumes. */
  signal?: AbortSignal;
}

async function prepareData(cfg: SftConfig, say: (l: string) => void, eosId: number | null) {
  const tok = loadTokenizer(resolveModelDir(cfg.model.policy));
  const trainRaw = await loadSftExamples(cfg.data, 'train');
  const testRaw = await loadSftExamples(cfg.data, 'test');
  const opts = { maxTokens: cfg.data.maxTokens, eosId };
  const train = tokenizeExamples(cfg.data.limit > 0 ? trainRaw.examples.slice(0, cfg.data.limit) : trainRaw.examples, tok, opts);
  const test = tokenizeExamples(testRaw.examples, tok, opts);
  // Split from one file, both parts read all of it: count its invalid lines once.
  const invalid = trainRaw.invalid + (cfg.data.testPath ? testRaw.invalid : 0);
  const rows = buildRows(train.examples, { packing: cfg.data.packing, maxTokens: cfg.data.maxTokens, seed: cfg.seed });
  const dropped = { invalid, tooLong: train.tooLong + test.tooLong };
  say(`${train.examples.length} training examples${cfg.data.packing ? ` in ${rows.length} packed rows` : ''}, ${test.examples.length} held out (${invalid} invalid, ${dropped.tooLong} over ${cfg.data.maxTokens} tokens)`);
  return { train: train.examples, test: test.examples, rows, dropped };
}

/**
 * Trains the policy under `cfg` into cfg.out (locked for the run), resuming from its checkpoint when it
 * holds this configuration.
 */
export async function trainSft(cfg: SftConfig, opts: SftRunOptions = {}): Promise<SftRunSummary> {
  return withRunLock(cfg.out, () => runSft(cfg, opts));
}

async function runSft(cfg: SftConfig, opts: SftRunOptions): Promise<SftRunSummary> {
  const t0 = Date.now();
  const say = progressLine('[train sft]', opts.progress);
  if (cfg.train.threads > 0) setNumThreads(cfg.train.threads);
  const p = loadPolicy(cfg.model.policy, cfg.lora, { seed: cfg.seed });
  const policy = p.model.train();
  try {
    const eosId = cfg.data.appendEos ? policy.config.eosTokenIds[0] ?? null : null;
    const d = await prepareData(cfg, say, eosId);
    const plan = new StepPlan(d.rows.length, cfg.train, cfg.seed);
    const run = openPolicyRun(cfg.out, cfg, trainablePart(p), cfg.train, opts.fresh ?? false, say);
    if (run.resumedFrom !== null) say(`resuming from step ${run.resumedFrom}`);
    const evaluate = (step: number, final: boolean) => {
      if (d.test.length === 0) return null;
      const e = heldOutLoss(policy, d.test, cfg.train.batchSize);
      run.logMetrics({ step, eval: { ...e, ...(final ? { final } : {}) } });
      say(`eval at step ${step}: held-out loss ${e.loss.toFixed(4)} per token (${e.tokens} tokens)`);
      return e;
    };
    try {
      const step = await runEpochLoop({
        ...policyLoop(run, trainablePart(p), plan, cfg.train, { out: cfg.out, t0, say, signal: opts.signal }),
        // The loss of a step is normalised by all its micro-batches' completion tokens.
        step: (idx) => {
          const micro = idx.map((m) => m.map((i) => d.rows[i]!));
          const tokens = micro.flat().reduce((n, row) => n + rowTargets(d.train, row), 0);
          let loss = 0;
          for (const rows of micro) {
            scope(() => {
              loss += sftBackward(policy, collateRows(d.train, rows), tokens, cfg.model.gradientCheckpointing);
            });
          }
          return { loss, metrics: { tokens } };
        },
        describe: (r) => `loss ${r.loss.toFixed(4)} tokens ${r.metrics.tokens as number} lr ${r.lr.toExponential(2)}`,
        evaluate: (step) => evaluate(step, false),
      });
      savePolicy(p, join(cfg.out, 'model'), { extraFiles: tokenizerFiles(resolveModelDir(cfg.model.policy)), adapterDir: join(cfg.out, 'adapter'), baseModel: cfg.model.policy });
      const final = evaluate(step, true);
      return {
        out: cfg.out, steps: step, resumedFrom: run.resumedFrom, seconds: (Date.now() - t0) / 1000,
        trainExamples: d.train.length, trainRows: d.rows.length, heldOutExamples: d.test.length, dropped: d.dropped, eval: final,
      };
    } finally {
      run.opt.dispose();
    }
  } finally {
    disposePolicy(p);
  }
}
