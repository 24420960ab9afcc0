/**
 * `rlhf demo`, the main job: reward-model over-optimisation (Goodhart) measured on the embedded default,
 * after Gao et al. (2022). Phases, each resumable (a finished phase leaves a done-marker written last;
 * the RL phase resumes from its checkpoint):
 *   1. preferences — pairs of fresh samples of the initial policy, labelled by synthetic annotators
 *      through Bradley–Terry on the gold reward (gold.ts);
 *   2. proxy — a reward model on the policy's backbone, trained on those labels;
 *   3. rl — PPO (or GRPO) against the proxy, gold and proxy measured on fresh samples along the way;
 *   4. best-of-n — n candidates ranked by the proxy, the chosen one's gold and proxy, for n = 1, 2, 4, …;
 *   5. report — Gao et al.'s forms fitted to gold vs √KL, report.html, metrics.jsonl, summary.json.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setNumThreads } from '../tensor/index.js';
import { loadModel, resolveModelDir } from '../models/hub.js';
import { loadTokenizer } from '../text/index.js';
import { validateConfig } from '../config.js';
import { REWARD_DEFAULTS, REWARD_SCHEMA } from '../reward/config.js';
import { trainRewardModel } from '../reward/train.js';
import { parseRewardSpec } from '../rlhf/rewards.js';
import { sample } from '../rlhf/online/rollout.js';
import type { OnlineRunSummary } from '../rlhf/online/trainer.js';
import { PPO_DEFAULTS, PPO_SCHEMA } from '../rlhf/ppo/config.js';
import { trainPpo } from '../rlhf/ppo/trainer.js';
import { GRPO_DEFAULTS, GRPO_SCHEMA } from '../rlhf/grpo/config.js';
import { trainGrpo } from '../rlhf/grpo/trainer.js';
import { bestOfFirst, bestOfN } from '../rlhf/bon.js';
import { annotatePairs, toJsonl } from './annotators.js';
import { goldReward } from './gold.js';
import { klBestOfN } from './fit.js';
import type { DemoConfig } from './demo-config.js';
import { analyse, type BonPoint, type DemoSummary, type RlPoint, type SampleSet } from './demo-report.js';
import { writeAtomic, readJsonFile } from '../atomic.js';
import { lockRunDir } from '../run-dir.js';

export interface DemoOptions {
  progress?: (line: string) => void;
  signal?: AbortSignal;
}

/** A phase runs unless its done-marker holds this configuration's fingerprint. */
export function phase<T>(out: string, name: string, fingerprint: unknown, run: () => Promise<T>): Promise<T> {
  const marker = join(out, `${name}.done.json`);
  if (existsSync(marker)) {
    const saved = readJsonFile<{ fingerprint: unknown; result: T }>(marker);
    if (JSON.stringify(saved.fingerprint) === JSON.stringify(fingerprint)) return Promise.resolve(saved.result);
  }
  return run().then((result) => {
    writeAtomic(marker, JSON.stringify({ fingerprint, result }));
    return result;
  });
}

const SAMPLING = (cfg: DemoConfig) => ({ maxNewTokens: cfg.preferences.maxNewTokens, temperature: 1, topK: 0, topP: 1 });

/** Phase 1: comparisons of two fresh samples each, labelled by the synthetic annotators. */
export async function preferences(cfg: DemoConfig, say: (l: string) => void): Promise<{ path: string; pairs: number; agreement: number }> {
  const policy = loadModel(cfg.model);
  const tok = loadTokenizer(resolveModelDir(cfg.model));
  try {
    const n = cfg.preferences.pairs;
    const texts: string[] = [];
    for (let i = 0; i < 2 * n; i += 128) {
      texts.push(...sample(policy, tok, Array.from({ length: Math.min(128, 2 * n - i) }, () => ''), SAMPLING(cfg), cfg.seed + 101, i).completions);
      say(`[demo 1/5 preferences] sampled ${texts.length}/${2 * n}`);
    }
    // Two samples can be the same text (a short story the model knows by heart): no one can prefer one of
    // them, and the feedback loader refuses such a pair, so it is left out.
    const comparisons = Array.from({ length: n }, (_, i) => ({ prompt: '', a: texts[2 * i]!, b: texts[2 * i + 1]! })).filter((c) => c.a !== c.b);
    const records = annotatePairs(comparisons, { annotators: [{ id: 'bt', beta: cfg.preferences.rationality }], seed: cfg.seed, source: 'rlhf demo' });
    const agree = records.filter((r) => goldReward(r.chosen) >= goldReward(r.rejected)).length / records.length;
    const path = join(cfg.out, 'preferences.jsonl');
    writeAtomic(path, toJsonl(records));
    return { path, pairs: records.length, agreement: agree };
  } finally {
    policy.dispose();
  }
}

