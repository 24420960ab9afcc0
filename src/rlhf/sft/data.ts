/**
 * SFT examples: read (prompt/completion JSONL, or the chosen side of a preference file), split,
 * tokenized with the completion boundary kept, and optionally packed into rows.
 */
import { FeedbackError, hashUniform, readLines } from '../../data/index.js';
import { loadRewardRecords } from '../../reward/pairs.js';
import { cannotFit, type Tokenizer } from '../../text/index.js';
import { epochOrder } from '../../nn/train-loop.js';
import type { SftConfig } from './config.js';

export interface SftExample {
  prompt: string;
  completion: string;
}

/** An example as token ids: ids[0..promptLen) is the prompt (BOS first), the rest is trained on. */
export interface TokenizedExample {
  ids: number[];
  promptLen: number;
}

/** One line of format 'completion': {"prompt": str, "completion": str} or {"text": str} (prompt ''). */
function parseCompletionLine(text: string, file: string, line: number): SftExample {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new FeedbackError(file, line, `invalid JSON: ${(e as Error).message}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new FeedbackError(file, line, 'expected a JSON object');
  const o = raw as Record<string, unknown>;
  if ('text' in o) {
    if (typeof o.text !== 'string') throw new FeedbackError(file, line, `field 'text': expected a string, got ${JSON.stringify(o.text)}`, 'text');
    return { prompt: '', completion: o.text };
  }
  for (const f of ['prompt', 'completion']) {
    if (typeof o[f] !== 'string') throw new FeedbackError(file, line, `field '${f}': expected a string${o[f] === undefined ? ' (a line needs prompt and completion, or text)' : `, got ${JSON.stringify(o[f])}`}`, f);
  }
  return { prompt: o.prompt as string, completion: o.completion as string };
}

async function readCompletionFile(file: string, skipInvalid: boolean): Promise<{ examples: SftExample[]; invalid: number }> {
  const examples: SftExample[] = [];
  let invalid = 0;
  for await (const { line, text } of readLines(file)) {
    if (text.trim() === '') continue;
    try {
      examples.push(parseCompletionLine(text, file, line));
    } catch (e) {
      if (!(e instanceof FeedbackError) || !skipInvalid) throw e;
      invalid++;
    }
  }
  return { examples, invalid };
}

/** The examples of one part of the data (the same seeded-hash split as reward-model data). */
export async function loadSftExamples(d: SftConfig['data'], part: 'train' | 'test'): Promise<{ examples: SftExample[]; invalid: number }> {
  if (!d.path) throw new Error('data.path is required (a JSONL file)');
  if (d.format !== 'completion') {
    const { records, invalid } = await loadRewardRecords(d, part);
    return { examples: records.map((r) => ({ prompt: r.prompt, completion: r.kind === 'pair' ? r.chosen : '' })), invalid };
  }
  if (d.testPath) {
    if (part === 'test') return readCompletionFile(d.testPath, d.skipInvalid);
    return readCompletionFile(d.path, d.skipInvalid);
  }
  const { examples, invalid } = await readCompletionFile(d.path, d.skipInvalid);
  const key = (e: SftExample) => JSON.stringify(d.splitKey === 'prompt' ? [e.prompt] : [e.prompt, e.completion]);
  return { examples: examples.filter((e) => (hashUniform(d.splitSeed, key(e)) < d.splitRatio) === (part === 'train')), invalid };
}

/**
 * Tokenizes examples as prompt + completion in one encode (so the completion's first token is the one
 * the whole text gives), the prompt boundary being the prefix shared with the prompt encoded alone (BOS
 * at least). With `eosId` the completion ends with it. Examples over `maxTokens` are dropped and counted.
 */
export function tokenizeExamples(examples: readonly SftExample[], tok: Tokenizer, opts: { maxTokens: number; eosId: number | null }): { examples: TokenizedExample[]; tooLong: number } {
  const out: TokenizedExample[] = [];
  let tooLong = 0;
  for (const e of examples) {
    // Measured before it is encoded: an example whose characters alone are too many costs nothing.
    if (cannotFit(tok, opts.maxTokens, e.prompt, e.completion)) {
      tooLong++;
      continue;
    }
    const ids = tok.encode(e.prompt + e.completion, { addBos: true });
    const prompt = tok.encode(e.prompt, { addBos: true });
    let promptLen = 0;
    while (promptLen < prompt.length && promptLen < ids.length && prompt[promptLen] === ids[promptLen]) promptLen++;
    promptLen = Math.max(1, promptLen); // the first token is never a target
    if (opts.eosId !== null) ids.push(opts.eosId);
    if (ids.length > opts.maxTokens) {
      tooLong++;
      continue;
    }
    out.push({ ids, promptLen });
  }
  return { examples: out, tooLong };
}

/**
 * Rows of example indices. Without packing, one example per row. With packing, the examples in a
 * seeded order (fixed for the run: packed once, as TRL packs a dataset once) fill rows of at most
 * maxTokens greedily, next-fit; the rows are then shuffled per epoch like examples.
 */
export function buildRows(examples: readonly TokenizedExample[], opts: { packing: boolean; maxTokens: number; seed: number }): number[][] {
  if (!opts.packing) return examples.map((_, i) => [i]);
  const rows: number[][] = [];
  let row: number[] = [];
  let used = 0;
  for (const i of epochOrder(examples.length, opts.seed, -1)) {
    const n = examples[i]!.ids.length;
    if (used + n > opts.maxTokens && row.length > 0) {
      rows.push(row);
      row = [];
      used = 0;
    }
    row.push(i);
    used += n;
  }
  if (row.length) rows.push(row);
  return rows;
}

/** Completion tokens (loss targets) of a row. */
export function rowTargets(examples: readonly TokenizedExample[], row: readonly number[]): number {
  return row.reduce((n, i) => n + examples[i]!.ids.length - examples[i]!.promptLen, 0);
}
