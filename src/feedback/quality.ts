/**
 * Label quality from a project's stored labels: per-annotator gold accuracy and reliability weight,
 * behaviour signals (time per item, left-choice rate, tie rate, length preference, "both bad" and
 * "can't judge" rates) and agreement — Cohen's κ per pair of annotators, Fleiss' κ over the items every
 * one of `overlap` annotators labelled, Krippendorff's α (ordinal) on the strength scale. "Both bad" and
 * "can't judge" answers are left out of the agreement figures and reported as rates of their own.
 */
import { mean } from '../stats.js';
import { cohenKappa, fleissKappa, krippendorffAlpha } from './agreement.js';
import type { LabelRow } from './store.js';
import type { TaskLabels } from './tasks.js';

/** An annotator's reliability: gold accuracy (with a uniform prior: (correct + 1) / (n + 2)) as the weight. */
export interface Reliability {
  annotator: string;
  goldN: number;
  goldAccuracy: number | null;
  /** In (0, 1]: the prior-smoothed gold accuracy; 1 for an annotator with no gold labels (nothing known). */
  weight: number;
}

/** Every annotator's reliability from their gold labels. */
export function reliability(labels: readonly LabelRow[]): Map<number, Reliability> {
  const by = new Map<number, { name: string; n: number; k: number }>();
  for (const l of labels) {
    const a = by.get(l.annotatorId) ?? { name: l.annotator, n: 0, k: 0 };
    if (l.goldCorrect !== null) (a.n += 1), (a.k += l.goldCorrect ? 1 : 0);
    by.set(l.annotatorId, a);
  }
  return new Map([...by].map(([id, a]) => [id, {
    annotator: a.name, goldN: a.n, goldAccuracy: a.n === 0 ? null : a.k / a.n, weight: a.n === 0 ? 1 : (a.k + 1) / (a.n + 2),
  }]));
}

/** One annotator's behaviour signals. */
export interface Behaviour {
  annotator: string;
  labels: number;
  medianTimeMs: number;
  goldAccuracy: number | null;
  goldN: number;
  weight: number;
  /** Pairwise only (null otherwise): how often the left response won, a tie was given, the longer response won. */
  leftChoiceRate: number | null;
  tieRate: number | null;
  longerChosenRate: number | null;
  bothBadRate: number | null;
  cantJudgeRate: number | null;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const rate = (xs: boolean[]): number | null => (xs.length === 0 ? null : mean(xs.map(Number)));

/** Each annotator's behaviour; `lengths(itemId)` gives the item's candidates' lengths (for length preference). */
export function behaviour(labels: readonly LabelRow[], lengths: (itemId: number) => number[]): Behaviour[] {
  const rel = reliability(labels);
  const groups = new Map<number, LabelRow[]>();
  for (const l of labels) groups.set(l.annotatorId, [...(groups.get(l.annotatorId) ?? []), l]);
  return [...groups].map(([id, ls]) => {
    const pairs = ls.filter((l) => l.task === 'pairwise').map((l) => ({ l, p: l.label as TaskLabels['pairwise'] }));
    const judged = pairs.filter(({ p }) => !p.bothBad && !p.cantJudge);
    const decided = judged.filter(({ p }) => p.margin !== 0);
    const winner = ({ p }: { p: TaskLabels['pairwise'] }) => (p.margin > 0 ? 0 : 1);
    const unequal = decided.filter(({ l }) => new Set(lengths(l.itemId)).size > 1);
    const r = rel.get(id)!;
    return {
      annotator: ls[0]!.annotator, labels: ls.length, medianTimeMs: median(ls.map((l) => l.timeMs)), goldAccuracy: r.goldAccuracy, goldN: r.goldN, weight: r.weight,
      leftChoiceRate: pairs.length ? rate(decided.map((x) => x.l.shown[0] === winner(x))) : null,
      tieRate: pairs.length ? rate(judged.map(({ p }) => p.margin === 0)) : null,
      longerChosenRate: pairs.length ? rate(unequal.map((x) => { const len = lengths(x.l.itemId); return len[winner(x)]! > len[1 - winner(x)]!; })) : null,
      bothBadRate: pairs.length ? rate(pairs.map(({ p }) => p.bothBad)) : null,
      cantJudgeRate: pairs.length ? rate(pairs.map(({ p }) => p.cantJudge)) : null,
    };
  });
}

/** Agreement over a project's non-gold labels. Null figures where there is too little data. */
export interface Agreement {
  /** Cohen's κ on the preferred side (candidate 0, tie, candidate 1) for each pair of annotators with ≥ 2 common items. */
  cohen: { a: string; b: string; kappa: number; items: number }[];
  /** Fleiss' κ over the items with exactly `overlap` usable labels. */
  fleiss: number | null;
  fleissItems: number;
  /** Krippendorff's α, ordinal, on the canonical strength (pairwise) or the first axis's score (rating). */
  alphaOrdinal: number | null;
  pairable: number;
}

/** The value a label contributes to agreement (null: left out, e.g. both bad or can't judge). */
function agreementValue(l: LabelRow): number | null {
  if (l.task === 'pairwise') {
    const p = l.label as TaskLabels['pairwise'];
    return p.bothBad || p.cantJudge ? null : p.margin;
  }
  if (l.task === 'rating') return Object.values((l.label as TaskLabels['rating']).scores)[0] ?? null;
  return null;
}

/** Agreement statistics of a project's labels (gold items excluded), `overlap` labels per item expected. */
export function agreement(labels: readonly LabelRow[], overlap: number): Agreement {
  const byItem = new Map<number, { who: string; v: number }[]>();
  for (const l of labels) {
    const v = l.isGold ? null : agreementValue(l);
    if (v !== null) byItem.set(l.itemId, [...(byItem.get(l.itemId) ?? []), { who: l.annotator, v }]);
  }
  const units = [...byItem.values()];
  const alpha = krippendorffAlpha(units.map((u) => u.map((x) => x.v)), 'ordinal');
  const full = units.filter((u) => u.length === overlap && overlap >= 2);
  const cats = [...new Set(full.flat().map((x) => Math.sign(x.v)))].sort();
  const fleiss = full.length > 0 && cats.length > 0 ? fleissKappa(full.map((u) => cats.map((c) => u.filter((x) => Math.sign(x.v) === c).length))).kappa : null;
  const names = [...new Set(units.flat().map((x) => x.who))].sort();
  const cohen: Agreement['cohen'] = [];
  for (let i = 0; i < names.length; i++) {
    for (let j = i + 1; j < names.length; j++) {
      const common = units.flatMap((u) => {
        const a = u.find((x) => x.who === names[i]);
        const b = u.find((x) => x.who === names[j]);
        return a && b ? [[Math.sign(a.v), Math.sign(b.v)] as const] : [];
      });
      if (common.length >= 2) cohen.push({ a: names[i]!, b: names[j]!, kappa: cohenKappa(common.map((c) => c[0]), common.map((c) => c[1])).kappa, items: common.length });
    }
  }
  const finite = (x: number | null) => (x === null || Number.isNaN(x) ? null : x);
  return { cohen, fleiss: finite(fleiss), fleissItems: full.length, alphaOrdinal: finite(alpha.alpha), pairable: alpha.pairable };
}
