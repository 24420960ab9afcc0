/**
 * `rlhf lab generalisation` — incorrect generalisation of the proxy (the paper's §5): how well the proxy
 * orders pairs the way the gold does, in its training distribution and away from it —
 *   in-distribution: fresh pairs of the initial policy from the training prompt (BOS only);
 *   new prompts: pairs of the initial policy continuing prompts the proxy never saw;
 *   RL policies: pairs of samples from the policy further and further along PPO against the proxy;
 * and the data's coverage of each text, as the distance to its nearest proxy-training text in two
 * representation spaces: the proxy's own (its backbone's last hidden state, what its head reads) and an
 * independent one (bag-of-words cosine). The paper's κ (contexts) and ρ (outputs) are estimated by these
 * distances for the prompt and for the whole text. The error plotted against distance is the share of
 * pairs the proxy orders against the gold, binned by the pair's mean distance.
 */
import { embeddedMiniBatch, ONLINE_ALGORITHM_NAMES, type OnlineAlgorithmName } from '../rlhf/algorithms.js';
import { mean } from '../stats.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MAX_THREADS, type Schema } from '../config.js';
import { noGrad, scope } from '../tensor/index.js';
import { leftPad } from '../generate/generate.js';
import { loadModel, resolveModelDir } from '../models/hub.js';
import { loadTokenizer, type Tokenizer } from '../text/index.js';
import { loadRewardModel } from '../reward/io.js';
import { loadModelReward } from '../reward/sources.js';
import { sample } from '../rlhf/online/rollout.js';
import { labelPreferences, phase, rlWithGold, trainProxy } from './pipeline.js';
import type { Experiment } from './experiment.js';
import { goldReward, words } from './gold.js';
import { renderChart } from './plots.js';

export interface GeneralisationConfig {
  model: string;
  preferences: { pairs: number; maxNewTokens: number; rationality: number };
  /** Prompts the proxy never saw (its pairs all start from BOS alone). */
  newPrompts: string[];
  /** Pairs per evaluation set. */
  evalPairs: number;
  rl: { algorithm: OnlineAlgorithmName; steps: number; lr: number; klCoef: number; evalEvery: number };
  threads: number;
}

const DEFAULTS: GeneralisationConfig = {
  model: 'stories260k',
  preferences: { pairs: 768, maxNewTokens: 48, rationality: 20 },
  newPrompts: ['The dragon', 'Tom was sad because', 'In the dark forest', 'The robot said', 'Mom was angry', 'The old man and the sea', 'Sara lost her', 'A big storm'],
  evalPairs: 128,
  rl: { algorithm: 'ppo', steps: 30, lr: 5e-4, klCoef: 0.01, evalEvery: 10 },
  threads: 1,
};

const SCHEMA: Schema<GeneralisationConfig> = {
  model: { doc: "policy and proxy backbone: 'stories260k' or a model directory" },
  preferences: {
    pairs: { doc: 'labelled comparisons the proxy learns from', integer: true, min: 8 },
    maxNewTokens: { doc: 'completion tokens per sample', integer: true, min: 4 },
    rationality: { doc: 'annotator rationality β', min: 0 },
  },
  newPrompts: { doc: 'prompts outside the proxy data (its pairs start from BOS only)', items: 'string' },
  evalPairs: { doc: 'pairs per evaluation set', integer: true, min: 4 },
  rl: {
    algorithm: { doc: 'policy optimiser (an online algorithm)', oneOf: ONLINE_ALGORITHM_NAMES },
    steps: { doc: 'RL steps against the proxy', integer: true, min: 1 },
    lr: { doc: 'policy learning rate', min: 0 },
    klCoef: { doc: 'KL coefficient β', min: 0 },
    evalEvery: { doc: 'sample an RL evaluation set every N steps', integer: true, min: 1 },
  },
  threads: { doc: 'libtorch + OpenBLAS threads', integer: true, min: 1, max: MAX_THREADS },
};

const QUICK = { preferences: { pairs: 48, maxNewTokens: 16 }, newPrompts: ['The dragon', 'Tom was sad because'], evalPairs: 16, rl: { steps: 2, evalEvery: 2 } };

