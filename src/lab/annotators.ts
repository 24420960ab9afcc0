/**
 * Synthetic annotators (the setting of Gao et al. 2022): a person shown two completions a, b of one prompt
 * prefers a with the Bradley–Terry probability of the gold reward g at rationality β,
 *
 *     P(a ≻ b) = σ(β · (g(a) − g(b)))
 *
 * β = 0 is a coin flip, β → ∞ always picks the higher gold (a tie is then a coin flip); Gao et al.'s
 * annotators are the β = ∞ case. A panel of annotators with different β models disagreeing people.
 * The output is the `pairwise` feedback format (src/data/types.ts `RawPairwise`), one JSON object per
 * line, with the annotator's id in its `annotator` field, so `rlhf train rm` trains the proxy on it and
 * `rlhf eval rm` breaks accuracy down by annotator.
 */
import type { RawPairwise } from '../data/types.js';
import { mulberry32 } from '../random.js';
import { goldReward } from './gold.js';

/** One synthetic annotator. */
export interface Annotator {
  /** written to each record's `annotator` field */
  id: string;
  /** rationality β ≥ 0 per unit of gold (Infinity: always the better one) */
  beta: number;
}

/** Two completions of one prompt to be compared. */
export interface Comparison {
  prompt: string;
  a: string;
  b: string;
}

/** Synthetic annotation: the panel of annotators, the seed, how comparisons are assigned, the gold reward. */
export interface AnnotateOptions {
  /** the panel; every β must be ≥ 0 (Infinity allowed) */
  annotators: readonly Annotator[];
  /** seed of the one mulberry32 stream all labels are drawn from */
  seed: number;
  /**
   * 'rotate' (default): comparison i is labelled once, by annotators[i mod K];
   * 'all': every annotator labels every comparison (K records per comparison, for agreement studies).
   */
  assign?: 'rotate' | 'all';
  /** the gold reward (default goldReward); called once per distinct text */
  gold?: (text: string) => number;
  /** written to each record's `source` field, when given */
  source?: string;
}

/** A pairwise record as the `pairwise` loader reads it, with the annotator always set. */
export type AnnotatedPair = RawPairwise & { annotator: string; prompt: string; chosen: string; rejected: string };

/** σ(β·Δ), with the limits made explicit: β = ∞ gives 1, 0 or ½ (a tie), β = 0 gives ½. */
export function preferenceProbability(goldA: number, goldB: number, beta: number): number {
  if (!(beta >= 0)) throw new Error(`annotator rationality β must be ≥ 0 (Infinity allowed), got ${beta}`);
  const diff = goldA - goldB;
  if (beta === Infinity) return diff > 0 ? 1 : diff < 0 ? 0 : 0.5;
  const z = beta * diff;
  // σ(z) without overflow for large |z|
  return z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
}

/**
 * Labels each comparison (see `AnnotateOptions.assign`). Exactly one uniform is drawn per label, in
 * record order, whatever the β — so records are a pure function of (comparisons, panel, seed), and
 * changing one annotator's β changes no other annotator's draws.
 */
export function annotatePairs(comparisons: readonly Comparison[], opts: AnnotateOptions): AnnotatedPair[] {
  const { annotators, seed } = opts;
  if (annotators.length === 0) throw new Error('annotatePairs: the panel has no annotators');
  for (const a of annotators) preferenceProbability(0, 0, a.beta); // validates β with the annotator's message
  const assign = opts.assign ?? 'rotate';
  const cache = new Map<string, number>();
  const goldFn = opts.gold ?? goldReward;
  const gold = (t: string): number => {
    let g = cache.get(t);
    if (g === undefined) {
      g = goldFn(t);
      if (!Number.isFinite(g)) throw new Error(`gold reward is not finite (${g}) for ${JSON.stringify(t.slice(0, 60))}`);
      cache.set(t, g);
    }
    return g;
  };
  const uniform = mulberry32(seed);
  const out: AnnotatedPair[] = [];
  comparisons.forEach((c, i) => {
    const panel = assign === 'all' ? annotators : [annotators[i % annotators.length]!];
    const ga = gold(c.a);
    const gb = gold(c.b);
    for (const who of panel) {
      const aWins = uniform() < preferenceProbability(ga, gb, who.beta);
      const rec: AnnotatedPair = { prompt: c.prompt, chosen: aWins ? c.a : c.b, rejected: aWins ? c.b : c.a, annotator: who.id };
      if (opts.source !== undefined) rec.source = opts.source;
      out.push(rec);
    }
  });
  return out;
}

/** Records as JSON Lines (one compact object per line, trailing newline), the `pairwise` loader's input. */
export function toJsonl(records: readonly object[]): string {
  return records.map((r) => JSON.stringify(r)).join('\n') + (records.length ? '\n' : '');
}
