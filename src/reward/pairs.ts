/**
 * The feedback records a reward-model run trains and evaluates on: preference pairs (pairwise, hh-rlhf,
 * summarize, sst2), K-wise rankings (ranking) or absolute ratings (rating). With `testPath`, the
 * training part is all of `path` and the held-out part all of `testPath` (SST-2's own train/test files);
 * otherwise `path` is split by the seeded hash of each record (src/data/split.ts), so `rlhf eval rm` with
 * the same split settings selects exactly the records the run did not train on.
 */
import { loadFeedback, split, sst2Pairs, type PairRecord, type RankingRecord, type RatingRecord } from '../data/index.js';
import { cannotFit, type Tokenizer } from '../text/index.js';

/** The records a reward model learns from. */
export type RewardRecord = PairRecord | RankingRecord | RatingRecord;
export type RewardRecordKind = RewardRecord['kind'];

/** The kind of record each `data.format` yields. */
export const FORMAT_KINDS = {
  pairwise: 'pair', 'hh-rlhf': 'pair', summarize: 'pair', sst2: 'pair', ranking: 'ranking', rating: 'rating',
} as const satisfies Readonly<Record<string, RewardRecordKind>>;

/** A reward-model feedback format (the keys of FORMAT_KINDS). */
export type RewardFormat = keyof typeof FORMAT_KINDS;

/** Whether `format` names a reward-model feedback format. */
export function isRewardFormat(format: string): format is RewardFormat {
  return Object.hasOwn(FORMAT_KINDS, format);
}

/** `format` as a reward-model format, or an error listing them. */
export function rewardFormat(format: string): RewardFormat {
  if (!isRewardFormat(format)) throw new Error(`format '${format}' is not reward-model feedback (one of ${Object.keys(FORMAT_KINDS).join(', ')})`);
  return format;
}

/** The kind of record a reward-model format yields. */
export function formatKind(format: string): RewardRecordKind {
  return FORMAT_KINDS[rewardFormat(format)];
}

export interface RecordSource {
  path: string;
  testPath: string;
  /** A reward-model format (FORMAT_KINDS), checked here: the command line passes what the user typed. */
  format: string;
  splitSeed: number;
  splitRatio: number;
  splitKey?: string;
  skipInvalid: boolean;
}

export async function loadRewardRecords(d: RecordSource, part: 'train' | 'test'): Promise<{ records: RewardRecord[]; invalid: number }> {
  if (!d.path) throw new Error("data.path is required (a feedback file)");
  const format = rewardFormat(d.format);
  const kind = FORMAT_KINDS[format];
  const file = d.testPath && part === 'test' ? d.testPath : d.path;
  let records: RewardRecord[];
  let invalid = 0;
  if (format === 'sst2') {
    records = sst2Pairs(file, { seed: d.splitSeed });
  } else {
    const r = await loadFeedback(file, { format, skipInvalid: d.skipInvalid });
    invalid = r.report.invalid.count;
    const other = r.records.filter((x) => x.kind !== kind).length;
    if (other) throw new Error(`${file}: ${other} records are not ${kind} records (format ${d.format})`);
    records = r.records as RewardRecord[];
  }
  if (d.testPath) return { records, invalid };
  return { records: split(records, { seed: d.splitSeed, ratio: d.splitRatio, key: d.splitKey === 'prompt' ? 'prompt' : 'record', part }), invalid };
}

/** The responses a record scores, best first where there is an order: [chosen, rejected], a ranking, [response]. */
export function recordResponses(r: RewardRecord): string[] {
  return r.kind === 'pair' ? [r.chosen, r.rejected] : r.kind === 'ranking' ? r.responses : [r.response];
}

/** A record as token ids: one sequence per response, in recordResponses' order. */
export interface TokenizedRecord {
  /** prompt + response, BOS first, per response */
  seqs: number[][];
  /** each response's length in tokens (for length-bias metrics) */
  lens: number[];
  record: RewardRecord;
}

/**
 * Tokenizes records; a record with any prompt + response longer than `maxTokens` is dropped (and counted),
 * one whose characters alone show it is over `maxTokens` before it is encoded (a 10 MB line costs nothing).
 */
export function tokenizeRecords(records: readonly RewardRecord[], tok: Tokenizer, maxTokens: number): { records: TokenizedRecord[]; tooLong: number } {
  const out: TokenizedRecord[] = [];
  let tooLong = 0;
  for (const r of records) {
    if (recordResponses(r).some((resp) => cannotFit(tok, maxTokens, r.prompt, resp))) {
      tooLong++;
      continue;
    }
    const seqs = recordResponses(r).map((resp) => tok.encode(r.prompt + resp, { addBos: true }));
    if (Math.max(...seqs.map((s) => s.length)) > maxTokens) {
      tooLong++;
      continue;
    }
    const promptLen = r.prompt ? tok.encode(r.prompt, { addBos: true }).length : 1;
    out.push({ seqs, lens: seqs.map((s) => s.length - promptLen), record: r });
  }
  return { records: out, tooLong };
}
