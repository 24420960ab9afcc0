// Train/test splits shared by training and evaluation.
//
// Why a hash of the record and not a shuffle: a record's side is a pure function of (seed, the record's
// own content), so it does not depend on the order of the file, on which other records are in it, or on
// how it was filtered. `rlhf eval rm` can therefore select exactly the held-out part a training run did
// not see — from the same file, a re-ordered copy, a superset or a differently filtered subset (other
// length limits, skipInvalid on or off) — knowing only the seed and ratio the run recorded. A seeded
// shuffle-and-cut would move every record as soon as one was added or removed.

import { createHash } from 'node:crypto';
import { responsesOf, type FeedbackRecord } from './types.js';

/**
 * What identifies a record for splitting:
 * - 'record': its prompt and responses (a pair's prompt + chosen + rejected; a ranking's responses best
 *   first). Repeated judgements of the same texts land on the same side; different comparisons on one
 *   prompt may land on different sides.
 * - 'prompt': its prompt alone, so the test part holds prompts never seen in training (summarize-from-
 *   feedback has many comparisons per post; a record split would leak the posts into both parts).
 */
export const SPLIT_KEYS = ['record', 'prompt'] as const;
/** What a split hashes: each record, or its prompt. */
export type SplitKey = (typeof SPLIT_KEYS)[number];

/** A seeded hash split: the seed, the train fraction, and what is hashed (each record or its prompt). */
export interface SplitOptions {
  /** Any integer or string; the same seed gives the same split. */
  seed: number | string;
  /** The fraction of records (in expectation) that go to 'train', in [0, 1]. */
  ratio: number;
  /** Default 'record'. */
  key?: SplitKey;
}

/** A side of a split. */
export type SplitPart = 'train' | 'test';

/** The text a record is identified by: JSON of the kind and texts, so no two different records collide. */
export function recordKey(r: FeedbackRecord, key: SplitKey = 'record'): string {
  return key === 'prompt' ? JSON.stringify([r.prompt]) : JSON.stringify([r.kind, r.prompt, ...responsesOf(r)]);
}

/** A uniform draw in [0, 1) determined by (seed, key): the first 52 bits of SHA-256 of both. */
export function hashUniform(seed: number | string, key: string): number {
  const digest = createHash('sha256').update(`${String(seed)}\u0000${key}`).digest();
  // 52 bits: 4 bytes + the high 20 bits of the next 4, exactly representable in a double.
  return (digest.readUInt32BE(0) * 2 ** 20 + (digest.readUInt32BE(4) >>> 12)) / 2 ** 52;
}

/** Which part `r` belongs to: 'train' when hashUniform(seed, key) < ratio. */
export function splitPart(r: FeedbackRecord, opts: SplitOptions): SplitPart {
  if (!(opts.ratio >= 0 && opts.ratio <= 1)) throw new Error(`split ratio must be in [0, 1], got ${opts.ratio}`);
  return hashUniform(opts.seed, recordKey(r, opts.key)) < opts.ratio ? 'train' : 'test';
}

/** The records of one part, in their input order; 'train' and 'test' of the same options partition `records`. */
export function split<R extends FeedbackRecord>(records: readonly R[], opts: SplitOptions & { part: SplitPart }): R[] {
  return records.filter((r) => splitPart(r, opts) === opts.part);
}
