/**
 * Preference losses (src/rlhf/core/preference.ts) against values worked out by hand, in float64: DPO's
 * loss is ln 2 when policy = reference (with or without label smoothing), conservative DPO mixes the
 * two directions, the implicit rewards are β(log π − log π_ref), and the gradient raises the chosen
 * log-prob and lowers the rejected one.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { type Tensor, tensor } from '../../src/tensor/index.js';
import { dpoSigmoidLoss, pairAccuracy, PREFERENCE_LOSSES, type PreferenceBatch } from '../../src/rlhf/core/index.js';
import { assertClose, flat, liveTensors, scoped, TOL } from './helpers.js';

const f64 = (x: number[]): Tensor => tensor(x, { dtype: 'float64' });
const LN2 = 0.6931471805599453;

let live = 0;
beforeEach(() => {
  live = liveTensors();
});
afterEach(() => {
  assert.equal(liveTensors(), live, 'the test leaked native tensors');
});

// Summed log-probs of three pairs. h = (πc − refc) − (πr − refr) = [2, 0, 1]; with β = ½, βh = [1, 0, ½]:
//   −log σ(βh) = softplus(−βh) = [0.31326168751822286, ln 2, 0.4740769841801067]
const batch = (): PreferenceBatch => ({
  policyChosen: f64([-10, -5, -3]), refChosen: f64([-11, -5, -4]),
  policyRejected: f64([-8, -6, -2]), refRejected: f64([-7, -6, -2]),
});

describe('DPO sigmoid loss (Rafailov et al. 2023)', () => {
  test('is ln 2 for every pair when policy = reference, with or without label smoothing', scoped(() => {
    const lp = [-12.5, -3.25, -40.125, -0.5];
    const same: PreferenceBatch = { policyChosen: f64(lp), refChosen: f64(lp), policyRejected: f64(lp.map((x) => x - 1)), refRejected: f64(lp.map((x) => x - 1)) };
    for (const labelSmoothing of [0, 0.1, 0.3]) {
      const out = dpoSigmoidLoss(same, { beta: 0.1, labelSmoothing });
      assertClose(out.losses, [LN2, LN2, LN2, LN2], TOL.float64, `ε ${labelSmoothing}`);
      assert.deepEqual(flat(out.chosenRewards), [0, 0, 0, 0]);
      assert.deepEqual(flat(out.rejectedRewards), [0, 0, 0, 0]);
    }
  }));

  test('hand-computed losses and implicit rewards, β = ½', scoped(() => {
    const out = PREFERENCE_LOSSES.sigmoid(batch(), { beta: 0.5, labelSmoothing: 0 });
    assertClose(out.losses, [0.31326168751822286, LN2, 0.4740769841801067], TOL.float64);
    assertClose(out.chosenRewards, [0.5, 0, 0.5], TOL.float64);
    assertClose(out.rejectedRewards, [-0.5, 0, 0], TOL.float64);
  }));

  test('conservative DPO, ε = 0.1: 0.9·softplus(−βh) + 0.1·softplus(βh)', scoped(() => {
    const out = dpoSigmoidLoss(batch(), { beta: 0.5, labelSmoothing: 0.1 });
    assertClose(out.losses, [0.4132616875182229, LN2, 0.5240769841801067], TOL.float64);
  }));

  test('the gradient raises the chosen log-prob and lowers the rejected one', scoped(() => {
    const b = batch();
    for (const t of [b.policyChosen, b.policyRejected]) t.requiresGrad_();
    dpoSigmoidLoss(b, { beta: 0.5, labelSmoothing: 0 }).losses.sum().backward();
    // ∂L/∂πc = −β σ(−βh) = [−0.13447071068499755, −0.25, −0.5 σ(−½)]; ∂L/∂πr is its negation.
    const gc = flat(b.policyChosen.grad!);
    assertClose(b.policyChosen.grad!, [-0.13447071068499755, -0.25, -0.5 / (1 + Math.exp(0.5))], TOL.float64);
    assertClose(b.policyRejected.grad!, gc.map((g) => -g), TOL.float64);
    assert.ok(gc.every((g) => g < 0), `descent must raise every chosen log-prob, got ${gc}`);
  }));

  test('ε = 0.1 still pushes the right way (∂L/∂πc = −β(0.9σ(−βh) − 0.1σ(βh)) < 0 at βh = 1)', scoped(() => {
    const b = batch();
    b.policyChosen.requiresGrad_();
    dpoSigmoidLoss(b, { beta: 0.5, labelSmoothing: 0.1 }).losses.sum().backward();
    assertClose(flat(b.policyChosen.grad!)[0]!, -0.08447071068499756, TOL.float64);
  }));

  test('label smoothing of ½ or more is refused', scoped(() => {
    assert.throws(() => dpoSigmoidLoss(batch(), { beta: 0.5, labelSmoothing: 0.5 }), /labelSmoothing must be in \[0, 0\.5\)/);
  }));
});

describe('implicit-reward accuracy', () => {
  test('ties count ½', () => {
    assert.equal(pairAccuracy([1, 0, 2], [0, 0, 3]), 0.5);
    assert.equal(pairAccuracy([1, 1], [0, 0]), 1);
    assert.equal(pairAccuracy([0, 0, 0], [0, 0, 0]), 0.5);
  });
});
