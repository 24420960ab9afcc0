/**
 * `rlhf lab misspecification` ("RLHF Deciphered" §5.1): one scalar reward cannot represent people who
 * want different things. Two synthetic annotator populations label pairs of stories260K samples, mixed
 * into one dataset as a real one would be:
 *   - `sentiment` (default 60%): Bradley–Terry on VADER's sentiment, u(t) = (1 + compound(t)) / 2;
 *   - `brevity`   (default 40%): Bradley–Terry on shortness, u(t) = −words(t) / wordScale.
 * Each labeller prefers a with P = σ(β·(u(a) − u(b))) (annotators.ts). Lengths vary because every sample
 * is cut after a uniformly drawn number of words in [minWords, its own length] (a sample of maxNewTokens
 * rarely ends on its own); longer stories gather more sentiment words, so the two groups disagree on
 * many pairs, and the experiment reports on how many.
 *
 * Reward models, all Bradley–Terry on the policy's backbone (src/reward/train.ts):
 *   pooled       one RM on every label, the annotator ignored (what a plain RLHF pipeline trains);
 *   per-group    one RM per population, on its own labels only;
 *   conditioned  one RM on every label, the annotator given in the text: each record's prompt is the
 *                tag "[<group>] " (e.g. "[brevity] "), so one model can learn u(t | group). It is the
 *                simplest honest conditioning: the tag is ordinary text through the same tokenizer, no
 *                new parameters; it is scored with the group's tag at evaluation.
 * Held-out comparisons are labelled by both groups, so each RM is measured against each group's own labels
 * (accuracy, ECE), also on the pairs where the groups' utilities order the two texts differently. Then,
 * optionally, a short PPO run against the pooled RM shows which population the resulting policy serves
 * (its sentiment and length before and after).
 *
 * Phases leave done-markers (a JSON fingerprint of the config) in OUT/misspecification, so a rerun resumes.
 * Measured on the shared 2-core CPU, seed 0: the defaults take 4 min 11 s (sampling ~1 min, four RMs
 * ~2 min, PPO ~1 min); --quick about 25 s.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { setNumThreads } from '../tensor/index.js';
import { loadModel, resolveModelDir } from '../models/hub.js';
import { loadTokenizer } from '../text/index.js';
import { MAX_THREADS, type Schema } from '../config.js';
import { validateConfig } from '../config.js';
import { mulberry32 } from '../generate/rng.js';
import { REWARD_DEFAULTS, REWARD_SCHEMA } from '../reward/config.js';
import { trainRewardModel } from '../reward/train.js';
import { loadRewardModel } from '../reward/io.js';
import { headEnsemble } from '../reward/ensemble-model.js';
import { scoreSequences } from '../reward/evaluate.js';
import { evaluatePairs, mean } from '../reward/metrics.js';
import { sample } from '../rlhf/online/rollout.js';
import { PPO_DEFAULTS, PPO_SCHEMA } from '../rlhf/ppo/config.js';
import { trainPpo } from '../rlhf/ppo/trainer.js';
import { annotatePairs, toJsonl, type AnnotatedPair, type Comparison } from './annotators.js';
import { vaderCompound, words } from './gold.js';
import type { Experiment, LabContext, LabOutcome } from './experiment.js';
import { renderChart, type Figure } from './plots.js';
import type { Section, Table } from './report.js';
import { writeAtomic, readJsonFile } from '../atomic.js';

// ---- configuration

export interface GroupConfig {
  /** Share of the training comparisons this population labels (the shares must sum to 1). */
  fraction: number;
  /** Rationality β per unit of the group's utility (P(a ≻ b) = σ(β·(u(a) − u(b)))). */
  rationality: number;
}

export interface MisspecificationConfig {
  /** The policy that writes the samples (and every reward model's backbone). */
  model: string;
  data: {
    /** Training comparisons, each labelled once, by one population drawn by its fraction. */
    pairs: number;
    /** Held-out comparisons, each labelled by both populations. */
    heldOut: number;
    /** Tokens sampled per text before cutting. */
    maxNewTokens: number;
    /** Each text is cut after a uniform number of words in [minWords, its length]. */
    minWords: number;
  };
  groups: {
    /** Prefers positive sentiment: u = (1 + VADER compound) / 2 ∈ [0, 1]. */
    sentiment: GroupConfig;
    /** Prefers brevity: u = −words / wordScale. */
    brevity: GroupConfig & { /** words per unit of brevity utility */ wordScale: number };
  };
  rm: { epochs: number; batchSize: number; lr: number };
  /** A short PPO run against the pooled RM (steps 0 = skip). */
  ppo: { steps: number; lr: number; klCoef: number; prompts: number; samplesPerPrompt: number; evalSamples: number };
  /** libtorch + OpenBLAS threads. */
  threads: number;
}

