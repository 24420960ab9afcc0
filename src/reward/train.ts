/**
 * Reward-model training (`rlhf train rm`): pairwise feedback → a backbone with a scalar head, trained
 * with a loss from losses.ts. The loop reads: batch → forward (chosen and rejected together) → loss →
 * backward (accumulated) → clip → schedule → step → log → evaluate → checkpoint. Checkpoints are atomic
 * and hold the model, the optimiser and the step, and the data order is a pure function of (seed,
 * epoch), so a resumed run continues exactly where an uninterrupted one would be.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AdamW, clipGradNorm, Generator, manualSeed, noGrad, scope, setNumThreads, type Tensor } from '../tensor/index.js';
import { lrAt } from '../nn/schedule.js';
import { loadTensors, saveTensors } from '../nn/serialize.js';
import { leftPad } from '../generate/generate.js';
import { loadModel, resolveModelDir, tokenizerFiles, writeDirAtomic } from '../models/hub.js';
import { LlamaForCausalLM, type LlamaConfig } from '../models/llama.js';
import type { CausalLM } from '../models/common.js';
import { loadTokenizer, type Tokenizer } from '../text/index.js';
import type { PairRecord } from '../data/types.js';
import { REWARD_LOSSES } from './losses.js';
import { evaluatePairs, type PairEvaluation } from './metrics.js';
import { RewardModel } from './model.js';
import { saveRewardModel } from './io.js';
import type { RewardTrainConfig } from './config.js';
import { loadPairs } from './pairs.js';

/** A pair as token ids: prompt + response, BOS first. */
export interface TokenizedPair {
  chosen: number[];
  rejected: number[];
  /** Response lengths in tokens (for length-bias metrics). */
  chosenLen: number;
  rejectedLen: number;
  record: PairRecord;
}

export function tokenizePairs(pairs: readonly PairRecord[], tok: Tokenizer, maxTokens: number): { pairs: TokenizedPair[]; tooLong: number } {
  const out: TokenizedPair[] = [];
  let tooLong = 0;
  for (const r of pairs) {
    const chosen = tok.encode(r.prompt + r.chosen, { addBos: true });
    const rejected = tok.encode(r.prompt + r.rejected, { addBos: true });
    if (Math.max(chosen.length, rejected.length) > maxTokens) {
      tooLong++;
      continue;
    }
    const promptLen = r.prompt ? tok.encode(r.prompt, { addBos: true }).length : 1;
    out.push({ chosen, rejected, chosenLen: chosen.length - promptLen, rejectedLen: rejected.length - promptLen, record: r });
  }
  return { pairs: out, tooLong };
}

/** Rewards (2B, K) of a batch: chosen rows first, then rejected, one left-padded forward. */
function pairRewards(rm: RewardModel, batch: readonly TokenizedPair[]): { chosen: Tensor; rejected: Tensor } {
  const { ids, mask } = leftPad([...batch.map((p) => p.chosen), ...batch.map((p) => p.rejected)]);
  const r = rm.rewards(ids, mask); // (2B, K)
  const b = batch.length;
  return { chosen: r.narrow(0, 0, b), rejected: r.narrow(0, b, b) };
}

/** Rewards of every pair (first head, or the heads' mean for an ensemble), without gradients. */
export function scorePairs(rm: RewardModel, pairs: readonly TokenizedPair[], batchSize = 32): { chosen: number[]; rejected: number[] } {
  const chosen: number[] = [];
  const rejected: number[] = [];
  noGrad(() => {
    for (let i = 0; i < pairs.length; i += batchSize) {
      scope(() => {
        const r = pairRewards(rm, pairs.slice(i, i + batchSize));
        chosen.push(...(r.chosen.mean(1).data() as Float32Array));
        rejected.push(...(r.rejected.mean(1).data() as Float32Array));
      });
    }
  });
  return { chosen, rejected };
}

export function evaluateRewardModel(rm: RewardModel, pairs: readonly TokenizedPair[], seed: number): PairEvaluation {
  const s = scorePairs(rm, pairs);
  return evaluatePairs({
    chosen: s.chosen, rejected: s.rejected,
    chosenLen: pairs.map((p) => p.chosenLen), rejectedLen: pairs.map((p) => p.rejectedLen),
    annotator: pairs.map((p) => p.record.meta.annotator), source: pairs.map((p) => p.record.meta.source),
    confidence: pairs.map((p) => p.record.meta.confidence),
  }, { seed });
}

