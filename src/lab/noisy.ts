/**
 * `rlhf lab noisy`: how label noise in the preferences reaches the proxy and the policy, in the demo's
 * gold/proxy setting (demo.ts). Two kinds of noise, each swept with the other off:
 *   - rationality: Bradley–Terry annotators P(a ≻ b) = σ(β·(g(a) − g(b))) on the gold g (annotators.ts),
 *     for each finite β of the config and β = ∞ (always the higher gold);
 *   - flips: β = ∞ labels, each swapped with probability f (a careless click; the noise conservative DPO
 *     and label-smoothed BT assume, Mitchell 2023).
 * The comparisons are sampled once (two fresh samples of the initial policy each) and labelled per setting
 * from one seed, so settings share their draws: a label flipped at f = 0.1 is flipped at f = 0.3 too, and
 * the β settings use the same uniforms. Per setting: a proxy RM on the labels (reward/train.ts), scored on
 * held-out pairs ordered by the gold itself — accuracy and calibration (ECE) against the truth, not
 * against noisy labels — then a short PPO run against the proxy with the gold measured at its end. On the
 * noisiest setting also: label-smoothed BT with ε = the flip rate, and DPO against conservative DPO
 * (label smoothing ε), their implicit reward scored on the same gold-ordered held-out pairs.
 *
 * Layout under OUT/noisy: comparisons.json, heldout.jsonl, <setting>/{train.jsonl, proxy/, ppo/},
 * dpo/, cdpo/, each step with a done-marker (pipeline.ts `phase`) so a rerun skips finished work.
 *
 * Measured on the shared 2-core CPU, 1 thread: the full run (defaults, seed 0) takes 213 s with the machine
 * idle (562 s with other jobs loading it), `--quick` 10–15 s idle (35 s loaded).
 */
import { checkEmbeddedRl, embeddedMiniBatch, ONLINE_ALGORITHM_NAMES, type OnlineAlgorithmName } from '../rlhf/algorithms.js';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MAX_THREADS, type Schema } from '../config.js';
import { validateConfig } from '../config.js';
import { mulberry32 } from '../random.js';
import type { ReliabilityBin } from '../reward/metrics.js';
import { pearson } from '../stats.js';
import { DPO_DEFAULTS, DPO_SCHEMA } from '../rlhf/dpo/config.js';
import { trainDpo } from '../rlhf/dpo/trainer.js';
import { setNumThreads } from '../tensor/index.js';
import { annotatePairs, toJsonl, type AnnotatedPair, type Comparison } from './annotators.js';
import { writeAtomic } from '../atomic.js';
import { phase, readEvals, rlWithGold, sampleComparisons, trainProxy } from './pipeline.js';
import type { Experiment, LabContext, LabOutcome } from './experiment.js';
import { goldReward } from './gold.js';
import { renderChart, type Series } from './plots.js';
import type { Cell, Section } from './report.js';

export interface NoisyConfig {
  /** The policy and the proxies' backbone: 'stories260k' or a model directory. */
  model: string;
  pairs: {
    /** Comparisons the annotators label (the proxies' and DPO's training data). */
    train: number;
    /** Comparisons ordered by the gold itself (gold ties dropped): every accuracy and ECE is measured here. */
    heldOut: number;
    /** Completion tokens per sample (comparisons and RL). */
    maxNewTokens: number;
  };
  annotators: {
    /** Finite rationalities β per unit of gold, swept at flip rate 0; β = ∞ is always run too. */
    betas: number[];
    /** Label-flip probabilities on β = ∞ labels, each in [0, 0.5); the largest is the noisiest setting. */
    flipRates: number[];
  };
  proxy: { epochs: number; batchSize: number; lr: number };
  rl: { algorithm: OnlineAlgorithmName; steps: number; lr: number; klCoef: number; prompts: number; samplesPerPrompt: number; evalSamples: number };
  dpo: { beta: number; epochs: number; batchSize: number; lr: number };
  /** libtorch + OpenBLAS threads. */
  threads: number;
}