export const MISSPECIFICATION_DEFAULTS: MisspecificationConfig = {
  model: 'stories260k',
  data: { pairs: 800, heldOut: 300, maxNewTokens: 64, minWords: 4 },
  groups: { sentiment: { fraction: 0.6, rationality: 20 }, brevity: { fraction: 0.4, rationality: 20, wordScale: 50 } },
  rm: { epochs: 2, batchSize: 16, lr: 3e-4 },
  ppo: { steps: 12, lr: 5e-4, klCoef: 0.02, prompts: 16, samplesPerPrompt: 4, evalSamples: 96 },
  threads: 1,
};

export const MISSPECIFICATION_SCHEMA: Schema<MisspecificationConfig> = {
  model: { doc: "the sampling policy and RM backbone: 'stories260k' or a model directory" },
  data: {
    pairs: { doc: 'training comparisons (each labelled by one annotator)', integer: true, min: 16 },
    heldOut: { doc: 'held-out comparisons (each labelled by both populations)', integer: true, min: 8 },
    maxNewTokens: { doc: 'tokens sampled per text before cutting', integer: true, min: 8 },
    minWords: { doc: 'shortest cut, in words', integer: true, min: 1 },
  },
  groups: {
    sentiment: {
      fraction: { doc: 'share of training labels from the sentiment population', min: 0 },
      rationality: { doc: 'its Bradley–Terry β per unit of (1 + compound) / 2', min: 0 },
    },
    brevity: {
      fraction: { doc: 'share of training labels from the brevity population', min: 0 },
      rationality: { doc: 'its Bradley–Terry β per unit of −words / wordScale', min: 0 },
      wordScale: { doc: 'words per unit of brevity utility', min: 1 },
    },
  },
  rm: {
    epochs: { doc: 'reward-model epochs (every RM)', integer: true, min: 1 },
    batchSize: { doc: 'pairs per RM step', integer: true, min: 1 },
    lr: { doc: 'RM learning rate', min: 0 },
  },
  ppo: {
    steps: { doc: 'PPO steps against the pooled RM (0 = skip)', integer: true, min: 0 },
    lr: { doc: 'policy learning rate', min: 0 },
    klCoef: { doc: 'KL coefficient β', min: 0 },
    prompts: { doc: 'prompts per PPO step', integer: true, min: 1 },
    samplesPerPrompt: { doc: 'samples per prompt', integer: true, min: 1 },
    evalSamples: { doc: 'fresh samples measured before and after', integer: true, min: 8 },
  },
  threads: { doc: 'libtorch + OpenBLAS threads', integer: true, min: 1, max: MAX_THREADS },
};

type GroupId = 'sentiment' | 'brevity';
const GROUPS: readonly GroupId[] = ['sentiment', 'brevity'];

/** Each population's utility of a text. */
function utilities(cfg: MisspecificationConfig): Record<GroupId, (t: string) => number> {
  return {
    sentiment: (t) => (1 + vaderCompound(t)) / 2,
    brevity: (t) => -words(t).length / cfg.groups.brevity.wordScale,
  };
}

/** The conditioned RM's prompt: the annotator's population as plain text. */
const tagOf = (g: GroupId): string => `[${g}] `;

function checkFractions(cfg: MisspecificationConfig): void {
  const s = cfg.groups.sentiment.fraction + cfg.groups.brevity.fraction;
  if (Math.abs(s - 1) > 1e-9) {
    throw new Error(`groups.sentiment.fraction + groups.brevity.fraction must sum to 1, got ${cfg.groups.sentiment.fraction} + ${cfg.groups.brevity.fraction} = ${s}`);
  }
}

// ---- resumable phases

/** Runs `run` unless `dir/<name>.done.json` holds this fingerprint; the marker is written last. */
async function phase<T>(dir: string, name: string, fingerprint: unknown, run: () => Promise<T>): Promise<T> {
  const marker = join(dir, `${name}.done.json`);
  if (existsSync(marker)) {
    const saved = readJsonFile<{ fingerprint: unknown; result: T }>(marker);
    if (JSON.stringify(saved.fingerprint) === JSON.stringify(fingerprint)) return saved.result;
  }
  const result = await run();
  writeAtomic(marker, JSON.stringify({ fingerprint, result }));
  return result;
}

