/**
 * Held-out evaluation of a reward model or ensemble on tokenized records, by kind of feedback:
 *   pairs     evaluatePairs (metrics.ts) on the aggregated rewards of chosen and rejected
 *   rankings  evaluatePairs over every pair a ranking implies: a ranking of K responses (best first)
 *             gives the K(K−1)/2 pairs (i, j), i < j, with response i preferred, so `accuracy` is the
 *             fraction of implied pairs the rewards order correctly (Kendall's τ = 2·accuracy − 1 per
 *             ranking, without ties). Pairs of one ranking share responses and are not independent:
 *             the bootstrap interval, which resamples pairs, is narrower than one over rankings would be
 *   ratings   evaluateRatings (rating-metrics.ts): Pearson, Spearman and RMSE of reward vs score
 * An ensemble of K > 1 members adds `spread`, the mean over every scored response of the members'
 * standard deviation (ensembleSpread, the uncertainty Coste et al. 2023 penalise), and `ensemble`: its
 * size, aggregation, λ and each member's own accuracy (pairs, rankings) or Pearson r (ratings).
 */
import { noGrad, scope } from '../tensor/index.js';
import { leftPad } from '../generate/generate.js';
import type { AggregatorName } from './ensemble.js';
import { headEnsemble, type RewardEnsemble } from './ensemble-model.js';
import { evaluatePairs, pairOutcome, type PairEvaluation } from './metrics.js';
import { mean, pearson } from '../stats.js';
import { RewardModel } from './model.js';
import type { TokenizedRecord } from './pairs.js';
import { evaluateRatings, type RatingEvaluation, type ScoreScale } from './rating-metrics.js';

/** Rewards of N sequences: the aggregate (N), each member's (K × N), the members' spread (N). */
export interface SequenceScores {
  reward: number[];
  members: number[][];
  spread: number[];
}

/** Scores token sequences without gradients, `batchSize` sequences per left-padded forward. */
export function scoreSequences(model: RewardEnsemble, seqs: readonly number[][], batchSize = 64): SequenceScores {
  const out: SequenceScores = { reward: [], members: Array.from({ length: model.size }, () => []), spread: [] };
  noGrad(() => {
    for (let i = 0; i < seqs.length; i += batchSize) {
      scope(() => {
        const { ids, mask } = leftPad(seqs.slice(i, i + batchSize));
        const members = model.rewards(ids, mask); // (K, B)
        const agg = model.aggregate(members);
        out.reward.push(...(agg.reward.data() as Float32Array));
        out.spread.push(...(agg.uncertainty.data() as Float32Array));
        const m = members.contiguous().data() as Float32Array;
        const b = members.size(1);
        out.members.forEach((row, k) => row.push(...m.subarray(k * b, (k + 1) * b)));
      });
    }
  });
  return out;
}

/** What an ensemble of K > 1 members adds to an evaluation (see the header). */
export interface EnsembleFields {
  spread: number;
  ensemble: { size: number; aggregation: AggregatorName; lambda: number; member_scores: (number | null)[] };
}
export type PairReport = PairEvaluation & Partial<EnsembleFields>;
export type RatingReport = RatingEvaluation & Partial<EnsembleFields>;

const asEnsemble = (m: RewardModel | RewardEnsemble): RewardEnsemble => (m instanceof RewardModel ? headEnsemble(m) : m);

function ensembleFields(model: RewardEnsemble, s: SequenceScores, memberScore: (rewards: number[]) => number | null): EnsembleFields | Record<string, never> {
  if (model.size < 2) return {};
  return {
    spread: mean(s.spread),
    ensemble: { size: model.size, aggregation: model.aggregation, lambda: model.lambda, member_scores: s.members.map(memberScore) },
  };
}

/** The pairs (preferred, other) a record implies, as indices into its responses: i < j for a ranking. */
function impliedPairs(r: TokenizedRecord): [number, number][] {
  const k = r.seqs.length;
  const out: [number, number][] = [];
  for (let i = 0; i < k; i++) for (let j = i + 1; j < k; j++) out.push([i, j]);
  return out;
}

