/**
 * Gao et al.'s over-optimisation forms: the closed-form least squares recovers known (α, β) from noisy
 * samples of each form, is exact on noiseless ones, and refuses degenerate input with a clear message.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { mulberry32 } from '../../src/random.js';
import { fitOveroptimisation, fitPeak, fitValue, klBestOfN, type FitForm } from '../../src/lab/fit.js';

/** Seeded standard normal draws (Box–Muller over mulberry32). */
function gaussian(seed: number): () => number {
  const u = mulberry32(seed);
  return () => Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
}

function sample(form: FitForm, alpha: number, beta: number, ds: number[], noise: number, seed: number): number[] {
  const z = gaussian(seed);
  return ds.map((d) => fitValue({ form, alpha, beta }, d) + noise * z());
}

const within = (got: number, want: number, rel: number, what: string) =>
  assert.ok(Math.abs(got - want) <= rel * Math.abs(want), `${what}: got ${got}, want ${want} ± ${rel * 100}%`);

describe('over-optimisation fits', () => {
  // best-of-n: n = 2 … 1024 in steps of √2 (Gao et al. sweep powers of 2); d = √KL_bon reaches ≈ 2.5
  const bonDs = [...new Set(Array.from({ length: 20 }, (_, i) => Math.round(2 ** ((i + 2) / 2))))].map((n) => Math.sqrt(klBestOfN(n)));
  // RL: 40 checkpoints spread to d = 12
  const rlDs = Array.from({ length: 40 }, (_, i) => 0.3 * (i + 1));

  const cases: [FitForm, number, number, number[]][] = [
    ['bon', 1.2, 0.35, bonDs],
    ['rl', 0.9, 0.3, rlDs],
  ];
  for (const [form, alpha, beta, ds] of cases) {
    test(`${form}: exact on noiseless points`, () => {
      const f = fitOveroptimisation(form, ds, sample(form, alpha, beta, ds, 0, 1));
      within(f.alpha, alpha, 1e-9, 'α');
      within(f.beta, beta, 1e-9, 'β');
      assert.ok(Math.abs(f.r2 - 1) < 1e-12);
      assert.equal(f.n, ds.length);
      assert.equal(f.form, form);
    });

    test(`${form}: recovers α, β within 5% under seeded Gaussian noise`, () => {
      for (const seed of [1, 2, 3, 4, 5]) {
        const f = fitOveroptimisation(form, ds, sample(form, alpha, beta, ds, 0.02, seed));
        within(f.alpha, alpha, 0.05, `seed ${seed} α`);
        within(f.beta, beta, 0.05, `seed ${seed} β`);
        assert.ok(f.r2 > 0.95 && f.r2 <= 1, `R² ${f.r2}`);
      }
    });
  }

  test('peaks: α/(2β) for best-of-n, exp(α/β − 1) for RL; none while still rising', () => {
    assert.deepEqual(fitPeak({ form: 'bon', alpha: 1, beta: 0.25 }), { d: 2, value: 1 });
    const p = fitPeak({ form: 'rl', alpha: 0.9, beta: 0.3 })!;
    assert.ok(Math.abs(p.d - Math.exp(2)) < 1e-12);
    const h = 1e-5;
    const slope = (fitValue({ form: 'rl', alpha: 0.9, beta: 0.3 }, p.d + h) - fitValue({ form: 'rl', alpha: 0.9, beta: 0.3 }, p.d - h)) / (2 * h);
    assert.ok(Math.abs(slope) < 1e-6, `slope at the peak ${slope}`);
    assert.equal(fitPeak({ form: 'bon', alpha: 1, beta: 0 }), null);
    assert.equal(fitPeak({ form: 'rl', alpha: 1, beta: -0.1 }), null);
    assert.equal(fitValue({ form: 'rl', alpha: 1, beta: 1 }, 0), 0);
  });

  test('KL of best-of-n: log n − (n − 1)/n', () => {
    assert.equal(klBestOfN(1), 0);
    assert.equal(klBestOfN(2), Math.log(2) - 0.5);
    assert.ok(Math.abs(klBestOfN(64) - (Math.log(64) - 63 / 64)) < 1e-15);
    assert.throws(() => klBestOfN(0), /integer n ≥ 1/);
    assert.throws(() => klBestOfN(2.5), /integer n ≥ 1/);
  });

  test('degenerate input: a clear error', () => {
    assert.throws(() => fitOveroptimisation('bon', [1], [0.5]), /at least 2 points/);
    assert.throws(() => fitOveroptimisation('rl', [], []), /at least 2 points/);
    assert.throws(() => fitOveroptimisation('bon', [1, 2], [0.5]), /2 d values but 1 rewards/);
    assert.throws(() => fitOveroptimisation('bon', [1.5, 1.5, 1.5], [0.1, 0.2, 0.3]), /cannot separate α from β \(all d equal/);
    assert.throws(() => fitOveroptimisation('rl', [2, 2], [0.1, 0.2]), /cannot separate/);
    assert.throws(() => fitOveroptimisation('bon', [0, 0], [0, 0]), /cannot separate/);
    assert.throws(() => fitOveroptimisation('rl', [0, 1, 2], [0, 0.1, 0.2]), /d must be > 0 for the log form/);
    assert.throws(() => fitOveroptimisation('rl', [-1, 1, 2], [0, 0.1, 0.2]), /d must be > 0/);
    assert.throws(() => fitOveroptimisation('bon', [-1, 1, 2], [0, 0.1, 0.2]), /must be ≥ 0/);
    assert.throws(() => fitOveroptimisation('bon', [1, NaN], [0, 0.1]), /not finite/);
    // d = 0 is allowed for best-of-n (n = 1) when other points separate the terms
    const f = fitOveroptimisation('bon', [0, 1, 2], [0, 0.75, 1]);
    assert.ok(Math.abs(f.alpha - 1) < 1e-12 && Math.abs(f.beta - 0.25) < 1e-12);
  });
});
