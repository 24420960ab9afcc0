/**
 * `rlhf lab sparse`: sparse against dense feedback ("RLHF Deciphered" §5.1, §7.8). The same gold signal
 * (gold.ts) is given to PPO at three granularities, on the same seeds and for the same number of steps:
 *
 *   sequence — one reward, gold(completion), at the last token (the usual RLHF setting);
 *   sentence — the gold's increments credited where a sentence ends (and the remainder at the last token);
 *   token    — token t gets gold(prefix ≤ t) − gold(prefix < t).
 *
 * All three telescope to the same sequence total, gold(completion), because gold('') = 0 — so the policy is
 * optimised for one objective and only the credit assignment differs. (The gold is not additive over tokens:
 * an increment is the prefix's change in VADER sentiment × repetition, which can be negative for a word that
 * later pays off. That is what "where it decomposes" buys here: a telescoping decomposition, not a causal one.)
 * PPO's value head and GAE (γ = 1, λ = `lambda`) turn the per-token rewards into advantages.
 *
 * Measured: gold on fresh samples (the runs' evaluations: the reward source *is* the gold) against step and
 * against KL to the initial policy; gold interpolated at a common KL; and the noise of the policy-gradient
 * estimate, as the noise-to-signal ratio of per-sequence gradients (see `gradientNoise`).
 *
 * Cost: the token granularity scores one VADER call per distinct prefix (~1 ms each), so maxNewTokens is
 * kept small. Measured on the shared 2-core CPU: the full default 207 s (sequence 63 s, sentence 61 s,
 * token 79 s), --quick ~10 s. Each granularity trains in OUT/sparse/<granularity>/ and resumes from its checkpoint; the
 * gradient probes are cached there (probe.json) under the configuration they were made with.
 */
import { join } from 'node:path';
import { MAX_THREADS, validateConfig, type Schema } from '../config.js';
import { scope, setNumThreads } from '../tensor/index.js';
import { loadCheckpoint } from '../nn/checkpoint.js';
import { resolveModelDir } from '../models/hub.js';
import { loadTokenizer, type Tokenizer } from '../text/index.js';
import type { RewardInput, SyncRewardSource } from '../reward/sources.js';
import { actorForward, disposeActions, sliceActions } from '../rlhf/online/actor.js';
import { disposeScored, sample, scoredRollout } from '../rlhf/online/rollout.js';
import { closeRun, openRun, settings } from '../rlhf/online/trainer.js';
import { PPO_DEFAULTS, PPO_SCHEMA, type PpoConfig } from '../rlhf/ppo/config.js';
import { ppoAlgorithm } from '../rlhf/ppo/trainer.js';
import type { Experiment, LabContext, LabOutcome } from './experiment.js';
import { cachedResult, readEvals, rlWithGold } from './pipeline.js';
import { goldReward } from './gold.js';
import { renderChart, type Point, type Series } from './plots.js';
import type { Table } from './report.js';

export const GRANULARITIES = ['sequence', 'sentence', 'token'] as const;
export type Granularity = (typeof GRANULARITIES)[number];

export interface SparseConfig {
  /** The policy: 'stories260k' or a model directory. */
  model: string;
  /** Which granularities to train, each with the same seeds and steps. */
  granularities: string[];
  /** PPO steps per granularity (one rollout each). */
  steps: number;
  /** Policy (and value head) learning rate. */
  lr: number;
  /** KL coefficient β (per-token k1 penalty in the reward). */
  klCoef: number;
  /** Prompts per step (BOS only: unconditional stories) × samples per prompt = sequences per rollout. */
  prompts: number;
  samplesPerPrompt: number;
  /** Completion tokens (the token granularity costs one VADER call per prefix). */
  maxNewTokens: number;
  /** GAE trace λ (γ = 1). */
  lambda: number;
  /** Evaluate gold and KL on fresh samples every N steps. */
  evalEvery: number;
  evalSamples: number;
  /** Sequences in each gradient-noise probe (one backward each). */
  probeSequences: number;
  /** libtorch + OpenBLAS threads. */
  threads: number;
}