/** mulberry32: a small seeded PRNG for the data order. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The order of the training pairs in `epoch`: a pure function of (seed, epoch), so resume needs no RNG state. */
export function epochOrder(n: number, seed: number, epoch: number): number[] {
  const rand = prng((seed * 1000003 + epoch * 7919) >>> 0);
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [p[i], p[j]] = [p[j]!, p[i]!];
  }
  return p;
}

function buildBackbone(cfg: RewardTrainConfig, tok: Tokenizer, gen: Generator): CausalLM {
  if (cfg.model.init === 'pretrained') return loadModel(cfg.model.base);
  const s = cfg.model.scratch;
  if (s.hiddenSize % s.heads !== 0) throw new Error(`model.scratch.hiddenSize ${s.hiddenSize} must be divisible by model.scratch.heads ${s.heads}`);
  const config: LlamaConfig = {
    architecture: 'llama', modelType: 'llama', vocabSize: tok.vocabSize, hiddenSize: s.hiddenSize, intermediateSize: s.intermediateSize,
    numLayers: s.layers, numHeads: s.heads, numKvHeads: s.heads, headDim: s.hiddenSize / s.heads, maxPositions: s.maxPositions,
    rmsNormEps: 1e-5, ropeTheta: 10000, ropeScaling: null, tieWordEmbeddings: true, qkvBias: false, oBias: false, mlpBias: false,
    initializerRange: 0.02, bosTokenId: tok.bosId, eosTokenIds: [...tok.eosIds], padTokenId: tok.padId,
  };
  return new LlamaForCausalLM(config, { generator: gen });
}

interface TrainerState {
  step: number;
  config: RewardTrainConfig;
}

/** Writes the resumable state atomically: model and optimiser tensors, the step, the config. */
function saveCheckpoint(dir: string, rm: RewardModel, opt: AdamW, state: TrainerState): void {
  writeDirAtomic(dir, (tmp) => {
    saveTensors(join(tmp, 'model.safetensors'), rm.stateDict());
    const os = opt.stateDict();
    const tensors = new Map<string, Tensor>();
    const steps: (number | null)[] = [];
    os.params.forEach((p, i) => {
      steps.push(p ? p.step ?? 0 : null);
      p?.buffers.forEach((b, j) => tensors.set(`${i}.${j}`, b));
    });
    saveTensors(join(tmp, 'optimizer.safetensors'), tensors, { steps: JSON.stringify(steps), lrs: JSON.stringify(os.lrs) });
    for (const t of tensors.values()) t.dispose();
    writeFileSync(join(tmp, 'trainer.json'), JSON.stringify(state, null, 2));
  });
}

function loadCheckpoint(dir: string, rm: RewardModel, opt: AdamW): number {
  const state = JSON.parse(readFileSync(join(dir, 'trainer.json'), 'utf8')) as TrainerState;
  const m = loadTensors(join(dir, 'model.safetensors'));
  rm.loadStateDict(m.tensors, { source: dir });
  for (const t of m.tensors.values()) t.dispose();
  const o = loadTensors(join(dir, 'optimizer.safetensors'));
  const steps = JSON.parse(o.metadata.steps ?? '[]') as (number | null)[];
  opt.loadStateDict({
    kind: 'adamw', lrs: JSON.parse(o.metadata.lrs ?? '[]') as number[],
    params: steps.map((s, i) => (s === null ? null : { step: s, buffers: [o.tensors.get(`${i}.0`)!, o.tensors.get(`${i}.1`)!] })),
  });
  for (const t of o.tensors.values()) t.dispose();
  return state.step;
}

export interface RewardRunSummary {
  out: string;
  steps: number;
  resumedFrom: number | null;
  seconds: number;
  trainPairs: number;
  heldOutPairs: number;
  dropped: { invalid: number; tooLong: number };
  rewardMean: number;
  rewardStd: number;
  eval: PairEvaluation | null;
}

