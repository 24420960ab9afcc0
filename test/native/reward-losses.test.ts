/**
 * Reward-model losses and ensemble aggregation against values worked out by hand, plus the invariants
 * that tie the losses together: Plackett–Luce at K = 2 is Bradley–Terry, label smoothing 0 is
 * Bradley–Terry, a margin is a shift of the reward difference. All in float64.
 * Tags: @numeric
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { type Tensor, tensor } from '../../src/tensor/index.js';
import {
  bradleyTerryLoss, gaussianRatingLoss, labelSmoothedBtLoss, plackettLuceLoss, REWARD_LOSSES, rewardCenteringLoss,
} from '../../src/reward/losses.js';
import { aggregateEnsemble, bootstrapIndices, ENSEMBLE_AGGREGATORS, ensembleSpread } from '../../src/reward/ensemble.js';
import { assertClose, flat, gradcheck, liveTensors, scoped, TOL } from './helpers.js';

const f64 = (x: number[] | number[][]): Tensor => tensor(x, { dtype: 'float64' });
const close = (t: Tensor, want: number, msg = '') => assertClose(t, want, TOL.float64, msg);

let live = 0;
beforeEach(() => {
  live = liveTensors();
});
afterEach(() => {
  assert.equal(liveTensors(), live, 'the test leaked native tensors');
});

// Pairs used throughout: Δ = chosen − rejected = [1, 0, −2]; −log σ(Δ) = softplus(−Δ):
//   softplus(−1) = 0.31326168751822286, softplus(0) = ln 2 = 0.6931471805599453, softplus(2) = 2.1269280110429727
const CHOSEN = [2, 0, -1];
const REJECTED = [1, 0, 1];
const BT = (0.31326168751822286 + 0.6931471805599453 + 2.1269280110429727) / 3; // 1.0444456263737136

describe('Bradley–Terry', () => {
  test('hand value, scalar output', scoped(() => {
    const loss = bradleyTerryLoss({ chosen: f64(CHOSEN), rejected: f64(REJECTED) });
    assert.deepEqual(loss.shape, []);
    close(loss, BT);
    close(REWARD_LOSSES.bradley_terry({ chosen: f64(CHOSEN), rejected: f64(REJECTED) }), BT, 'through the registry');
  }));

  test('stable at large margins (logSigmoid, not log(sigmoid))', scoped(() => {
    // Δ = −200: −log σ(−200) = 200 + log1p(e^−200) = 200 exactly in doubles; log(sigmoid) would give ∞.
    close(bradleyTerryLoss({ chosen: f64([0]), rejected: f64([200]) }), 200);
    close(bradleyTerryLoss({ chosen: f64([200]), rejected: f64([0]) }), 0);
  }));

  test('gradient: pushes the chosen reward up and the rejected down, by σ(−Δ)/B', scoped(() => {
    const chosen = f64(CHOSEN).requiresGrad_();
    const rejected = f64(REJECTED).requiresGrad_();
    bradleyTerryLoss({ chosen, rejected }).backward();
    // ∂L/∂r⁺ = −σ(−Δ)/B with σ(−1) = 0.2689414213699951, σ(0) = 0.5, σ(2) = 0.8807970779778823
    const want = [-0.2689414213699951 / 3, -0.5 / 3, -0.8807970779778823 / 3];
    assertClose(chosen.grad!, want, TOL.float64);
    assertClose(rejected.grad!, want.map((g) => -g), TOL.float64);
    for (const g of flat(chosen.grad!)) assert.ok(g < 0);
  }));

  test('margin: a shift of Δ, tensor or number, raising the loss', scoped(() => {
    // m = 1 everywhere: Δ − m = [0, −1, −3] → (ln 2 + softplus(1) + softplus(3))/3
    const want = (0.6931471805599453 + 1.3132616875182228 + 3.048587351573742) / 3; // 1.68499873988397
    close(bradleyTerryLoss({ chosen: f64(CHOSEN), rejected: f64(REJECTED), margin: 1 }), want, 'number');
    close(bradleyTerryLoss({ chosen: f64(CHOSEN), rejected: f64(REJECTED), margin: f64([1, 1, 1]) }), want, 'tensor');
    // A per-pair margin equals lowering each chosen reward by its margin.
    const m = [0.5, 2, 0];
    close(
      bradleyTerryLoss({ chosen: f64(CHOSEN), rejected: f64(REJECTED), margin: f64(m) }),
      bradleyTerryLoss({ chosen: f64(CHOSEN.map((c, i) => c - m[i]!)), rejected: f64(REJECTED) }).item(),
    );
    assert.ok(want > BT);
  }));
});

describe('label-smoothed Bradley–Terry', () => {
  test('hand value: (1−ε)·softplus(−Δ) + ε·softplus(Δ), ε = 0.1', scoped(() => {
    // Per pair: Δ = 1: 0.9·0.31326168751822286 + 0.1·1.3132616875182228 = 0.41326168751822285
    //           Δ = 0: ln 2 = 0.6931471805599453
    //           Δ = −2: 0.9·2.1269280110429727 + 0.1·0.12692801104297263 = 1.9269280110429727
    const want = (0.41326168751822285 + 0.6931471805599453 + 1.9269280110429727) / 3; // 1.0111122930403802
    close(labelSmoothedBtLoss({ chosen: f64(CHOSEN), rejected: f64(REJECTED), labelSmoothing: 0.1 }), want);
    // Since softplus(Δ) − softplus(−Δ) = Δ, the loss is BT + ε·mean(Δ) = 1.0444456263737136 − 0.1/3.
    close(labelSmoothedBtLoss({ chosen: f64(CHOSEN), rejected: f64(REJECTED), labelSmoothing: 0.1 }), BT - 0.1 / 3, 'identity');
  }));

  test('ε = 0 is Bradley–Terry, margins included', scoped(() => {
    const x = { chosen: f64(CHOSEN), rejected: f64(REJECTED), margin: f64([0.3, -1, 2]) };
    close(REWARD_LOSSES.label_smoothed_bt({ ...x, labelSmoothing: 0 }), bradleyTerryLoss(x).item());
  }));

  test('rejects ε outside [0, 0.5)', scoped(() => {
    for (const bad of [-0.1, 0.5, Number.NaN]) {
      assert.throws(() => labelSmoothedBtLoss({ chosen: f64([1]), rejected: f64([0]), labelSmoothing: bad }), /labelSmoothing must be in \[0, 0.5\)/);
    }
  }));
});

describe('Plackett–Luce', () => {
  // Ranking best-first r = [3, 1, 0]:
  //   −[(3 − lse(3, 1, 0)) + (1 − lse(1, 0)) + (0 − lse(0))]
  //   lse(3, 1, 0) = 3.1698460195562856, lse(1, 0) = 1.3132616875182228 → 0.48310770707450845
  const PL3 = 0.48310770707450845;

  test('hand value, best-first columns', scoped(() => {
    close(plackettLuceLoss({ rewards: f64([[3, 1, 0]]) }), PL3);
  }));

  test('an order tensor gives the same ranking from shuffled columns', scoped(() => {
    // columns hold [0, 3, 1]; ranked best-first they are columns 1, 2, 0
    const order = tensor([[1n, 2n, 0n]]);
    close(REWARD_LOSSES.plackett_luce({ rewards: f64([[0, 3, 1]]), order }), PL3);
  }));

  test('K = 2 equals Bradley–Terry', scoped(() => {
    const pl = plackettLuceLoss({ rewards: f64(CHOSEN.map((c, i) => [c, REJECTED[i]!])) });
    close(pl, BT);
    close(pl, bradleyTerryLoss({ chosen: f64(CHOSEN), rejected: f64(REJECTED) }).item());
  }));

  test('mask: a shorter ranking is its own Plackett–Luce (here a pair), averaged per ranking', scoped(() => {
    // row 2 ranks only [2, 5] (third slot is padding): −(2 − lse(2, 5)) = softplus(3) = 3.048587351573742
    const rewards = f64([[3, 1, 0], [2, 5, 9]]);
    const mask = tensor([[true, true, true], [true, true, false]]);
    close(plackettLuceLoss({ rewards, mask }), (PL3 + 3.048587351573742) / 2); // 1.7658475293241254
  }));

  test('gradients with padding are finite and match finite differences', scoped(() => {
    const mask = tensor([[true, true, true], [true, false, false]]);
    gradcheck((r) => plackettLuceLoss({ rewards: r, mask }), [f64([[0.3, -1.2, 2], [1, 4, -3]])]);
  }));
});

describe('Gaussian rating loss', () => {
  test('hand value with score normalisation and σ', scoped(() => {
    // z = (score − 3)/2 = [0.5, −0.5]; (r − z)² = [0.25, 0.25]; mean/2σ²: σ = 1 → 0.125, σ = 0.5 → 0.5
    const x = { rewards: f64([1, 0]), scores: f64([4, 2]), scoreScale: { mean: 3, std: 2 } };
    close(gaussianRatingLoss(x), 0.125);
    close(REWARD_LOSSES.gaussian({ ...x, sigma: 0.5 }), 0.5);
    // No scale: scores used as given, ((1 − 4)² + (0 − 2)²)/2/2 = 13/4
    close(gaussianRatingLoss({ rewards: f64([1, 0]), scores: f64([4, 2]) }), 3.25);
  }));
});

describe('reward centring', () => {
  test('hand value: c · mean((r⁺ + r⁻)²)', scoped(() => {
    // (1 − 1)² = 0, (2 + 1)² = 9 → mean 4.5, × 0.01 = 0.045
    close(rewardCenteringLoss({ chosen: f64([1, 2]), rejected: f64([-1, 1]), coefficient: 0.01 }), 0.045);
    // As TRL adds it: BT + centring
    const x = { chosen: f64(CHOSEN), rejected: f64(REJECTED) };
    // (r⁺ + r⁻)² = [9, 0, 0] → mean 3
    close(bradleyTerryLoss(x).add(REWARD_LOSSES.centering({ ...x, coefficient: 0.01 })), BT + 0.03);
  }));
});

describe('ensembles', () => {
  test('identical members: zero spread, and mean = min = mean − λ·std = the member', scoped(() => {
    const member = [1.5, -2, 3];
    const members = f64([member, member, member]); // (K = 3, B = 3)
    assertClose(ensembleSpread(members), [0, 0, 0], TOL.float64);
    for (const name of Object.keys(ENSEMBLE_AGGREGATORS) as (keyof typeof ENSEMBLE_AGGREGATORS)[]) {
      const { reward, uncertainty } = aggregateEnsemble(members, name, { lambda: 2 });
      assertClose(reward, member, TOL.float64, name);
      assertClose(uncertainty, [0, 0, 0], TOL.float64, name);
    }
  }));

  test('hand values: mean, min, mean − λ·std, UWO (mean − λ·var)', scoped(() => {
    // members (K = 3, B = 2): column 0 = {1, 3, 2}, column 1 = {0, 0, 6}
    const members = f64([[1, 0], [3, 0], [2, 6]]);
    // means [2, 2]; population variances [(1 + 1 + 0)/3, (4 + 4 + 16)/3] = [2/3, 8]; stds [0.816496580927726, 2.8284271247461903]
    assertClose(ensembleSpread(members), [0.816496580927726, 2.8284271247461903], TOL.float64);
    assertClose(ENSEMBLE_AGGREGATORS.mean(members), [2, 2], TOL.float64);
    assertClose(ENSEMBLE_AGGREGATORS.min(members), [1, 0], TOL.float64);
    // λ = 0.5: 2 − 0.408248290463863, 2 − 1.4142135623730951
    assertClose(ENSEMBLE_AGGREGATORS.mean_minus_std(members, { lambda: 0.5 }), [1.591751709536137, 0.5857864376269049], TOL.float64);
    // λ = 0.5: 2 − 1/3, 2 − 4
    assertClose(ENSEMBLE_AGGREGATORS.uwo(members, { lambda: 0.5 }), [5 / 3, -2], TOL.float64);
    assert.throws(() => ENSEMBLE_AGGREGATORS.mean_minus_std(members, { lambda: -1 }), /lambda must be >= 0/);
  }));

  test('bootstrapIndices: deterministic per seed, in range, a member does not depend on k', () => {
    const a = bootstrapIndices(50, 4, 7);
    assert.deepEqual(bootstrapIndices(50, 4, 7), a);
    assert.equal(a.length, 4);
    for (const idx of a) {
      assert.equal(idx.length, 50);
      for (const i of idx) assert.ok(Number.isInteger(i) && i >= 0 && i < 50);
    }
    assert.notDeepEqual(a[0], a[1], 'members draw different resamples');
    assert.notDeepEqual(bootstrapIndices(50, 4, 8), a, 'another seed, other resamples');
    assert.deepEqual(bootstrapIndices(50, 2, 7), a.slice(0, 2));
    // A resample with replacement leaves out about 1/e of the items: check it repeats some.
    assert.ok(new Set(a[0]).size < 50);
    assert.throws(() => bootstrapIndices(0, 1, 1), /n must be an integer >= 1/);
  });
});