interface EvalSet { name: string; prompts: string[]; texts: string[] }

/** The proxy's features: its backbone's last hidden state at the last token, (N, C) as rows. */
function proxyFeatures(dir: string, tok: Tokenizer, texts: readonly string[]): Float32Array[] {
  const rm = loadRewardModel(dir);
  try {
    const out: Float32Array[] = [];
    noGrad(() => {
      for (let i = 0; i < texts.length; i += 64) {
        scope(() => {
          const { ids, mask } = leftPad(texts.slice(i, i + 64).map((t) => tok.encode(t, { addBos: true }).slice(0, rm.config.maxPositions)));
          const h = rm.backbone.hidden(ids, { attentionMask: mask, positionIds: mask.cumsum(1).sub(1).clamp(0, null) });
          const last = h.select(1, h.size(1) - 1).contiguous(); // (B, C)
          const c = last.size(1);
          const d = last.data() as Float32Array;
          for (let r = 0; r < last.size(0); r++) out.push(d.slice(r * c, (r + 1) * c));
        });
      }
    });
    return out;
  } finally {
    rm.dispose();
  }
}

/** Bag-of-words vectors over a shared vocabulary, L2-normalised (sparse maps). */
function bagOfWords(texts: readonly string[]): Map<string, number>[] {
  return texts.map((t) => {
    const m = new Map<string, number>();
    for (const w of words(t)) m.set(w, (m.get(w) ?? 0) + 1);
    const norm = Math.sqrt([...m.values()].reduce((a, x) => a + x * x, 0)) || 1;
    for (const [k, v] of m) m.set(k, v / norm);
    return m;
  });
}

/** Distance to the nearest reference row: Euclidean for dense features (scaled by the reference RMS norm), 1 − cosine for bags of words. */
export function nearestDistances(queries: readonly Float32Array[], refs: readonly Float32Array[]): number[] {
  const rms = Math.sqrt(refs.reduce((a, r) => a + r.reduce((b, x) => b + x * x, 0), 0) / Math.max(1, refs.length)) || 1;
  return queries.map((q) => {
    let best = Infinity;
    for (const r of refs) {
      let s = 0;
      for (let k = 0; k < q.length; k++) s += (q[k]! - r[k]!) ** 2;
      if (s < best) best = s;
    }
    return Math.sqrt(best) / rms;
  });
}

export function nearestCosine(queries: readonly Map<string, number>[], refs: readonly Map<string, number>[]): number[] {
  return queries.map((q) => {
    let best = 0;
    for (const r of refs) {
      let s = 0;
      for (const [k, v] of q) s += v * (r.get(k) ?? 0);
      if (s > best) best = s;
    }
    return 1 - best;
  });
}


export const generalisationExperiment: Experiment<GeneralisationConfig> = {
  name: 'generalisation',
  summary: "incorrect generalisation: the proxy's agreement with the gold in and out of its training distribution, against the data's coverage",
  defaults: DEFAULTS,
  schema: SCHEMA,
  quick: QUICK,
  async run(cfg, ctx) {
    if (cfg.newPrompts.length === 0 || cfg.newPrompts.some((p) => !p.trim())) throw new Error('newPrompts must list non-empty prompts (BOS-only is the training distribution)');
    const prefs = await phase(ctx.dir, 'preferences', { seed: ctx.seed, model: cfg.model, p: cfg.preferences }, () =>
      labelPreferences({ model: cfg.model, out: ctx.dir, seed: ctx.seed, p: cfg.preferences, source: 'rlhf lab generalisation' }, (l) => ctx.progress(`[preferences] ${l}`)));
    const proxyDir = join(ctx.dir, 'proxy');
    await phase(ctx.dir, 'proxy', { seed: ctx.seed, p: cfg.preferences }, async () => {
      await trainProxy({
        seed: ctx.seed, out: proxyDir, base: cfg.model, threads: cfg.threads, where: 'lab generalisation proxy',
        data: { path: prefs.path, splitRatio: 0.85, maxTokens: 128 }, train: { epochs: 2, batchSize: 16, lr: 3e-4 },
      }, (l) => ctx.progress(`[proxy] ${l}`));
      return {};
    });
    const modelDir = join(proxyDir, 'model');
    const sets = await phase(ctx.dir, 'sets', { seed: ctx.seed, cfg }, async () => evaluationSets(cfg, ctx, modelDir));
    return analyse(cfg, prefs.path, modelDir, sets);
  },
};