export const SPARSE_DEFAULTS: SparseConfig = {
  model: 'stories260k',
  granularities: [...GRANULARITIES],
  steps: 30,
  lr: 2e-4,
  klCoef: 0.01,
  prompts: 16,
  samplesPerPrompt: 4,
  maxNewTokens: 32,
  lambda: 0.95,
  evalEvery: 5,
  evalSamples: 128,
  probeSequences: 64,
  threads: 1,
};

export const SPARSE_SCHEMA: Schema<SparseConfig> = {
  model: { doc: "the policy: 'stories260k' or a model directory" },
  granularities: { doc: `granularities to train: ${GRANULARITIES.join(', ')}`, items: 'string' },
  steps: { doc: 'PPO steps per granularity', integer: true, min: 1 },
  lr: { doc: 'learning rate', min: 0 },
  klCoef: { doc: 'KL coefficient β', min: 0 },
  prompts: { doc: 'prompts per step', integer: true, min: 1 },
  samplesPerPrompt: { doc: 'samples per prompt', integer: true, min: 1 },
  maxNewTokens: { doc: 'completion tokens (one VADER call per prefix at token granularity)', integer: true, min: 2 },
  lambda: { doc: 'GAE trace λ (γ = 1)', min: 0 },
  evalEvery: { doc: 'evaluation period in steps', integer: true, min: 1 },
  evalSamples: { doc: 'fresh samples per evaluation', integer: true, min: 2 },
  probeSequences: { doc: 'sequences per gradient-noise probe', integer: true, min: 2 },
  threads: { doc: 'libtorch + OpenBLAS threads', integer: true, min: 1, max: MAX_THREADS },
};

const QUICK = { steps: 4, prompts: 4, samplesPerPrompt: 4, maxNewTokens: 16, evalEvery: 2, evalSamples: 16, probeSequences: 8 };

// ---- the reward at three granularities ------------------------------------------------------------

/** True when the text added by a token closes a sentence. */
const SENTENCE_END = /[.!?\n]/;

/**
 * The gold reward as a RewardSource at a granularity: `rewards` is gold(completion) at every granularity;
 * `tokenRewards` places it (see the file's comment). Prefix texts are decoded prompt-relative, as the
 * rollout decodes completions, so the last prefix is the completion itself.
 */
export function prefixGoldReward(granularity: Granularity, tok: Tokenizer): SyncRewardSource {
  return {
    name: `gold/${granularity}`,
    score(input: RewardInput) {
      const memo = new Map<string, number>();
      const gold = (text: string): number => {
        let g = memo.get(text);
        if (g === undefined) memo.set(text, (g = goldReward(text)));
        return g;
      };
      const rewards = input.completions.map(gold);
      const tokenRewards = input.completionIds.map((ids, i) => {
        const out = new Array<number>(ids.length).fill(0);
        if (ids.length === 0) return out;
        if (granularity === 'sequence') {
          out[ids.length - 1] = rewards[i]!;
          return out;
        }
        const p = input.promptIds[i]!;
        const head = tok.decode([...p]).length;
        let credited = 0; // gold of the prefix credited so far
        let before = '';
        for (let t = 0; t < ids.length; t++) {
          const text = t === ids.length - 1 ? input.completions[i]! : tok.decode([...p, ...ids.slice(0, t + 1)]).slice(head);
          const last = t === ids.length - 1;
          if (granularity === 'token' || last || SENTENCE_END.test(text.slice(before.length))) {
            const g = last ? rewards[i]! : gold(text);
            out[t] = g - credited;
            credited = g;
          }
          before = text;
        }
        return out;
      });
      return { rewards, spread: null, tokenRewards };
    },
    dispose() {},
  };
}

// ---- one PPO run per granularity --------------------------------------------------------------------

