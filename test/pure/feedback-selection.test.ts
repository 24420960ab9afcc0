/**
 * The feedback app's selection rules: random is uniform and says 1/n; UCB takes the pair whose Beta
 * posterior is widest (fewest labels), ties split evenly; Thompson prefers the uncertain pair, and the
 * probability it logs matches how often it actually picks that pair (so inverse-propensity weights are
 * right), over many seeded draws.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SELECTION_RULES, type Candidate } from '../../src/feedback/selection.js';
import { mulberry32 } from '../../src/random.js';

const pool = (...outcomes: [number, number][]): Candidate[] => outcomes.map((o, i) => ({ itemId: i + 1, outcomes: o }));

test('random: uniform, probability 1/n', () => {
  const rand = mulberry32(1);
  const counts = [0, 0, 0, 0];
  for (let i = 0; i < 4000; i++) {
    const r = SELECTION_RULES.random(pool([0, 0], [3, 1], [5, 5], [0, 9]), rand);
    assert.equal(r.probability, 0.25);
    counts[r.index]!++;
  }
  for (const c of counts) assert.ok(Math.abs(c / 4000 - 0.25) < 0.03, `counts ${counts}`);
});

test('ucb: the widest posterior (fewest labels), ties split', () => {
  const rand = mulberry32(2);
  assert.deepEqual(SELECTION_RULES.ucb(pool([4, 4], [0, 0], [9, 1]), rand), { index: 1, probability: 1 });
  const r = SELECTION_RULES.ucb(pool([1, 0], [0, 0], [0, 0]), rand);
  assert.ok(r.index === 1 || r.index === 2);
  assert.equal(r.probability, 0.5);
  // Among equal counts, the undecided pair (1:1) is wider than the lopsided one (2:0).
  assert.equal(SELECTION_RULES.ucb(pool([2, 0], [1, 1]), rand).index, 1);
});

test('thompson: prefers the uncertain pair, and its logged probability matches its frequency', () => {
  const rand = mulberry32(3);
  const items = pool([12, 0], [1, 1], [0, 8]);
  const n = 600;
  let picksMiddle = 0;
  let loggedMiddle = 0;
  for (let i = 0; i < n; i++) {
    const r = SELECTION_RULES.thompson(items, rand);
    assert.ok(r.probability > 0 && r.probability <= 1);
    if (r.index === 1) (picksMiddle += 1), (loggedMiddle += r.probability);
  }
  const freq = picksMiddle / n;
  assert.ok(freq > 0.8, `the 1:1 pair is picked most (${freq})`);
  // The logged probability of the middle pick estimates its true frequency (64-round estimate, mean over picks).
  assert.ok(Math.abs(loggedMiddle / picksMiddle - freq) < 0.05, `logged ${loggedMiddle / picksMiddle} vs frequency ${freq}`);
});
