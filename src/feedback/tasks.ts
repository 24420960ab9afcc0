/**
 * The feedback app's task types as a registry: what each shows (how many candidates), how an answer given
 * on the screen (in the shown order) is checked and turned into its canonical label (in the item's own
 * candidate order), and which trainer uses it. A label is stored as given and as canonical, so nothing the
 * annotator said is lost and exports never need the shown order again.
 *
 * RLHF Deciphered §7.3's kinds: pairwise with strength, K-wise ranking, Likert ratings per axis and thumbs,
 * corrections, language feedback (a critique: its own task, and an optional field of every label), and
 * fine-grained span labels.
 */

/** A task type's settings a project fixes (validated when the project is created). */
export interface TaskSettings {
  /** Pairwise strength scale: answers in −strengthMax…+strengthMax, 0 a tie. Default 3. */
  strengthMax: number;
  /** Rating axes, each a Likert scale [scaleMin, scaleMax]. Default helpful, harmless, fluent. */
  axes: string[];
  scaleMin: number;
  scaleMax: number;
}

/** The canonical pairwise label: `margin` > 0 prefers candidate 0 by that strength, < 0 candidate 1, 0 a tie. */
export interface PairwiseLabel {
  margin: number;
  bothBad: boolean;
  cantJudge: boolean;
}
/** K-wise ranking: `ranks[i]` is candidate i's rank, 1 best; equal ranks are ties. */
export interface RankingLabel {
  ranks: number[];
}
/** Likert scores per axis, and an optional thumb. */
export interface RatingLabel {
  scores: Record<string, number>;
  thumb: 'up' | 'down' | null;
}
/** A corrected response (stored as a new candidate too). */
export interface CorrectionLabel {
  text: string;
}
/** A free-text critique. */
export interface CritiqueLabel {
  text: string;
}
/** Character spans of the candidate marked good (+1) or bad (−1); [start, end) in UTF-16 units. */
export interface SpansLabel {
  spans: { start: number; end: number; polarity: 1 | -1 }[];
}

/** Every task type's canonical label. */
export interface TaskLabels {
  pairwise: PairwiseLabel;
  ranking: RankingLabel;
  rating: RatingLabel;
  correction: CorrectionLabel;
  critique: CritiqueLabel;
  spans: SpansLabel;
}
/** A task type's name. */
export type TaskType = keyof TaskLabels;

/** An answer that does not fit its task; `field` names the part at fault. Nothing of it is stored. */
export class LabelError extends Error {
  constructor(readonly field: string, reason: string) {
    super(`field '${field}': ${reason}`);
    this.name = 'LabelError';
  }
}

/** What a task type is: candidates per item, the answer's check and canonical form, the trainer it feeds. */
export interface TaskSpec<T extends TaskType> {
  /** Candidates per item: [min, max]. */
  candidates: [number, number];
  /** Which trainer (or export format) uses the labels. */
  feeds: string;
  /**
   * The canonical label of an answer given on screen: `shown[p]` is the item's candidate index at screen
   * position p, `texts[i]` candidate i's text. Throws a LabelError naming the field at fault.
   */
  canonical(answer: Record<string, unknown>, shown: readonly number[], texts: readonly string[], s: TaskSettings): TaskLabels[T];
}

const isInt = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x);
const MAX_TEXT = 20_000;

function text(answer: Record<string, unknown>, field: string): string {
  const t = answer[field];
  if (typeof t !== 'string' || t.trim() === '') throw new LabelError(field, 'expected a non-empty string');
  if (t.length > MAX_TEXT) throw new LabelError(field, `at most ${MAX_TEXT} characters, got ${t.length}`);
  return t;
}

function flag(answer: Record<string, unknown>, field: string): boolean {
  const v = answer[field] ?? false;
  if (typeof v !== 'boolean') throw new LabelError(field, `expected true or false, got ${JSON.stringify(v)}`);
  return v;
}

function pairwise(answer: Record<string, unknown>, shown: readonly number[], _t: readonly string[], s: TaskSettings): PairwiseLabel {
  const bothBad = flag(answer, 'bothBad');
  const cantJudge = flag(answer, 'cantJudge');
  const strength = answer.strength ?? 0;
  if (!isInt(strength) || Math.abs(strength) > s.strengthMax) {
    throw new LabelError('strength', `expected an integer in −${s.strengthMax}…${s.strengthMax} (negative: left better), got ${JSON.stringify(strength)}`);
  }
  // On screen negative means the left response is better; canonically positive means candidate 0 is.
  const margin = shown[0] === 0 ? -strength : strength;
  return { margin: margin === 0 ? 0 : margin, bothBad, cantJudge };
}