export const NOISY_DEFAULTS: NoisyConfig = {
  model: 'stories260k',
  pairs: { train: 768, heldOut: 256, maxNewTokens: 48 },
  annotators: { betas: [2, 5, 20], flipRates: [0, 0.1, 0.3] },
  proxy: { epochs: 2, batchSize: 16, lr: 3e-4 },
  // The demo's PPO (lr 5e-4, KL 0.01) cut short: its gold rises for the first ~10 steps before it peaks.
  rl: { algorithm: 'ppo', steps: 8, lr: 5e-4, klCoef: 0.01, prompts: 12, samplesPerPrompt: 4, evalSamples: 128 },
  dpo: { beta: 0.1, epochs: 1, batchSize: 16, lr: 3e-4 },
  threads: 1,
};

export const NOISY_SCHEMA: Schema<NoisyConfig> = {
  model: { doc: "the policy and the proxies' backbone: 'stories260k' or a model directory" },
  pairs: {
    train: { doc: 'comparisons labelled by the annotators (training data of every proxy and of DPO)', integer: true, min: 16 },
    heldOut: { doc: 'held-out comparisons ordered by the gold (ties dropped): accuracy and ECE are measured on them', integer: true, min: 8 },
    maxNewTokens: { doc: 'completion tokens per sample', integer: true, min: 4 },
  },
  annotators: {
    betas: { doc: 'finite Bradley–Terry rationalities β > 0 swept at flip rate 0 (β = ∞ always runs)', items: 'number' },
    flipRates: { doc: 'label-flip probabilities in [0, 0.5) on β = ∞ labels; the largest (> 0) is the noisiest setting', items: 'number' },
  },
  proxy: {
    epochs: { doc: 'proxy reward-model epochs', integer: true, min: 1 },
    batchSize: { doc: 'pairs per proxy step', integer: true, min: 1 },
    lr: { doc: 'proxy learning rate', min: 0 },
  },
  rl: {
    algorithm: { doc: 'policy optimiser (an online algorithm)', oneOf: ONLINE_ALGORITHM_NAMES },
    steps: { doc: 'RL steps against each proxy', integer: true, min: 1 },
    lr: { doc: 'policy learning rate', min: 0 },
    klCoef: { doc: 'KL coefficient', min: 0 },
    prompts: { doc: 'prompts per PPO step', integer: true, min: 1 },
    samplesPerPrompt: { doc: 'samples per prompt (prompts × samplesPerPrompt must be even)', integer: true, min: 1 },
    evalSamples: { doc: 'fresh samples the gold is measured on, before and after PPO', integer: true, min: 8 },
  },
  dpo: {
    beta: { doc: 'DPO β (implicit reward β·log π/π_ref)', min: 0 },
    epochs: { doc: 'DPO epochs', integer: true, min: 1 },
    batchSize: { doc: 'pairs per DPO step', integer: true, min: 1 },
    lr: { doc: 'DPO learning rate', min: 0 },
  },
  threads: { doc: 'libtorch + OpenBLAS threads', integer: true, min: 1, max: MAX_THREADS },
};

/** One way of labelling the comparisons and fitting a proxy to them. */
export interface NoisySetting {
  id: string;
  /** annotator rationality (Infinity: always the higher gold) */
  beta: number;
  flip: number;
  loss: 'bradley_terry' | 'label_smoothed_bt';
  /** label smoothing ε of label_smoothed_bt (0 otherwise) */
  epsilon: number;
}

/** The settings in report order: the β sweep (flip 0, ending at β = ∞), the flip sweep, smoothed BT on the noisiest. */
export function noisySettings(cfg: NoisyConfig): NoisySetting[] {
  const bt = (beta: number, flip: number): NoisySetting => ({ id: `b${beta === Infinity ? 'inf' : beta}-f${flip}`, beta, flip, loss: 'bradley_terry', epsilon: 0 });
  const betas = [...new Set(cfg.annotators.betas)].sort((a, b) => a - b);
  const flips = [...new Set(cfg.annotators.flipRates)].filter((f) => f > 0).sort((a, b) => a - b);
  const noisiest = flips.at(-1)!;
  return [
    ...betas.map((b) => bt(b, 0)),
    bt(Infinity, 0),
    ...flips.map((f) => bt(Infinity, f)),
    { ...bt(Infinity, noisiest), id: `binf-f${noisiest}-ls`, loss: 'label_smoothed_bt', epsilon: noisiest },
  ];
}