function ppoConfig(cfg: SparseConfig, dir: string, seed: number): PpoConfig {
  const n = cfg.prompts * cfg.samplesPerPrompt;
  return validateConfig({
    seed, out: dir,
    model: { policy: cfg.model },
    // The source is passed as a RewardSource override; this entry only documents it in the checkpoint.
    reward: { sources: ['function:gold'] },
    rollout: { prompts: cfg.prompts, samplesPerPrompt: cfg.samplesPerPrompt, maxNewTokens: cfg.maxNewTokens },
    kl: { coef: cfg.klCoef },
    train: { steps: cfg.steps, lr: cfg.lr, miniBatchSize: n % 2 === 0 ? n / 2 : n, evalEvery: cfg.evalEvery, evalSamples: cfg.evalSamples, checkpointEvery: cfg.evalEvery, threads: cfg.threads },
    ppo: { gamma: 1, lambda: cfg.lambda },
  }, PPO_DEFAULTS, PPO_SCHEMA, 'lab sparse');
}

/** Gold (= the eval reward) and KL on fresh samples, per evaluation. */
export interface EvalPoint {
  step: number;
  gold: number;
  goldSe: number;
  kl: number;
}

/** The evaluations of the run in `dir`: its reward is the gold itself. */
function goldEvals(dir: string): EvalPoint[] {
  return readEvals(dir).map((r) => ({ step: r.step, gold: r.reward, goldSe: r.rewardSe, kl: r.kl }));
}

/**
 * Noise of the policy-gradient estimate on one fresh rollout of n sequences. With PPO's advantages A (GAE
 * over this granularity's token rewards, whitened as in training) and g_i = ∇θ Σ_t A_{i,t} log π(a_{i,t})
 * the gradient one sequence contributes (at ratio 1, i.e. the first mini-batch step), it returns
 *   noise = tr Cov(g_i) = Σ_i ‖g_i − ḡ‖² / (n − 1),  signal = ‖ḡ‖² − noise / n (unbiased for ‖E g‖²),
 *   ratio = noise / signal
 * — the number of sequences a batch needs before its mean gradient's error is as large as the gradient
 * itself (Infinity when the probe detects no mean gradient: signal ≤ 0). Whitening puts every granularity's advantages on the same scale, so the ratio compares how the
 * credit is placed, not reward magnitudes. Policy parameters only.
 */
export interface GradientNoise {
  noise: number;
  signal: number;
  ratio: number;
}

function gradientNoise(pcfg: PpoConfig, reward: SyncRewardSource, checkpoint: string | null, n: number, seed: number): GradientNoise {
  const algo = ppoAlgorithm(pcfg);
  const run = openRun(pcfg, algo, reward);
  try {
    if (checkpoint) loadCheckpoint(checkpoint, { modules: { policy: run.trainable, ...(run.critic?.head ? { value_head: run.critic.head } : {}) }, optimizers: {} });
    const s = sample(run.policy, run.tok, Array.from({ length: n }, () => run.prompts[0]!), settings(pcfg), seed);
    const r = scoredRollout(s, run.policy, run.reference, run.critic, reward.score(s));
    try {
      const adv = scope(() => algo.advantages(r, r.reward.rewards, pcfg.kl.coef, pcfg).advantages.detach().clone());
      const params = run.trainable.trainableParameters();
      const size = params.reduce((a, p) => a + p.numel, 0);
      const sum = new Float64Array(size);
      let sumSq = 0;
      for (let i = 0; i < n; i++) {
        run.opt.zeroGrad();
        scope(() => {
          const mb = sliceActions(r.batch, [i]);
          actorForward(run.policy, mb).logProbs.mul(adv.narrow(0, i, 1)).mul(mb.actionMask).sum().backward();
          disposeActions(mb);
          let o = 0;
          for (const p of params) {
            const g = p.grad ? (p.grad.data() as Float32Array) : new Float32Array(p.numel);
            for (let j = 0; j < g.length; j++, o++) {
              sum[o]! += g[j]!;
              sumSq += g[j]! * g[j]!;
            }
          }
        });
      }
      run.opt.zeroGrad();
      adv.dispose();
      const meanSq = sum.reduce((a, x) => a + (x / n) ** 2, 0); // ‖ḡ‖²
      const noise = (sumSq - n * meanSq) / (n - 1); // sample tr Cov(g_i)
      // ‖ḡ‖² overestimates ‖E g‖² by tr Cov / n (so a raw ratio could never exceed n); this removes that bias.
      const signal = meanSq - noise / n;
      return { noise, signal, ratio: signal > 0 ? noise / signal : Infinity };
    } finally {
      disposeScored(r);
    }
  } finally {
    closeRun(run);
  }
}

