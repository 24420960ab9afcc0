/**
 * Preference losses (src/rlhf/core/preference.ts) against values worked out by hand, in float64: DPO's
 * loss is ln 2 when policy = reference (with or without label smoothing), conservative DPO mixes the
 * two directions, the implicit rewards are β(log π − log π_ref), and the gradient raises the chosen
 * log-prob and lowers the rejected one. IPO, robust DPO, SimPO, ORPO and KTO each against a hand-computed
 * value; IPO and DPO agree on the sign of every gradient below IPO's target margin.
 * Tags: @numeric
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { type Tensor, tensor } from '../../src/tensor/index.js';
import {
  dpoSigmoidLoss, ipoLoss, ktoLoss, ktoReferencePoint, orpoLoss, pairAccuracy, PREFERENCE_LOSSES, REFERENCE_FREE, robustDpoLoss, simpoLoss,
  type PreferenceBatch, type PreferenceLossFn,
} from '../../src/rlhf/core/index.js';
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

/** ∂(Σ L)/∂ log π(c) and ∂(Σ L)/∂ log π(r) of a loss on a fresh copy of `make()`. */
function grads(loss: PreferenceLossFn, make: () => PreferenceBatch, beta: number): { chosen: number[]; rejected: number[] } {
  const b = make();
  for (const t of [b.policyChosen, b.policyRejected]) t.requiresGrad_();
  loss(b, { beta, labelSmoothing: 0 }).losses.sum().backward();
  return { chosen: flat(b.policyChosen.grad!), rejected: flat(b.policyRejected.grad!) };
}

describe('IPO (Azar et al. 2023)', () => {
  test('(h − 1/(2β))², β = ½: target 1, h = [2, 0, 1] gives [1, 1, 0]', scoped(() => {
    const out = ipoLoss(batch(), { beta: 0.5, labelSmoothing: 0 });
    assertClose(out.losses, [1, 1, 0], TOL.float64);
    assertClose(out.chosenRewards, [0.5, 0, 0.5], TOL.float64);
  }));

  test('IPO and DPO agree on the sign of every gradient below the target margin 1/(2β)', scoped(() => {
    // β = 0.1: target 5 nats. Pairs with h from −7 to 4.5, both signs of the policy's preference.
    const pc = [-10, -5, -3, -20, -1.5, -30];
    const rc = [-11, -5, -4, -17, -2, -33.5];
    const pr = [-8, -6, -2, -9, -4, -12];
    const rr = [-7, -6, -2, -13, -4.5, -11];
    const make = (): PreferenceBatch => ({ policyChosen: f64(pc), refChosen: f64(rc), policyRejected: f64(pr), refRejected: f64(rr) });
    const h = pc.map((x, i) => x - rc[i]! - (pr[i]! - rr[i]!));
    assert.ok(h.every((x) => x < 5) && h.some((x) => x < 0) && h.some((x) => x > 0), `h = ${h}`);
    const dpo = grads(dpoSigmoidLoss, make, 0.1);
    const ipo = grads(ipoLoss, make, 0.1);
    assert.deepEqual(ipo.chosen.map(Math.sign), dpo.chosen.map(Math.sign), `∂L/∂log π(c): IPO ${ipo.chosen} vs DPO ${dpo.chosen}`);
    assert.deepEqual(ipo.rejected.map(Math.sign), dpo.rejected.map(Math.sign), `∂L/∂log π(r): IPO ${ipo.rejected} vs DPO ${dpo.rejected}`);
    assert.ok(dpo.chosen.every((g) => g < 0) && dpo.rejected.every((g) => g > 0));
    // ∂L/∂πc = 2(h − 5): hand-computed.
    assertClose(ipo.chosen, h.map((x) => 2 * (x - 5)), TOL.float64);
  }));

  test('past the target IPO pulls back while DPO keeps pushing (the regularisation it adds)', scoped(() => {
    const g = grads(ipoLoss, batch, 0.5); // target 1; h = [2, 0, 1]
    assertClose(g.chosen, [2, -2, 0], TOL.float64);
  }));
});

describe('robust DPO (Chowdhury et al. 2024)', () => {
  test('ε = 0.1, β = ½: (0.9·softplus(−βh) − 0.1·softplus(βh)) / 0.8 = softplus(−βh) − βh/8', scoped(() => {
    const out = robustDpoLoss(batch(), { beta: 0.5, labelSmoothing: 0.1 });
    assertClose(out.losses, [0.18826168751822286, LN2, 0.4115769841801067], TOL.float64);
  }));

  test('ε = 0 is DPO; ε = ½ is refused', scoped(() => {
    assertClose(robustDpoLoss(batch(), { beta: 0.5, labelSmoothing: 0 }).losses, [0.31326168751822286, LN2, 0.4740769841801067], TOL.float64);
    assert.throws(() => robustDpoLoss(batch(), { beta: 0.5, labelSmoothing: 0.5 }), /labelSmoothing must be in \[0, 0\.5\)/);
  }));
});

// Reference-free pairs: lengths [5, 5, 3] and [2, 6, 4] give per-token log-probs ℓ(c) = [−2, −1, −1], ℓ(r) = [−4, −1, −½].
const lengthBatch = (): PreferenceBatch => ({
  policyChosen: f64([-10, -5, -3]), policyRejected: f64([-8, -6, -2]), chosenLengths: f64([5, 5, 3]), rejectedLengths: f64([2, 6, 4]),
});

