/**
 * `rlhf lab mitigations` — over-optimisation mitigations on the gold–KL frontier (the paper's §7; Gao et
 * al. 2022; Coste et al. 2023): in the demo's setting, PPO against the proxy with
 *   - a larger KL coefficient (the classic remedy: stay near the reference),
 *   - a reward-model ensemble (3 members on bootstrap resamples of the same labels) aggregated by its
 *     mean, its minimum (worst case) or mean − λ·std (uncertainty-weighted),
 *   - a length penalty on the reward,
 * each run's gold and proxy measured on fresh samples along training. Every run traces gold against
 * d = √KL; the plot overlays them, and the table says how high each got and at what KL. "Which one moves
 * the frontier" is read off the gold reached at the largest KL every run attained.
 */
import { join } from 'node:path';
import { MAX_THREADS, deepMerge, validateConfig, type Schema } from '../config.js';
import { loadTokenizer } from '../text/index.js';
import { resolveModelDir } from '../models/hub.js';
import { REWARD_DEFAULTS, REWARD_SCHEMA } from '../reward/config.js';
import { trainRewardModel } from '../reward/train.js';
import { loadRewardEnsemble, RewardEnsemble } from '../reward/ensemble-model.js';
import type { AggregatorName } from '../reward/ensemble.js';
import { modelReward } from '../rlhf/rewards.js';
import { PPO_DEFAULTS, PPO_SCHEMA } from '../rlhf/ppo/config.js';
import { trainPpo } from '../rlhf/ppo/trainer.js';
import { DEMO_DEFAULTS, type DemoConfig } from './demo-config.js';
import { phase, preferences } from './demo.js';
import type { Experiment } from './experiment.js';
import { goldReward } from './gold.js';
import { renderChart, type Series } from './plots.js';

export interface MitigationsConfig {
  model: string;
  preferences: { pairs: number; maxNewTokens: number; rationality: number };
  proxy: { epochs: number; members: number; lambda: number };
  rl: { steps: number; lr: number; klCoef: number; evalEvery: number; evalSamples: number };
  /** The larger KL coefficients tried against the single proxy. */
  klCoefs: number[];
  /** Reward subtracted per completion token (the length-penalty run). */
  lengthPenalty: number;
  threads: number;
}

const DEFAULTS: MitigationsConfig = {
  model: 'stories260k',
  preferences: { pairs: 768, maxNewTokens: 48, rationality: 20 },
  proxy: { epochs: 2, members: 3, lambda: 1 },
  rl: { steps: 25, lr: 5e-4, klCoef: 0.01, evalEvery: 5, evalSamples: 128 },
  klCoefs: [0.05, 0.2],
  lengthPenalty: 0.01,
  threads: 1,
};

const SCHEMA: Schema<MitigationsConfig> = {
  model: { doc: "policy and proxy backbone: 'stories260k' or a model directory" },
  preferences: {
    pairs: { doc: 'labelled comparisons', integer: true, min: 8 },
    maxNewTokens: { doc: 'completion tokens per sample', integer: true, min: 4 },
    rationality: { doc: 'annotator rationality β', min: 0 },
  },
  proxy: {
    epochs: { doc: 'proxy training epochs', integer: true, min: 1 },
    members: { doc: 'ensemble members (bootstrap resamples)', integer: true, min: 2 },
    lambda: { doc: 'λ of the mean − λ·std aggregation', min: 0 },
  },
  rl: {
    steps: { doc: 'PPO steps per run', integer: true, min: 1 },
    lr: { doc: 'policy learning rate', min: 0 },
    klCoef: { doc: 'the baseline KL coefficient β', min: 0 },
    evalEvery: { doc: 'gold/proxy evaluation period', integer: true, min: 1 },
    evalSamples: { doc: 'fresh samples per evaluation', integer: true, min: 8 },
  },
  klCoefs: { doc: 'larger KL coefficients to try', items: 'number' },
  lengthPenalty: { doc: 'reward subtracted per completion token in the length-penalty run', min: 0 },
  threads: { doc: 'libtorch + OpenBLAS threads', integer: true, min: 1, max: MAX_THREADS },
};

const QUICK = { preferences: { pairs: 48, maxNewTokens: 16 }, proxy: { epochs: 1, members: 2 }, rl: { steps: 2, evalEvery: 1, evalSamples: 16 }, klCoefs: [] };

