import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import {
  filterFeedback, hashUniform, loadFeedback, recordKey, split, splitPart, sst2Pairs,
  type FeedbackRecord, type PairRecord,
} from '../../src/data/index.js';
import { repoPath } from './tokenizer-fixtures.js';

const HH = repoPath('data', 'hh-rlhf', 'harmless-base-test.jsonl.gz');
const SUMMARIZE = repoPath('data', 'summarize-from-feedback', 'batch18.json');
const sst2File = (part: 'train' | 'dev' | 'test'): string => repoPath('data', 'sst2', `stsa.binary.${part}`);

const hh = (await loadFeedback(HH, { format: 'hh-rlhf' })).records as PairRecord[];

const pair = (prompt: string, chosen: string, rejected: string, line = 1): PairRecord =>
  ({ kind: 'pair', prompt, chosen, rejected, meta: { file: 'mem', line } });

/** A deterministic permutation (Fisher–Yates driven by the hash), so the test needs no RNG of its own. */
function shuffled<T>(xs: readonly T[], seed: string): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(hashUniform(seed, String(i)) * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

const lines = (rs: readonly FeedbackRecord[]): number[] => rs.map((r) => r.meta.line);

describe('split', () => {
  test('train and test partition the records, with about the ratio asked for', () => {
    const train = split(hh, { seed: 1, ratio: 0.8, part: 'train' });
    const test = split(hh, { seed: 1, ratio: 0.8, part: 'test' });
    assert.equal(train.length + test.length, hh.length);
    const inTrain = new Set(train);
    assert.ok(test.every((r) => !inTrain.has(r)));
    // Binomial(2312, 0.8): sd ≈ 19 records; allow 4 sd.
    assert.ok(Math.abs(train.length - 0.8 * hh.length) < 4 * Math.sqrt(hh.length * 0.8 * 0.2), `train ${train.length}`);
    assert.deepEqual(lines(train), [...lines(train)].sort((a, b) => a - b)); // input order kept
  });

  test('deterministic, and a record’s side depends on neither the order nor the other records', () => {
    const opts = { seed: 'run-7', ratio: 0.9 } as const;
    const test = split(hh, { ...opts, part: 'test' });
    assert.deepEqual(lines(split(hh, { ...opts, part: 'test' })), lines(test));
    // Re-ordered: the same records, in the new order.
    const reordered = split(shuffled(hh, 'perm'), { ...opts, part: 'test' });
    assert.deepEqual(lines(reordered).sort((a, b) => a - b), lines(test));
    // Filtered differently (every third record dropped): the test part is the old one minus what was dropped.
    const subset = hh.filter((r) => r.meta.line % 3 !== 0);
    assert.deepEqual(lines(split(subset, { ...opts, part: 'test' })), lines(test).filter((l) => l % 3 !== 0));
    // A record alone gets the side it had among all the others.
    for (const r of hh.slice(0, 50)) assert.equal(splitPart(r, opts), test.includes(r) ? 'test' : 'train');
    // Another seed gives another split.
    assert.notDeepEqual(lines(split(hh, { ...opts, seed: 'run-8', part: 'test' })), lines(test));
  });

  test('ratio 0 and 1 put everything on one side; a ratio outside [0, 1] is an error', () => {
    assert.equal(split(hh, { seed: 0, ratio: 1, part: 'train' }).length, hh.length);
    assert.equal(split(hh, { seed: 0, ratio: 0, part: 'test' }).length, hh.length);
    assert.throws(() => split(hh, { seed: 0, ratio: 1.5, part: 'train' }), /ratio must be in \[0, 1\], got 1.5/);
  });

  test("key 'prompt' keeps all comparisons of a post on one side", async () => {
    const { records } = await loadFeedback(SUMMARIZE, { format: 'summarize' });
    const opts = { seed: 3, ratio: 0.5, key: 'prompt' } as const;
    const side = new Map<string, string>();
    for (const r of records) {
      const s = splitPart(r, opts);
      assert.equal(side.get(r.prompt) ?? s, s);
      side.set(r.prompt, s);
    }
    assert.equal(side.size, 110); // distinct posts in batch18
    assert.ok([...side.values()].includes('train') && [...side.values()].includes('test'));
  });

  test('record keys do not collide across field boundaries, and hashUniform is in [0, 1)', () => {
    assert.notEqual(recordKey(pair('a', 'bc', 'd')), recordKey(pair('ab', 'c', 'd')));
    assert.equal(recordKey(pair('a', 'b', 'c', 1)), recordKey(pair('a', 'b', 'c', 99))); // metadata is not content
    for (let i = 0; i < 1000; i++) {
      const u = hashUniform(i, 'k');
      assert.ok(u >= 0 && u < 1);
    }
  });
});

describe('filterFeedback', () => {
  const records = [
    pair('p', 'a', 'b', 1),
    pair('p', 'a', 'b', 2), // duplicate of line 1
    pair('p', 'b', 'a', 3), // reversed: a different judgement, kept
    pair('a long prompt here', 'a', 'b', 4),
    pair('p', 'a response far too long', 'b', 5),
    pair('a long prompt here', 'a', 'b', 6), // duplicate of line 4: counted as a duplicate, not as too long
  ];
  const words = (t: string): number => t.split(' ').filter(Boolean).length;

  test('drops duplicates and over-long prompts and responses, counting each reason', () => {
    const { records: kept, dropped } = filterFeedback(records, { maxPromptTokens: 3, maxResponseTokens: 3, count: words });
    assert.deepEqual(lines(kept), [1, 3]);
    assert.deepEqual(dropped, { duplicate: 2, promptTooLong: 1, responseTooLong: 1 });
  });

  test('dedupe can be turned off; no limits means nothing but duplicates is dropped', () => {
    assert.deepEqual(filterFeedback(records, { dedupe: false }).dropped, { duplicate: 0, promptTooLong: 0, responseTooLong: 0 });
    assert.equal(filterFeedback(records).records.length, 4);
    assert.throws(() => filterFeedback(records, { maxPromptTokens: 3 }), /need a count/);
  });

  test('on real data: the HH-RLHF test split has no duplicate pairs; a length limit drops some', () => {
    const chars = (t: string): number => t.length;
    const { records: kept, dropped } = filterFeedback(hh, { maxPromptTokens: 2000, maxResponseTokens: 500, count: chars });
    assert.equal(dropped.duplicate, 0);
    assert.equal(kept.length + dropped.promptTooLong + dropped.responseTooLong, hh.length);
    assert.ok(dropped.promptTooLong > 0 && dropped.responseTooLong > 0);
    for (const r of kept) assert.ok(r.prompt.length <= 2000 && r.chosen.length <= 500 && r.rejected.length <= 500);
  });
});

describe('sst2Pairs', () => {
  const parse = (path: string) => readFileSync(path, 'utf8').split('\n').filter((l) => l !== '');

  test('one pair per positive sentence, chosen positive and rejected negative, from the same split', () => {
    for (const [part, positives] of [['train', 3610], ['dev', 444], ['test', 909]] as const) {
      const raw = parse(sst2File(part));
      const pos = new Set(raw.filter((l) => l.startsWith('1 ')).map((l) => l.slice(2)));
      const neg = new Set(raw.filter((l) => l.startsWith('0 ')).map((l) => l.slice(2)));
      const pairs = sst2Pairs(sst2File(part), { seed: 0 });
      assert.equal(pairs.length, positives);
      for (const p of pairs) {
        assert.equal(p.prompt, '');
        assert.ok(pos.has(p.chosen), p.chosen);
        assert.ok(neg.has(p.rejected), p.rejected);
        assert.equal(raw[p.meta.line - 1], `1 ${p.chosen}`);
        assert.equal(p.meta.source, 'sst2');
      }
      // The negatives drawn cover much of the split (uniform with replacement, not one repeated sentence).
      assert.ok(new Set(pairs.map((p) => p.rejected)).size > 0.4 * Math.min(pos.size, neg.size));
    }
  });

  test('deterministic in the seed; the path and the lines give the same pairs', () => {
    const a = sst2Pairs(sst2File('dev'), { seed: 42 });
    const b = sst2Pairs(sst2File('dev'), { seed: 42 });
    assert.deepEqual(a, b);
    const c = sst2Pairs(sst2File('dev'), { seed: 43 });
    assert.deepEqual(c.map((p) => p.chosen), a.map((p) => p.chosen));
    assert.notDeepEqual(c.map((p) => p.rejected), a.map((p) => p.rejected));
    const fromLines = sst2Pairs(readFileSync(sst2File('dev'), 'utf8').split('\n'), { seed: 42, file: sst2File('dev') });
    assert.deepEqual(fromLines, a);
  });

  test('a malformed line names its line; positives without negatives are an error', () => {
    assert.throws(() => sst2Pairs(['1 good', '0 bad', '2 what'], { seed: 0 }), /^Error: <lines>:3: expected a label 0 or 1/);
    assert.throws(() => sst2Pairs(['1 good'], { seed: 0, file: 'x.txt' }), /x\.txt: no negative sentences/);
    assert.deepEqual(sst2Pairs(['1 good', '', '0 bad'], { seed: 0 }).map((p) => [p.chosen, p.rejected, p.meta.line]), [['good', 'bad', 1]]);
  });
});
