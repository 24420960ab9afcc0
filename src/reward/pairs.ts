/**
 * The preference pairs a reward-model run trains and evaluates on. With `testPath`, the training part is
 * all of `path` and the held-out part all of `testPath` (SST-2's own train/test files); otherwise `path`
 * is split by the seeded hash of each record (src/data/split.ts), so `rlhf eval rm` with the same
 * split settings selects exactly the pairs the run did not train on.
 */
import { loadFeedback, split, sst2Pairs, type FeedbackFormat, type PairRecord } from '../data/index.js';

export interface PairSource {
  path: string;
  testPath: string;
  format: string;
  splitSeed: number;
  splitRatio: number;
  splitKey?: string;
  skipInvalid: boolean;
}

export async function loadPairs(d: PairSource, part: 'train' | 'test'): Promise<{ pairs: PairRecord[]; invalid: number }> {
  if (!d.path) throw new Error("data.path is required (a feedback file)");
  const file = d.testPath && part === 'test' ? d.testPath : d.path;
  let records: PairRecord[];
  let invalid = 0;
  if (d.format === 'sst2') {
    records = sst2Pairs(file, { seed: d.splitSeed });
  } else {
    const r = await loadFeedback(file, { format: d.format as FeedbackFormat, skipInvalid: d.skipInvalid });
    invalid = r.report.invalid.count;
    const nonPairs = r.records.filter((x) => x.kind !== 'pair').length;
    if (nonPairs) throw new Error(`${file}: ${nonPairs} records are not preference pairs (format ${d.format}); reward-model training takes pairs`);
    records = r.records as PairRecord[];
  }
  if (d.testPath) return { pairs: records, invalid };
  return { pairs: split(records, { seed: d.splitSeed, ratio: d.splitRatio, key: d.splitKey === 'prompt' ? 'prompt' : 'record', part }), invalid };
}