interface Point { step: number; kl: number; gold: number; proxy: number }
interface RunResult { name: string; points: Point[] }

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Gold at KL k along a run, linearly interpolated between evaluations (null past the run's largest KL). */
export function goldAtKl(points: readonly Point[], k: number): number | null {
  const ps = [...points].sort((a, b) => a.kl - b.kl);
  for (let i = 0; i + 1 < ps.length; i++) {
    const a = ps[i]!;
    const b = ps[i + 1]!;
    if (k >= a.kl && k <= b.kl) return b.kl === a.kl ? a.gold : a.gold + ((k - a.kl) / (b.kl - a.kl)) * (b.gold - a.gold);
  }
  return ps.length && k === ps[0]!.kl ? ps[0]!.gold : null;
}

export const mitigationsExperiment: Experiment<MitigationsConfig> = {
  name: 'mitigations',
  summary: 'over-optimisation mitigations on the gold–KL frontier: KL coefficient, reward-model ensembles (mean / min / mean − λ·std), length penalty',
  defaults: DEFAULTS,
  schema: SCHEMA,
  quick: QUICK,
  async run(cfg, ctx) {
    const demoLike = deepMerge(DEMO_DEFAULTS, { out: ctx.dir, seed: ctx.seed, model: cfg.model, preferences: cfg.preferences, threads: cfg.threads }) as DemoConfig;
    const prefs = await phase(ctx.dir, 'preferences', { seed: ctx.seed, model: cfg.model, p: cfg.preferences }, () => preferences(demoLike, ctx.progress));
    // One ensemble of `members` proxies; member 0 alone is the single proxy every other run uses.
    const ensDir = join(ctx.dir, 'proxy');
    await phase(ctx.dir, 'proxy', { seed: ctx.seed, p: cfg.preferences, proxy: cfg.proxy }, async () => {
      const rm = validateConfig({
        seed: ctx.seed, out: ensDir, data: { path: prefs.path, format: 'pairwise', splitRatio: 0.85, maxTokens: 128, skipInvalid: true },
        model: { init: 'pretrained', base: cfg.model, ensemble: { members: cfg.proxy.members, bootstrap: true, aggregation: 'mean', lambda: cfg.proxy.lambda } },
        train: { epochs: cfg.proxy.epochs, batchSize: 16, lr: 3e-4, warmupSteps: 5, threads: cfg.threads },
      }, REWARD_DEFAULTS, REWARD_SCHEMA, 'lab mitigations proxy');
      const s = await trainRewardModel(rm, { progress: (l) => ctx.progress(`[proxy] ${l}`) });
      return { accuracy: s.eval?.accuracy ?? null };
    });
    const tok = loadTokenizer(resolveModelDir(cfg.model));
    const source = (aggregation: AggregatorName | 'single') => {
      const ens = loadRewardEnsemble(join(ensDir, 'model'));
      const models = aggregation === 'single' ? [ens.models[0]!] : ens.models;
      if (aggregation === 'single') ens.models.slice(1).forEach((m) => m.dispose());
      const chosen = new RewardEnsemble(models, { aggregation: aggregation === 'single' ? 'mean' : aggregation, lambda: cfg.proxy.lambda });
      return modelReward(chosen, { tokenizer: tok, policyTokenizer: tok, name: `proxy:${aggregation}` });
    };
    const runs: { name: string; agg: AggregatorName | 'single'; klCoef: number; lengthPenalty: number }[] = [
      { name: `baseline (β ${cfg.rl.klCoef})`, agg: 'single', klCoef: cfg.rl.klCoef, lengthPenalty: 0 },
      ...cfg.klCoefs.map((b) => ({ name: `KL β ${b}`, agg: 'single' as const, klCoef: b, lengthPenalty: 0 })),
      { name: `ensemble mean (${cfg.proxy.members})`, agg: 'mean', klCoef: cfg.rl.klCoef, lengthPenalty: 0 },
      { name: `ensemble min (${cfg.proxy.members})`, agg: 'min', klCoef: cfg.rl.klCoef, lengthPenalty: 0 },
      { name: `ensemble mean − ${cfg.proxy.lambda}·std`, agg: 'mean_minus_std', klCoef: cfg.rl.klCoef, lengthPenalty: 0 },
      { name: `length penalty ${cfg.lengthPenalty}/token`, agg: 'single', klCoef: cfg.rl.klCoef, lengthPenalty: cfg.lengthPenalty },
    ];
    const results: RunResult[] = [];
    for (const [i, r] of runs.entries()) {
      results.push(await phase(ctx.dir, `run-${i}`, { seed: ctx.seed, p: cfg.preferences, proxy: cfg.proxy, rl: cfg.rl, r }, async () => {
        const reward = source(r.agg);
        const points: Point[] = [];
        try {
          const ppo = validateConfig({
            seed: ctx.seed, out: join(ctx.dir, `run-${i}`), model: { policy: cfg.model },
            reward: { lengthPenalty: r.lengthPenalty },
            rollout: { prompts: 16, samplesPerPrompt: 4, maxNewTokens: cfg.preferences.maxNewTokens }, kl: { coef: r.klCoef },
            train: { steps: cfg.rl.steps, lr: cfg.rl.lr, miniBatchSize: 32, evalEvery: cfg.rl.evalEvery, evalSamples: cfg.rl.evalSamples, checkpointEvery: cfg.rl.evalEvery, threads: cfg.threads },
          }, PPO_DEFAULTS, PPO_SCHEMA, 'lab mitigations rl');
          await trainPpo(ppo, {
            reward, signal: ctx.signal, progress: (l) => ctx.progress(`[${r.name}] ${l}`),
            onEval: (step, e) => {
              const gold = mean(e.samples.completions.map(goldReward));
              points.push({ step, kl: Math.max(0, e.kl), gold, proxy: e.reward });
              return { gold };
            },
          });
        } finally {
          reward.dispose();
        }
        return { name: r.name, points };
      }));
    }
    return report(cfg, results);
  },
};

async function report(cfg: MitigationsConfig, results: RunResult[]): Promise<Awaited<ReturnType<Experiment['run']>>> {
  const f = (x: number | null, d = 3) => (x === null || !Number.isFinite(x) ? 'n/a' : x.toFixed(d));
  const series: Series[] = results.map((r) => ({ name: r.name, points: r.points.map((p) => ({ x: Math.sqrt(p.kl), y: p.gold })) }));
  const fig = await renderChart({ title: 'Gold reward against √KL, one curve per mitigation', xTitle: 'd = √KL(π ‖ π_ref)', yTitle: 'gold (fresh samples)', series, caption: 'Each point is an evaluation during training; a frontier further up and to the right is better.' });
  // Compare at the largest KL every run reached (runs that barely moved limit it).
  const common = Math.min(...results.map((r) => Math.max(...r.points.map((p) => p.kl))));
  const rows = results.map((r) => {
    const best = r.points.reduce((b, p) => (p.gold > b.gold ? p : b), r.points[0]!);
    const last = r.points[r.points.length - 1]!;
    return { name: r.name, peakGold: best.gold, peakKl: best.kl, endGold: last.gold, endKl: last.kl, goldAtCommon: goldAtKl(r.points, common) };
  });
  const base = rows[0]!;
  const bestAtCommon = rows.reduce((b, r) => ((r.goldAtCommon ?? -Infinity) > (b.goldAtCommon ?? -Infinity) ? r : b));
  const bestEnd = rows.reduce((b, r) => (r.endGold > b.endGold ? r : b));
  return {
    section: {
      id: 'mitigations', title: 'Mitigations on the gold–KL frontier',
      paragraphs: [
        `PPO ran ${cfg.rl.steps} steps against the proxy in ${rows.length} variants: the baseline (β ${cfg.rl.klCoef}), larger KL coefficients (${cfg.klCoefs.join(', ')}), a ${cfg.proxy.members}-member ensemble aggregated three ways, and a length penalty. Gold was measured on fresh samples every ${cfg.rl.evalEvery} steps.`,
        `At the largest KL every run reached (${f(common, 2)} nats), the highest gold was ${bestAtCommon.name}'s (${f(bestAtCommon.goldAtCommon)}; baseline ${f(base.goldAtCommon)}). At the end of training the highest gold was ${bestEnd.name}'s (${f(bestEnd.endGold)} at KL ${f(bestEnd.endKl, 1)}; baseline ${f(base.endGold)} at KL ${f(base.endKl, 1)}). ` +
        (bestEnd.name === base.name ? 'No mitigation beat the baseline at the end of training here.' : `So ${bestEnd.name} is the one that kept the gold highest in this run — one seed, read as a direction.`),
      ],
      plots: [fig],
      tables: [{ caption: 'Per run', columns: ['run', 'peak gold', 'KL at peak', 'end gold', 'end KL', `gold at KL ${f(common, 1)}`], rows: rows.map((r) => [r.name, f(r.peakGold), f(r.peakKl, 1), f(r.endGold), f(r.endKl, 1), f(r.goldAtCommon)]) }],
    },
    result: { rows, commonKl: common },
  };
}
