/**
 * `rlhf lab paradox` — the accuracy paradox (Chen et al. 2024, "The accuracy paradox in RLHF: when better
 * reward models don't yield better language models"): proxies of increasing preference accuracy (the same
 * labels, trained for more steps), each used for the same short PPO run; is the policy's gold reward
 * ordered like the proxy's accuracy? Accuracy is measured against the GOLD ordering of fresh held-out
 * pairs (not the annotators' noisy labels). Setting as in the demo (src/lab/demo.ts).
 */
import { embeddedMiniBatch, ONLINE_ALGORITHM_NAMES, type OnlineAlgorithmName } from '../rlhf/algorithms.js';
import { mean } from '../stats.js';
import { join } from 'node:path';
import { MAX_THREADS, type Schema } from '../config.js';
import { loadModel, resolveModelDir } from '../models/hub.js';
import { loadTokenizer } from '../text/index.js';
import { loadModelReward } from '../reward/sources.js';
import { sample } from '../rlhf/online/rollout.js';
import { labelPreferences, phase, rlWithGold, trainProxy } from './pipeline.js';
import type { Experiment } from './experiment.js';
import { goldReward } from './gold.js';
import { renderChart } from './plots.js';

export interface ParadoxConfig {
  model: string;
  preferences: { pairs: number; maxNewTokens: number; rationality: number };
  /** The proxies: one per entry, trained for that many optimiser steps on the same labels. */
  rmSteps: number[];
  /** Fresh held-out pairs on which accuracy against the gold ordering is measured. */
  heldOutPairs: number;
  rl: { algorithm: OnlineAlgorithmName; steps: number; lr: number; klCoef: number; evalSamples: number };
  threads: number;
}

const DEFAULTS: ParadoxConfig = {
  model: 'stories260k',
  preferences: { pairs: 768, maxNewTokens: 48, rationality: 20 },
  rmSteps: [3, 10, 30, 96],
  heldOutPairs: 256,
  rl: { algorithm: 'ppo', steps: 15, lr: 5e-4, klCoef: 0.01, evalSamples: 128 },
  threads: 1,
};

const SCHEMA: Schema<ParadoxConfig> = {
  model: { doc: "the policy and the proxies' backbone: 'stories260k' or a model directory" },
  preferences: {
    pairs: { doc: 'labelled comparisons (shared by every proxy)', integer: true, min: 8 },
    maxNewTokens: { doc: 'completion tokens per sample', integer: true, min: 4 },
    rationality: { doc: 'annotator rationality β (Bradley–Terry on the gold)', min: 0 },
  },
  rmSteps: { doc: 'optimiser steps of each proxy (one proxy per entry)', items: 'number' },
  heldOutPairs: { doc: 'fresh pairs for accuracy against the gold ordering', integer: true, min: 8 },
  rl: {
    algorithm: { doc: 'policy optimiser (an online algorithm)', oneOf: ONLINE_ALGORITHM_NAMES },
    steps: { doc: 'RL steps against each proxy', integer: true, min: 1 },
    lr: { doc: 'policy learning rate', min: 0 },
    klCoef: { doc: 'KL coefficient β', min: 0 },
    evalSamples: { doc: 'fresh samples for the final gold', integer: true, min: 8 },
  },
  threads: { doc: 'libtorch + OpenBLAS threads', integer: true, min: 1, max: MAX_THREADS },
};

const QUICK = { preferences: { pairs: 64, maxNewTokens: 24 }, rmSteps: [1, 8], heldOutPairs: 32, rl: { steps: 3, evalSamples: 32 } };

