/**
 * Inter-annotator agreement as pure functions on plain arrays: Cohen's κ for two annotators, Fleiss' κ for
 * many, Krippendorff's α for any number with missing values and a distance metric per level of measurement.
 * The feedback app's admin view and its exports compute agreement through these; test/pure/feedback-
 * agreement.test.ts reproduces each one's published worked example.
 */

/**
 * Cohen's κ (Cohen 1960) for two annotators who each gave one nominal category per item:
 * κ = (p_o − p_e) / (1 − p_e), p_o the share of items on which they agree, p_e = Σ_c p_1c · p_2c the
 * agreement their marginals give by chance. NaN when p_e = 1 (both gave one and the same category to all).
 */
export function cohenKappa<T>(a: readonly T[], b: readonly T[]): { kappa: number; observed: number; expected: number; n: number } {
  if (a.length !== b.length) throw new Error(`cohenKappa: ${a.length} labels from the first annotator but ${b.length} from the second`);
  const n = a.length;
  if (n === 0) return { kappa: Number.NaN, observed: Number.NaN, expected: Number.NaN, n };
  const countA = new Map<T, number>();
  const countB = new Map<T, number>();
  let agree = 0;
  for (let i = 0; i < n; i++) {
    if (a[i] === b[i]) agree++;
    countA.set(a[i]!, (countA.get(a[i]!) ?? 0) + 1);
    countB.set(b[i]!, (countB.get(b[i]!) ?? 0) + 1);
  }
  let expected = 0;
  for (const [c, k] of countA) expected += (k / n) * ((countB.get(c) ?? 0) / n);
  const observed = agree / n;
  return { kappa: (observed - expected) / (1 - expected), observed, expected, n };
}

/**
 * Fleiss' κ (Fleiss 1971, "Measuring nominal scale agreement among many raters") from an N × k table of
 * counts: `counts[i][j]` annotators put item i in category j, the same number n ≥ 2 of annotators per item
 * (not necessarily the same people). P_i = (Σ_j n_ij² − n) / (n(n − 1)), P̄ their mean; p_j = Σ_i n_ij / (Nn),
 * P̄_e = Σ_j p_j²; κ = (P̄ − P̄_e) / (1 − P̄_e).
 */
export function fleissKappa(counts: readonly (readonly number[])[]): { kappa: number; observed: number; expected: number; items: number; raters: number } {
  const items = counts.length;
  if (items === 0) return { kappa: Number.NaN, observed: Number.NaN, expected: Number.NaN, items, raters: 0 };
  const k = counts[0]!.length;
  const raters = counts[0]!.reduce((s, x) => s + x, 0);
  if (raters < 2) throw new Error(`fleissKappa: item 1 has ${raters} rating(s); every item needs the same number n ≥ 2`);
  const totals = new Array<number>(k).fill(0);
  let sumP = 0;
  counts.forEach((row, i) => {
    if (row.length !== k) throw new Error(`fleissKappa: item ${i + 1} has ${row.length} categories, item 1 has ${k}`);
    const n = row.reduce((s, x) => s + x, 0);
    if (n !== raters) throw new Error(`fleissKappa: item ${i + 1} has ${n} ratings, item 1 has ${raters}; every item needs the same number`);
    let sq = 0;
    row.forEach((x, j) => {
      sq += x * x;
      totals[j]! += x;
    });
    sumP += (sq - raters) / (raters * (raters - 1));
  });
  const observed = sumP / items;
  const expected = totals.reduce((s, t) => s + (t / (items * raters)) ** 2, 0);
  return { kappa: (observed - expected) / (1 - expected), observed, expected, items, raters };
}

/** Krippendorff's levels of measurement with their squared distances δ² (Krippendorff 2011). */
export type AlphaLevel = 'nominal' | 'ordinal' | 'interval';

/**
 * δ²(c, k) for each level, given the sorted distinct values and their pairable counts n_g. Ordinal:
 * δ²_ck = (Σ_{g=c..k} n_g − (n_c + n_k)/2)², the ranks' distance in the data's own marginal distribution.
 */
const DISTANCES: Record<AlphaLevel, (values: readonly number[], counts: readonly number[], c: number, k: number) => number> = {
  nominal: (_v, _n, c, k) => (c === k ? 0 : 1),
  interval: (v, _n, c, k) => (v[c]! - v[k]!) ** 2,
  ordinal: (_v, n, c, k) => {
    const [lo, hi] = c <= k ? [c, k] : [k, c];
    let s = 0;
    for (let g = lo; g <= hi; g++) s += n[g]!;
    return (s - (n[lo]! + n[hi]!) / 2) ** 2;
  },
};

/**
 * Krippendorff's α (Krippendorff 2011, "Computing Krippendorff's Alpha-Reliability") from the values each
 * unit received (`units[u]` = every annotator's value for unit u; missing values simply absent). Units with
 * fewer than two values are not pairable and drop out. From the coincidence matrix
 * o_ck = Σ_u (pairs of c and k in u) / (m_u − 1): α = 1 − D_o / D_e with D_o = Σ o_ck δ²_ck / n and
 * D_e = Σ n_c n_k δ²_ck / (n(n − 1)), n the number of pairable values. NaN when D_e = 0.
 */
export function krippendorffAlpha(units: readonly (readonly number[])[], level: AlphaLevel): { alpha: number; pairable: number } {
  const pairableUnits = units.filter((u) => u.length >= 2);
  const values = [...new Set(pairableUnits.flat())].sort((x, y) => x - y);
  const index = new Map(values.map((v, i) => [v, i]));
  const V = values.length;
  const o = Array.from({ length: V }, () => new Array<number>(V).fill(0));
  for (const u of pairableUnits) {
    const m = u.length;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < m; j++) if (i !== j) o[index.get(u[i]!)!]![index.get(u[j]!)!]! += 1 / (m - 1);
    }
  }
  const nc = o.map((row) => row.reduce((s, x) => s + x, 0));
  const n = nc.reduce((s, x) => s + x, 0);
  const delta = DISTANCES[level];
  let dObserved = 0;
  let dExpected = 0;
  for (let c = 0; c < V; c++) {
    for (let k = 0; k < V; k++) {
      const d = delta(values, nc, c, k);
      dObserved += o[c]![k]! * d;
      dExpected += nc[c]! * nc[k]! * d;
    }
  }
  const alpha = 1 - (dObserved / n) / (dExpected / (n * (n - 1)));
  return { alpha: dExpected === 0 ? Number.NaN : alpha, pairable: Math.round(n) };
}