// ---- phase 1: the mixed dataset

/** A held-out comparison with both populations' labels (true: a preferred) and utilities. */
interface HeldOutPair {
  a: string;
  b: string;
  label: Record<GroupId, boolean>;
  /** the groups' utilities order a and b differently */
  disagree: boolean;
}

interface DataResult {
  trainCounts: Record<GroupId, number>;
  /** fraction of comparisons (ties left out) whose order the two utilities disagree on */
  disagreeTrain: number;
  disagreeHeldOut: number;
  /** how often the sampled labels of the two groups differ on held-out pairs */
  labelDisagreeHeldOut: number;
  meanWords: number;
  meanCompound: number;
  /** Pearson r of words and compound over the texts */
  wordsCompoundCorr: number;
}

/** Cuts `text` after k words (whitespace-separated), k uniform in [minWords, its length]. */
function cut(text: string, minWords: number, u: number): string {
  const parts = text.trim().split(/\s+/);
  if (parts.length <= minWords) return parts.join(' ');
  const k = minWords + Math.floor(u * (parts.length - minWords + 1));
  return parts.slice(0, k).join(' ');
}

function sampleTexts(cfg: MisspecificationConfig, n: number, seed: number, say: (l: string) => void): string[] {
  const policy = loadModel(cfg.model);
  const tok = loadTokenizer(resolveModelDir(cfg.model));
  const u = mulberry32(seed + 7);
  try {
    const texts: string[] = [];
    for (let i = 0; i < n; i += 128) {
      const s = sample(policy, tok, Array.from({ length: Math.min(128, n - i) }, () => ''), { maxNewTokens: cfg.data.maxNewTokens, temperature: 1, topK: 0, topP: 1 }, seed + 101, i);
      texts.push(...s.completions.map((t) => cut(t, cfg.data.minWords, u())));
      say(`[1/4 data] sampled ${texts.length}/${n}`);
    }
    return texts;
  } finally {
    policy.dispose();
  }
}

function standardError(xs: readonly number[]): number {
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / Math.max(1, xs.length - 1) / xs.length);
}

function correlation(x: readonly number[], y: readonly number[]): number {
  const [mx, my] = [mean(x), mean(y)];
  let sxy = 0, sxx = 0, syy = 0;
  x.forEach((xi, i) => {
    sxy += (xi - mx) * (y[i]! - my);
    sxx += (xi - mx) ** 2;
    syy += (y[i]! - my) ** 2;
  });
  return sxx > 0 && syy > 0 ? sxy / Math.sqrt(sxx * syy) : 0;
}