/** Phase 2: the proxy reward model on the policy's backbone. */
async function proxy(cfg: DemoConfig, data: string, say: (l: string) => void): Promise<{ dir: string; accuracy: number | null; n: number }> {
  const rmCfg = validateConfig({
    seed: cfg.seed, out: join(cfg.out, 'proxy'),
    data: { path: data, format: 'pairwise', splitRatio: 0.85, maxTokens: 128 },
    model: { init: 'pretrained', base: cfg.model },
    train: { epochs: cfg.proxy.epochs, batchSize: cfg.proxy.batchSize, lr: cfg.proxy.lr, warmupSteps: 5, threads: cfg.threads },
  }, REWARD_DEFAULTS, REWARD_SCHEMA, 'demo proxy');
  const r = await trainRewardModel(rmCfg, { progress: (l) => say(`[demo 2/5 proxy] ${l}`) });
  return { dir: join(rmCfg.out, 'model'), accuracy: r.eval?.accuracy ?? null, n: r.eval?.n ?? 0 };
}

/** Phase 3: RL against the proxy; gold and proxy on fresh samples at every evaluation. */
async function rl(cfg: DemoConfig, proxyDir: string, opts: DemoOptions, say: (l: string) => void): Promise<{ points: RlPoint[]; samples: SampleSet[]; run: OnlineRunSummary }> {
  const c = cfg.rl;
  const raw = {
    seed: cfg.seed, out: join(cfg.out, 'rl'),
    model: { policy: cfg.model },
    reward: { sources: [`model:${proxyDir}`] },
    rollout: { prompts: c.prompts, samplesPerPrompt: c.samplesPerPrompt, maxNewTokens: cfg.preferences.maxNewTokens },
    kl: { coef: c.klCoef },
    train: { steps: c.steps, lr: c.lr, evalEvery: c.evalEvery, evalSamples: c.evalSamples, checkpointEvery: c.evalEvery, threads: cfg.threads, ...(c.algorithm === 'ppo' ? { miniBatchSize: (c.prompts * c.samplesPerPrompt) / 2 } : {}) },
  };
  const samplesDir = join(cfg.out, 'rl', 'samples');
  mkdirSync(samplesDir, { recursive: true });
  const onEval = (step: number, e: { samples: { completions: string[] }; rewards: number[] }) => {
    const gold = e.samples.completions.map(goldReward);
    const m = gold.reduce((a, x) => a + x, 0) / gold.length;
    const se = Math.sqrt(gold.reduce((a, x) => a + (x - m) ** 2, 0) / Math.max(1, gold.length - 1) / gold.length);
    const shown: SampleSet = { step, samples: e.samples.completions.slice(0, 3).map((text, i) => ({ text, gold: gold[i]!, proxy: e.rewards[i]! })) };
    writeAtomic(join(samplesDir, `step-${step}.json`), JSON.stringify(shown));
    say(`[demo 3/5 rl] step ${step}: gold ${m.toFixed(4)} ± ${se.toFixed(4)}`);
    return { gold: m, goldSe: se };
  };
  const progress = (l: string) => say(`[demo 3/5 rl] ${l}`);
  const run = c.algorithm === 'grpo'
    ? await trainGrpo(validateConfig(raw, GRPO_DEFAULTS, GRPO_SCHEMA, 'demo rl'), { onEval, progress, signal: opts.signal })
    : await trainPpo(validateConfig(raw, PPO_DEFAULTS, PPO_SCHEMA, 'demo rl'), { onEval, progress, signal: opts.signal });
  const rows = readFileSync(join(cfg.out, 'rl', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; eval?: { reward: number; rewardSe: number; kl: number; gold: number; goldSe: number; distinct2: number; length: number } });
  const points = rows.filter((r) => r.eval).map((r) => ({ step: r.step, kl: Math.max(0, r.eval!.kl), proxy: r.eval!.reward, proxySe: r.eval!.rewardSe, gold: r.eval!.gold, goldSe: r.eval!.goldSe, distinct2: r.eval!.distinct2, length: r.eval!.length }));
  const samples = points.map((p) => readJsonFile<SampleSet>(join(samplesDir, `step-${p.step}.json`)));
  return { points, samples, run };
}

