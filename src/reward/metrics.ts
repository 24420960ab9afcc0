/**
 * Reward-model evaluation on held-out preference pairs, in plain JS over number arrays (no tensors):
 * accuracy with a bootstrap interval, calibration (ECE and a reliability table), length bias, the margin
 * distribution, and accuracy broken down by annotator, source and annotator confidence.
 *
 * Definitions (pair i has rewards chosen[i] for the human-preferred response and rejected[i] for the
 * other; Δ_i = chosen[i] − rejected[i]):
 *   outcome_i     1 if Δ_i > 0 (the model's predicted winner, the higher reward, is the preferred one),
 *                 0 if Δ_i < 0, 0.5 if Δ_i = 0 (a tie is a coin flip)
 *   accuracy      mean_i outcome_i
 *   accuracy_ci   95% percentile-bootstrap interval of accuracy (pairs resampled with replacement)
 *   confidence_i  max(σ(Δ_i), 1 − σ(Δ_i)) = σ(|Δ_i|) ∈ [0.5, 1]: the BT probability the model gives its
 *                 own predicted winner; a tie has confidence 0.5 and outcome 0.5
 *   ece           Σ_b (n_b / n) · |acc_b − conf_b| over 10 equal-width confidence bins on [0.5, 1]
 *                 (Naeini et al. 2015; Guo et al. 2017), acc_b and conf_b the bin's mean outcome and
 *                 mean confidence
 *   length_corr   Pearson correlation of reward with response length in tokens, chosen and rejected
 *                 responses pooled (2n points)
 *   length_baseline_accuracy  the accuracy of "the longer response wins" (equal lengths: 0.5)
 */
import { streamKey, uniformAt } from '../random.js';
import { mean, pearson } from '../stats.js';

/** 1 if a > b, 0 if a < b, 0.5 on a tie: whether "higher wins" picks the preferred response. */
export function pairOutcome(preferred: number, other: number): number {
  return preferred > other ? 1 : preferred < other ? 0 : 0.5;
}


/**
 * The q-quantile of ascending `sorted` by linear interpolation between order statistics: position
 * q·(n − 1) (Hyndman & Fan 1996 type 7, numpy's default).
 */
export function quantileSorted(sorted: readonly number[], q: number): number {
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo]! + (pos - lo) * (sorted[hi]! - sorted[lo]!);
}

export interface BootstrapOptions {
  seed: number;
  /** resamples (default 1000) */
  resamples?: number;
  /** coverage of the interval (default 0.95) */
  level?: number;
}

/**
 * Percentile-bootstrap interval of the mean of `values` (Efron & Tibshirani 1993, ch. 13): `resamples`
 * resamples of size n drawn with replacement, and the (1 − level)/2 and (1 + level)/2 quantiles of their
 * means. Deterministic per seed: resample b draws from its own counter-based stream (generate/rng.ts).
 */
export function bootstrapCI(values: readonly number[], opts: BootstrapOptions): [number, number] {
  const { seed, resamples = 1000, level = 0.95 } = opts;
  const n = values.length;
  if (n === 0) throw new Error('bootstrapCI: no values');
  const means = new Array<number>(resamples);
  for (let b = 0; b < resamples; b++) {
    const key = streamKey(seed, b);
    let s = 0;
    for (let i = 0; i < n; i++) s += values[Math.min(n - 1, Math.floor(uniformAt(key, i) * n))]!;
    means[b] = s / n;
  }
  means.sort((a, c) => a - c);
  return [quantileSorted(means, (1 - level) / 2), quantileSorted(means, (1 + level) / 2)];
}

/** One row of the reliability table; a bin with no pairs has null accuracy and confidence. */
export interface ReliabilityBin {
  /** confidence range [lo, hi) (the last bin includes hi = 1) */
  lo: number;
  hi: number;
  n: number;
  /** mean outcome of the bin's pairs */
  accuracy: number | null;
  /** mean confidence of the bin's pairs */
  confidence: number | null;
}