/** The evaluation sets: in-distribution, new prompts, and samples along PPO against the proxy. */
async function evaluationSets(cfg: GeneralisationConfig, ctx: Parameters<Experiment['run']>[1], modelDir: string): Promise<EvalSet[]> {
  const tok = loadTokenizer(resolveModelDir(cfg.model));
  const policy = loadModel(cfg.model);
  const s = { maxNewTokens: cfg.preferences.maxNewTokens, temperature: 1, topK: 0, topP: 1 };
  const n = 2 * cfg.evalPairs;
  const sets: EvalSet[] = [];
  try {
    const id = sample(policy, tok, Array.from({ length: n }, () => ''), s, ctx.seed + 7001);
    sets.push({ name: 'in-distribution', prompts: id.prompts, texts: id.completions });
    // Both completions of a pair continue the same new prompt.
    const newPrompts = Array.from({ length: n }, (_, i) => cfg.newPrompts[Math.floor(i / 2) % cfg.newPrompts.length]!);
    const np = sample(policy, tok, newPrompts, s, ctx.seed + 7002);
    sets.push({ name: 'new prompts', prompts: np.prompts, texts: np.completions });
  } finally {
    policy.dispose();
  }
  const config = {
    seed: ctx.seed, out: join(ctx.dir, 'rl'), model: { policy: cfg.model }, reward: { sources: [`model:${modelDir}`] },
    rollout: { prompts: 16, samplesPerPrompt: 4, maxNewTokens: cfg.preferences.maxNewTokens }, kl: { coef: cfg.rl.klCoef },
    train: { steps: cfg.rl.steps, lr: cfg.rl.lr, ...embeddedMiniBatch(cfg.rl.algorithm, 64), evalEvery: cfg.rl.evalEvery, evalSamples: n, checkpointEvery: 0, threads: cfg.threads },
  };
  // fresh: the sets come from this run's evaluation hook, so a rerun of this phase replays the whole run.
  await rlWithGold({
    algorithm: cfg.rl.algorithm, config, where: 'lab generalisation rl', gold: false, fresh: true, signal: ctx.signal, progress: (l) => ctx.progress(`[rl] ${l}`),
    onEval: (step, e) => {
      if (step > 0) sets.push({ name: `RL step ${step} (KL ${e.kl.toFixed(1)})`, prompts: e.samples.prompts, texts: e.samples.completions });
      return undefined;
    },
  });
  return sets;
}