// ---- analysis ---------------------------------------------------------------------------------------

/** Gold at KL `k` along a run's evaluations: linear interpolation at the first crossing, null if never reached. */
export function goldAtFirstCrossing(points: readonly EvalPoint[], k: number): number | null {
  for (let i = 0; i < points.length; i++) {
    const b = points[i]!;
    if (b.kl === k) return b.gold;
    const a = points[i - 1];
    if (a && (a.kl - k) * (b.kl - k) < 0) return a.gold + ((b.gold - a.gold) * (k - a.kl)) / (b.kl - a.kl);
  }
  return null;
}

interface GranularityResult {
  granularity: Granularity;
  evals: EvalPoint[];
  noiseInitial: GradientNoise;
  noiseFinal: GradientNoise;
}

const f3 = (x: number | null): string => (x === null ? 'n/a' : x.toFixed(3));

function analyse(cfg: SparseConfig, runs: GranularityResult[]): { table: Table; paragraphs: string[]; result: Record<string, unknown> } {
  const commonKl = Math.min(...runs.map((r) => Math.max(...r.evals.map((e) => e.kl))));
  const atKl = runs.map((r) => (commonKl > 0 ? goldAtFirstCrossing(r.evals, commonKl) : null));
  const mid = (r: GranularityResult) => r.evals[Math.floor((r.evals.length - 1) / 2)]!;
  const rows = runs.map((r, i) => {
    const first = r.evals[0]!;
    const last = r.evals[r.evals.length - 1]!;
    // Learning speed: the mean gold gain over the evaluations after step 0 (the area under gold − gold₀ per step).
    const later = r.evals.slice(1);
    const auc = later.length ? later.reduce((a, e) => a + e.gold - first.gold, 0) / later.length : 0;
    return { g: r.granularity, gold0: first.gold, midStep: mid(r).step, midGain: mid(r).gold - first.gold, gold: last.gold, se: last.goldSe, kl: last.kl, auc, atKl: atKl[i]!, n0: r.noiseInitial.ratio, n1: r.noiseFinal.ratio };
  });
  const lowest = (k: (r: (typeof rows)[number]) => number) => [...rows].sort((a, b) => k(a) - k(b))[0]!.g;
  const ratioCell = (x: number) => (Number.isFinite(x) ? x : 'no mean gradient detected');
  const table: Table = {
    caption: `PPO against the same gold at three granularities, ${cfg.steps} steps each, same seeds. Gold on ${cfg.evalSamples} fresh samples; KL in nats per sequence; gradient noise = tr Cov(g_i) / ‖ḡ‖² over ${cfg.probeSequences} sequences (lower: fewer samples for the same gradient accuracy).`,
    columns: ['granularity', 'gold at step 0', `gold gain at step ${rows[0]?.midStep ?? '?'}`, 'mean gold gain (learning speed)', `final gold (± s.e.)`, 'final KL', `gold at KL ${commonKl.toFixed(2)}`, 'gradient noise, initial policy', 'gradient noise, final policy'],
    rows: rows.map((r) => [r.g, r.gold0, r.midGain, r.auc, `${r.gold.toFixed(4)} ± ${r.se.toFixed(4)}`, r.kl, r.atKl, ratioCell(r.n0), ratioCell(r.n1)]),
  };
  const byAuc = [...rows].sort((a, b) => b.auc - a.auc);
  const seq = rows.find((r) => r.g === 'sequence');
  const paragraphs: string[] = [
    'The gold reward (VADER sentiment × repetition factor) is given to PPO once per sequence, at sentence ends, or at every token as the change in the gold of the growing prefix. ' +
      'All three sum to the same sequence gold, so only the credit assignment differs; the seeds, rollouts at step 0 and step counts are the same.',
    `Learning speed (mean gold gain over the evaluations): ${byAuc.map((r) => `${r.g} ${r.auc.toFixed(4)}`).join(', ')}. ` +
      `Final gold: ${rows.map((r) => `${r.g} ${r.gold.toFixed(4)} ± ${r.se.toFixed(4)} at KL ${r.kl.toFixed(2)}`).join('; ')}.`,
  ];
  if (seq) {
    const dense = rows.filter((r) => r.g !== 'sequence');
    const faster = dense.filter((r) => r.auc > seq.auc);
    paragraphs.push(faster.length === dense.length && dense.length > 0
      ? `As expected, every denser granularity learned faster than the sequence-level reward.`
      : `The expected effect — denser feedback learning faster — ${faster.length === 0 ? 'did not appear' : `appeared only for ${faster.map((r) => r.g).join(', ')}`}: ` +
        `${dense.filter((r) => r.auc <= seq.auc).map((r) => r.g).join(', ')} did not beat the sequence-level reward's mean gain of ${seq.auc.toFixed(4)}. Differences smaller than the final gold's standard error are noise at this size.`);
  }
  const beatAtKl = seq?.atKl != null ? rows.filter((r) => r.g !== 'sequence' && r.atKl !== null && r.atKl > seq.atKl!) : [];
  const lostAtKl = seq?.atKl != null ? rows.filter((r) => r.g !== 'sequence' && r.atKl !== null && r.atKl <= seq.atKl!) : [];
  paragraphs.push(commonKl > 0
    ? `At equal KL (${commonKl.toFixed(2)} nats, the largest KL every run reached), gold was ${rows.map((r) => `${r.g} ${f3(r.atKl)}`).join(', ')} (linear interpolation between evaluations at the first crossing; n/a where a run's KL never crossed it).` +
      (beatAtKl.length ? ` Denser feedback bought more gold for the same divergence for ${beatAtKl.map((r) => r.g).join(', ')}.` : '') +
      (lostAtKl.length ? ` It did not for ${lostAtKl.map((r) => r.g).join(', ')}, which reached no more gold than the sequence-level reward at that KL.` : '')
    : 'No run moved away from the initial policy (KL 0), so gold cannot be compared at equal KL.');
  paragraphs.push(`Gradient noise-to-signal ratio tr Cov(g_i) / ‖ḡ‖² of the per-sequence policy gradients (whitened GAE advantages; lower is better): at the initial policy with an untrained value head ${rows.map((r) => `${r.g} ${Number.isFinite(r.n0) ? r.n0.toFixed(1) : '∞ (no mean gradient detected)'}`).join(', ')}; at each run's final policy and value head ${rows.map((r) => `${r.g} ${Number.isFinite(r.n1) ? r.n1.toFixed(1) : '∞ (no mean gradient detected)'}`).join(', ')}. ` +
    `Lowest noise: ${lowest((r) => r.n0)} at the initial policy, ${lowest((r) => r.n1)} at the final policies` +
    (seq ? (rows.every((r) => r.g === 'sequence' || (r.n0 < seq.n0 && r.n1 < seq.n1)) ? ' — denser feedback gave the less noisy gradient at both probes.' : ' — so the expected effect, denser feedback giving a less noisy gradient, did not hold at both probes.') : '.') +
    ` A ratio above the probe's ${cfg.probeSequences} sequences means a batch of that size barely resolves the mean gradient, so these ratios are themselves noisy (one rollout per probe).`);
  const result = {
    commonKl,
    runs: Object.fromEntries(rows.map((r) => [r.g, { finalGold: r.gold, finalGoldSe: r.se, finalKl: r.kl, meanGain: r.auc, goldAtCommonKl: r.atKl, gradientNoiseInitial: Number.isFinite(r.n0) ? r.n0 : null, gradientNoiseFinal: Number.isFinite(r.n1) ? r.n1 : null }])),
  };
  return { table, paragraphs, result };
}