async function buildData(cfg: MisspecificationConfig, ctx: LabContext): Promise<DataResult> {
  const { pairs, heldOut } = cfg.data;
  const texts = sampleTexts(cfg, 2 * (pairs + heldOut), ctx.seed, ctx.progress);
  const comparisons: Comparison[] = Array.from({ length: pairs + heldOut }, (_, i) => ({ prompt: '', a: texts[2 * i]!, b: texts[2 * i + 1]! }));
  const util = utilities(cfg);
  const disagrees = (c: Comparison) => {
    const [ds, db] = [util.sentiment(c.a) - util.sentiment(c.b), util.brevity(c.a) - util.brevity(c.b)];
    return ds * db < 0;
  };
  const untied = (cs: Comparison[]) => cs.filter((c) => util.sentiment(c.a) !== util.sentiment(c.b) && util.brevity(c.a) !== util.brevity(c.b));
  const train = comparisons.slice(0, pairs);
  const test = comparisons.slice(pairs);

  // Training: each comparison labelled once, by a population drawn with its fraction (seeded).
  const pick = mulberry32(ctx.seed + 13);
  const assigned: Record<GroupId, Comparison[]> = { sentiment: [], brevity: [] };
  for (const c of train) assigned[pick() < cfg.groups.sentiment.fraction ? 'sentiment' : 'brevity'].push(c);
  const label = (g: GroupId, cs: readonly Comparison[], seed: number): AnnotatedPair[] =>
    cs.length === 0 ? [] : annotatePairs(cs, { annotators: [{ id: g, beta: cfg.groups[g].rationality }], gold: util[g], seed, source: 'rlhf lab misspecification' });
  const trainLabels = GROUPS.flatMap((g, k) => label(g, assigned[g], ctx.seed + 1000 * (k + 1)));
  const testLabels = Object.fromEntries(GROUPS.map((g, k) => [g, label(g, test, ctx.seed + 5000 + 1000 * k)])) as Record<GroupId, AnnotatedPair[]>;

  // Files: pooled, per group, conditioned (tag as prompt), and the held-out pairs with both labels.
  const tagged = (r: AnnotatedPair): AnnotatedPair => ({ ...r, prompt: tagOf(r.annotator as GroupId) });
  writeAtomic(join(ctx.dir, 'train-pooled.jsonl'), toJsonl(trainLabels));
  writeAtomic(join(ctx.dir, 'train-conditioned.jsonl'), toJsonl(trainLabels.map(tagged)));
  for (const g of GROUPS) {
    writeAtomic(join(ctx.dir, `train-${g}.jsonl`), toJsonl(trainLabels.filter((r) => r.annotator === g)));
    writeAtomic(join(ctx.dir, `heldout-${g}.jsonl`), toJsonl(testLabels[g]));
  }
  writeAtomic(join(ctx.dir, 'heldout-conditioned.jsonl'), toJsonl(GROUPS.flatMap((g) => testLabels[g].map(tagged))));
  const held: HeldOutPair[] = test.map((c, i) => ({
    a: c.a, b: c.b, disagree: disagrees(c),
    label: { sentiment: testLabels.sentiment[i]!.chosen === c.a, brevity: testLabels.brevity[i]!.chosen === c.a },
  }));
  writeAtomic(join(ctx.dir, 'heldout.json'), JSON.stringify(held));
  const frac = (cs: Comparison[]) => (cs.length ? cs.filter(disagrees).length / cs.length : 0);
  return {
    trainCounts: { sentiment: assigned.sentiment.length, brevity: assigned.brevity.length },
    disagreeTrain: frac(untied(train)),
    disagreeHeldOut: frac(untied(test)),
    labelDisagreeHeldOut: mean(held.map((h) => (h.label.sentiment !== h.label.brevity ? 1 : 0))),
    meanWords: mean(texts.map((t) => words(t).length)),
    meanCompound: mean(texts.map(vaderCompound)),
    wordsCompoundCorr: correlation(texts.map((t) => words(t).length), texts.map(vaderCompound)),
  };
}

// ---- phase 2: the reward models

type RmName = 'pooled' | 'sentiment' | 'brevity' | 'conditioned';
const RMS: readonly RmName[] = ['pooled', 'sentiment', 'brevity', 'conditioned'];

async function trainRm(cfg: MisspecificationConfig, ctx: LabContext, name: RmName): Promise<{ dir: string; seconds: number }> {
  const testFile = name === 'pooled' ? 'heldout-sentiment.jsonl' : `heldout-${name}.jsonl`;
  const rmCfg = validateConfig({
    seed: ctx.seed, out: join(ctx.dir, `rm-${name}`),
    data: { path: join(ctx.dir, `train-${name}.jsonl`), testPath: join(ctx.dir, testFile), format: 'pairwise', maxTokens: cfg.data.maxNewTokens + 32, skipInvalid: true },
    model: { init: 'pretrained', base: cfg.model },
    train: { epochs: cfg.rm.epochs, batchSize: cfg.rm.batchSize, lr: cfg.rm.lr, warmupSteps: 5, threads: cfg.threads },
  }, REWARD_DEFAULTS, REWARD_SCHEMA, `misspecification rm ${name}`);
  const r = await trainRewardModel(rmCfg, { fresh: true, progress: (l) => ctx.progress(`[2/4 rm ${name}] ${l}`) });
  return { dir: join(rmCfg.out, 'model'), seconds: r.seconds };
}

// ---- phase 3: every RM against every group's held-out labels

/** One RM judged against one group's labels. */
interface Judged {
  rm: RmName;
  group: GroupId;
  n: number;
  accuracy: number;
  accuracyCi: [number, number];
  ece: number;
  /** accuracy on the held-out pairs the two utilities order differently */
  disagreeAccuracy: number | null;
  disagreeN: number;
  reliability: { confidence: number; accuracy: number }[];
}

/** Rewards of the held-out texts under `rm`, with `prompt` before each. */
function scoreTexts(dir: string, texts: readonly string[], prompt: string, tokDir: string): number[] {
  const tok = loadTokenizer(tokDir);
  const rm = loadRewardModel(dir);
  try {
    return scoreSequences(headEnsemble(rm), texts.map((t) => tok.encode(prompt + t, { addBos: true }))).reward;
  } finally {
    rm.dispose();
  }
}