/** What the schema cannot say: the lists' ranges, and an even PPO batch. */
export function checkNoisyConfig(cfg: NoisyConfig): void {
  for (const b of cfg.annotators.betas) if (!(b > 0)) throw new Error(`annotators.betas: every β must be > 0 (β = ∞ always runs), got ${b}`);
  for (const f of cfg.annotators.flipRates) if (!(f >= 0 && f < 0.5)) throw new Error(`annotators.flipRates: every rate must be in [0, 0.5), got ${f}`);
  if (!cfg.annotators.flipRates.some((f) => f > 0)) throw new Error('annotators.flipRates needs a rate > 0: the noisiest setting compares the robust losses');
  checkEmbeddedRl(cfg.rl.algorithm, cfg.rl, 'rl');
}

// ---- data

/** Labels the training comparisons: BT at β, then each label swapped with probability `flip` (a second seeded stream). */
export function labelComparisons(comparisons: readonly Comparison[], beta: number, flip: number, seed: number): AnnotatedPair[] {
  const id = `bt-${beta === Infinity ? 'inf' : beta}${flip > 0 ? `-flip-${flip}` : ''}`;
  const records = annotatePairs(comparisons, { annotators: [{ id, beta }], seed, source: 'rlhf lab noisy' });
  const u = mulberry32((seed ^ 0x0f11b5ed) >>> 0); // one draw per label whatever f, so flips nest across rates
  return records.map((r) => (u() < flip ? { ...r, chosen: r.rejected, rejected: r.chosen } : r));
}

/** The gold ordering of each comparison (ties dropped): the held-out truth every accuracy is measured on. */
export function goldOrdered(comparisons: readonly Comparison[]): AnnotatedPair[] {
  return comparisons.flatMap((c) => {
    const [ga, gb] = [goldReward(c.a), goldReward(c.b)];
    if (ga === gb) return [];
    return [{ prompt: c.prompt, chosen: ga > gb ? c.a : c.b, rejected: ga > gb ? c.b : c.a, annotator: 'gold', source: 'rlhf lab noisy' }];
  });
}

/** Fraction of labels whose chosen response has the lower gold (a gold tie counts ½). */
function labelNoise(records: readonly AnnotatedPair[]): number {
  let wrong = 0;
  for (const r of records) {
    const d = goldReward(r.chosen) - goldReward(r.rejected);
    wrong += d < 0 ? 1 : d === 0 ? 0.5 : 0;
  }
  return wrong / records.length;
}

// ---- per-setting steps

/** A proxy's held-out numbers against the gold ordering. */
export interface ProxyResult {
  dir: string;
  accuracy: number;
  ci: [number, number];
  ece: number;
  /** mean confidence σ(|Δ|) minus accuracy: > 0 overconfident, < 0 underconfident */
  overconfidence: number;
  n: number;
}

/** The policy's gold before and after PPO against a proxy, on `evalSamples` fresh samples. */
export interface PpoResult {
  goldBefore: number;
  gold: number;
  goldSe: number;
  kl: number;
}

function meanConfidence(bins: readonly ReliabilityBin[]): number {
  const n = bins.reduce((a, b) => a + b.n, 0);
  return bins.reduce((a, b) => a + (b.confidence ?? 0) * b.n, 0) / n;
}

async function noisyProxy(cfg: NoisyConfig, s: NoisySetting, dir: string, data: string, heldOut: string, seed: number, say: (l: string) => void): Promise<ProxyResult> {
  const { dir: modelDir, summary } = await trainProxy({
    seed, out: join(dir, 'proxy'), base: cfg.model, threads: cfg.threads, where: 'lab noisy proxy',
    data: { path: data, testPath: heldOut, maxTokens: 128 },
    loss: { type: s.loss, labelSmoothing: s.epsilon },
    train: { epochs: cfg.proxy.epochs, batchSize: cfg.proxy.batchSize, lr: cfg.proxy.lr },
  }, say);
  if (!summary.eval) throw new Error(`${s.id}: the proxy has no held-out evaluation`);
  const e = summary.eval;
  return { dir: modelDir, accuracy: e.accuracy, ci: e.accuracy_ci, ece: e.ece, overconfidence: meanConfidence(e.reliability) - e.accuracy, n: e.n };
}