/** Spearman's rank correlation (average ranks for ties); NaN below 3 points. */
export function spearman(x: readonly number[], y: readonly number[]): number {
  if (x.length < 3) return NaN;
  const rank = (v: readonly number[]) => {
    const idx = v.map((_, i) => i).sort((a, b) => v[a]! - v[b]!);
    const r = new Array<number>(v.length);
    for (let i = 0; i < idx.length; ) {
      let j = i;
      while (j + 1 < idx.length && v[idx[j + 1]!] === v[idx[i]!]) j++;
      for (let k = i; k <= j; k++) r[idx[k]!] = (i + j) / 2;
      i = j + 1;
    }
    return r;
  };
  const rx = rank(x);
  const ry = rank(y);
  const m = (rx.length - 1) / 2;
  let num = 0;
  let dx = 0;
  let dy = 0;
  rx.forEach((a, i) => {
    num += (a - m) * (ry[i]! - m);
    dx += (a - m) ** 2;
    dy += (ry[i]! - m) ** 2;
  });
  return num / Math.sqrt(dx * dy);
}

interface Row { steps: number; accuracy: number; goldBefore: number; goldAfter: number; goldSe: number; kl: number; proxyAfter: number }


/** Accuracy of a proxy against the gold ordering on fresh pairs (ties in gold skipped; proxy ties ½). */
function goldOrderAccuracy(dir: string, cfg: ParadoxConfig, seed: number): number {
  const tok = loadTokenizer(resolveModelDir(cfg.model));
  const policy = loadModel(cfg.model);
  const rm = loadModelReward(dir, tok);
  try {
    const s = sample(policy, tok, Array.from({ length: 2 * cfg.heldOutPairs }, () => ''), { maxNewTokens: cfg.preferences.maxNewTokens, temperature: 1, topK: 0, topP: 1 }, seed + 909);
    const r = rm.score(s).rewards;
    const g = s.completions.map(goldReward);
    let hit = 0;
    let n = 0;
    for (let i = 0; i + 1 < r.length; i += 2) {
      if (g[i] === g[i + 1]) continue;
      n++;
      const dr = r[i]! - r[i + 1]!;
      hit += dr === 0 ? 0.5 : (dr > 0) === (g[i]! > g[i + 1]!) ? 1 : 0;
    }
    return n ? hit / n : NaN;
  } finally {
    rm.dispose();
    policy.dispose();
  }
}