function judge(rm: RmName, group: GroupId, held: readonly HeldOutPair[], ra: readonly number[], rb: readonly number[], seed: number): Judged {
  // chosen/rejected by the group's own label
  const chosen = held.map((h, i) => (h.label[group] ? ra[i]! : rb[i]!));
  const rejected = held.map((h, i) => (h.label[group] ? rb[i]! : ra[i]!));
  const e = evaluatePairs({ chosen, rejected }, { seed });
  const dis = held.flatMap((h, i) => (h.disagree ? [i] : []));
  const disOut = dis.map((i) => (chosen[i]! > rejected[i]! ? 1 : chosen[i] === rejected[i] ? 0.5 : 0));
  return {
    rm, group, n: e.n, accuracy: e.accuracy, accuracyCi: e.accuracy_ci, ece: e.ece,
    disagreeAccuracy: dis.length ? mean(disOut) : null, disagreeN: dis.length,
    reliability: e.reliability.flatMap((b) => (b.accuracy === null || b.confidence === null ? [] : [{ confidence: b.confidence, accuracy: b.accuracy }])),
  };
}

async function evaluateAll(cfg: MisspecificationConfig, ctx: LabContext, dirs: Record<RmName, string>): Promise<Judged[]> {
  const held = readJsonFile<HeldOutPair[]>(join(ctx.dir, 'heldout.json'));
  const tokDir = resolveModelDir(cfg.model);
  const out: Judged[] = [];
  const texts = held.flatMap((h) => [h.a, h.b]);
  for (const rm of RMS) {
    let shared: number[] | null = null; // an unconditioned RM scores a text the same whoever judges it
    for (const group of GROUPS) {
      const s = rm === 'conditioned' ? scoreTexts(dirs[rm], texts, tagOf(group), tokDir) : (shared ??= scoreTexts(dirs[rm], texts, '', tokDir));
      out.push(judge(rm, group, held, s.filter((_, i) => i % 2 === 0), s.filter((_, i) => i % 2 === 1), ctx.seed));
    }
    ctx.progress(`[3/4 eval] ${rm}: ${out.slice(-2).map((j) => `${j.group} accuracy ${j.accuracy.toFixed(3)} ece ${j.ece.toFixed(3)}`).join(', ')}`);
  }
  return out;
}

// ---- phase 4: the policy the pooled RM produces

/** What the groups care about, measured on a policy's samples. */
interface PolicyStats {
  compound: number;
  words: number;
  /** standard errors of the two means */
  compoundSe: number;
  wordsSe: number;
  /** mean utility of each group */
  utility: Record<GroupId, number>;
}

function policyStats(cfg: MisspecificationConfig, modelDir: string, seed: number): PolicyStats {
  const policy = loadModel(modelDir);
  const tok = loadTokenizer(resolveModelDir(cfg.model));
  try {
    const s = sample(policy, tok, Array.from({ length: cfg.ppo.evalSamples }, () => ''), { maxNewTokens: cfg.data.maxNewTokens, temperature: 1, topK: 0, topP: 1 }, seed, 0);
    const util = utilities(cfg);
    const [c, w] = [s.completions.map(vaderCompound), s.completions.map((t) => words(t).length)];
    return {
      compound: mean(c), words: mean(w), compoundSe: standardError(c), wordsSe: standardError(w),
      utility: { sentiment: mean(s.completions.map(util.sentiment)), brevity: mean(s.completions.map(util.brevity)) },
    };
  } finally {
    policy.dispose();
  }
}

interface PpoResult {
  before: PolicyStats;
  after: PolicyStats;
  /** KL(π‖π_ref) and the pooled RM's mean reward at the first and last evaluation (the trainer's own) */
  kl: number | null;
  proxyBefore: number | null;
  proxyAfter: number | null;
}

async function ppoPhase(cfg: MisspecificationConfig, ctx: LabContext, pooledDir: string): Promise<PpoResult> {
  const c = cfg.ppo;
  const out = join(ctx.dir, 'ppo');
  const ppoCfg = validateConfig({
    seed: ctx.seed, out,
    model: { policy: cfg.model },
    reward: { sources: [`model:${pooledDir}`] },
    rollout: { prompts: c.prompts, samplesPerPrompt: c.samplesPerPrompt, maxNewTokens: cfg.data.maxNewTokens },
    kl: { coef: c.klCoef },
    train: { steps: c.steps, lr: c.lr, evalEvery: c.steps, evalSamples: c.evalSamples, checkpointEvery: c.steps, threads: cfg.threads, miniBatchSize: (c.prompts * c.samplesPerPrompt) / 2 },
  }, PPO_DEFAULTS, PPO_SCHEMA, 'misspecification ppo');
  const run = await trainPpo(ppoCfg, { progress: (l) => ctx.progress(`[4/4 ppo] ${l}`), signal: ctx.signal, fresh: true });
  const seed = ctx.seed + 303; // the same sampling streams before and after
  return {
    before: policyStats(cfg, resolveModelDir(cfg.model), seed), after: policyStats(cfg, join(out, 'model'), seed),
    kl: run.final?.kl ?? null, proxyBefore: run.initial?.reward ?? null, proxyAfter: run.final?.reward ?? null,
  };
}