async function ppoAgainst(cfg: NoisyConfig, proxyDir: string, out: string, seed: number, ctx: LabContext, say: (l: string) => void): Promise<PpoResult> {
  const c = cfg.rl;
  const raw = {
    seed, out,
    model: { policy: cfg.model },
    reward: { sources: [`model:${proxyDir}`] },
    rollout: { prompts: c.prompts, samplesPerPrompt: c.samplesPerPrompt, maxNewTokens: cfg.pairs.maxNewTokens },
    kl: { coef: c.klCoef },
    train: { steps: c.steps, lr: c.lr, evalEvery: 0, evalSamples: c.evalSamples, checkpointEvery: c.steps, threads: cfg.threads, ...embeddedMiniBatch(c.algorithm, c.prompts * c.samplesPerPrompt) },
  };
  await rlWithGold({ algorithm: c.algorithm, config: raw, where: 'lab noisy rl', progress: say, signal: ctx.signal });
  // From the log rather than the summary: a resumed run does not evaluate step 0 again.
  const evals = readEvals(out);
  const [first, last] = [evals[0]!, evals.at(-1)!];
  return { goldBefore: first.gold, gold: last.gold, goldSe: last.goldSe, kl: last.kl };
}

async function dpoOn(cfg: NoisyConfig, data: string, heldOut: string, out: string, epsilon: number, seed: number, say: (l: string) => void): Promise<{ accuracy: number; se: number; margin: number; n: number }> {
  const d = cfg.dpo;
  const r = await trainDpo(validateConfig({
    seed, out,
    data: { path: data, testPath: heldOut, format: 'pairwise', maxTokens: 128, skipInvalid: true },
    model: { policy: cfg.model },
    loss: { type: 'sigmoid', beta: d.beta, labelSmoothing: epsilon },
    train: { epochs: d.epochs, batchSize: d.batchSize, lr: d.lr, warmupSteps: 5, evalEvery: 0, checkpointEvery: 0, threads: cfg.threads },
  }, DPO_DEFAULTS, DPO_SCHEMA, 'lab noisy dpo'), { progress: say });
  if (!r.eval) throw new Error('DPO has no held-out evaluation');
  const a = r.eval.accuracy;
  return { accuracy: a, se: Math.sqrt((a * (1 - a)) / r.eval.n), margin: r.eval.margin, n: r.eval.n };
}

// ---- the run

export interface NoisyRow {
  setting: string;
  beta: number | null;
  flip: number;
  loss: string;
  epsilon: number;
  /** fraction of training labels against the gold ordering */
  labelNoise: number;
  accuracy: number;
  accuracyCi: [number, number];
  ece: number;
  overconfidence: number;
  goldBefore: number;
  gold: number;
  goldSe: number;
  kl: number;
}

export interface DpoRow {
  method: 'DPO' | 'conservative DPO';
  epsilon: number;
  accuracy: number;
  accuracySe: number;
  margin: number;
  n: number;
}

export interface NoisyResult {
  rows: NoisyRow[];
  dpo: DpoRow[];
  heldOut: number;
  seconds: number;
}

function interrupted(ctx: LabContext): void {
  if (ctx.signal?.aborted) throw new Error('interrupted: finished steps are saved; rerun the same command to resume');
}

