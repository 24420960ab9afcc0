/**
 * Reward-model evaluation metrics: hand cases for every definition, and the calibration property on
 * synthetic pairs drawn from a known Bradley–Terry model — scored with the true rewards the model is
 * calibrated (small ECE); with the rewards tripled it is over-confident (large ECE).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { bootstrapCI, calibration, evaluatePairs, marginSummary, pairOutcome } from '../../src/reward/metrics.js';
import { pearson } from '../../src/stats.js';
import { streamKey, uniformAt } from '../../src/random.js';

const near = (got: number | null, want: number, tol = 1e-12, msg = '') => {
  assert.ok(got !== null && Math.abs(got - want) <= tol, `${msg} got ${got}, want ${want}`);
};

// Δ = chosen − rejected = [0, 2, −2, 1]: outcomes [0.5 (tie), 1, 0, 1]
const CHOSEN = [0, 2, 0, 1];
const REJECTED = [0, 0, 2, 0];

describe('accuracy', () => {
  test('higher reward wins, ties count 0.5', () => {
    assert.deepEqual([pairOutcome(1, 0), pairOutcome(2, 2), pairOutcome(0, 1)], [1, 0.5, 0]);
    const e = evaluatePairs({ chosen: [1, 2, 0, 5], rejected: [0, 2, 1, 5] }, { seed: 1 });
    assert.equal(e.n, 4);
    assert.equal(e.accuracy, 0.5); // (1 + 0.5 + 0 + 0.5) / 4
  });

  test('bootstrap interval: deterministic per seed, brackets a constant exactly', () => {
    const xs = [1, 0, 1, 1, 0.5, 0, 1];
    assert.deepEqual(bootstrapCI(xs, { seed: 3 }), bootstrapCI(xs, { seed: 3 }));
    assert.deepEqual(bootstrapCI([1, 1, 1], { seed: 3 }), [1, 1]);
    const [lo, hi] = bootstrapCI(xs, { seed: 3 });
    assert.ok(lo >= 0 && lo < hi && hi <= 1);
  });
});

describe('calibration', () => {
  test('ECE and reliability table on a hand example', () => {
    // confidence σ(|Δ|): Δ = 0 → 0.5 (bin [0.5, 0.55), outcome 0.5);
    //   Δ = 1 → σ(1) = 0.7310585786300049 (bin [0.70, 0.75), outcome 1);
    //   Δ = ±2 → σ(2) = 0.8807970779778823 (bin [0.85, 0.90), outcomes 1 and 0: accuracy 0.5)
    // ECE = 1/4·|0.5 − 0.5| + 1/4·|1 − 0.7310585786300049| + 2/4·|0.5 − 0.8807970779778823| = 0.2576338943314399
    const { ece, reliability } = calibration(CHOSEN, REJECTED);
    near(ece, 0.2576338943314399);
    assert.equal(reliability.length, 10);
    near(reliability[0]!.lo, 0.5);
    near(reliability[9]!.hi, 1);
    assert.deepEqual(reliability.map((b) => b.n), [1, 0, 0, 0, 1, 0, 0, 2, 0, 0]);
    assert.deepEqual(reliability[0], { lo: 0.5, hi: 0.55, n: 1, accuracy: 0.5, confidence: 0.5 });
    assert.equal(reliability[4]!.accuracy, 1);
    near(reliability[4]!.confidence, 0.7310585786300049);
    assert.equal(reliability[7]!.accuracy, 0.5);
    near(reliability[7]!.confidence, 0.8807970779778823);
    assert.equal(reliability[1]!.accuracy, null);
    near(evaluatePairs({ chosen: CHOSEN, rejected: REJECTED }, { seed: 1 }).ece, 0.2576338943314399);
  });

  test('confidence 1 (a huge margin) lands in the last bin', () => {
    const { reliability } = calibration([100], [0]);
    assert.equal(reliability[9]!.n, 1);
  });
});

describe('length bias and margins', () => {
  test('Pearson by hand', () => {
    // x̄ = 2.5, ȳ = 5; Σdxdy = 4.5 + 0.5 + 0 + 6 = 11, Σdx² = 5, Σdy² = 26 → 11/√130
    near(pearson([1, 2, 3, 4], [2, 4, 5, 9]), 0.9647638212377322);
    near(pearson([1, 2, 3], [3, 2, 1]), -1);
    assert.equal(pearson([1, 1, 1], [1, 2, 3]), null);
  });

  test('length_corr pools chosen and rejected; the longer-wins baseline counts ties as 0.5', () => {
    // lengths = 10 × reward over the pooled 4 responses → r = 1
    const e = evaluatePairs({ chosen: [3, 1, 2], rejected: [1, 2, 2], chosenLen: [30, 10, 20], rejectedLen: [10, 20, 20] }, { seed: 1 });
    near(e.length_corr, 1);
    // longer wins: 30 > 10 → 1; 10 < 20 → 0; 20 = 20 → 0.5
    near(e.length_baseline_accuracy, 0.5);
    const none = evaluatePairs({ chosen: [1], rejected: [0] }, { seed: 1 });
    assert.equal(none.length_corr, null);
    assert.equal(none.length_baseline_accuracy, null);
  });

  test('margin quantiles (type 7) by hand', () => {
    // sorted Δ = [−2, 0, 1, 2]; quantile q sits at position 3q
    assert.deepEqual(marginSummary([0, 2, -2, 1]), { min: -2, p10: -1.4, p25: -0.5, median: 0.5, p75: 1.25, p90: 1.7000000000000002, max: 2, mean: 0.25 });
  });
});

describe('breakdowns', () => {
  test('by annotator, source and annotator confidence', () => {
    // outcomes [0.5, 1, 0, 1]
    const e = evaluatePairs(
      { chosen: CHOSEN, rejected: REJECTED, annotator: ['a', 'b', 'a', undefined], source: ['x', 'x', 'x', 'y'], confidence: [1, 2, 1, undefined] },
      { seed: 5 },
    );
    assert.deepEqual(Object.keys(e.by_annotator), ['a', 'b']);
    assert.equal(e.by_annotator.a!.n, 2);
    assert.equal(e.by_annotator.a!.accuracy, 0.25);
    assert.deepEqual(e.by_annotator.b, { n: 1, accuracy: 1, accuracy_ci: [1, 1] });
    assert.equal(e.by_source.x!.accuracy, 0.5);
    assert.equal(e.by_source.y!.accuracy, 1);
    assert.deepEqual(e.by_confidence.map((g) => [g.lo, g.hi, g.n, g.accuracy]), [[1, 1, 2, 0.25], [2, 2, 1, 1]]);
  });

  test('a continuous confidence is binned', () => {
    const conf = Array.from({ length: 40 }, (_, i) => i / 39); // 40 distinct values in [0, 1]
    const e = evaluatePairs({ chosen: conf.map(() => 1), rejected: conf.map(() => 0), confidence: conf }, { seed: 1, confidenceGroups: 4, resamples: 50 });
    assert.deepEqual(e.by_confidence.map((g) => g.n), [10, 10, 10, 10]);
    near(e.by_confidence[3]!.hi, 1);
  });

  test('mismatched lengths are errors', () => {
    assert.throws(() => evaluatePairs({ chosen: [1, 2], rejected: [0] }, { seed: 1 }), /rejected has 1 entries for 2 pairs/);
    assert.throws(() => evaluatePairs({ chosen: [1], rejected: [0], chosenLen: [3] }, { seed: 1 }), /both chosenLen and rejectedLen/);
    assert.throws(() => evaluatePairs({ chosen: [], rejected: [] }, { seed: 1 }), /no pairs/);
  });
});

describe('synthetic Bradley–Terry preferences', () => {
  // 20,000 pairs from a known BT model: true rewards r_a, r_b ~ N(0, 1) (Box–Muller over a seeded
  // counter-based stream), and a preferred with probability σ(r_a − r_b).
  const N = 20_000;
  const key = streamKey(2024, 0);
  const u = (i: number) => uniformAt(key, i);
  const normal = (i: number) => Math.sqrt(-2 * Math.log(1 - u(i))) * Math.cos(2 * Math.PI * u(i + 1));
  const chosen: number[] = [];
  const rejected: number[] = [];
  for (let i = 0; i < N; i++) {
    const [ra, rb] = [normal(5 * i), normal(5 * i + 2)];
    const aWins = u(5 * i + 4) < 1 / (1 + Math.exp(-(ra - rb)));
    chosen.push(aWins ? ra : rb);
    rejected.push(aWins ? rb : ra);
  }
  const scaled = (xs: number[], s: number) => xs.map((x) => x * s);

  test('true rewards are calibrated (ECE < 0.02); tripled rewards are over-confident (ECE > 0.05)', () => {
    const calibrated = evaluatePairs({ chosen, rejected }, { seed: 11 });
    const over = calibration(scaled(chosen, 3), scaled(rejected, 3));
    console.log(`synthetic BT, n = ${N}: ECE(true rewards) = ${calibrated.ece.toFixed(4)}, ECE(3 × rewards) = ${over.ece.toFixed(4)}`);
    assert.ok(calibrated.ece < 0.02, `ECE ${calibrated.ece} with the true rewards`);
    assert.ok(over.ece > 0.05, `ECE ${over.ece} with the rewards tripled`);
    // Over-confidence: in the confident bins accuracy falls short of confidence.
    const top = over.reliability[9]!;
    assert.ok(top.accuracy! < top.confidence!);
    assert.equal(calibration(chosen, rejected).ece, calibrated.ece, 'evaluatePairs reports calibration()');
  });

  test('the bootstrap interval contains the accuracy and narrows with n', () => {
    const all = evaluatePairs({ chosen, rejected }, { seed: 11 });
    const few = evaluatePairs({ chosen: chosen.slice(0, 500), rejected: rejected.slice(0, 500) }, { seed: 11 });
    for (const e of [all, few]) assert.ok(e.accuracy_ci[0] <= e.accuracy && e.accuracy <= e.accuracy_ci[1], JSON.stringify(e.accuracy_ci));
    const width = (e: typeof all) => e.accuracy_ci[1] - e.accuracy_ci[0];
    // Width ∝ 1/√n: 40× the pairs, about 1/6.3 the width.
    assert.ok(width(all) < width(few) / 4, `widths ${width(all)} vs ${width(few)}`);
    // The true-reward model's expected accuracy is E[σ(|Δ|)], Δ ~ N(0, 2): ≈ 0.725 (numerically).
    assert.ok(all.accuracy > 0.71 && all.accuracy < 0.74, `accuracy ${all.accuracy}`);
  });
});
