/**
 * Per-pair weights and margins of the Bradley–Terry losses (the feedback app's annotator reliability and
 * strength, through `loss.recordWeights` / `loss.recordMargins`), against hand values in float64: weights
 * of 1 are the plain mean; weights (2, 1, 0) give (2ℓ₀ + ℓ₁) / 3; a per-pair margin shifts each Δ; with
 * (B, H) rewards the weights broadcast over heads. Records carry `weight` and `margin` from their top level,
 * and a non-positive weight is refused naming the field.
 * Tags: @numeric
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseRecord, RecordError } from '../../src/data/formats.js';
import { bradleyTerryLoss, labelSmoothedBtLoss } from '../../src/reward/losses.js';
import { type Tensor, tensor } from '../../src/tensor/index.js';
import { assertClose, scoped, TOL } from './helpers.js';

const f64 = (x: number[] | number[][]): Tensor => tensor(x, { dtype: 'float64' });
// Δ = [1, 0, −2]; −log σ(Δ) = [0.31326168751822286, ln 2, 2.1269280110429727]
const SP = [0.31326168751822286, 0.6931471805599453, 2.1269280110429727];
const CHOSEN = [2, 0, -1];
const REJECTED = [1, 0, 1];

test('weighted Bradley–Terry: ones are the mean, (2, 1, 0) is (2ℓ₀ + ℓ₁)/3, heads broadcast', scoped(() => {
  const base = { chosen: f64(CHOSEN), rejected: f64(REJECTED) };
  assertClose(bradleyTerryLoss({ ...base, weights: f64([1, 1, 1]) }), (SP[0]! + SP[1]! + SP[2]!) / 3, TOL.float64);
  assertClose(bradleyTerryLoss({ ...base, weights: f64([2, 1, 0]) }), (2 * SP[0]! + SP[1]!) / 3, TOL.float64);
  assertClose(labelSmoothedBtLoss({ ...base, labelSmoothing: 0, weights: f64([2, 1, 0]) }), (2 * SP[0]! + SP[1]!) / 3, TOL.float64);
  // Two heads with the same rewards: the same weighted mean.
  const two = (x: number[]) => f64(x.map((v) => [v, v]));
  assertClose(bradleyTerryLoss({ chosen: two(CHOSEN), rejected: two(REJECTED), weights: f64([2, 1, 0]) }), (2 * SP[0]! + SP[1]!) / 3, TOL.float64);
  // A per-pair margin (B, 1) of [1, 0, 0] moves pair 0's Δ from 1 to 0: ℓ₀ = ln 2.
  const m = bradleyTerryLoss({ chosen: two(CHOSEN), rejected: two(REJECTED), margin: f64([[1], [0], [0]]) });
  assertClose(m, (SP[1]! + SP[1]! + SP[2]!) / 3, TOL.float64);
}));

test('records carry weight and margin; a non-positive weight is refused', () => {
  const r = parseRecord('pairwise', { prompt: 'p', chosen: 'a', rejected: 'b', weight: 0.75, margin: 2 }, { file: 'f', line: 1 });
  assert.deepEqual([r.meta.weight, r.meta.margin], [0.75, 2]);
  assert.throws(() => parseRecord('pairwise', { prompt: 'p', chosen: 'a', rejected: 'b', weight: 0 }, { file: 'f', line: 1 }),
    (e: unknown) => e instanceof RecordError && e.field === 'weight');
});