export async function trainRewardModel(cfg: RewardTrainConfig, opts: { fresh?: boolean; progress?: (line: string) => void } = {}): Promise<RewardRunSummary> {
  const t0 = Date.now();
  const say = opts.progress ?? ((l: string) => process.stderr.write(l + '\n'));
  if (cfg.train.threads > 0) setNumThreads(cfg.train.threads);
  manualSeed(cfg.seed);
  const baseDir = resolveModelDir(cfg.model.base);
  if (cfg.model.tokenizer && cfg.model.init !== 'scratch') throw new Error("model.tokenizer applies to init 'scratch' only (a pretrained backbone keeps its own)");
  const tokDir = cfg.model.tokenizer ? resolveModelDir(cfg.model.tokenizer) : baseDir;
  const tok = loadTokenizer(tokDir);

  // ---- data
  const train = await loadPairs(cfg.data, 'train');
  const test = await loadPairs(cfg.data, 'test');
  let trainPairs = tokenizePairs(train.pairs, tok, cfg.data.maxTokens);
  const testPairs = tokenizePairs(test.pairs, tok, cfg.data.maxTokens);
  if (cfg.data.limit > 0) trainPairs = { ...trainPairs, pairs: trainPairs.pairs.slice(0, cfg.data.limit) };
  if (trainPairs.pairs.length === 0) throw new Error(`${cfg.data.path}: no training pairs left after splitting and length limits`);
  // Split from one file, both parts read all of it: count its invalid lines once.
  const invalid = cfg.data.testPath ? train.invalid + test.invalid : train.invalid;
  say(`[train rm] ${trainPairs.pairs.length} training pairs, ${testPairs.pairs.length} held out (${invalid} invalid, ${trainPairs.tooLong + testPairs.tooLong} over ${cfg.data.maxTokens} tokens)`);

  mkdirSync(cfg.out, { recursive: true });

  // ---- model and optimiser
  const gen = new Generator(cfg.seed);
  const rm = new RewardModel(buildBackbone(cfg, tok, gen), { heads: cfg.model.heads }, { generator: gen });
  gen.dispose();
  if (cfg.model.headOnly) rm.freeze((n) => !n.startsWith('score.'));
  const opt = new AdamW(rm.trainableParameters(), { lr: cfg.train.lr, weightDecay: cfg.train.weightDecay });
  const microPerEpoch = Math.ceil(trainPairs.pairs.length / cfg.train.batchSize);
  const stepsPerEpoch = Math.ceil(microPerEpoch / cfg.train.gradAccum);
  const totalSteps = cfg.train.maxSteps > 0 ? Math.min(cfg.train.maxSteps, stepsPerEpoch * cfg.train.epochs) : stepsPerEpoch * cfg.train.epochs;
  const schedule = { kind: cfg.train.schedule as 'constant' | 'linear' | 'cosine', warmupSteps: Math.min(cfg.train.warmupSteps, totalSteps), totalSteps };

  // ---- resume
  const ckpt = join(cfg.out, 'checkpoint');
  const metricsPath = join(cfg.out, 'metrics.jsonl');
  let step = 0;
  let resumedFrom: number | null = null;
  if (!opts.fresh && existsSync(join(ckpt, 'trainer.json'))) {
    const saved = (JSON.parse(readFileSync(join(ckpt, 'trainer.json'), 'utf8')) as TrainerState).config;
    if (JSON.stringify(saved) !== JSON.stringify(cfg)) {
      throw new Error(`${cfg.out} holds a checkpoint of a different configuration: use another --out, or --fresh to start over`);
    }
    step = loadCheckpoint(ckpt, rm, opt);
    resumedFrom = step;
    say(`[train rm] resuming from step ${step}`);
  }
  // Metrics past the resumed step belong to the interrupted run: keep only what the checkpoint covers.
  const kept = existsSync(metricsPath) && resumedFrom !== null
    ? readFileSync(metricsPath, 'utf8').split('\n').filter((l) => l && (JSON.parse(l) as { step: number }).step <= step)
    : [];
  writeFileSync(`${metricsPath}.tmp`, kept.map((l) => l + '\n').join(''));
  renameSync(`${metricsPath}.tmp`, metricsPath);
  const logMetrics = (m: Record<string, unknown>) => writeFileSync(metricsPath, JSON.stringify(m) + '\n', { flag: 'a' });

  const lossName = cfg.loss.type as 'bradley_terry' | 'label_smoothed_bt';
  let lastEval: PairEvaluation | null = null;
  const evalSet = cfg.train.evalLimit > 0 ? testPairs.pairs.slice(0, cfg.train.evalLimit) : testPairs.pairs;
  try {
    for (; step < totalSteps; ) {
      // ---- one optimiser step over gradAccum micro-batches
      const lr = lrAt(step, cfg.train.lr, schedule);
      opt.setLr(lr);
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
      for (let m = 0; m < cfg.train.gradAccum; m++) {
        const micro = step * cfg.train.gradAccum + m;
        const epoch = Math.floor(micro / microPerEpoch);
        const pos = (micro % microPerEpoch) * cfg.train.batchSize;
        const order = epochOrder(trainPairs.pairs.length, cfg.seed, epoch);
        const batch = order.slice(pos, pos + cfg.train.batchSize).map((i) => trainPairs.pairs[i]!);
        scope(() => {
          const { chosen, rejected } = pairRewards(rm, batch);
          let loss = lossName === 'label_smoothed_bt'
            ? REWARD_LOSSES.label_smoothed_bt({ chosen, rejected, margin: cfg.loss.margin, labelSmoothing: cfg.loss.labelSmoothing })
            : REWARD_LOSSES.bradley_terry({ chosen, rejected, margin: cfg.loss.margin });
          if (cfg.loss.centerCoef > 0) loss = loss.add(REWARD_LOSSES.centering({ chosen, rejected, coefficient: cfg.loss.centerCoef }));
          loss.div(cfg.train.gradAccum).backward();
          lossSum += loss.item();
          correct += chosen.gt(rejected).float().sum().item() / chosen.size(1);
          seen += batch.length;
        });
      }
      const gradNorm = cfg.train.clipGradNorm > 0 ? clipGradNorm(rm.trainableParameters(), cfg.train.clipGradNorm) : null;
      opt.step();
      opt.zeroGrad();
      step++;
      const row = { step, loss: lossSum / cfg.train.gradAccum, accuracy: correct / seen, lr, gradNorm, seconds: (Date.now() - t0) / 1000 };
      logMetrics(row);
      say(`[train rm] step ${step}/${totalSteps} loss ${row.loss.toFixed(4)} acc ${row.accuracy.toFixed(3)} lr ${lr.toExponential(2)}`);
      if (cfg.train.evalEvery > 0 && step % cfg.train.evalEvery === 0 && step < totalSteps && evalSet.length) {
        lastEval = evaluateRewardModel(rm, evalSet, cfg.seed);
        logMetrics({ step, eval: { accuracy: lastEval.accuracy, ece: lastEval.ece, n: lastEval.n } });
        say(`[train rm] eval at step ${step}: accuracy ${lastEval.accuracy.toFixed(3)} ece ${lastEval.ece.toFixed(3)} (n ${lastEval.n})`);
      }
      if (cfg.train.checkpointEvery > 0 && step % cfg.train.checkpointEvery === 0) saveCheckpoint(ckpt, rm, opt, { step, config: cfg });
    }
    saveCheckpoint(ckpt, rm, opt, { step, config: cfg });

    // ---- reward statistics on a reference set (training responses), for normalisation in RL
    const ref = trainPairs.pairs.slice(0, 256);
    const s = scorePairs(rm, ref);
    const all = [...s.chosen, ...s.rejected];
    const mean = all.reduce((a, b) => a + b, 0) / all.length;
    const std = Math.sqrt(all.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, all.length - 1));
    rm.head.mean = mean;
    rm.head.std = std;
    saveRewardModel(rm, join(cfg.out, 'model'), { extraFiles: tokenizerFiles(tokDir) });
    lastEval = testPairs.pairs.length ? evaluateRewardModel(rm, testPairs.pairs, cfg.seed) : null;
    if (lastEval) {
      writeFileSync(join(cfg.out, 'eval.json'), JSON.stringify(lastEval, null, 2));
      logMetrics({ step, eval: { accuracy: lastEval.accuracy, ece: lastEval.ece, n: lastEval.n, final: true } });
    }
    return {
      out: cfg.out, steps: step, resumedFrom, seconds: (Date.now() - t0) / 1000,
      trainPairs: trainPairs.pairs.length, heldOutPairs: testPairs.pairs.length,
      dropped: { invalid, tooLong: trainPairs.tooLong + testPairs.tooLong },
      rewardMean: mean, rewardStd: std, eval: lastEval,
    };
  } finally {
    opt.dispose();
    rm.dispose();
  }
}

