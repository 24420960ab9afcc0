/** Tags: @numeric */
// The shared RL math against hand-computed values.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  AdaptiveKlController, approxKl, clippedPolicyLoss, clippedValueLoss, gae, groupAdvantages, leaveOneOutAdvantages, normalise, whiten,
} from '../../src/rlhf/core/index.js';
import { scope, tensor } from '../../src/tensor/index.js';

const close = (got: number[], want: number[], tol = 1e-9) => {
  assert.equal(got.length, want.length);
  got.forEach((g, i) => assert.ok(Math.abs(g - want[i]!) <= tol, `[${i}] ${g} vs ${want[i]}`));
};
const flat = (t: { toArray(): unknown }) => (t.toArray() as number[][]).flat(3) as number[];
const d = (x: number[][]) => tensor(x, { dtype: 'float64' });

describe('KL estimators (Schulman 2020)', () => {
  test('k1, k2, k3 at π = 0.5, π_ref = 0.25; zero under the mask', () => scope(() => {
    const lp = d([[Math.log(0.5), Math.log(0.5)]]);
    const ref = d([[Math.log(0.25), Math.log(0.25)]]);
    const mask = d([[1, 0]]);
    const l2 = Math.log(2);
    close(flat(approxKl(lp, ref, 'k1', mask)), [l2, 0]);
    close(flat(approxKl(lp, ref, 'k2', mask)), [0.5 * l2 * l2, 0]);
    close(flat(approxKl(lp, ref, 'k3', mask)), [0.5 - 1 + l2, 0]);
  }));
});

describe('GAE (Schulman et al. 2016)', () => {
  test('γ = λ = 1: advantages are returns minus values', () => scope(() => {
    const { advantages, returns } = gae(d([[0, 0, 1]]), d([[0.5, 0.6, 0.7]]), d([[1, 1, 1]]), 1, 1);
    close(flat(advantages), [0.5, 0.4, 0.3]);
    close(flat(returns), [1, 1, 1]);
  }));
  test('γ 0.9, λ 0.95 by hand; padding is skipped, not treated as a step', () => scope(() => {
    const a2 = 0.3;
    const a1 = 0.9 * 0.7 - 0.6 + 0.855 * a2;
    const a0 = 0.9 * 0.6 - 0.5 + 0.855 * a1;
    close(flat(gae(d([[0, 0, 1]]), d([[0.5, 0.6, 0.7]]), d([[1, 1, 1]]), 0.9, 0.95).advantages), [a0, a1, a2]);
    // A right-padded row: the padding's reward and value never enter.
    const padded = gae(d([[0, 1, 99]]), d([[0.6, 0.7, 99]]), d([[1, 1, 0]]), 0.9, 0.95).advantages;
    close(flat(padded), [0.9 * 0.7 - 0.6 + 0.855 * 0.3, 0.3, 0]);
  }));
});

describe('advantage baselines', () => {
  test('whitening gives zero mean and unit std over the mask', () => scope(() => {
    const w = flat(whiten(d([[1, 2, 3, 100]]), d([[1, 1, 1, 0]])));
    close(w, [-1, 0, 1, 0], 1e-6);
  }));
  test('GRPO divides by the group std; Dr. GRPO does not; identical rewards give zero', () => scope(() => {
    close(flat(groupAdvantages(d([[1, 2, 3]]))), [-1 / (1 + 1e-4), 0, 1 / (1 + 1e-4)]);
    close(flat(groupAdvantages(d([[1, 2, 3]]), { scaleByStd: false })), [-1, 0, 1]);
    close(flat(groupAdvantages(d([[5, 5, 5, 5]]))), [0, 0, 0, 0]);
  }));
  test('RLOO: each baseline is the mean of the other samples', () => scope(() => {
    close(flat(leaveOneOutAdvantages(d([[1, 2, 3]]))), [-1.5, 0, 1.5]);
    close(flat(leaveOneOutAdvantages(d([[4, 4]]))), [0, 0]);
    assert.throws(() => leaveOneOutAdvantages(d([[1]])), /at least 2 samples/);
  }));
});

describe('policy and value losses', () => {
  test('at ratio 1 the clipped loss equals the unclipped one (−A) and nothing is clipped', () => scope(() => {
    const lp = d([[-1, -2, -3]]);
    const adv = d([[0.5, -1, 2]]);
    const { loss, clipped } = clippedPolicyLoss(lp, lp, adv, { clipLow: 0.2, clipHigh: 0.28 });
    close(flat(loss), [-0.5, 1, -2]);
    close(flat(clipped), [0, 0, 0]);
  }));
  test('clip-higher range and dual clip by hand', () => scope(() => {
    const old = d([[0, 0]]);
    const lp = d([[Math.log(1.5), Math.log(10)]]);
    const adv = d([[2, -1]]);
    const { loss, clipped } = clippedPolicyLoss(lp, old, adv, { clipLow: 0.2, clipHigh: 0.28 });
    close(flat(loss), [-1.28 * 2, 10], 1e-9); // A > 0 capped at 1 + εhigh; A < 0 unclipped at ρ = 10
    close(flat(clipped), [1, 0]);
    close(flat(clippedPolicyLoss(lp, old, adv, { clipLow: 0.2, clipHigh: 0.28, dualClip: 3 }).loss), [-2.56, 3], 1e-9);
  }));
  test('clipped value loss by hand', () => scope(() => {
    close(flat(clippedValueLoss(d([[1, 0.1]]), d([[0, 0]]), d([[0, 0]]), 0.2)), [0.5, 0.005]);
  }));
  test("token normalisation with the global count makes accumulation equal one big batch", () => scope(() => {
    const loss = d([[1, 2, 3], [4, 5, 6]]);
    const mask = d([[1, 1, 0], [1, 1, 1]]);
    const whole = normalise(loss, mask, 'token').item();
    const parts = normalise(loss.narrow(0, 0, 1), mask.narrow(0, 0, 1), 'token', { tokenCount: 5 }).item() +
      normalise(loss.narrow(0, 1, 1), mask.narrow(0, 1, 1), 'token', { tokenCount: 5 }).item();
    close([whole, parts], [18 / 5, 18 / 5]);
    close([normalise(loss, mask, 'sequence').item()], [(1.5 + 5) / 2]);
    close([normalise(loss, mask, 'constant', { constant: 10 }).item()], [1.8]);
  }));
});

test('adaptive KL controller (Ziegler et al. 2019): the error is clipped to ±0.2', () => {
  const c = new AdaptiveKlController(0.1, 6, 10_000);
  c.update(12, 256);
  close([c.value], [0.1 * (1 + (0.2 * 256) / 10_000)]);
  c.update(3, 100);
  close([c.value], [0.1 * (1 + (0.2 * 256) / 10_000) * (1 - (0.2 * 100) / 10_000)]); // 3/6 − 1 = −0.5, clipped to −0.2
});