async function runNoisy(cfg: NoisyConfig, ctx: LabContext): Promise<LabOutcome> {
  checkNoisyConfig(cfg);
  const t0 = Date.now();
  setNumThreads(cfg.threads);
  const say = ctx.progress;
  const seed = ctx.seed;
  const dir = ctx.dir;

  // ---- comparisons, once: training part and the gold-ordered held-out part
  const p = cfg.pairs;
  const heldOut = join(dir, 'heldout.jsonl');
  const comparisons = await phase(dir, 'comparisons', { seed, model: cfg.model, p }, async () => {
    const all = sampleComparisons(cfg.model, p.train + p.heldOut, p.maxNewTokens, seed + 101, (l) => say(`[comparisons] ${l}`));
    writeAtomic(join(dir, 'comparisons.json'), JSON.stringify(all));
    writeAtomic(heldOut, toJsonl(goldOrdered(all.slice(p.train))));
    return { path: join(dir, 'comparisons.json') };
  });
  const train = (JSON.parse(readFileSync(comparisons.path, 'utf8')) as Comparison[]).slice(0, p.train);

  // ---- per setting: labels → proxy → PPO against it
  const rows: NoisyRow[] = [];
  const settings = noisySettings(cfg);
  for (const [i, s] of settings.entries()) {
    interrupted(ctx);
    const sdir = join(dir, s.id);
    mkdirSync(sdir, { recursive: true });
    const tag = (l: string) => say(`[${i + 1}/${settings.length} ${s.id}] ${l}`);
    const labels = labelComparisons(train, s.beta, s.flip, seed);
    const data = join(sdir, 'train.jsonl');
    writeAtomic(data, toJsonl(labels));
    const fp = { seed, model: cfg.model, p, beta: String(s.beta), flip: s.flip, loss: s.loss, epsilon: s.epsilon, proxy: cfg.proxy };
    const px = await phase(sdir, 'proxy', fp, () => noisyProxy(cfg, s, sdir, data, heldOut, seed, tag), join(sdir, 'proxy'));
    tag(`proxy accuracy against the gold ordering ${px.accuracy.toFixed(3)} [${px.ci.map((x) => x.toFixed(3)).join(', ')}], ECE ${px.ece.toFixed(3)}`);
    interrupted(ctx);
    const rl = await phase(sdir, 'ppo', { fp, rl: cfg.rl }, () => ppoAgainst(cfg, px.dir, join(sdir, 'ppo'), seed, ctx, tag), join(sdir, 'ppo'));
    tag(`gold ${rl.goldBefore.toFixed(4)} → ${rl.gold.toFixed(4)} ± ${rl.goldSe.toFixed(4)} at KL ${rl.kl.toFixed(2)}`);
    rows.push({
      setting: s.id, beta: s.beta === Infinity ? null : s.beta, flip: s.flip, loss: s.loss, epsilon: s.epsilon, labelNoise: labelNoise(labels),
      accuracy: px.accuracy, accuracyCi: px.ci, ece: px.ece, overconfidence: px.overconfidence, goldBefore: rl.goldBefore, gold: rl.gold, goldSe: rl.goldSe, kl: rl.kl,
    });
  }

  // ---- DPO and conservative DPO on the noisiest labels
  const noisiest = settings.at(-1)!;
  const noisyData = join(dir, noisiest.id, 'train.jsonl');
  const dpo: DpoRow[] = [];
  for (const [name, method, eps] of [['dpo', 'DPO', 0], ['cdpo', 'conservative DPO', noisiest.epsilon]] as const) {
    interrupted(ctx);
    const out = join(dir, name);
    const r = await phase(dir, name, { seed, model: cfg.model, p, flip: noisiest.flip, eps, dpo: cfg.dpo }, () => dpoOn(cfg, noisyData, heldOut, out, eps, seed, (l) => say(`[${name}] ${l}`)), out);
    say(`[${name}] implicit-reward accuracy against the gold ordering ${r.accuracy.toFixed(3)} ± ${r.se.toFixed(3)} (n ${r.n})`);
    dpo.push({ method, epsilon: eps, accuracy: r.accuracy, accuracySe: r.se, margin: r.margin, n: r.n });
  }

  const heldOutN = readFileSync(heldOut, 'utf8').split('\n').filter(Boolean).length;
  const result: NoisyResult = { rows, dpo, heldOut: heldOutN, seconds: (Date.now() - t0) / 1000 };
  return { section: await noisySection(result), result: result as unknown as Record<string, unknown> };
}

// ---- the report section

const f3 = (x: number) => x.toFixed(3);
const betaName = (b: number | null) => (b === null ? '∞' : String(b));
/** The standard error of a bootstrap 95% interval, read back as (hi − lo) / (2 · 1.96). */
const ciSe = (ci: readonly [number, number]) => (ci[1] - ci[0]) / (2 * 1.96);

/** "a → b", and whether the change exceeds 1.96 combined standard errors (unpaired: conservative for shared held-out pairs). */
function change(a: number, sa: number, b: number, sb: number): { resolved: boolean; text: string } {
  const resolved = Math.abs(b - a) > 1.96 * Math.hypot(sa, sb);
  return { resolved, text: `${f3(a)} → ${f3(b)}` };
}