// ---- the report section

const RM_LABEL: Record<RmName, string> = { pooled: 'pooled (one scalar)', sentiment: 'sentiment group only', brevity: 'brevity group only', conditioned: 'conditioned on the annotator' };
const f3 = (x: number | null) => (x === null || !Number.isFinite(x) ? 'n/a' : x.toFixed(3));
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

async function figures(judged: readonly Judged[]): Promise<Figure[]> {
  const accuracy = await renderChart({
    title: 'Held-out accuracy against each group\'s own labels, by reward model',
    xTitle: 'reward model: 1 pooled · 2 sentiment-only · 3 brevity-only · 4 conditioned', yTitle: 'accuracy',
    series: GROUPS.map((g) => ({ name: `${g} group's labels`, style: 'points' as const, points: judged.filter((j) => j.group === g).map((j) => ({ x: RMS.indexOf(j.rm) + 1, y: j.accuracy })) })),
    caption: 'Each point: one reward model judged on the held-out pairs, against the labels of one population.',
  });
  const reliability = await renderChart({
    title: 'Reliability: predicted confidence vs accuracy', xTitle: 'confidence σ(|Δr|)', yTitle: 'accuracy',
    series: [
      { name: 'perfect calibration', style: 'line', dashed: true, color: '#999', points: [{ x: 0.5, y: 0.5 }, { x: 1, y: 1 }] },
      ...judged.filter((j) => j.rm === 'pooled' || j.rm === 'conditioned').map((j) => ({ name: `${j.rm} RM on ${j.group} labels`, points: j.reliability.map((b) => ({ x: b.confidence, y: b.accuracy })) })),
    ],
    caption: 'Bins of the Bradley–Terry confidence over [0.5, 1]; below the diagonal the RM is over-confident for that group.',
  });
  return [accuracy, reliability];
}

function table(judged: readonly Judged[]): Table {
  return {
    caption: 'Every RM on every group\'s held-out labels (95% bootstrap interval); "disagreement pairs": the held-out pairs the two utilities order differently.',
    columns: ['reward model', 'judged by', 'n', 'accuracy', '95% CI', 'ECE', 'accuracy on disagreement pairs', 'disagreement n'],
    rows: judged.map((j) => [RM_LABEL[j.rm], j.group, j.n, f3(j.accuracy), `${f3(j.accuracyCi[0])}–${f3(j.accuracyCi[1])}`, f3(j.ece), f3(j.disagreeAccuracy), j.disagreeN]),
  };
}

