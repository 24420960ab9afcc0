/**
 * `rlhf bench peers`: rlhf-ts's trainers against TRL's own (bench/baseline/peers.py), in one run on one
 * machine: the same model and weights, data (the same token ids), batch, sequence lengths, learning rate and
 * schedule, steps, clip, weight decay, fp32, and thread counts (libtorch's and OpenBLAS's on both sides).
 * Each repetition is a whole training run per side, interleaved (ours, theirs, theirs, ours, …); a step's
 * time is the mean interval between step ends after the first `warm` steps (our metrics.jsonl's `seconds`,
 * TRL's on_step_end), so start-up, data preparation, the reference pass and the final evaluation are out.
 *
 * - rm: a reward model on SST-2 pairs (configs/rm-sst2.yaml's scratch Llama backbone over the GPT-2 BPE); TRL's
 *   RewardTrainer on AutoModelForSequenceClassification loaded from the backbone we saved (the same weights;
 *   the 1×D score head is each side's own random init), pre-tokenized ids. Quality: held-out pair accuracy.
 * - dpo: DPO (sigmoid, β 0.1) on stories260K with AFINN-sentiment pairs sampled from it (`sentimentPairs`),
 *   the reference log-probs cached on both sides; TRL tokenizes text, through a tokenizer built from
 *   tokenizer.bin (checked here to give our ids; `checks.tokenizer`), and appends EOS to each completion.
 *   Quality: held-out implicit-reward accuracy and margin, the last steps' training loss.
 *
 * - grpo: GRPO on stories260K from BOS with the AFINN comparative reward, no vLLM; TRL's GRPOTrainer with its
 *   reward function in Python over npm sentiment's own lexicon (checked against ours here). Both sides also time
 *   generation, scoring (rewards, reference log-probs) and the update; TRL's by wrapping `_generate` and
 *   `_generate_and_score_completions`. Quality: the mean training reward of the last 5 steps.
 * TRL is not a requirement of the suite: scripts/setup-peers.sh installs it into .venv-peers/ (over .venv/'s
 * torch, so the same libtorch), and this bench says so when it is missing.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { makeConfig } from '../src/config.js';
import { loadRewardRecords, tokenizeRecords } from '../src/reward/pairs.js';
import { REWARD_DEFAULTS, REWARD_SCHEMA, type RewardTrainConfig } from '../src/reward/config.js';
import { trainRewardModel } from '../src/reward/train.js';
import { DPO_DEFAULTS, DPO_SCHEMA, type DpoConfig } from '../src/rlhf/dpo/config.js';
import { trainDpo } from '../src/rlhf/dpo/trainer.js';
import { GRPO_DEFAULTS, GRPO_SCHEMA, type GrpoConfig } from '../src/rlhf/grpo/config.js';
import { trainGrpo } from '../src/rlhf/grpo/trainer.js';
import { REWARD_FUNCTIONS } from '../src/reward/functions.js';
import { sentimentPairs, writePairs } from '../src/rlhf/dpo/synthetic-pairs.js';
import { tokenPairs } from '../src/rlhf/reference.js';
import { LlamaForCausalLM } from '../src/models/llama.js';
import { loadModel, resolveModelDir, saveModel, tokenizerFiles } from '../src/models/hub.js';
import { loadTokenizer } from '../src/text/index.js';
import type { PairRecord } from '../src/data/types.js';
import { Generator, getNumThreads, setNumThreads } from '../src/tensor/index.js';
import { baselineDir, type BenchResult, captureEnv, log, PythonBaseline, stats, type Stats } from './common.js';

export interface PeersBenchOptions {
  /** Interleaved runs per side and workload (default 5; quick: 1). */
  reps?: number;
  /** libtorch + OpenBLAS threads on both sides (default 1: these models are too small for more, FINDINGS). */
  threads?: number;
  /** Interpreter with trl (default $RLHF_PEERS_PYTHON, else .venv-peers/bin/python). */
  python?: string;
  /** A few steps and one repetition: checks the machinery, measures nothing. */
  quick?: boolean;
}

export const PEERS_INSTALL = 'scripts/setup-peers.sh (installs trl==1.13.0 and transformers into .venv-peers/, over .venv/\'s torch)';

const ROOT = resolve(baselineDir(), '..', '..');

