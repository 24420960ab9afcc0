/**
 * Who labels the comparisons of iterated RLHF: anything that, shown two completions of one prompt,
 * says which it prefers — a person behind a queue, an AI judge, or the lab's synthetic Bradley–Terry
 * annotators on a gold reward (src/lab/annotators.ts, plugged in by `rlhf train online`). This layer
 * only defines the interface and checks what comes back; it never imports the lab.
 */
import { streamKey, uniformAt } from '../../random.js';
import type { Judge } from '../../reward/judge.js';

/** Two completions of one prompt, to be compared. */
export interface Comparison {
  prompt: string;
  a: string;
  b: string;
}

/**
 * One judgement, in the `pairwise` feedback format (src/data/types.ts `RawPairwise`): `chosen` and
 * `rejected` are the comparison's `a` and `b` in the annotator's order.
 */
export interface PairwiseLabel {
  prompt: string;
  chosen: string;
  rejected: string;
  /** Who judged (kept through to `rlhf eval rm`'s per-annotator accuracy). */
  annotator?: string;
}

/** What an annotator is told besides the comparisons. */
export interface AnnotationContext {
  /** 1-based round of the iterated run. */
  round: number;
  /** A seed for the annotator's own randomness, a pure function of (config seed, round). */
  seed: number;
  /** Raised when the run is interrupted: a slow annotator may stop early (the round then reruns the question). */
  signal?: AbortSignal;
}

/** Labels one round's comparisons of iterated RLHF (the synthetic gold annotator, or your own). */
export interface Annotator {
  /**
   * Names the annotator and its settings (e.g. 'gold-bt(β=20)'). Part of each round's fingerprint: a
   * finished round is reused only by a rerun with the same annotator.
   */
  id: string;
  /** One label per comparison, in order (async allowed: a person may take a while). */
  label(comparisons: readonly Comparison[], ctx: AnnotationContext): PairwiseLabel[] | Promise<PairwiseLabel[]>;
}

/**
 * An LLM judge (src/reward/judge.ts, pairwise, both orders asked) as the annotator: the preferred
 * completion is chosen; a tie (the two orders disagree) is broken by a coin seeded by the round's seed and
 * the comparison's index, so every comparison gets its label and a rerun labels alike.
 */
export function judgeAnnotator(judge: Judge): Annotator {
  return {
    id: judge.name,
    async label(comparisons, ctx) {
      const p = await Promise.all(comparisons.map((c, i) => judge.prefer(c.prompt, c.a, c.b, `round ${ctx.round} comparison ${i}`)));
      return comparisons.map((c, i) => {
        const aWins = p[i] === 0.5 ? uniformAt(streamKey(ctx.seed, i), 0) < 0.5 : p[i]! > 0.5;
        return { prompt: c.prompt, chosen: aWins ? c.a : c.b, rejected: aWins ? c.b : c.a, annotator: judge.name };
      });
    },
  };
}

/**
 * Checks an annotator's answer against the comparisons it was given: one record per comparison, in
 * order, each with the comparison's prompt and its two completions as chosen/rejected. Throws naming
 * the round, the annotator and the first bad record; returns the records with `annotator` filled in.
 */
export function checkLabels(comparisons: readonly Comparison[], records: unknown, annotator: string, round: number): PairwiseLabel[] {
  const where = `round ${round}: annotator '${annotator}'`;
  if (!Array.isArray(records)) throw new Error(`${where} returned ${records === null ? 'null' : typeof records}, not a list of records`);
  if (records.length !== comparisons.length) throw new Error(`${where} returned ${records.length} records for ${comparisons.length} comparisons`);
  return records.map((r: unknown, i) => {
    const c = comparisons[i]!;
    const bad = (why: string): never => {
      throw new Error(`${where}: record ${i} ${why}`);
    };
    if (r === null || typeof r !== 'object' || Array.isArray(r)) bad(`is not an object (${JSON.stringify(r)})`);
    const rec = r as Record<string, unknown>;
    for (const f of ['prompt', 'chosen', 'rejected'] as const) if (typeof rec[f] !== 'string') bad(`has no string '${f}'`);
    if (rec.annotator !== undefined && typeof rec.annotator !== 'string') bad("has a non-string 'annotator'");
    if (rec.prompt !== c.prompt) bad(`has prompt ${JSON.stringify(rec.prompt)}, not its comparison's ${JSON.stringify(c.prompt)}`);
    const same = (rec.chosen === c.a && rec.rejected === c.b) || (rec.chosen === c.b && rec.rejected === c.a);
    if (!same) bad("is not its comparison: 'chosen' and 'rejected' must be the comparison's two completions");
    return { prompt: c.prompt, chosen: rec.chosen as string, rejected: rec.rejected as string, annotator: (rec.annotator as string | undefined) ?? annotator };
  });
}