export interface Calibration {
  ece: number;
  reliability: ReliabilityBin[];
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/**
 * Calibration of the Bradley–Terry probabilities σ(Δ): each pair's confidence σ(|Δ|) ∈ [0.5, 1] is binned
 * into `bins` equal-width bins over [0.5, 1] (bin b = [0.5 + b·w, 0.5 + (b + 1)·w), w = 0.5/bins, the
 * last closed at 1), and ECE = Σ_b (n_b / n) · |acc_b − conf_b| (Guo et al. 2017, "On calibration of
 * modern neural networks"). Binning the top-label confidence over [0.5, 1] rather than σ(Δ) over [0, 1]
 * counts each pair once, from the side the model predicts.
 */
export function calibration(chosen: readonly number[], rejected: readonly number[], bins = 10): Calibration {
  const n = chosen.length;
  const count = new Array<number>(bins).fill(0);
  const hits = new Array<number>(bins).fill(0);
  const conf = new Array<number>(bins).fill(0);
  for (let i = 0; i < n; i++) {
    const c = sigmoid(Math.abs(chosen[i]! - rejected[i]!));
    const b = Math.min(bins - 1, Math.floor(((c - 0.5) / 0.5) * bins));
    count[b]! += 1;
    hits[b]! += pairOutcome(chosen[i]!, rejected[i]!);
    conf[b]! += c;
  }
  let ece = 0;
  const reliability = count.map((nb, b): ReliabilityBin => {
    const row = { lo: 0.5 + (0.5 * b) / bins, hi: 0.5 + (0.5 * (b + 1)) / bins, n: nb };
    if (nb === 0) return { ...row, accuracy: null, confidence: null };
    const [acc, cf] = [hits[b]! / nb, conf[b]! / nb];
    ece += (nb / n) * Math.abs(acc - cf);
    return { ...row, accuracy: acc, confidence: cf };
  });
  return { ece, reliability };
}

/** Quantiles of the reward margins Δ = chosen − rejected (type-7 interpolation), and their mean. */
export interface MarginSummary {
  min: number;
  p10: number;
  p25: number;
  median: number;
  p75: number;
  p90: number;
  max: number;
  mean: number;
}

export function marginSummary(deltas: readonly number[]): MarginSummary {
  const s = [...deltas].sort((a, b) => a - b);
  const q = (p: number) => quantileSorted(s, p);
  return { min: s[0]!, p10: q(0.1), p25: q(0.25), median: q(0.5), p75: q(0.75), p90: q(0.9), max: s[s.length - 1]!, mean: mean(s) };
}

/** Accuracy of a subset of pairs. */
export interface GroupAccuracy {
  n: number;
  accuracy: number;
  accuracy_ci: [number, number];
}

/** Accuracy of the pairs whose annotator confidence lies in [lo, hi] (lo = hi: one confidence value). */
export interface ConfidenceGroup extends GroupAccuracy {
  lo: number;
  hi: number;
}

export interface PairInputs {
  /** rewards of the human-preferred responses */
  chosen: readonly number[];
  /** rewards of the other responses */
  rejected: readonly number[];
  /** response lengths in tokens, for length_corr and length_baseline_accuracy */
  chosenLen?: readonly number[];
  rejectedLen?: readonly number[];
  /** who labelled each pair; pairs without one are left out of by_annotator */
  annotator?: readonly (string | undefined)[];
  /** where each pair comes from (dataset, split, task); pairs without one are left out of by_source */
  source?: readonly (string | undefined)[];
  /** the annotator's stated confidence (a Likert level, or a probability); absent pairs are left out */
  confidence?: readonly (number | undefined)[];
}

export interface EvaluateOptions extends BootstrapOptions {
  /** calibration bins over [0.5, 1] (default 10) */
  bins?: number;
  /**
   * Annotator confidences with at most this many distinct values are grouped by value; more (a
   * continuous confidence) are cut into this many equal-width bins over [min, max] (default 10).
   */
  confidenceGroups?: number;
}

/** A reward model's pair metrics: accuracy with a bootstrap interval, ECE and its reliability table, length bias, per-annotator accuracy. */
export interface PairEvaluation {
  n: number;
  accuracy: number;
  accuracy_ci: [number, number];
  ece: number;
  reliability: ReliabilityBin[];
  /** null without lengths, or when rewards or lengths are constant */
  length_corr: number | null;
  /** null without lengths */
  length_baseline_accuracy: number | null;
  margins: MarginSummary;
  /** by annotator id, in order of first appearance ({} without annotators) */
  by_annotator: Record<string, GroupAccuracy>;
  by_source: Record<string, GroupAccuracy>;
  /** ascending in confidence ([] without confidences) */
  by_confidence: ConfidenceGroup[];
}

function groupAccuracy(outcomes: readonly number[], idx: readonly number[], opts: BootstrapOptions): GroupAccuracy {
  const sub = idx.map((i) => outcomes[i]!);
  return { n: sub.length, accuracy: mean(sub), accuracy_ci: bootstrapCI(sub, opts) };
}

function byLabel(outcomes: readonly number[], labels: readonly (string | undefined)[] | undefined, opts: BootstrapOptions): Record<string, GroupAccuracy> {
  const groups = new Map<string, number[]>();
  labels?.forEach((l, i) => {
    if (l === undefined) return;
    let idx = groups.get(l);
    if (!idx) groups.set(l, (idx = []));
    idx.push(i);
  });
  return Object.fromEntries([...groups].map(([l, idx]) => [l, groupAccuracy(outcomes, idx, opts)]));
}

function byConfidence(outcomes: readonly number[], confidence: readonly (number | undefined)[] | undefined, maxGroups: number, opts: BootstrapOptions): ConfidenceGroup[] {
  const present = (confidence ?? []).flatMap((c, i) => (c === undefined ? [] : [[c, i] as const]));
  if (present.length === 0) return [];
  const values = [...new Set(present.map(([c]) => c))].sort((a, b) => a - b);
  let edges: [number, number][];
  let groupOf: (c: number) => number;
  if (values.length <= maxGroups) {
    edges = values.map((v) => [v, v]);
    groupOf = (c) => values.indexOf(c);
  } else {
    const [lo, hi] = [values[0]!, values[values.length - 1]!];
    const w = (hi - lo) / maxGroups;
    edges = Array.from({ length: maxGroups }, (_, g) => [lo + g * w, g === maxGroups - 1 ? hi : lo + (g + 1) * w]);
    groupOf = (c) => Math.min(maxGroups - 1, Math.floor((c - lo) / w));
  }
  const members = edges.map((): number[] => []);
  for (const [c, i] of present) members[groupOf(c)]!.push(i);
  return edges.flatMap(([lo, hi], g) => (members[g]!.length === 0 ? [] : [{ lo, hi, ...groupAccuracy(outcomes, members[g]!, opts) }]));
}

function checkLength(name: string, xs: readonly unknown[] | undefined, n: number): void {
  if (xs !== undefined && xs.length !== n) throw new Error(`evaluatePairs: ${name} has ${xs.length} entries for ${n} pairs`);
}

/** Evaluates a reward model on preference pairs; every field is defined in this file's header. */
export function evaluatePairs(pairs: PairInputs, opts: EvaluateOptions): PairEvaluation {
  const { chosen, rejected, chosenLen, rejectedLen } = pairs;
  const n = chosen.length;
  if (n === 0) throw new Error('evaluatePairs: no pairs');
  checkLength('rejected', rejected, n);
  for (const k of ['chosenLen', 'rejectedLen', 'annotator', 'source', 'confidence'] as const) checkLength(k, pairs[k], n);
  if ((chosenLen === undefined) !== (rejectedLen === undefined)) throw new Error('evaluatePairs: give both chosenLen and rejectedLen, or neither');
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(chosen[i]!) || !Number.isFinite(rejected[i]!)) throw new Error(`evaluatePairs: pair ${i} has a non-finite reward (${chosen[i]}, ${rejected[i]})`);
  }

  const outcomes = chosen.map((c, i) => pairOutcome(c, rejected[i]!));
  const boot: BootstrapOptions = { seed: opts.seed, resamples: opts.resamples, level: opts.level };
  const { ece, reliability } = calibration(chosen, rejected, opts.bins ?? 10);
  const lengths = chosenLen && rejectedLen ? { chosenLen, rejectedLen } : null;
  return {
    n,
    accuracy: mean(outcomes),
    accuracy_ci: bootstrapCI(outcomes, boot),
    ece,
    reliability,
    length_corr: lengths ? pearson([...chosen, ...rejected], [...lengths.chosenLen, ...lengths.rejectedLen]) : null,
    length_baseline_accuracy: lengths ? mean(lengths.chosenLen.map((l, i) => pairOutcome(l, lengths.rejectedLen[i]!))) : null,
    margins: marginSummary(chosen.map((c, i) => c - rejected[i]!)),
    by_annotator: byLabel(outcomes, pairs.annotator, boot),
    by_source: byLabel(outcomes, pairs.source, boot),
    by_confidence: byConfidence(outcomes, pairs.confidence, opts.confidenceGroups ?? 10, boot),
  };
}