/** Phase 4: best-of-n by the proxy, for n = 1, 2, 4, … ≤ maxN, from one sampling run of maxN candidates. */
async function bestOfNPhase(cfg: DemoConfig, proxyDir: string, say: (l: string) => void): Promise<BonPoint[]> {
  const dir = resolveModelDir(cfg.model);
  const tok = loadTokenizer(dir);
  const policy = loadModel(dir);
  const reward = parseRewardSpec(`model:${proxyDir}`, tok);
  try {
    const prompts = Array.from({ length: cfg.bon.prompts }, () => '');
    say(`[demo 4/5 best-of-n] ${cfg.bon.prompts} prompts × ${cfg.bon.maxN} candidates`);
    const results = bestOfN(policy, tok, reward, prompts, cfg.bon.maxN, SAMPLING(cfg), { seed: cfg.seed + 202 });
    const gold = results.map((r) => r.candidates.map(goldReward));
    const out: BonPoint[] = [];
    for (let n = 1; n <= cfg.bon.maxN; n *= 2) {
      const picks = bestOfFirst(results, n);
      const g = picks.map((p, i) => gold[i]![p.index]!);
      const mean = (xs: number[]) => xs.reduce((a, x) => a + x, 0) / xs.length;
      out.push({ n, kl: klBestOfN(n), proxy: mean(picks.map((p) => p.reward)), gold: mean(g) });
    }
    return out;
  } finally {
    reward.dispose();
    policy.dispose();
  }
}

/** Runs every phase (skipping finished ones) and writes the report. */
export async function runDemo(cfg: DemoConfig, opts: DemoOptions = {}): Promise<DemoSummary> {
  const t0 = Date.now();
  const say = opts.progress ?? ((l: string) => process.stderr.write(l + '\n'));
  setNumThreads(cfg.threads);
  try {
    mkdirSync(cfg.out, { recursive: true });
    // Probe that the directory takes files, and leave nothing behind.
    const probe = join(cfg.out, `.write-test-${process.pid}`);
    writeFileSync(probe, '');
    rmSync(probe);
    rmSync(join(cfg.out, '.write-test'), { force: true }); // the empty probe earlier versions left behind
  } catch (e) {
    throw new Error(`--out ${cfg.out} cannot be written: ${(e as Error).message}`);
  }
  const lock = lockRunDir(cfg.out); // after the write test, whose message names --out
  try {
    const prefs = await phase(cfg.out, 'preferences', { seed: cfg.seed, model: cfg.model, p: cfg.preferences }, () => preferences(cfg, say));
    say(`[demo 1/5 preferences] ${prefs.pairs} labelled pairs (labels agree with the gold ordering ${(100 * prefs.agreement).toFixed(1)}%)`);
    const px = await phase(cfg.out, 'proxy', { seed: cfg.seed, model: cfg.model, p: cfg.preferences, proxy: cfg.proxy }, () => proxy(cfg, prefs.path, say));
    say(`[demo 2/5 proxy] held-out accuracy against the annotators' labels ${px.accuracy?.toFixed(3) ?? 'n/a'} (n ${px.n})`);
    const r = await rl(cfg, px.dir, opts, say);
    const bon = await phase(cfg.out, 'bon', { seed: cfg.seed, p: cfg.preferences, proxy: cfg.proxy, bon: cfg.bon }, () => bestOfNPhase(cfg, px.dir, say));
    say('[demo 5/5 report] fitting and writing report.html');
    const summary = await analyse(cfg, { prefs, proxy: px, rl: r.points, samples: r.samples, bon, seconds: (Date.now() - t0) / 1000 });
    return summary;
  } finally {
    lock.release();
  }
}