/** Pairwise evaluation of pair or ranking records (rankings expanded into their implied pairs). */
export function evaluateRewardModel(model: RewardModel | RewardEnsemble, records: readonly TokenizedRecord[], seed: number): PairReport {
  const ens = asEnsemble(model);
  if (records.some((r) => r.record.kind === 'rating')) throw new Error('evaluateRewardModel: ratings have no pairs (use evaluateRatingModel)');
  const s = scoreSequences(ens, records.flatMap((r) => r.seqs));
  // Every implied pair: its preferred and other response's rows in the flat scores, their lengths, its record.
  const pairs: { a: number; b: number; lenA: number; lenB: number; meta: TokenizedRecord['record']['meta'] }[] = [];
  let off = 0;
  for (const r of records) {
    for (const [i, j] of impliedPairs(r)) pairs.push({ a: off + i, b: off + j, lenA: r.lens[i]!, lenB: r.lens[j]!, meta: r.record.meta });
    off += r.seqs.length;
  }
  const ev = evaluatePairs({
    chosen: pairs.map((p) => s.reward[p.a]!), rejected: pairs.map((p) => s.reward[p.b]!),
    chosenLen: pairs.map((p) => p.lenA), rejectedLen: pairs.map((p) => p.lenB),
    annotator: pairs.map((p) => p.meta.annotator), source: pairs.map((p) => p.meta.source), confidence: pairs.map((p) => p.meta.confidence),
  }, { seed });
  return { ...ev, ...ensembleFields(ens, s, (m) => mean(pairs.map((p) => pairOutcome(m[p.a]!, m[p.b]!)))) };
}

/** Rating evaluation: rewards against held-out scores, read back with the training ratings' scale. */
export function evaluateRatingModel(model: RewardModel | RewardEnsemble, records: readonly TokenizedRecord[], scale: ScoreScale): RatingReport {
  const ens = asEnsemble(model);
  const scores = records.map((r) => {
    if (r.record.kind !== 'rating') throw new Error(`evaluateRatingModel: a ${r.record.kind} record is not a rating`);
    return r.record.score;
  });
  const s = scoreSequences(ens, records.map((r) => r.seqs[0]!));
  return { ...evaluateRatings(s.reward, scores, scale), ...ensembleFields(ens, s, (m) => pearson(m, scores)) };
}

/** Held-out evaluation of records of one kind: a pairwise report, or a rating report. */
export interface HeldOutReport {
  eval: PairReport | null;
  ratingEval: RatingReport | null;
}

export function evaluateHeldOut(model: RewardModel | RewardEnsemble, records: readonly TokenizedRecord[], opts: { seed: number; scoreScale: ScoreScale | null }): HeldOutReport {
  if (records.length === 0) return { eval: null, ratingEval: null };
  if (records[0]!.record.kind !== 'rating') return { eval: evaluateRewardModel(model, records, opts.seed), ratingEval: null };
  if (!opts.scoreScale) throw new Error('rating evaluation needs the training ratings\' scale (a model trained with loss.type gaussian)');
  return { eval: null, ratingEval: evaluateRatingModel(model, records, opts.scoreScale) };
}

/** One line for logs: accuracy and ECE, or correlations and RMSE, plus the spread of an ensemble. */
export function describeHeldOut(r: HeldOutReport): string {
  const spread = (x: Partial<EnsembleFields>) => (x.spread !== undefined ? ` spread ${x.spread.toFixed(3)}` : '');
  if (r.eval) return `accuracy ${r.eval.accuracy.toFixed(3)} ece ${r.eval.ece.toFixed(3)}${spread(r.eval)} (n ${r.eval.n})`;
  if (r.ratingEval) {
    const f = (x: number | null) => (x === null ? 'n/a' : x.toFixed(3));
    return `pearson ${f(r.ratingEval.pearson)} spearman ${f(r.ratingEval.spearman)} rmse ${r.ratingEval.rmse.toFixed(3)}${spread(r.ratingEval)} (n ${r.ratingEval.n})`;
  }
  return 'no held-out records';
}