// ---- the experiment ---------------------------------------------------------------------------------

function checkGranularities(cfg: SparseConfig): Granularity[] {
  if (cfg.granularities.length === 0) throw new Error('lab sparse: granularities is empty: name at least one of ' + GRANULARITIES.join(', '));
  for (const g of cfg.granularities) {
    if (!(GRANULARITIES as readonly string[]).includes(g)) throw new Error(`lab sparse: granularities has '${g}': must be one of ${GRANULARITIES.join(', ')}`);
  }
  return [...new Set(cfg.granularities)] as Granularity[];
}

async function run(cfg: SparseConfig, ctx: LabContext): Promise<LabOutcome> {
  const grans = checkGranularities(cfg);
  setNumThreads(cfg.threads);
  const tok = loadTokenizer(resolveModelDir(cfg.model));
  const runs: GranularityResult[] = [];
  for (const g of grans) {
    const dir = join(ctx.dir, g);
    const pcfg = ppoConfig(cfg, dir, ctx.seed);
    const reward = prefixGoldReward(g, tok);
    await rlWithGold({ config: pcfg, where: 'lab sparse', gold: false, reward, signal: ctx.signal, progress: (l) => ctx.progress(`[${g}] ${l}`) });
    const probeSeed = (ctx.seed ^ 0x9e3779b9) >>> 0;
    const probes = cachedResult(join(dir, 'probe.json'), { pcfg, probe: cfg.probeSequences, estimator: 'unbiased' }, () => ({
      initial: gradientNoise(pcfg, reward, null, cfg.probeSequences, probeSeed),
      final: gradientNoise(pcfg, reward, join(dir, 'checkpoint'), cfg.probeSequences, probeSeed),
    }));
    // JSON keeps Infinity (no mean gradient detected) as null.
    for (const p of [probes.initial, probes.final]) p.ratio ??= Infinity;
    const evals = goldEvals(dir);
    ctx.progress(`[${g}] gold ${f3(evals[0]!.gold)} → ${f3(evals[evals.length - 1]!.gold)}, gradient noise ${probes.initial.ratio.toFixed(2)} → ${probes.final.ratio.toFixed(2)}`);
    runs.push({ granularity: g, evals, noiseInitial: probes.initial, noiseFinal: probes.final });
  }
  const { table, paragraphs, result } = analyse(cfg, runs);
  const series = (y: (e: EvalPoint) => number, x: (e: EvalPoint) => number): Series[] => runs.map((r) => ({ name: r.granularity, points: r.evals.map((e): Point => ({ x: x(e), y: y(e) })) }));
  const plots = [
    await renderChart({
      title: 'Gold reward on fresh samples vs PPO step', xTitle: 'PPO step', yTitle: 'gold',
      series: series((e) => e.gold, (e) => e.step),
      caption: 'Learning speed: the same gold signal given per sequence, per sentence and per token.',
    }),
    await renderChart({
      title: 'Gold reward vs √KL', xTitle: 'd = √KL(π ‖ π_ref)', yTitle: 'gold',
      series: series((e) => e.gold, (e) => Math.sqrt(Math.max(0, e.kl))),
      caption: 'Gold bought per unit of divergence from the initial policy: a curve above another is the better trade.',
    }),
  ];
  return {
    section: { id: 'sparse', title: 'Sparse vs dense feedback', paragraphs, plots, tables: [table] },
    result: { ...result, quick: ctx.quick },
  };
}

export const sparse: Experiment<SparseConfig> = {
  name: 'sparse',
  summary: 'the same gold reward given per sequence, per sentence and per token: PPO learning speed, gold at equal KL, gradient noise',
  defaults: SPARSE_DEFAULTS,
  schema: SPARSE_SCHEMA,
  quick: QUICK,
  run,
};
