import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { lrAt, validateSchedule, type ScheduleConfig, type ScheduleKind } from '../../src/nn/schedule.js';

// warmup 10, decay over the next 100 steps: step 35 is a quarter of the decay, 60 half, 110 the end.
const cfg = (kind: ScheduleKind, extra: Partial<ScheduleConfig> = {}): ScheduleConfig => ({ kind, warmupSteps: 10, totalSteps: 110, ...extra });

/** [step, expected multiplier], worked out by hand from the transformers formulas. */
const table: Record<ScheduleKind, [number, number][]> = {
  constant: [[0, 0], [5, 0.5], [10, 1], [35, 1], [60, 1], [110, 1]],
  linear: [[0, 0], [5, 0.5], [10, 1], [35, 0.75], [60, 0.5], [109, 0.01], [110, 0]],
  // 0.5 * (1 + cos(pi * progress)): progress 1/4 → (2 + sqrt 2) / 4; 1/2 → 1/2; 1 → 0.
  cosine: [[0, 0], [5, 0.5], [10, 1], [35, (2 + Math.SQRT2) / 4], [60, 0.5], [110, 0]],
};

describe('lrAt matches transformers get_*_schedule_with_warmup', () => {
  for (const [kind, rows] of Object.entries(table) as [ScheduleKind, [number, number][]][]) {
    test(kind, () => {
      for (const [step, want] of rows) {
        const got = lrAt(step, 1, cfg(kind));
        assert.ok(Math.abs(got - want) <= 1e-15, `${kind} step ${step}: got ${got}, want ${want}`);
      }
    });
  }

  test('scales the base rate as LambdaLR does (base_lr * multiplier)', () => {
    assert.equal(lrAt(60, 3e-4, cfg('linear')), 3e-4 * 0.5);
    assert.equal(lrAt(1, 3e-4, cfg('cosine', { warmupSteps: 3 })), 3e-4 * (1 / 3));
    assert.equal(lrAt(35, 3e-4, cfg('cosine')), 3e-4 * (0.5 * (1 + Math.cos(Math.PI * 0.25))));
  });

  test('no warmup starts at the full rate', () => {
    for (const kind of ['constant', 'linear', 'cosine'] as const) assert.equal(lrAt(0, 2, cfg(kind, { warmupSteps: 0 })), 2);
  });

  test('warmup === total: the max(1, ·) guard, with transformers\' asymmetry between linear and cosine', () => {
    const edge = { warmupSteps: 10, totalSteps: 10 };
    assert.equal(lrAt(9, 1, cfg('linear', edge)), 0.9);
    assert.equal(lrAt(10, 1, cfg('linear', edge)), 0); // (10 - 10) / max(1, 0)
    assert.equal(lrAt(10, 1, cfg('cosine', edge)), 1); // progress 0 / max(1, 0) = 0
  });

  test('minLrRatio floors the decay, not the warmup', () => {
    const floor = { minLrRatio: 0.1 };
    assert.equal(lrAt(0, 1, cfg('linear', floor)), 0);
    assert.equal(lrAt(5, 1, cfg('cosine', floor)), 0.5);
    assert.equal(lrAt(10, 1, cfg('linear', floor)), 1);
    assert.ok(Math.abs(lrAt(60, 1, cfg('linear', floor)) - 0.55) <= 1e-15);
    assert.ok(Math.abs(lrAt(60, 1, cfg('cosine', floor)) - 0.55) <= 1e-15);
    assert.equal(lrAt(110, 1, cfg('linear', floor)), 0.1);
    assert.equal(lrAt(110, 1, cfg('cosine', floor)), 0.1);
    assert.equal(lrAt(110, 1, cfg('constant', floor)), 1);
  });
});

describe('validation', () => {
  const bad: [string, ScheduleConfig, RegExp][] = [
    ['unknown kind', { kind: 'exponential' as ScheduleKind, warmupSteps: 0, totalSteps: 10 }, /unknown kind "exponential" \(expected one of constant, linear, cosine\)/],
    ['negative warmup', cfg('linear', { warmupSteps: -1 }), /warmupSteps must be an integer >= 0, got -1/],
    ['fractional total', cfg('linear', { totalSteps: 10.5 }), /totalSteps must be an integer >= 0, got 10.5/],
    ['NaN total', cfg('linear', { totalSteps: NaN }), /totalSteps must be an integer >= 0, got NaN/],
    ['warmup beyond total', cfg('cosine', { warmupSteps: 200 }), /warmupSteps \(200\) exceeds totalSteps \(110\)/],
    ['minLrRatio above 1', cfg('cosine', { minLrRatio: 1.5 }), /minLrRatio must be in \[0, 1\], got 1.5/],
    ['minLrRatio NaN', cfg('cosine', { minLrRatio: NaN }), /minLrRatio must be in \[0, 1\], got NaN/],
  ];
  for (const [what, config, message] of bad) {
    test(what, () => {
      assert.throws(() => validateSchedule(config), { name: 'RangeError', message });
      assert.throws(() => lrAt(0, 1, config), message);
    });
  }

  test('step and baseLr out of range', () => {
    assert.throws(() => lrAt(-1, 1, cfg('linear')), /step must be in \[0, totalSteps = 110\], got -1/);
    assert.throws(() => lrAt(111, 1, cfg('cosine')), /got 111/);
    assert.throws(() => lrAt(NaN, 1, cfg('constant')), /got NaN/);
    assert.throws(() => lrAt(0, -1e-3, cfg('linear')), /baseLr must be a finite number >= 0/);
  });
});