/** The paragraphs of what was observed, every claim computed from the rows. */
export function observations(r: NoisyResult): string[] {
  const bt = r.rows.filter((x) => x.loss === 'bradley_terry');
  const betaSweep = bt.filter((x) => x.flip === 0);
  const flipSweep = bt.filter((x) => x.beta === null);
  const out: string[] = [];
  const clean = bt.find((x) => x.beta === null && x.flip === 0);
  if (clean && clean.labelNoise > 0) {
    out.push(`Even β = ∞ labels disagree with the gold ordering on ${f3(clean.labelNoise)} of the training pairs: ${f3(2 * clean.labelNoise)} of the comparisons are gold ties ` +
      '(two samples with the same gold, e.g. neither with a sentiment word), which any annotator labels by a coin flip; the held-out set drops them.');
  }
  const sweep = (rows: NoisyRow[], what: string, from: string, to: string) => {
    const [a, b] = [rows[0]!, rows.at(-1)!];
    const acc = change(a.accuracy, ciSe(a.accuracyCi), b.accuracy, ciSe(b.accuracyCi));
    const falls = b.accuracy < a.accuracy;
    const monotone = rows.every((x, i) => i === 0 || x.accuracy <= rows[i - 1]!.accuracy);
    const gold = change(a.gold, a.goldSe, b.gold, b.goldSe);
    const goldMonotone = rows.every((x, i) => i === 0 || x.gold <= rows[i - 1]!.gold);
    return `${what} (${from} → ${to}; training labels against the gold ordering ${f3(a.labelNoise)} → ${f3(b.labelNoise)}): ` +
      `proxy accuracy against the gold ordering ${acc.text} — ${falls ? (acc.resolved ? 'a resolved drop' : 'lower, but not resolved') : 'the expected drop did not appear'}` +
      `${rows.length > 2 ? `, ${monotone ? 'monotone across the sweep' : 'not monotone across the sweep'}` : ''}; ` +
      `ECE ${f3(a.ece)} → ${f3(b.ece)}; the policy's gold after PPO ${gold.text} (${gold.resolved ? (b.gold < a.gold ? 'lower, resolved' : 'higher, resolved — not the expected direction') : 'within the gold measurement\'s noise'}${rows.length > 2 && !goldMonotone ? '; not monotone in between' : ''}).`;
  };
  // Noise order: the β sweep goes from β = ∞ (clean) down to the smallest β.
  if (betaSweep.length >= 2) {
    const ordered = [...betaSweep].sort((x, y) => (y.beta ?? Infinity) - (x.beta ?? Infinity));
    out.push(sweep(ordered, 'Less rational annotators', `β ∞`, `β ${betaName(ordered.at(-1)!.beta)}`));
  }
  if (flipSweep.length >= 2) out.push(sweep(flipSweep, 'More flipped labels', `flip ${flipSweep[0]!.flip}`, `flip ${flipSweep.at(-1)!.flip}`));

  const over = bt.filter((x) => x.overconfidence < 0).length;
  out.push(`Calibration against the gold ordering: ${over} of ${bt.length} BT proxies are underconfident (mean confidence below accuracy), ${bt.length - over} overconfident; ` +
    `ECE ranges ${f3(Math.min(...bt.map((x) => x.ece)))}–${f3(Math.max(...bt.map((x) => x.ece)))}.`);

  const rAccGold = pearson(bt.map((x) => x.accuracy), bt.map((x) => x.gold));
  const g0 = bt[0]!.goldBefore;
  out.push(`Policy: every PPO run starts from gold ${f3(g0)}; after PPO the gold is ${f3(Math.min(...bt.map((x) => x.gold)))}–${f3(Math.max(...bt.map((x) => x.gold)))} ` +
    `(s.e. about ${f3(bt.reduce((a, x) => a + x.goldSe, 0) / bt.length)}). Across the BT settings, Pearson r between proxy accuracy and final gold is ${rAccGold === null ? 'undefined' : rAccGold.toFixed(2)}` +
    `${rAccGold !== null && bt.length >= 3 ? (rAccGold > 0.5 ? ' — better proxies gave better policies' : ' — proxy accuracy did not predict the policy\'s gold at this PPO length') : ''}.`);

  const ls = r.rows.find((x) => x.loss === 'label_smoothed_bt');
  const base = ls && bt.find((x) => x.beta === null && x.flip === ls.flip);
  if (ls && base) {
    const acc = change(base.accuracy, ciSe(base.accuracyCi), ls.accuracy, ciSe(ls.accuracyCi));
    const gold = change(base.gold, base.goldSe, ls.gold, ls.goldSe);
    out.push(`Label-smoothed BT (ε ${ls.epsilon}) against plain BT on the flip-${ls.flip} labels: accuracy ${acc.text} (${acc.resolved ? 'resolved' : 'not resolved'}), ` +
      `ECE ${f3(base.ece)} → ${f3(ls.ece)} (${ls.ece < base.ece ? 'better calibrated, as expected' : 'the expected calibration gain did not appear'}), final gold ${gold.text} (${gold.resolved ? 'resolved' : 'within noise'}).`);
  }
  const [d, c] = r.dpo;
  if (d && c) {
    const acc = change(d.accuracy, d.accuracySe, c.accuracy, c.accuracySe);
    out.push(`DPO against conservative DPO (ε ${c.epsilon}) on the same noisy pairs: implicit-reward accuracy against the gold ordering ${acc.text} ` +
      `(${acc.resolved ? (c.accuracy > d.accuracy ? 'conservative DPO better, resolved' : 'conservative DPO worse, resolved') : 'not resolved: the expected gain did not appear at this size'}; n ${c.n}).`);
  }
  return out;
}