/** The interpreter with TRL: --python, $RLHF_PEERS_PYTHON, else .venv-peers/bin/python; a clear error when there is none. */
export function peersPython(python?: string): string {
  const p = python ?? process.env.RLHF_PEERS_PYTHON ?? join(ROOT, '.venv-peers', 'bin', 'python');
  if (!existsSync(p)) throw new Error(`rlhf bench peers needs TRL: run ${PEERS_INSTALL}, or pass --python with an interpreter that has trl (${p} does not exist)`);
  return p;
}

/** Mean seconds per step after the first `warm`, from a run's metrics.jsonl (rows with `step` and cumulative `seconds`). */
export function stepSecondsFromMetrics(file: string, warm: number): { stepSeconds: number; steps: number; lastLoss: number } {
  const rows = readFileSync(file, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((r) => typeof r.step === 'number' && typeof r.seconds === 'number' && r.eval === undefined);
  if (rows.length <= warm) throw new Error(`${file}: ${rows.length} steps, need more than warm=${warm}`);
  const at = (i: number) => rows[i]!.seconds as number;
  const last = rows.slice(-5).map((r) => r.loss as number);
  return { stepSeconds: (at(rows.length - 1) - at(warm - 1)) / (rows.length - warm), steps: rows.length, lastLoss: last.reduce((a, b) => a + b, 0) / last.length };
}

interface Workload {
  name: string;
  ours(): Promise<Record<string, number>>;
  theirs(): Promise<Record<string, number>>;
  /** The quality figures both sides report, compared in `quality`. */
  quality: string[];
  /** Phases of a step both sides time (each gets its own ratio, `<name>.<phase>`). */
  split?: string[];
}

/** The settings both sides share for a workload: sent to peers.py, mirrored in our config. */
interface Shared {
  steps: number;
  warm: number;
  batchSize: number;
  lr: number;
  warmupSteps: number;
  weightDecay: number;
  clipGradNorm: number;
  maxTokens: number;
  seed: number;
}

// ---- reward model on SST-2 ----------------------------------------------------------------------------

async function rmWorkload(work: string, s: Shared, baseline: PythonBaseline, threads: number): Promise<Workload> {
  // configs/rm-sst2.yaml's scratch backbone, saved once so that both sides start from the same weights.
  const tokDir = join(ROOT, 'assets', 'gpt2-bpe');
  const tok = loadTokenizer(tokDir);
  const backbone = join(work, 'rm-backbone');
  const gen = new Generator(s.seed);
  const lm = new LlamaForCausalLM({
    architecture: 'llama', modelType: 'llama', vocabSize: tok.vocabSize, hiddenSize: 64, intermediateSize: 172, numLayers: 2, numHeads: 4, numKvHeads: 4,
    headDim: 16, maxPositions: 256, rmsNormEps: 1e-5, ropeTheta: 10000, ropeScaling: null, tieWordEmbeddings: true, qkvBias: false, oBias: false,
    mlpBias: false, initializerRange: 0.02, bosTokenId: tok.bosId, eosTokenIds: [...tok.eosIds], padTokenId: tok.padId,
    qkNorm: false, slidingWindow: null, slidingLayers: [false, false],
  }, { generator: gen });
  saveModel(lm, backbone, { extraFiles: tokenizerFiles(tokDir) });
  lm.dispose();
  gen.dispose();
  const cfg = (out: string): RewardTrainConfig => makeConfig(REWARD_DEFAULTS, REWARD_SCHEMA, {
    seed: s.seed, out,
    data: { path: join(ROOT, 'data/sst2/stsa.binary.train'), testPath: join(ROOT, 'data/sst2/stsa.binary.test'), format: 'sst2', maxTokens: s.maxTokens },
    model: { init: 'pretrained', base: backbone },
    train: { epochs: 100, maxSteps: s.steps, batchSize: s.batchSize, lr: s.lr, warmupSteps: s.warmupSteps, weightDecay: s.weightDecay, clipGradNorm: s.clipGradNorm, threads },
  });
  // The same token ids for TRL: our loader and tokenizer, as the trainer reads them.
  const ids = async (part: 'train' | 'test') => {
    const recs = tokenizeRecords((await loadRewardRecords(cfg('').data, part)).records, tok, s.maxTokens).records;
    return { chosen: recs.map((r) => r.seqs[0]!), rejected: recs.map((r) => r.seqs[1]!) };
  };
  const data = { train: await ids('train'), test: await ids('test') };
  let run = 0;
  return {
    name: 'rm', quality: ['accuracy', 'trainLoss'],
    async ours() {
      const out = join(work, `rm-ours-${run++}`);
      const r = await trainRewardModel(cfg(out), { progress: () => {}, fresh: true });
      const t = stepSecondsFromMetrics(join(out, 'metrics.jsonl'), s.warm);
      rmSync(out, { recursive: true, force: true });
      return { stepSeconds: t.stepSeconds, steps: t.steps, accuracy: r.eval?.accuracy ?? NaN, trainLoss: t.lastLoss };
    },
    async theirs() {
      const r = await baseline.request({ case: 'rm', model: backbone, padId: tok.padId ?? tok.eosIds[0], ...s, ...data });
      return r as Record<string, number>;
    },
  };
}

// ---- DPO on stories260K -------------------------------------------------------------------------------

async function dpoWorkload(work: string, s: Shared & { beta: number; pairs: number; heldOut: number }, baseline: PythonBaseline, threads: number): Promise<Workload> {
  const dir = resolveModelDir('stories260k');
  const tok = loadTokenizer(dir);
  const sampler = loadModel(dir);
  const train = sentimentPairs(sampler, tok, { n: s.pairs, seed: 1, maxNewTokens: 48 });
  const test = sentimentPairs(sampler, tok, { n: s.heldOut, seed: 2, maxNewTokens: 48 });
  sampler.dispose();
  writePairs(join(work, 'dpo-train.jsonl'), train);
  writePairs(join(work, 'dpo-test.jsonl'), test);
  // TRL tokenizes text: its tokenizer must give our ids (checked on every training text).
  const texts = train.flatMap((p) => [p.prompt + p.chosen, p.prompt + p.rejected]);
  const tokCheck = await baseline.request({ case: 'tokenizer', texts, ids: texts.map((t) => tok.encode(t, { addBos: true })) });
  if ((tokCheck.mismatchCount as number) > 0) throw new Error(`peers dpo: the Hugging Face tokenizer built from tokenizer.bin differs from ours on ${tokCheck.mismatchCount} texts, e.g. ${JSON.stringify(tokCheck.mismatches)}`);
  const cfg = (out: string): DpoConfig => makeConfig(DPO_DEFAULTS, DPO_SCHEMA, {
    seed: s.seed, out,
    data: { path: join(work, 'dpo-train.jsonl'), testPath: join(work, 'dpo-test.jsonl'), format: 'pairwise', maxTokens: s.maxTokens },
    loss: { type: 'sigmoid', beta: s.beta },
    train: { epochs: 100, maxSteps: s.steps, batchSize: s.batchSize, lr: s.lr, warmupSteps: s.warmupSteps, weightDecay: s.weightDecay, clipGradNorm: s.clipGradNorm, threads },
  });
  // The held-out ids TRL's evaluation scores: read as our trainer reads them.
  const testIds = tokenPairs((await loadRewardRecords(cfg('').data, 'test')).records as PairRecord[], tok, s.maxTokens).pairs;
  let run = 0;
  return {
    name: 'dpo', quality: ['accuracy', 'margin', 'trainLoss'],
    async ours() {
      const out = join(work, `dpo-ours-${run++}`);
      const r = await trainDpo(cfg(out), { progress: () => {}, fresh: true });
      const t = stepSecondsFromMetrics(join(out, 'metrics.jsonl'), s.warm);
      rmSync(out, { recursive: true, force: true });
      return { stepSeconds: t.stepSeconds, steps: t.steps, accuracy: r.eval?.accuracy ?? NaN, margin: r.eval?.margin ?? NaN, trainLoss: t.lastLoss };
    },
    async theirs() {
      const r = await baseline.request({
        case: 'dpo', ...s,
        train: { prompt: train.map((p) => p.prompt), chosen: train.map((p) => p.chosen), rejected: train.map((p) => p.rejected) },
        test: { prompt: testIds.map((p) => p.prompt), chosen: testIds.map((p) => p.chosen), rejected: testIds.map((p) => p.rejected) },
      });
      return r as Record<string, number>;
    },
  };
}

// ---- GRPO on stories260K ------------------------------------------------------------------------------

async function grpoWorkload(work: string, s: { steps: number; warm: number; seed: number; weightDecay: number; prompts: number; samplesPerPrompt: number; maxNewTokens: number; lr: number; klCoef: number; clipGradNorm: number }, baseline: PythonBaseline, threads: number): Promise<Workload> {
  // TRL's reward function is Python: npm sentiment's AFINN-165 comparative score re-implemented over the
  // package's own lexicon (peers.py), checked here against ours on samples of the model.
  const lexicon = join(ROOT, 'node_modules', 'sentiment', 'languages', 'en');
  const dir = resolveModelDir('stories260k');
  const sampler = loadModel(dir);
  const texts = sentimentPairs(sampler, loadTokenizer(dir), { n: 32, seed: 3, maxNewTokens: 48 }).flatMap((p) => [p.chosen, p.rejected]);
  sampler.dispose();
  texts.push('', 'not good. Not bad!', 'I don\'t like it\n\nat all');
  const check = await baseline.request({ case: 'reward', lexicon, texts, rewards: texts.map((t) => REWARD_FUNCTIONS.afinn_comparative!(t)) });
  if ((check.mismatchCount as number) > 0) throw new Error(`peers grpo: the Python AFINN score differs from ours on ${check.mismatchCount} texts, e.g. ${JSON.stringify(check.mismatches)}`);
  const cfg = (out: string): GrpoConfig => makeConfig(GRPO_DEFAULTS, GRPO_SCHEMA, {
    seed: s.seed, out,
    // TRL stops only at the tokenizer's EOS (</s>), which stories260K almost never samples within 48 tokens
    // (its stories end with BOS, where ours stops): every TRL completion runs the full length, so ours does too.
    rollout: { prompts: s.prompts, samplesPerPrompt: s.samplesPerPrompt, maxNewTokens: s.maxNewTokens, ignoreEos: true },
    kl: { coef: s.klCoef, estimator: 'k3' },
    train: { steps: s.steps, lr: s.lr, clipGradNorm: s.clipGradNorm, evalEvery: 0, evalSamples: 0, checkpointEvery: 0, threads },
  });
  let run = 0;
  return {
    name: 'grpo', quality: ['reward', 'length'], split: ['generation', 'scoring', 'update'],
    async ours() {
      const out = join(work, `grpo-ours-${run++}`);
      await trainGrpo(cfg(out), { progress: () => {}, fresh: true });
      const rows = readFileSync(join(out, 'metrics.jsonl'), 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Record<string, unknown>)
        .filter((r) => typeof r.reward === 'number' && r.seconds !== undefined);
      rmSync(out, { recursive: true, force: true });
      const timed = rows.slice(s.warm);
      const mean = (f: (r: Record<string, unknown>) => number, xs = timed) => xs.reduce((a, r) => a + f(r), 0) / xs.length;
      const sec = (k: string) => (r: Record<string, unknown>) => (r.seconds as Record<string, number>)[k] ?? 0;
      const [generation, scoring, update] = [mean(sec('generation')), mean(sec('scoring')), mean(sec('update'))];
      // Our step's phases cover it all but the row's bookkeeping (metrics, log line): the step is their sum.
      return {
        stepSeconds: generation + scoring + update, steps: rows.length, generation, scoring, update,
        reward: mean((r) => r.reward as number, rows.slice(-5)), length: mean((r) => r.length as number, rows),
      };
    },
    async theirs() {
      return (await baseline.request({ case: 'grpo', lexicon, ...s })) as Record<string, number>;
    },
  };
}

// ---- the bench ----------------------------------------------------------------------------------------

export async function runPeersBench(opts: PeersBenchOptions = {}): Promise<BenchResult> {
  const quick = opts.quick ?? false;
  const reps = opts.reps ?? (quick ? 1 : 5);
  if (!(Number.isInteger(reps) && reps >= 1)) throw new Error(`reps must be a positive integer, got ${reps}`);
  const threads = opts.threads ?? 1;
  if (!(Number.isInteger(threads) && threads >= 1)) throw new Error(`threads must be a positive integer, got ${threads}`);
  const python = peersPython(opts.python);
  const previousThreads = getNumThreads().torch;
  log(`peers: starting TRL (${python}), ${threads} thread(s) each side, ${reps} reps${quick ? ', quick' : ''}`);
  const baseline = await PythonBaseline.start('peers.py', { python, threads });
  setNumThreads(threads);
  const work = mkdtempSync(join(tmpdir(), 'rlhf-peers-'));
  try {
    const versions = await baseline.request({ case: 'versions' });
    const steps = quick ? 6 : 60;
    const warm = quick ? 2 : 10;
    const workloads = [
      await rmWorkload(work, { steps, warm, batchSize: 32, lr: 3e-3, warmupSteps: quick ? 2 : 20, weightDecay: 0.01, clipGradNorm: 1, maxTokens: 128, seed: 0 }, baseline, threads),
      await dpoWorkload(work, {
        steps: quick ? 6 : 40, warm, batchSize: 16, lr: 3e-4, warmupSteps: quick ? 2 : 10, weightDecay: 0, clipGradNorm: 1, maxTokens: 128, seed: 0,
        beta: 0.1, pairs: quick ? 96 : 640, heldOut: quick ? 32 : 200,
      }, baseline, threads),
      await grpoWorkload(work, {
        steps: quick ? 5 : 30, warm: quick ? 2 : 5, seed: 0, weightDecay: 0, prompts: 8, samplesPerPrompt: 8, maxNewTokens: quick ? 16 : 48, lr: 1e-4, klCoef: 0.04, clipGradNorm: 1,
      }, baseline, threads),
    ];
    const results: BenchResult['results'] = {};
    const ratios: Record<string, number> = {};
    const quality: Record<string, Record<string, { ours: Stats; theirs: Stats }>> = {};
    const trlOptim: Record<string, unknown> = {};
    for (const w of workloads) {
      const ours: Record<string, number>[] = [];
      const theirs: Record<string, number>[] = [];
      for (let r = 0; r < reps; r++) {
        // ABBA order so that a load drifting during the run does not always fall on one side.
        if (r % 2 === 0) ours.push(await w.ours());
        theirs.push(await w.theirs());
        if (r % 2 === 1) ours.push(await w.ours());
        log(`${w.name} rep ${r + 1}: ours ${ours.at(-1)!.stepSeconds!.toFixed(4)} s/step, TRL ${theirs.at(-1)!.stepSeconds!.toFixed(4)} s/step`);
      }
      trlOptim[w.name] = (theirs[0] as Record<string, unknown>).optim; // a name, among the numbers
      const drifted = theirs.find((x) => x.threadsAfter !== threads);
      if (drifted) throw new Error(`peers ${w.name}: TRL's run left torch at ${drifted.threadsAfter} threads, not ${threads}: the comparison would not be same-threads`);
      const o = stats(ours.map((x) => x.stepSeconds!));
      const t = stats(theirs.map((x) => x.stepSeconds!));
      results[w.name] = { ours: o, theirs: t, unit: 's/step' };
      ratios[w.name] = t.median / o.median;
      for (const k of w.split ?? []) {
        const [po, pt] = [stats(ours.map((x) => x[k]!)), stats(theirs.map((x) => x[k]!))];
        results[`${w.name}.${k}`] = { ours: po, theirs: pt, unit: 's/step' };
        ratios[`${w.name}.${k}`] = pt.median / po.median;
      }
      quality[w.name] = Object.fromEntries(w.quality.map((k) => [k, { ours: stats(ours.map((x) => x[k]!)), theirs: stats(theirs.map((x) => x[k]!)) }]));
      log(`${w.name}: ours ${o.median.toFixed(4)} s/step, TRL ${t.median.toFixed(4)}; ratio ${ratios[w.name]!.toFixed(3)}`);
    }
    const env = {
      ...captureEnv(baseline.info, { reps, quick }),
      peers: versions,
      settings: {
        threads, steps, warm, optimizer: 'AdamW, fused where libtorch has it on both sides', trlOptim,
        rm: 'SST-2 pairs, batch 32 pairs, lr 3e-3 cosine, warm-up 20, wd 0.01 (not on 1-D), clip 1, ≤ 128 tokens',
        dpo: 'stories260K, sentiment pairs (48 new tokens), batch 16 pairs, lr 3e-4 cosine, warm-up 10, β 0.1, clip 1, reference precomputed',
        grpo: `stories260K from BOS, 8 prompts × 8 samples × ${quick ? 16 : 48} new tokens (temperature 1), AFINN comparative reward, k3 KL β 0.04 in the loss, token-mean loss (TRL bnpo), group std scaling, lr 1e-4 constant, one update per rollout, no vLLM`,
      },
    };
    return { bench: 'peers', env, results, ratios, quality };
  } finally {
    await baseline.close();
    rmSync(work, { recursive: true, force: true });
    if (threads !== previousThreads) setNumThreads(previousThreads);
  }
}
