/**
 * Synthetic Bradley–Terry annotators: near-rational labels follow the gold, β = 0 is a coin flip, the
 * label rate matches σ(βΔ), a seed replays, and the records load as the `pairwise` format.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { loadFeedback } from '../../src/data/index.js';
import { annotatePairs, preferenceProbability, toJsonl, type Comparison } from '../../src/lab/annotators.js';

// A gold that reads the number in the text, so tests control the gold difference exactly.
const gold = (t: string): number => Number(t.split(':')[1]);
const text = (i: number, g: number): string => `t${i}:${g}`;

/** n comparisons with gold gap `gap` (a better by `gap`), alternating which side is better. */
function comparisons(n: number, gap: number): Comparison[] {
  return Array.from({ length: n }, (_, i) => {
    const hi = text(2 * i, 0.5 + gap / 2);
    const lo = text(2 * i + 1, 0.5 - gap / 2);
    return i % 2 === 0 ? { prompt: `p${i}`, a: hi, b: lo } : { prompt: `p${i}`, a: lo, b: hi };
  });
}
const betterChosen = (records: { chosen: string; rejected: string }[]): number =>
  records.filter((r) => gold(r.chosen) > gold(r.rejected)).length / records.length;

describe('Bradley–Terry annotators', () => {
  test('preferenceProbability: σ(βΔ) and its limits', () => {
    assert.equal(preferenceProbability(0.7, 0.2, 0), 0.5);
    assert.equal(preferenceProbability(0.7, 0.2, 2), 1 / (1 + Math.exp(-1)));
    assert.equal(preferenceProbability(0.2, 0.7, 2), 1 - 1 / (1 + Math.exp(-1)));
    assert.equal(preferenceProbability(0.7, 0.2, Infinity), 1);
    assert.equal(preferenceProbability(0.2, 0.7, Infinity), 0);
    assert.equal(preferenceProbability(0.3, 0.3, Infinity), 0.5);
    assert.equal(preferenceProbability(1, 0, 1e6), 1); // no overflow
    assert.equal(preferenceProbability(0, 1, 1e6), 0);
    assert.throws(() => preferenceProbability(0, 1, -1), /β must be ≥ 0/);
    assert.throws(() => preferenceProbability(0, 1, NaN), /β must be ≥ 0/);
  });

  test('β large: labels follow the gold; β = ∞: always, ties a coin flip', () => {
    const cs = comparisons(2000, 0.1);
    assert.ok(betterChosen(annotatePairs(cs, { annotators: [{ id: 'r', beta: 200 }], seed: 1, gold })) > 0.99);
    assert.equal(betterChosen(annotatePairs(cs, { annotators: [{ id: 'r', beta: Infinity }], seed: 1, gold })), 1);
    const ties = annotatePairs(comparisons(2000, 0), { annotators: [{ id: 'r', beta: Infinity }], seed: 1, gold });
    const aFirst = ties.filter((r, i) => r.chosen === (i % 2 === 0 ? text(2 * i, 0.5) : text(2 * i + 1, 0.5))).length / ties.length;
    assert.ok(Math.abs(aFirst - 0.5) < 0.05, `ties: a chosen ${aFirst}`);
  });

  test('β = 0: about half the labels pick the better completion', () => {
    const rate = betterChosen(annotatePairs(comparisons(4000, 0.5), { annotators: [{ id: 'c', beta: 0 }], seed: 2, gold }));
    // binomial(4000, ½): sd 0.0079; 0.04 is 5 sd
    assert.ok(Math.abs(rate - 0.5) < 0.04, `β = 0: better chosen ${rate}`);
  });

  test('finite β: the rate of better-chosen matches σ(β·gap)', () => {
    const gap = 0.2;
    const beta = 5; // σ(1) = 0.731
    const rate = betterChosen(annotatePairs(comparisons(4000, gap), { annotators: [{ id: 'm', beta }], seed: 3, gold }));
    assert.ok(Math.abs(rate - 1 / (1 + Math.exp(-beta * gap))) < 0.03, `rate ${rate}`);
  });

  test('seeded: same seed, same records; another seed, other records', () => {
    const cs = comparisons(300, 0.1);
    const opts = { annotators: [{ id: 'x', beta: 10 }], gold };
    assert.deepEqual(annotatePairs(cs, { ...opts, seed: 7 }), annotatePairs(cs, { ...opts, seed: 7 }));
    assert.notDeepEqual(annotatePairs(cs, { ...opts, seed: 7 }), annotatePairs(cs, { ...opts, seed: 8 }));
  });

  test('a panel: rotate gives one label per comparison in turn; all gives K; ids are recorded', () => {
    const cs = comparisons(9, 0.1);
    const panel = [{ id: 'careful', beta: Infinity }, { id: 'noisy', beta: 1 }, { id: 'random', beta: 0 }];
    const rot = annotatePairs(cs, { annotators: panel, seed: 4, gold });
    assert.equal(rot.length, 9);
    assert.deepEqual(rot.map((r) => r.annotator), cs.map((_, i) => panel[i % 3]!.id));
    const all = annotatePairs(cs, { annotators: panel, seed: 4, gold, assign: 'all', source: 'lab:test' });
    assert.equal(all.length, 27);
    assert.deepEqual(all.slice(0, 3).map((r) => r.annotator), ['careful', 'noisy', 'random']);
    assert.ok(all.every((r) => r.source === 'lab:test'));
    // changing one annotator's β leaves the others' labels alone (one draw per label whatever β)
    const panel2 = [panel[0]!, { id: 'noisy', beta: 3 }, panel[2]!];
    const all2 = annotatePairs(cs, { annotators: panel2, seed: 4, gold, assign: 'all', source: 'lab:test' });
    assert.deepEqual(all2.filter((r) => r.annotator !== 'noisy'), all.filter((r) => r.annotator !== 'noisy'));
  });

  test('bad input: an empty panel, a negative β, a non-finite gold', () => {
    const cs = comparisons(2, 0.1);
    assert.throws(() => annotatePairs(cs, { annotators: [], seed: 1, gold }), /no annotators/);
    assert.throws(() => annotatePairs(cs, { annotators: [{ id: 'x', beta: -2 }], seed: 1, gold }), /β must be ≥ 0/);
    assert.throws(() => annotatePairs([{ prompt: '', a: 'a:x', b: 'b:1' }], { annotators: [{ id: 'x', beta: 1 }], seed: 1, gold }), /not finite/);
  });

  test('the records load as the pairwise format, annotator kept', async () => {
    const cs: Comparison[] = [
      { prompt: 'Once upon a time', a: ', there was a happy dog who loved to play.', b: ', a sad cat cried all day.' },
      { prompt: 'Lily', a: ' was sad.', b: ' smiled at her mom.' },
    ];
    const recs = annotatePairs(cs, { annotators: [{ id: 'bt-inf', beta: Infinity }], seed: 5 }); // the real gold
    assert.equal(recs[0]!.chosen, cs[0]!.a);
    assert.equal(recs[1]!.chosen, cs[1]!.b);
    const dir = mkdtempSync(join(tmpdir(), 'lab-annot-'));
    try {
      const file = join(dir, 'pairs.jsonl');
      writeFileSync(file, toJsonl(recs));
      const { records, report } = await loadFeedback(file, { format: 'pairwise' });
      assert.equal(report.invalid.count, 0);
      assert.deepEqual(records.map((r) => r.kind === 'pair' && [r.prompt, r.chosen, r.rejected, r.meta.annotator]), recs.map((r) => [r.prompt, r.chosen, r.rejected, 'bt-inf']));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
