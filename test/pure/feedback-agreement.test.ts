/**
 * The agreement statistics reproduce published worked examples to the digits their sources print:
 * - Fleiss (1971), Table 1: 30 patients, 6 psychiatrists each, 5 diagnoses: P̄ = .556, P̄_e = .220,
 *   κ = .430 (the paper's own figures; the per-item ratings as DKPro Statistics transcribes the table).
 * - Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 observers, 12 units,
 *   values 1–5 with missing data: α = .743 nominal, .815 ordinal, .849 interval.
 * - Cohen's κ, the textbook 2 × 2 example (50 items: 20 both yes, 15 both no, 5 and 10 split): p_o = .70,
 *   p_e = .50, κ = .40.
 * Plus the invariants: perfect agreement gives 1, and the argument checks name what is wrong.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cohenKappa, fleissKappa, krippendorffAlpha } from '../../src/feedback/agreement.js';

const round3 = (x: number): number => Math.round(x * 1000) / 1000;

// Fleiss 1971, Table 1: each row one patient's six diagnoses (1 depression, 2 personality disorder,
// 3 schizophrenia, 4 neurosis, 5 other).
const FLEISS_1971 = [
  [4, 4, 4, 4, 4, 4], [2, 2, 2, 5, 5, 5], [2, 3, 3, 3, 3, 5], [5, 5, 5, 5, 5, 5], [2, 2, 2, 4, 4, 4],
  [1, 1, 3, 3, 3, 3], [3, 3, 3, 3, 5, 5], [1, 1, 3, 3, 3, 4], [1, 1, 4, 4, 4, 4], [5, 5, 5, 5, 5, 5],
  [1, 4, 4, 4, 4, 4], [1, 2, 4, 4, 4, 4], [2, 2, 2, 3, 3, 3], [1, 4, 4, 4, 4, 4], [2, 2, 4, 4, 4, 5],
  [3, 3, 3, 3, 3, 5], [1, 1, 1, 4, 5, 5], [1, 1, 1, 1, 1, 2], [2, 2, 4, 4, 4, 4], [1, 3, 3, 5, 5, 5],
  [5, 5, 5, 5, 5, 5], [2, 4, 4, 4, 4, 4], [2, 2, 4, 5, 5, 5], [1, 1, 4, 4, 4, 4], [1, 4, 4, 4, 4, 5],
  [2, 2, 2, 2, 2, 4], [1, 1, 1, 1, 5, 5], [2, 2, 4, 4, 4, 4], [1, 3, 3, 3, 3, 3], [5, 5, 5, 5, 5, 5],
];

test("Fleiss' κ: Fleiss 1971's Table 1 gives P̄ = .556, P̄_e = .220, κ = .430", () => {
  const counts = FLEISS_1971.map((row) => [1, 2, 3, 4, 5].map((c) => row.filter((x) => x === c).length));
  const r = fleissKappa(counts);
  assert.deepEqual([round3(r.observed), round3(r.expected), round3(r.kappa)], [0.556, 0.22, 0.43]);
  assert.equal(r.items, 30);
  assert.equal(r.raters, 6);
  assert.equal(fleissKappa([[3, 0], [0, 3], [3, 0]]).kappa, 1);
  assert.throws(() => fleissKappa([[3, 0], [1, 1]]), /item 2 has 2 ratings, item 1 has 3/);
});

// Krippendorff 2011, section C: observers A–D (rows), units 1–12 (columns), null = missing.
const KRIPPENDORFF_2011: (number | null)[][] = [
  [1, 2, 3, 3, 2, 1, 4, 1, 2, null, null, null],
  [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, null, 3],
  [null, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, null],
  [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, null],
];

test("Krippendorff's α: Krippendorff 2011's example gives .743 nominal, .815 ordinal, .849 interval", () => {
  const units = KRIPPENDORFF_2011[0]!.map((_, u) => KRIPPENDORFF_2011.map((row) => row[u]).filter((v): v is number => v !== null));
  assert.equal(round3(krippendorffAlpha(units, 'nominal').alpha), 0.743);
  assert.equal(round3(krippendorffAlpha(units, 'ordinal').alpha), 0.815);
  assert.equal(round3(krippendorffAlpha(units, 'interval').alpha), 0.849);
  assert.equal(krippendorffAlpha(units, 'ordinal').pairable, 40); // unit 12 has one value: not pairable
  assert.equal(krippendorffAlpha([[1, 1], [3, 3, 3], [2, 2]], 'ordinal').alpha, 1);
});

test("Cohen's κ: the textbook 2 × 2 example gives p_o = .70, p_e = .50, κ = .40", () => {
  const cells: [string, string, number][] = [['yes', 'yes', 20], ['yes', 'no', 5], ['no', 'yes', 10], ['no', 'no', 15]];
  const a = cells.flatMap(([x, , n]) => new Array<string>(n).fill(x));
  const b = cells.flatMap(([, y, n]) => new Array<string>(n).fill(y));
  const r = cohenKappa(a, b);
  assert.deepEqual([round3(r.observed), round3(r.expected), round3(r.kappa)], [0.7, 0.5, 0.4]);
  assert.equal(cohenKappa([1, 2, 3], [1, 2, 3]).kappa, 1);
  assert.throws(() => cohenKappa([1], [1, 2]), /1 labels from the first annotator but 2/);
});