async function analyse(cfg: GeneralisationConfig, prefsPath: string, modelDir: string, sets: EvalSet[]): Promise<Awaited<ReturnType<Experiment['run']>>> {
  const tok = loadTokenizer(resolveModelDir(cfg.model));
  const train = readFileSync(prefsPath, 'utf8').trim().split('\n').flatMap((l) => {
    const r = JSON.parse(l) as { chosen: string; rejected: string };
    return [r.chosen, r.rejected];
  });
  const trainFeat = proxyFeatures(modelDir, tok, train);
  const trainBow = bagOfWords(train);
  const promptFeat = proxyFeatures(modelDir, tok, ['']); // every training pair's prompt is BOS alone
  const proxy = loadModelReward(modelDir, tok);
  const rows: { set: string; pairs: number; agreement: number; proxyDist: number; bowDist: number; promptDist: number }[] = [];
  const scatter: { d: number; wrong: number }[] = [];
  try {
    for (const s of sets) {
      const full = s.prompts.map((p, i) => p + s.texts[i]!);
      const ids = s.prompts.map((p) => tok.encode(p, { addBos: true }));
      const r = proxy.score({ prompts: s.prompts, completions: s.texts, promptIds: ids, completionIds: s.texts.map((t, i) => tok.encode(s.prompts[i]! + t, { addBos: true }).slice(ids[i]!.length)) }).rewards;
      const g = s.texts.map(goldReward);
      const dProxy = nearestDistances(proxyFeatures(modelDir, tok, full), trainFeat);
      const dBow = nearestCosine(bagOfWords(full), trainBow);
      const dPrompt = nearestDistances(proxyFeatures(modelDir, tok, s.prompts), promptFeat);
      let agree = 0;
      let pairs = 0;
      for (let i = 0; i + 1 < r.length; i += 2) {
        if (g[i] === g[i + 1]) continue;
        pairs++;
        const right = (r[i]! - r[i + 1]!) * (g[i]! - g[i + 1]!) > 0;
        agree += right ? 1 : 0;
        scatter.push({ d: (dProxy[i]! + dProxy[i + 1]!) / 2, wrong: right ? 0 : 1 });
      }
      rows.push({ set: s.name, pairs, agreement: pairs ? agree / pairs : NaN, proxyDist: mean(dProxy), bowDist: mean(dBow), promptDist: mean(dPrompt) });
    }
  } finally {
    proxy.dispose();
  }
  // Error against distance: pairs binned into quartiles of their proxy-space distance.
  const sorted = [...scatter].sort((a, b) => a.d - b.d);
  const bins = 4;
  const binned = Array.from({ length: bins }, (_, b) => sorted.slice(Math.floor((b * sorted.length) / bins), Math.floor(((b + 1) * sorted.length) / bins))).filter((x) => x.length > 0)
    .map((x) => ({ x: mean(x.map((p) => p.d)), y: mean(x.map((p) => p.wrong)) }));
  const f = (x: number, d = 3) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
  const fig1 = await renderChart({
    title: "Proxy's agreement with the gold ordering, by evaluation set", xTitle: 'mean distance to the nearest proxy-training text (proxy space, RMS units)', yTitle: 'pairs ordered like the gold',
    series: rows.map((r) => ({ name: r.set, points: [{ x: r.proxyDist, y: r.agreement }], style: 'points' as const })),
    caption: 'One point per evaluation set; further right = less covered by the proxy data.',
  });
  const fig2 = await renderChart({
    title: 'Error against coverage: pairs binned by distance', xTitle: 'distance to the nearest proxy-training text (proxy space)', yTitle: 'share of pairs ordered against the gold',
    series: [{ name: 'quartile bins of all pairs', points: binned }],
  });
  const id = rows[0]!;
  const worst = rows.reduce((b, r) => (r.agreement < b.agreement ? r : b));
  const trend = binned.length >= 2 ? binned[binned.length - 1]!.y - binned[0]!.y : NaN;
  return {
    section: {
      id: 'generalisation', title: 'Incorrect generalisation: the proxy away from its data',
      paragraphs: [
        `The proxy learned from ${train.length / 2} labelled pairs of BOS-only stories. In distribution it orders ${f(100 * id.agreement, 1)}% of fresh pairs like the gold (n ${id.pairs}); its worst set is "${worst.set}" at ${f(100 * worst.agreement, 1)}%.`,
        `Coverage, as the distance to the nearest training text: in the proxy's own representation the sets sit at ${rows.map((r) => `${r.set} ${f(r.proxyDist, 2)}`).join(', ')}; in the independent bag-of-words space at ${rows.map((r) => `${f(r.bowDist, 2)}`).join(', ')} (1 − cosine). ` +
        (Number.isFinite(trend) ? `Across all pairs, the share ordered against the gold goes from ${f(binned[0]!.y)} in the closest quarter to ${f(binned[binned.length - 1]!.y)} in the farthest — ${trend > 0.02 ? 'error grows with distance from the data' : trend < -0.02 ? 'error falls with distance here, against the expectation' : 'no clear trend with distance at this size'}.` : ''),
      ],
      plots: [fig1, fig2],
      tables: [{ caption: 'Per evaluation set', columns: ['set', 'pairs', 'agreement with gold', 'proxy-space distance', 'bag-of-words distance', 'prompt distance, proxy space (κ)'], rows: rows.map((r) => [r.set, r.pairs, f(r.agreement), f(r.proxyDist), f(r.bowDist), f(r.promptDist)]) }],
    },
    result: { rows, binned },
  };
}
