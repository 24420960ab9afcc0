/**
 * The lab's gold reward: its sentiment part against ~20 human raters per sentence on VADER's three
 * ground-truth corpora (data/vader), the repetition factor on hand cases, distinct-n, the empty text.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { distinctN, GOLD_FORMULA, goldParts, goldReward, repeatRate, vaderCompound, words } from '../../src/lab/gold.js';
import { pearson } from '../../src/stats.js';

// dist/test/pure → the package root
const ROOT = join(import.meta.dirname, '..', '..', '..');

/** `id <TAB> mean human score <TAB> text` per line (CRLF), gzipped. */
function groundTruth(name: string): { score: number; text: string }[] {
  const lines = gunzipSync(readFileSync(join(ROOT, 'data', 'vader', `${name}_GroundTruth.txt.gz`))).toString('utf8').split(/\r?\n/);
  return lines.filter((l) => l.length > 0).map((l, i) => {
    const [, score, ...text] = l.split('\t');
    const s = Number(score);
    assert.ok(Number.isFinite(s) && text.length > 0, `${name} line ${i + 1}: not 'id<TAB>score<TAB>text'`);
    return { score: s, text: text.join('\t') };
  });
}

describe('gold sentiment against people (VADER ground truth)', () => {
  // Hutto & Gilbert 2014's corpora; thresholds from issue 6 (VADER's own: 0.88 / 0.42 / 0.57).
  const cases: [name: string, rows: number, minR: number][] = [
    ['tweets', 4200, 0.8],
    ['movieReviewSnippets', 10605, 0.4],
    ['amazonReviewSnippets', 3708, 0.5],
  ];
  for (const [name, rows, minR] of cases) {
    test(`${name}: Pearson r ≥ ${minR}`, (t) => {
      const data = groundTruth(name);
      assert.equal(data.length, rows);
      const human = data.map((d) => d.score);
      const parts = data.map((d) => goldParts(d.text));
      const r = pearson(parts.map((p) => p.compound), human)!;
      // The gold's sentiment factor is an affine map of compound, so it has the same r.
      const rGold = pearson(parts.map((p) => p.sentiment), human)!;
      t.diagnostic(`${name}: n = ${rows}, Pearson r = ${r.toFixed(4)}`);
      assert.ok(r >= minR, `${name}: r = ${r} < ${minR}`);
      assert.ok(Math.abs(rGold - r) < 1e-9, `${name}: gold sentiment r ${rGold} ≠ compound r ${r}`);
    });
  }
});

describe('repetition factor', () => {
  test('words: lower-cased, punctuation dropped, apostrophes kept inside words', () => {
    assert.deepEqual(words('Tim\'s dog, "Max", ran!\nThe END 42'), ["tim's", 'dog', 'max', 'ran', 'the', 'end', '42']);
    assert.deepEqual(words(' .,!? '), []);
  });

  test('seq-rep-3 on hand cases', () => {
    assert.equal(repeatRate('one two three four five'), 0);
    // 3-grams: [a b c] [b c a] [c a b] [a b c]*  → 1 repeat of 4
    assert.equal(repeatRate('a b c a b c'), 1 - 3 / 4);
    // one word repeated 8 times: 6 identical 3-grams, 5 repeat the first
    assert.equal(repeatRate('friend friend friend friend friend friend friend friend'), 1 - 1 / 6);
    // case and punctuation do not hide a repeat
    assert.equal(repeatRate('The cat sat. the CAT sat!'), 1 - 3 / 4);
    // fewer words than n: nothing to repeat
    assert.equal(repeatRate('hello there'), 0);
    assert.equal(repeatRate(''), 0);
    // order 2
    assert.equal(repeatRate('a b a b', 2), 1 - 2 / 3);
    assert.throws(() => repeatRate('a b', 0), /positive integer/);
  });

  test('a looping story loses most of its gold; the fluent one keeps it', () => {
    const fluent = 'Tim loved to play with his friends. One day they found a big red ball in the park and laughed.';
    const loop = 'Tim loved to play with his friends. Tim loved to play with his friends. Tim loved to play with his friends.';
    const f = goldParts(fluent);
    const l = goldParts(loop);
    assert.equal(f.repetition, 0);
    assert.ok(l.repetition > 0.6, `loop rep3 = ${l.repetition}`);
    assert.ok(l.compound > 0.9, 'the loop is very positive to VADER');
    assert.ok(l.gold < f.gold * 0.5, `loop gold ${l.gold} vs fluent ${f.gold}`);
  });

  test('gold = (1 + compound)/2 × (1 − rep3), in [0, 1], and monotone in both', () => {
    for (const t of ['I hate this. It is awful.', 'A day.', 'happy happy happy happy happy', 'What a wonderful, lovely day!']) {
      const p = goldParts(t);
      assert.equal(p.sentiment, (1 + p.compound) / 2);
      assert.equal(p.fluency, 1 - p.repetition);
      assert.equal(p.gold, p.sentiment * p.fluency);
      assert.equal(goldReward(t), p.gold);
      assert.ok(p.gold >= 0 && p.gold <= 1);
    }
    // repetition lowers even a negative text's gold (a signed compound × fluency would raise it)
    const neg = 'I hate this awful sad day.';
    assert.ok(goldReward(`${neg} ${neg} ${neg}`) < goldReward(neg));
  });

  test('a text without words scores the minimum, 0', () => {
    assert.equal(vaderCompound(''), 0);
    assert.ok(vaderCompound('I love it') > 0 && vaderCompound('I hate it') < 0);
    for (const t of ['', '   ', '...!?']) {
      assert.deepEqual(goldParts(t), { compound: 0, sentiment: 0.5, repetition: 0, fluency: 1, gold: 0, words: 0 });
    }
  });

  test('the formula the report prints names both factors', () => {
    assert.match(GOLD_FORMULA, /compound/);
    assert.match(GOLD_FORMULA, /rep3/);
  });
});

describe('distinct-n', () => {
  test('distinct n-grams over all samples / their count', () => {
    assert.equal(distinctN(['a b c', 'a b d'], 1), 4 / 6);
    assert.equal(distinctN(['a b c', 'a b d'], 2), 3 / 4);
    assert.equal(distinctN(['same text here', 'same text here'], 3), 1 / 2);
    assert.equal(distinctN([], 2), 0);
    assert.equal(distinctN(['one'], 2), 0);
  });
});