export async function noisySection(r: NoisyResult): Promise<Section> {
  const bt = r.rows.filter((x) => x.loss === 'bradley_terry');
  const flipSweep = bt.filter((x) => x.beta === null);
  const betaSweep = bt.filter((x) => x.flip === 0);
  const ls = r.rows.filter((x) => x.loss === 'label_smoothed_bt');
  const pts = (rows: NoisyRow[], x: (r: NoisyRow) => number, y: (r: NoisyRow) => number) => rows.map((row) => ({ x: x(row), y: y(row) }));
  const flipSeries: Series[] = [
    { name: 'BT proxy: accuracy vs gold ordering', points: pts(flipSweep, (x) => x.flip, (x) => x.accuracy) },
    { name: 'BT proxy: ECE vs gold ordering', points: pts(flipSweep, (x) => x.flip, (x) => x.ece), dashed: true },
    ...(ls.length ? [
      { name: 'label-smoothed BT: accuracy', points: pts(ls, (x) => x.flip, (x) => x.accuracy), style: 'points' as const },
      { name: 'label-smoothed BT: ECE', points: pts(ls, (x) => x.flip, (x) => x.ece), style: 'points' as const },
    ] : []),
    ...r.dpo.map((d, i) => ({ name: `${d.method}: implicit-reward accuracy`, points: [{ x: flipSweep.at(-1)!.flip, y: d.accuracy }], style: 'points' as const, color: ['#9d755d', '#b279a2'][i] })),
  ];
  // 1/β puts β = ∞ at 0, so label noise grows to the right as in the flip plot.
  const inv = (x: NoisyRow) => (x.beta === null ? 0 : 1 / x.beta);
  const betaSeries: Series[] = [
    { name: 'BT proxy: accuracy vs gold ordering', points: pts(betaSweep, inv, (x) => x.accuracy).sort((a, b) => a.x - b.x) },
    { name: 'BT proxy: ECE vs gold ordering', points: pts(betaSweep, inv, (x) => x.ece).sort((a, b) => a.x - b.x), dashed: true },
  ];
  const goldSeries: Series[] = [
    { name: 'rationality sweep (flip 0)', points: pts(betaSweep, (x) => x.labelNoise, (x) => x.gold).sort((a, b) => a.x - b.x), style: 'points' },
    { name: 'flip sweep (β = ∞)', points: pts(flipSweep, (x) => x.labelNoise, (x) => x.gold), style: 'points' },
    ...(ls.length ? [{ name: 'label-smoothed BT', points: pts(ls, (x) => x.labelNoise, (x) => x.gold), style: 'points' as const }] : []),
    { name: 'initial policy', points: [0, Math.max(...r.rows.map((x) => x.labelNoise))].map((x) => ({ x, y: r.rows[0]!.goldBefore })), style: 'line', dashed: true, color: '#888' },
  ];
  const plots = [
    await renderChart({ title: 'Proxy quality vs label-flip rate (β = ∞ annotators)', xTitle: 'flip rate', yTitle: 'accuracy / ECE against the gold ordering', series: flipSeries,
      caption: `Held-out pairs ordered by the gold itself (n ${r.heldOut}). Single points: the robust losses on the noisiest labels.` }),
    await renderChart({ title: 'Proxy quality vs annotator temperature (flip 0)', xTitle: '1/β (0 = perfectly rational)', yTitle: 'accuracy / ECE against the gold ordering', series: betaSeries,
      caption: 'Bradley–Terry annotators σ(β·Δgold); the left-most point is β = ∞.' }),
    await renderChart({ title: "Policy's gold after PPO against each proxy", xTitle: 'fraction of training labels against the gold ordering', yTitle: 'gold after PPO', series: goldSeries,
      caption: 'Each point: one proxy, one short PPO run; the dashed line is the initial policy.' }),
  ];
  const cells = (x: NoisyRow): Cell[] => [x.setting, betaName(x.beta), x.flip, x.loss === 'label_smoothed_bt' ? `label-smoothed BT (ε ${x.epsilon})` : 'BT', f3(x.labelNoise),
    `${f3(x.accuracy)} [${f3(x.accuracyCi[0])}, ${f3(x.accuracyCi[1])}]`, f3(x.ece), f3(x.overconfidence), `${f3(x.gold)} ± ${f3(x.goldSe)}`, x.kl.toFixed(2)];
  return {
    id: 'noisy',
    title: 'Noisy feedback: annotator rationality and label flips',
    paragraphs: [
      'The same comparisons (two fresh samples of the initial policy each) labelled by Bradley–Terry annotators of rationality β, or by perfectly rational ones whose labels are then flipped at a rate f. ' +
      'Each labelling trains a proxy reward model, scored on held-out pairs ordered by the gold reward itself — so accuracy and calibration are against the truth, not the noisy labels — and a short PPO run against each proxy measures what the noise costs the policy. ' +
      'On the noisiest labels, label-smoothed BT and conservative DPO (ε = f) are compared with their plain versions. Differences are called resolved when they exceed 1.96 combined standard errors.',
      ...observations(r),
    ],
    plots,
    tables: [
      {
        caption: `Proxies (accuracy with its bootstrap 95% interval and ECE on ${r.heldOut} gold-ordered held-out pairs; conf − acc > 0 is overconfident) and the policy after PPO (gold ± s.e., KL in nats).`,
        columns: ['setting', 'β', 'flip', 'loss', 'labels against gold', 'accuracy [95% CI]', 'ECE', 'conf − acc', 'gold after PPO', 'KL'],
        rows: r.rows.map(cells),
      },
      {
        caption: 'DPO and conservative DPO on the noisiest labels: implicit-reward accuracy against the gold ordering (± s.e.).',
        columns: ['method', 'ε', 'accuracy', 'margin', 'n'],
        rows: r.dpo.map((d) => [d.method, d.epsilon, `${f3(d.accuracy)} ± ${f3(d.accuracySe)}`, d.margin.toFixed(4), d.n]),
      },
    ],
  };
}

export const noisy: Experiment<NoisyConfig> = {
  name: 'noisy',
  summary: 'noisy feedback: annotator rationality and label flips against proxy accuracy, calibration and the policy\'s gold; BT vs label-smoothed BT, DPO vs conservative DPO',
  defaults: NOISY_DEFAULTS,
  schema: NOISY_SCHEMA,
  quick: {
    pairs: { train: 64, heldOut: 48, maxNewTokens: 24 },
    annotators: { betas: [2], flipRates: [0.3] },
    proxy: { epochs: 1 },
    rl: { steps: 2, prompts: 4, samplesPerPrompt: 2, evalSamples: 16 },
  },
  run: runNoisy,
};