describe('SimPO (Meng et al. 2024)', () => {
  test('β = 2, γ = 1: softplus(−(β(ℓc − ℓr) − γ)) = softplus(−[3, −1, −2]); rewards β·ℓ; no reference needed', scoped(() => {
    const out = simpoLoss(lengthBatch(), { beta: 2, labelSmoothing: 0, simpoGamma: 1 });
    assertClose(out.losses, [0.04858735157374206, 1.3132616875182228, 2.1269280110429727], TOL.float64);
    assertClose(out.chosenRewards, [-4, -2, -2], TOL.float64);
    assertClose(out.rejectedRewards, [-8, -2, -1], TOL.float64);
    assert.ok(REFERENCE_FREE.has('simpo') && REFERENCE_FREE.has('orpo') && !REFERENCE_FREE.has('ipo'));
  }));

  test('without lengths it fails clearly; a reference loss without the reference fails clearly', scoped(() => {
    const { chosenLengths: _c, rejectedLengths: _r, ...noLengths } = lengthBatch();
    assert.throws(() => simpoLoss(noLengths, { beta: 2, labelSmoothing: 0 }), /simpo loss needs completion lengths/);
    assert.throws(() => ipoLoss(lengthBatch(), { beta: 2, labelSmoothing: 0 }), /ipo loss needs the reference's log-probs/);
  }));
});

describe('ORPO (Hong et al. 2024)', () => {
  test('λ = 0.1: −ℓ(c) + λ·softplus(−(log odds(c) − log odds(r))), hand-computed', scoped(() => {
    const out = orpoLoss(lengthBatch(), { beta: 0.1, labelSmoothing: 0, orpoLambda: 0.1 });
    // pair 2: ℓ(c) = ℓ(r), so the odds term is λ ln 2 on top of the NLL 1.
    assertClose(out.losses, [2.011261675517891, 1.0693147180559945, 1.1294376769417642], TOL.float64);
    assertClose(out.chosenRewards, [-2, -1, -1], TOL.float64);
  }));

  test('the gradient raises the chosen log-prob (SFT + odds) and lowers the rejected one (finite differences)', scoped(() => {
    const g = grads((b, p) => orpoLoss(b, { ...p, orpoLambda: 0.1 }), lengthBatch, 0.1);
    assertClose(g.chosen, [-0.20246354393016475, -0.2158197671686679, -0.37161355126436035], { atol: 1e-8, rtol: 1e-7 });
    assertClose(g.rejected, [0.005424706017720382, 0.013183139246919495, 0.046123757813099076], { atol: 1e-8, rtol: 1e-7 });
  }));
});

describe('KTO (Ethayarajh et al. 2024)', () => {
  // r = log π − log π_ref = [1, 0, 1, −1]; the first two desirable. z0 = mean r = ¼.
  const kto = () => ({ policy: f64([-10, -5, -3, -8]), reference: f64([-11, -5, -4, -7]), desirable: f64([1, 1, 0, 0]) });

  test('z0 is the batch mean of r clamped at 0', () => {
    assert.equal(ktoReferencePoint([-10, -5, -3, -8], [-11, -5, -4, -7]), 0.25);
    assert.equal(ktoReferencePoint([-12], [-11]), 0);
    assert.equal(ktoReferencePoint([], []), 0);
  });

  test('β = ½, λ_D = 1, λ_U = 2: λ_D(1 − σ(β(r − z0))), λ_U(1 − σ(β(z0 − r))), hand-computed', scoped(() => {
    const out = ktoLoss({ ...kto(), z0: 0.25 }, { beta: 0.5, desirableWeight: 1, undesirableWeight: 2 });
    assertClose(out.losses, [0.4073334000459303, 0.5312093733737562, 1.1853331999081393, 0.6972902706678916], TOL.float64);
    assertClose(out.rewards, [0.5, 0, 0.5, -0.5], TOL.float64);
  }));

  test('λ/2 when policy = reference; descent raises desirable and lowers undesirable log-probs', scoped(() => {
    const lp = [-4, -9, -2, -7];
    const same = ktoLoss({ policy: f64(lp), reference: f64(lp), desirable: f64([1, 0, 1, 0]), z0: 0 }, { beta: 0.1, desirableWeight: 1, undesirableWeight: 1.5 });
    assertClose(same.losses, [0.5, 0.75, 0.5, 0.75], TOL.float64);
    const b = { ...kto(), z0: 0.25 };
    b.policy.requiresGrad_();
    ktoLoss(b, { beta: 0.5, desirableWeight: 1, undesirableWeight: 1 }).losses.sum().backward();
    const g = flat(b.policy.grad!);
    assert.ok(g[0]! < 0 && g[1]! < 0 && g[2]! > 0 && g[3]! > 0, `gradient ${g}`);
  }));
});

describe('implicit-reward accuracy', () => {
  test('ties count ½', () => {
    assert.equal(pairAccuracy([1, 0, 2], [0, 0, 3]), 0.5);
    assert.equal(pairAccuracy([1, 1], [0, 0]), 1);
    assert.equal(pairAccuracy([0, 0, 0], [0, 0, 0]), 0.5);
  });
});