function ranking(answer: Record<string, unknown>, shown: readonly number[]): RankingLabel {
  const r = answer.ranks;
  if (!Array.isArray(r) || r.length !== shown.length) throw new LabelError('ranks', `expected ${shown.length} ranks, one per response shown`);
  const ranks = new Array<number>(shown.length);
  r.forEach((x, p) => {
    if (!isInt(x) || x < 1 || x > shown.length) throw new LabelError(`ranks[${p}]`, `expected an integer rank in 1…${shown.length}, got ${JSON.stringify(x)}`);
    ranks[shown[p]!] = x;
  });
  return { ranks };
}

function rating(answer: Record<string, unknown>, _shown: readonly number[], _t: readonly string[], s: TaskSettings): RatingLabel {
  const scores = answer.scores;
  if (typeof scores !== 'object' || scores === null || Array.isArray(scores)) throw new LabelError('scores', 'expected an object of axis → score');
  const out: Record<string, number> = {};
  for (const axis of s.axes) {
    const v = (scores as Record<string, unknown>)[axis];
    if (!isInt(v) || v < s.scaleMin || v > s.scaleMax) throw new LabelError(`scores.${axis}`, `expected an integer in ${s.scaleMin}…${s.scaleMax}, got ${JSON.stringify(v)}`);
    out[axis] = v;
  }
  const extra = Object.keys(scores).find((k) => !s.axes.includes(k));
  if (extra !== undefined) throw new LabelError(`scores.${extra}`, `not an axis of this project (${s.axes.join(', ')})`);
  const thumb = answer.thumb ?? null;
  if (thumb !== null && thumb !== 'up' && thumb !== 'down') throw new LabelError('thumb', `expected "up", "down" or null, got ${JSON.stringify(thumb)}`);
  return { scores: out, thumb };
}

function spans(answer: Record<string, unknown>, _shown: readonly number[], texts: readonly string[]): SpansLabel {
  const list = answer.spans;
  if (!Array.isArray(list) || list.length === 0) throw new LabelError('spans', 'expected a non-empty list of {start, end, polarity}');
  const len = texts[0]!.length;
  const out = list.map((sp: unknown, i) => {
    const { start, end, polarity } = (sp ?? {}) as Record<string, unknown>;
    if (!isInt(start) || !isInt(end) || start < 0 || end > len || start >= end) {
      throw new LabelError(`spans[${i}]`, `expected 0 ≤ start < end ≤ ${len}, got start ${JSON.stringify(start)}, end ${JSON.stringify(end)}`);
    }
    if (polarity !== 1 && polarity !== -1) throw new LabelError(`spans[${i}].polarity`, `expected 1 (good) or -1 (bad), got ${JSON.stringify(polarity)}`);
    return { start, end, polarity: polarity as 1 | -1 };
  });
  const sorted = [...out].sort((a, b) => a.start - b.start);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i]!.start < sorted[i - 1]!.end) throw new LabelError('spans', `spans [${sorted[i - 1]!.start}, ${sorted[i - 1]!.end}) and [${sorted[i]!.start}, ${sorted[i]!.end}) overlap`);
  }
  return { spans: sorted };
}

/** The task types by name. */
export const TASK_TYPES: { [T in TaskType]: TaskSpec<T> } = {
  pairwise: { candidates: [2, 2], feeds: 'Bradley–Terry (strength as margin), the DPO family', canonical: pairwise },
  ranking: { candidates: [2, 9], feeds: 'Plackett–Luce and its implied pairs', canonical: ranking },
  rating: { candidates: [1, 1], feeds: 'the Gaussian rating loss; thumbs to KTO', canonical: rating },
  correction: { candidates: [1, 1], feeds: '(edit ≻ original) pairs and SFT targets', canonical: (a) => ({ text: text(a, 'text') }) },
  critique: { candidates: [1, 2], feeds: 'language feedback, exported with the label', canonical: (a) => ({ text: text(a, 'text') }) },
  spans: { candidates: [1, 1], feeds: 'per-token labels (+1 good, −1 bad, unlabelled masked)', canonical: spans },
};

/** Whether `name` is a task type (the error for one that is not names the known ones). */
export function checkTaskType(name: string): TaskType {
  if (!(name in TASK_TYPES)) throw new Error(`unknown task type '${name}' (known: ${Object.keys(TASK_TYPES).join(', ')})`);
  return name as TaskType;
}

/** The canonical label of `answer`, plus its optional critique (every task takes one). */
export function canonicalLabel<T extends TaskType>(
  task: T, answer: unknown, shown: readonly number[], texts: readonly string[], s: TaskSettings,
): { label: TaskLabels[T]; critique: string | null } {
  if (typeof answer !== 'object' || answer === null || Array.isArray(answer)) throw new LabelError('answer', 'expected an object');
  const a = answer as Record<string, unknown>;
  const critique = a.critique === undefined || a.critique === null || a.critique === '' ? null : text(a, 'critique');
  return { label: TASK_TYPES[task].canonical(a, shown, texts, s), critique };
}
