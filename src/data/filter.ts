// De-duplication and token-length limits, with a count of what was dropped and why.

import { recordKey } from './split.js';
import { responsesOf, type FeedbackRecord } from './types.js';

/** What filterRecords drops: duplicates, and records whose prompt or responses are longer than a token limit. */
export interface FilterOptions {
  /** Drop a record whose prompt and responses (and kind) equal an earlier record's. Default true. */
  dedupe?: boolean;
  /** Drop a record whose prompt is longer than this many tokens. Needs `count`. */
  maxPromptTokens?: number;
  /** Drop a record any of whose responses is longer than this many tokens. Needs `count`. */
  maxResponseTokens?: number;
  /**
   * Tokens in a text, e.g. `(t) => tokenizer.encode(t, { addBos: false }).length`. Each text is counted
   * alone; a tokenizer may merge across the prompt/response boundary, so a record at the limit may be one
   * token over or under once concatenated.
   */
  count?: (text: string) => number;
}

/** The records filterRecords kept, and how many it dropped for each reason. */
export interface FilterResult<R extends FeedbackRecord> {
  records: R[];
  /** Each dropped record is counted once, under the first reason in this order. */
  dropped: { duplicate: number; promptTooLong: number; responseTooLong: number };
}

/**
 * The records that pass, in input order. The first of several identical records is the one kept (judgements
 * from different annotators on the same texts count as duplicates: pass `dedupe: false` to keep them).
 */
export function filterFeedback<R extends FeedbackRecord>(records: readonly R[], opts: FilterOptions = {}): FilterResult<R> {
  const { dedupe = true, maxPromptTokens = Infinity, maxResponseTokens = Infinity, count } = opts;
  if ((maxPromptTokens !== Infinity || maxResponseTokens !== Infinity) && count === undefined) {
    throw new Error('filterFeedback: maxPromptTokens/maxResponseTokens need a count(text) function');
  }
  const dropped = { duplicate: 0, promptTooLong: 0, responseTooLong: 0 };
  const seen = new Set<string>();
  const kept: R[] = [];
  const promptTokens = new Map<string, number>(); // many records share a prompt: count it once
  const promptLength = (p: string): number => {
    let n = promptTokens.get(p);
    if (n === undefined) promptTokens.set(p, (n = count!(p)));
    return n;
  };
  for (const r of records) {
    if (dedupe) {
      const key = recordKey(r);
      if (seen.has(key)) {
        dropped.duplicate++;
        continue;
      }
      seen.add(key);
    }
    if (maxPromptTokens !== Infinity && promptLength(r.prompt) > maxPromptTokens) {
      dropped.promptTooLong++;
      continue;
    }
    if (maxResponseTokens !== Infinity && responsesOf(r).some((t) => count!(t) > maxResponseTokens)) {
      dropped.responseTooLong++;
      continue;
    }
    kept.push(r);
  }
  return { records: kept, dropped };
}