/** The observed paragraphs, each number read from the run; says so where the expected effect is absent. */
function findings(cfg: MisspecificationConfig, data: DataResult, judged: readonly Judged[], ppo: PpoResult | null): string[] {
  const get = (rm: RmName, g: GroupId) => judged.find((j) => j.rm === rm && j.group === g)!;
  const own = (g: GroupId) => get(g, g);
  const out: string[] = [
    `Data: ${data.trainCounts.sentiment} training labels from the sentiment group and ${data.trainCounts.brevity} from the brevity group (configured ${pct(cfg.groups.sentiment.fraction)} / ${pct(cfg.groups.brevity.fraction)}). ` +
    `The groups' utilities order the two texts differently on ${pct(data.disagreeHeldOut)} of held-out pairs (${pct(data.disagreeTrain)} of training pairs); their sampled labels differ on ${pct(data.labelDisagreeHeldOut)} of held-out pairs. ` +
    `Texts (after cutting) average ${data.meanWords.toFixed(1)} words and VADER compound ${data.meanCompound.toFixed(3)}; words and compound correlate with r = ${data.wordsCompoundCorr.toFixed(2)} (longer stories gather more sentiment words).`,
  ];
  const gaps = GROUPS.map((g) => {
    const [p, o] = [get('pooled', g), own(g)];
    // the gap counts as measured when it exceeds both intervals' half-widths combined
    const half = (p.accuracyCi[1] - p.accuracyCi[0]) / 2 + (o.accuracyCi[1] - o.accuracyCi[0]) / 2;
    return { g, p, o, gap: o.accuracy - p.accuracy, significant: Math.abs(o.accuracy - p.accuracy) > half };
  });
  out.push(`The pooled RM: ${gaps.map(({ g, p, o, gap, significant }) => `on the ${g} group's labels accuracy ${f3(p.accuracy)} vs ${f3(o.accuracy)} for that group's own RM (${gap >= 0 ? 'a loss' : 'a gain'} of ${Math.abs(gap).toFixed(3)}, ${significant ? 'outside' : 'within'} the combined 95% intervals)`).join('; ')}. ` +
    (gaps.find((x) => x.g === 'brevity')!.gap > gaps.find((x) => x.g === 'sentiment')!.gap
      ? 'The minority group loses more, as expected of one scalar fitted to a majority.'
      : 'The expected pattern — the minority group losing more — did not appear in this run.') +
    GROUPS.filter((g) => get('pooled', g).accuracyCi[0] <= 0.5).map((g) => ` Against the ${g} group the pooled RM is not distinguishable from chance (its interval contains 0.5).`).join(''));
  const pd = GROUPS.map((g) => get('pooled', g).disagreeAccuracy);
  if (pd[0] !== null && pd[1] !== null) {
    const side = pd[0]! > pd[1]! ? 'sentiment' : 'brevity';
    out.push(`On the ${get('pooled', 'sentiment').disagreeN} disagreement pairs the pooled RM agrees with the sentiment group's labels ${pct(pd[0]!)} of the time and with the brevity group's ${pct(pd[1]!)}: one scalar must side with one population per pair, and it sides mostly with the ${side} group.`);
  }
  const cond = GROUPS.map((g) => `${g} ${f3(get('conditioned', g).accuracy)} (own RM ${f3(own(g).accuracy)}, pooled ${f3(get('pooled', g).accuracy)})`);
  const recovers = GROUPS.every((g) => get('conditioned', g).accuracy >= get('pooled', g).accuracy);
  const clear = GROUPS.filter((g) => get('conditioned', g).accuracyCi[0] > get('pooled', g).accuracyCi[1]);
  out.push(`Conditioned on the annotator's group by a text tag, one RM reaches ${cond.join('; ')}. ${recovers ? 'It matches or beats the pooled RM for both groups' : 'It does not beat the pooled RM for every group in this run'}; ` +
    `${clear.length ? `the gain is clear of both 95% intervals for the ${clear.join(' and ')} group` : 'no gain is clear of both 95% intervals'}, ${GROUPS.every((g) => get('conditioned', g).accuracy < own(g).accuracy) ? 'and it stays below the per-group RMs: the tag alone does not let this small backbone learn both utilities at this data size' : 'and it reaches a per-group RM\'s accuracy for at least one group'}. ` +
    `ECE: pooled ${GROUPS.map((g) => `${g} ${f3(get('pooled', g).ece)}`).join(', ')}; conditioned ${GROUPS.map((g) => `${g} ${f3(get('conditioned', g).ece)}`).join(', ')}; own RMs ${GROUPS.map((g) => `${g} ${f3(own(g).ece)}`).join(', ')}.`);
  if (ppo) {
    // a change counts when it exceeds twice the standard error of the difference of the two means
    const moved = (k: 'compound' | 'words', se: 'compoundSe' | 'wordsSe') => {
      const diff = ppo.after[k] - ppo.before[k];
      return Math.abs(diff) > 2 * Math.hypot(ppo.after[se], ppo.before[se]) ? Math.sign(diff) : 0;
    };
    const [dc, dw] = [moved('compound', 'compoundSe'), moved('words', 'wordsSe')];
    const towards = (d: number, good: number) => (d === good ? 'toward' : d === 0 ? 'no measurable change for' : 'away from');
    out.push(`PPO against the pooled RM for ${cfg.ppo.steps} steps (KL ${f3(ppo.kl)} nats; pooled reward ${f3(ppo.proxyBefore)} → ${f3(ppo.proxyAfter)}), on ${cfg.ppo.evalSamples} uncut samples before and after: ` +
      `VADER compound ${ppo.before.compound.toFixed(3)} ± ${ppo.before.compoundSe.toFixed(3)} → ${ppo.after.compound.toFixed(3)} ± ${ppo.after.compoundSe.toFixed(3)} (${towards(dc, 1)} the sentiment group), ` +
      `length ${ppo.before.words.toFixed(1)} ± ${ppo.before.wordsSe.toFixed(1)} → ${ppo.after.words.toFixed(1)} ± ${ppo.after.wordsSe.toFixed(1)} words (${towards(dw, -1)} the brevity group; changes count beyond 2 s.e.). ` +
      (dc === 1 && dw !== -1 ? 'The single reward\'s policy serves the majority; the minority\'s preference is not pursued.'
        : dw === -1 && dc !== 1 ? 'The single reward\'s policy serves the minority (brevity), not the majority.'
        : dc === 1 && dw === -1 ? 'The policy moved toward both groups at once.'
        : 'The policy moved toward neither group\'s preference in this short run.'));
  }
  return out;
}

