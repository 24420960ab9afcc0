/**
 * `rlhf demo`, the main job: reward-model over-optimisation (Goodhart) measured on the embedded default,
 * after Gao et al. (2022). Phases, each resumable (a finished phase leaves a done-marker written last;
 * the RL phase resumes from its checkpoint):
 *   1. preferences — pairs of fresh samples of the initial policy, labelled by synthetic annotators
 *      through Bradley–Terry on the gold reward (gold.ts);
 *   2. proxy — a reward model on the policy's backbone, trained on those labels;
 *   3. rl — PPO (or any online algorithm: rl.algorithm) against the proxy, gold and proxy measured on fresh samples along the way;
 *   4. best-of-n — n candidates ranked by the proxy, the chosen one's gold and proxy, for n = 1, 2, 4, …;
 *   5. report — Gao et al.'s forms fitted to gold vs √KL, report.html, metrics.jsonl, summary.json.
 */
import { mean } from '../stats.js';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setNumThreads } from '../tensor/index.js';
import { loadModel, resolveModelDir } from '../models/hub.js';
import { loadTokenizer } from '../text/index.js';
import { parseRewardSpec } from '../reward/sources.js';
import type { OnlineRunSummary } from '../rlhf/online/trainer.js';
import { checkEmbeddedRl, embeddedMiniBatch } from '../rlhf/algorithms.js';
import { bestOfFirst, bestOfN } from '../rlhf/bon.js';
import { labelPreferences, phase, readEvals, rlWithGold, trainProxy } from './pipeline.js';
import { goldReward } from './gold.js';
import { klBestOfN } from './fit.js';
import type { DemoConfig } from './demo-config.js';
import { analyse, type BonPoint, type DemoSummary, type RlPoint, type SampleSet } from './demo-report.js';
import { writeAtomic, readJsonFile } from '../atomic.js';
import { lockRunDir } from '../run-dir.js';

/** Options of runDemo: progress lines and an abort signal (the RL phase stops after its current step). */
export interface DemoOptions {
  progress?: (line: string) => void;
  signal?: AbortSignal;
}

const SAMPLING = (cfg: DemoConfig) => ({ maxNewTokens: cfg.preferences.maxNewTokens, temperature: 1, topK: 0, topP: 1 });

/** Phase 1: comparisons of two fresh samples each, labelled by the synthetic annotators. */
export function preferences(cfg: DemoConfig, say: (l: string) => void): { path: string; pairs: number; agreement: number } {
  return labelPreferences({ model: cfg.model, out: cfg.out, seed: cfg.seed, p: cfg.preferences, source: 'rlhf demo' }, (l) => say(`[demo 1/5 preferences] ${l}`));
}

/** Phase 2: the proxy reward model on the policy's backbone. */
async function proxy(cfg: DemoConfig, data: string, say: (l: string) => void): Promise<{ dir: string; accuracy: number | null; n: number }> {
  const { dir, summary } = await trainProxy({
    seed: cfg.seed, out: join(cfg.out, 'proxy'), base: cfg.model, threads: cfg.threads, where: 'demo proxy',
    data: { path: data, splitRatio: 0.85, maxTokens: 128 },
    train: { epochs: cfg.proxy.epochs, batchSize: cfg.proxy.batchSize, lr: cfg.proxy.lr },
  }, (l) => say(`[demo 2/5 proxy] ${l}`));
  return { dir, accuracy: summary.eval?.accuracy ?? null, n: summary.eval?.n ?? 0 };
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
    train: { steps: c.steps, lr: c.lr, evalEvery: c.evalEvery, evalSamples: c.evalSamples, checkpointEvery: c.evalEvery, threads: cfg.threads, ...embeddedMiniBatch(c.algorithm, c.prompts * c.samplesPerPrompt) },
  };
  const samplesDir = join(cfg.out, 'rl', 'samples');
  mkdirSync(samplesDir, { recursive: true });
  const run = await rlWithGold({
    algorithm: c.algorithm, config: raw, where: 'demo rl', signal: opts.signal, progress: (l) => say(`[demo 3/5 rl] ${l}`),
    onEval: (step, e, g) => {
      const shown: SampleSet = { step, samples: e.samples.completions.slice(0, 3).map((text, i) => ({ text, gold: g!.values[i]!, proxy: e.rewards[i]! })) };
      writeAtomic(join(samplesDir, `step-${step}.json`), JSON.stringify(shown));
      say(`[demo 3/5 rl] step ${step}: gold ${g!.gold.toFixed(4)} ± ${g!.goldSe.toFixed(4)}`);
      return undefined;
    },
  });
  const points = readEvals(join(cfg.out, 'rl')).map((r) => ({ step: r.step, kl: Math.max(0, r.kl), proxy: r.reward, proxySe: r.rewardSe, gold: r.gold, goldSe: r.goldSe, distinct2: r.distinct2, length: r.length }));
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
    const results = await bestOfN(policy, tok, reward, prompts, cfg.bon.maxN, SAMPLING(cfg), { seed: cfg.seed + 202, progress: (l) => say(`[demo 4/5 best-of-n] ${l}`) });
    const gold = results.map((r) => r.candidates.map(goldReward));
    const out: BonPoint[] = [];
    for (let n = 1; n <= cfg.bon.maxN; n *= 2) {
      const picks = bestOfFirst(results, n);
      const g = picks.map((p, i) => gold[i]![p.index]!);
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
  checkEmbeddedRl(cfg.rl.algorithm, cfg.rl, 'rl');
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