export const paradoxExperiment: Experiment<ParadoxConfig> = {
  name: 'paradox',
  summary: 'the accuracy paradox: proxies of increasing preference accuracy against the gold reward of the policies trained on them',
  defaults: DEFAULTS,
  schema: SCHEMA,
  quick: QUICK,
  async run(cfg, ctx) {
    if (cfg.rmSteps.length < 2 || cfg.rmSteps.some((s) => !(Number.isInteger(s) && s >= 1))) throw new Error(`rmSteps must list at least 2 positive integers, got [${cfg.rmSteps.join(', ')}]`);
    const prefs = await phase(ctx.dir, 'preferences', { seed: ctx.seed, model: cfg.model, p: cfg.preferences }, () =>
      labelPreferences({ model: cfg.model, out: ctx.dir, seed: ctx.seed, p: cfg.preferences, source: 'rlhf lab paradox' }, (l) => ctx.progress(`[preferences] ${l}`)));
    const rows: Row[] = [];
    for (const steps of cfg.rmSteps) {
      const fp = { seed: ctx.seed, model: cfg.model, p: cfg.preferences, steps, rl: cfg.rl, held: cfg.heldOutPairs };
      rows.push(await phase(ctx.dir, `proxy-${steps}`, fp, async () => {
        const out = join(ctx.dir, `proxy-${steps}`);
        await trainProxy({
          seed: ctx.seed, out, base: cfg.model, threads: cfg.threads, where: 'lab paradox proxy',
          data: { path: prefs.path, splitRatio: 0.9, maxTokens: 128 },
          train: { epochs: 50, maxSteps: steps, batchSize: 16, lr: 3e-4, warmupSteps: Math.min(5, steps) },
        }, (l) => ctx.progress(`[proxy ${steps} steps] ${l}`));
        const accuracy = goldOrderAccuracy(join(out, 'model'), cfg, ctx.seed);
        ctx.progress(`proxy trained ${steps} steps: accuracy against the gold ordering ${accuracy.toFixed(3)}`);
        const gold: { step: number; gold: number; se: number }[] = [];
        const config = {
          seed: ctx.seed, out: join(out, 'rl'), model: { policy: cfg.model }, reward: { sources: [`model:${join(out, 'model')}`] },
          rollout: { prompts: 16, samplesPerPrompt: 4, maxNewTokens: cfg.preferences.maxNewTokens }, kl: { coef: cfg.rl.klCoef },
          train: { steps: cfg.rl.steps, lr: cfg.rl.lr, ...embeddedMiniBatch(cfg.rl.algorithm, 64), evalSamples: cfg.rl.evalSamples, checkpointEvery: 0, threads: cfg.threads },
        };
        const run = await rlWithGold({
          algorithm: cfg.rl.algorithm, config, where: 'lab paradox rl', signal: ctx.signal, progress: (l) => ctx.progress(`[ppo vs proxy-${steps}] ${l}`),
          onEval: (step, _e, g) => {
            // This section's s.e. divides the population variance by n (as published), not the sample variance.
            gold.push({ step, gold: g!.gold, se: Math.sqrt(mean(g!.values.map((x) => (x - g!.gold) ** 2)) / g!.values.length) });
            return undefined;
          },
        });
        const last = gold[gold.length - 1]!;
        return { steps, accuracy, goldBefore: gold[0]!.gold, goldAfter: last.gold, goldSe: last.se, kl: run.final?.kl ?? NaN, proxyAfter: run.final?.reward ?? NaN };
      }));
    }
    const rho = spearman(rows.map((r) => r.accuracy), rows.map((r) => r.goldAfter));
    const best = rows.reduce((b, r) => (r.accuracy > b.accuracy ? r : b));
    const bestGold = rows.reduce((b, r) => (r.goldAfter > b.goldAfter ? r : b));
    const fig = await renderChart({
      title: 'Proxy accuracy (vs the gold ordering) against the gold of the policy trained on it',
      xTitle: 'proxy accuracy on fresh pairs, gold ordering', yTitle: 'policy gold after PPO',
      series: [{ name: 'one proxy', points: rows.map((r) => ({ x: r.accuracy, y: r.goldAfter })), style: 'points' }],
      caption: `One point per proxy (trained ${cfg.rmSteps.join(', ')} steps); Spearman ρ ${Number.isFinite(rho) ? rho.toFixed(2) : 'n/a'}.`,
    });
    const f = (x: number, d = 3) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
    const paradox = best.steps !== bestGold.steps;
    return {
      section: {
        id: 'paradox', title: 'The accuracy paradox: does a more accurate proxy give a better policy?',
        paragraphs: [
          `${rows.length} proxies were trained on the same ${prefs.pairs} labelled pairs for ${cfg.rmSteps.join(', ')} optimiser steps, and PPO ran ${cfg.rl.steps} steps against each (lr ${cfg.rl.lr}, β ${cfg.rl.klCoef}). Accuracy is against the gold ordering of ${cfg.heldOutPairs} fresh pairs.`,
          `The most accurate proxy (${f(best.accuracy)}, ${best.steps} steps) gave a policy with gold ${f(best.goldAfter)}; the best policy (gold ${f(bestGold.goldAfter)}) came from the proxy trained ${bestGold.steps} steps (accuracy ${f(bestGold.accuracy)}). ` +
          (paradox ? 'Here, as Chen et al. (2024) report, the most accurate reward model did not produce the best language model.' : 'Here the most accurate proxy also produced the best policy: the paradox did not appear at this scale.') +
          ` Rank correlation between accuracy and policy gold: ${f(rho, 2)} over ${rows.length} proxies (few points: read it as a direction, not a law).`,
        ],
        plots: [fig],
        tables: [{ caption: 'One row per proxy', columns: ['proxy steps', 'accuracy (gold order)', 'gold before', 'gold after', 's.e.', 'KL (nats)', 'proxy after'], rows: rows.map((r) => [r.steps, f(r.accuracy), f(r.goldBefore), f(r.goldAfter), f(r.goldSe, 4), f(r.kl, 2), f(r.proxyAfter)]) }],
      },
      result: { rows, spearman: rho, paradox },
    };
  },
};