// ---- the experiment

async function runMisspecification(cfg: MisspecificationConfig, ctx: LabContext): Promise<LabOutcome> {
  checkFractions(cfg);
  const t0 = Date.now();
  setNumThreads(cfg.threads);
  const fp = { seed: ctx.seed, model: cfg.model, data: cfg.data, groups: cfg.groups };
  const data = await phase(ctx.dir, 'data', fp, () => buildData(cfg, ctx));
  ctx.progress(`[1/4 data] groups disagree on ${pct(data.disagreeHeldOut)} of held-out pairs`);
  const dirs = {} as Record<RmName, string>;
  for (const rm of RMS) dirs[rm] = (await phase(ctx.dir, `rm-${rm}`, { ...fp, rm: cfg.rm }, () => trainRm(cfg, ctx, rm))).dir;
  const judged = await phase(ctx.dir, 'eval', { ...fp, rm: cfg.rm }, () => evaluateAll(cfg, ctx, dirs));
  const ppo = cfg.ppo.steps > 0 ? await phase(ctx.dir, 'ppo', { ...fp, rm: cfg.rm, ppo: cfg.ppo }, () => ppoPhase(cfg, ctx, dirs.pooled)) : null;
  const section: Section = {
    id: 'misspecification', title: 'Misspecification: one reward for people who want different things',
    paragraphs: [
      `Two synthetic populations label pairs of stories260K samples (cut at random word counts): ${pct(cfg.groups.sentiment.fraction)} prefer positive sentiment (Bradley–Terry on (1 + VADER compound) / 2, β ${cfg.groups.sentiment.rationality}), ${pct(cfg.groups.brevity.fraction)} prefer brevity (Bradley–Terry on −words / ${cfg.groups.brevity.wordScale}, β ${cfg.groups.brevity.rationality}). ` +
      'Four Bradley–Terry RMs on the policy\'s backbone: one on the pooled labels, one per group, and one conditioned on the annotator by a text tag before each response ("[sentiment] ", "[brevity] "), scored with the judging group\'s tag. Held-out pairs carry both groups\' labels.',
      ...findings(cfg, data, judged, ppo),
    ],
    plots: await figures(judged),
    tables: [table(judged), ...(ppo ? [{
      caption: 'The policy before and after PPO against the pooled RM (the same sampling streams).',
      columns: ['policy', 'VADER compound', 'words', 'sentiment utility', 'brevity utility'],
      rows: (['before', 'after'] as const).map((k) => [k, f3(ppo[k].compound), ppo[k].words.toFixed(1), f3(ppo[k].utility.sentiment), f3(ppo[k].utility.brevity)]),
    }] : [])],
  };
  const acc = (rm: RmName, g: GroupId) => judged.find((j) => j.rm === rm && j.group === g)!.accuracy;
  return {
    section,
    result: {
      seconds: (Date.now() - t0) / 1000,
      disagreement: data.disagreeHeldOut,
      accuracy: Object.fromEntries(RMS.map((rm) => [rm, Object.fromEntries(GROUPS.map((g) => [g, acc(rm, g)]))])),
      ...(ppo ? { ppo: { compound: [ppo.before.compound, ppo.after.compound], words: [ppo.before.words, ppo.after.words] } } : {}),
    },
  };
}

export const misspecification: Experiment<MisspecificationConfig> = {
  name: 'misspecification',
  summary: 'two annotator populations (sentiment vs brevity) in one dataset: a pooled RM vs per-group and annotator-conditioned RMs, per-group accuracy and calibration, and the policy PPO gets from the pooled RM',
  defaults: MISSPECIFICATION_DEFAULTS,
  schema: MISSPECIFICATION_SCHEMA,
  quick: { data: { pairs: 160, heldOut: 64, maxNewTokens: 48 }, rm: { epochs: 1 }, ppo: { steps: 2, prompts: 4, samplesPerPrompt: 4, evalSamples: 16 } },
  run: runMisspecification,
};
