/**
 * `rlhf bench ppo` (bench/ppo.ts) in --quick mode through the CLI: one line of JSON with the environment,
 * the iteration and its three phases on both sides, their ratios, and ppo.py's deterministic check passed
 * on our side (the bench exits non-zero when a check disagrees). Also: a disagreeing check stops the bench
 * with a message naming the value. Skipped where the baseline interpreter has no torch.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { compareChecks } from '../../bench/ppo.js';
import { defaultPython } from '../../bench/common.js';
import { rlhf } from './run-cli.js';
import { TEST_THREADS } from '../env.js';

const python = defaultPython();
const hasTorch = spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;

test('rlhf bench ppo --quick --json: checks pass, iteration and phases timed on both sides', { skip: hasTorch ? false : `${python} has no torch` }, async () => {
  const r = await rlhf(['bench', 'ppo', '--json', '--quick', '--threads', String(TEST_THREADS)]);
  assert.equal(r.status, 0, `exit ${r.status}: ${r.stderr}`);
  assert.equal(r.stdout.trim().split('\n').length, 1, 'stdout must be one JSON line');
  const out = JSON.parse(r.stdout) as {
    bench: string;
    env: { reps: number; quick: boolean; threads: { ours: { torch: number } }; python: { path: string } };
    results: Record<string, { ours: { median: number; samples: number[] }; theirs: { median: number; samples: number[] }; unit: string }>;
    ratios: Record<string, number>;
    checks: Record<string, { ours: number; theirs: number }>;
    shape: { batch: number; newTokens: number };
  };
  assert.equal(out.bench, 'ppo');
  assert.equal(out.env.quick, true);
  assert.equal(out.env.reps, 2);
  assert.equal(out.env.threads.ours.torch, TEST_THREADS);
  assert.deepEqual(out.shape, { batch: 16, newTokens: 16, minibatches: 4 });
  for (const name of ['iteration', 'generation', 'scoring', 'update']) {
    const c = out.results[name]!;
    assert.equal(c.unit, 's');
    assert.equal(c.ours.samples.length, 2);
    assert.equal(c.theirs.samples.length, 2);
    assert.ok(c.ours.median > 0 && c.theirs.median > 0, name);
    assert.ok(Number.isFinite(out.ratios[name]) && out.ratios[name]! > 0, `ratio ${name}`);
  }
  // The iteration's phases fit inside its total on both sides.
  for (const side of ['ours', 'theirs'] as const) {
    const phases = ['generation', 'scoring', 'update'].reduce((a, n) => a + out.results[n]![side].samples[0]!, 0);
    assert.ok(phases <= out.results.iteration![side].samples[0]! * 1.001, side);
  }
  const expected = ['oldLogProbSum', 'refLogProbSum', 'reward0', 'rewardMean', 'oldValueMean', 'rawAdvantageMean', 'returnMean', 'clipFraction0', 'lossAfterFirst', 'lossAfterEpoch',
    'losses[0]', 'losses[1]', 'losses[2]', 'losses[3]', 'gradNorms[0]', 'gradNorms[1]', 'gradNorms[2]', 'gradNorms[3]'];
  assert.deepEqual(Object.keys(out.checks).sort(), [...expected].sort());
  for (const [name, c] of Object.entries(out.checks)) {
    const tol = name === 'clipFraction0' ? 2 / 1024 : 1e-4 * Math.max(1, Math.abs(c.theirs));
    assert.ok(Math.abs(c.ours - c.theirs) <= tol, `${name}: ${c.ours} vs ${c.theirs}`);
  }
});

test('a check that disagrees stops the bench, naming the value', () => {
  assert.deepEqual(compareChecks({ a: 1, b: 100 }, { a: 1 + 5e-5, b: 100.009 }), { a: { ours: 1, theirs: 1 + 5e-5 }, b: { ours: 100, theirs: 100.009 } });
  assert.throws(() => compareChecks({ a: 1, gradNorms: 2 }, { a: 1, gradNorms: 2.01 }), /gradNorms ours 2 vs python 2\.01/);
  assert.throws(() => compareChecks({ clipFraction0: 0.25 }, { clipFraction0: 0.25 + 3 / 1024 }), /clipFraction0/);
  assert.throws(() => compareChecks({ a: 1 }, { a: 1, b: 2 }), /b: not computed on our side/);
});
