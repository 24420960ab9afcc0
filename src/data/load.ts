// Streaming loaders: JSON Lines files (`.gz` ones decompressed on the fly), one record per line, each
// checked against its format's schema as it is read, so a multi-gigabyte file never sits in memory.

import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { appLines, APP_PREFIX } from '../feedback/io.js';
import { parseRecord, RecordError } from './formats.js';
import type { ChatTemplateFn, FeedbackFormat, FeedbackRecord } from './types.js';

/** A record or line that could not be read, located by file and line; `field` names the part at fault. */
export class FeedbackError extends Error {
  constructor(readonly file: string, readonly line: number, readonly reason: string, readonly field?: string) {
    super(`${file}:${line}: ${reason}`);
    this.name = 'FeedbackError';
  }
}

/** A record a loader skipped: its file, line and the reason. */
export interface InvalidRecord {
  /** 1-based line number. */
  line: number;
  /** The error message without the file and line, e.g. "field 'chosen': expected a string, got a number". */
  reason: string;
}

/** How a feedback file is read: its format, whether invalid records are skipped (and reported) or fatal. */
export interface StreamOptions {
  format: FeedbackFormat;
  /** Skip records that do not fit the format (and lines that are not JSON) instead of throwing. Default false. */
  skipInvalid?: boolean;
  /** Renders conversational (message-list) records; needed only when the file has them. */
  chatTemplate?: ChatTemplateFn;
  /** Stop after this many valid records (the rest of the file is not read). Default: no limit. */
  limit?: number;
  /** With `skipInvalid`, called for each record skipped. */
  onInvalid?: (invalid: InvalidRecord) => void;
}

/** What readLines does with bytes that are not UTF-8: replace them by U+FFFD and warn once per file, or throw. */
export type Utf8Policy = 'warn' | 'error';

/** Where readLines' warnings go (stderr, as every log); tests swap it. */
export const dataWarnings = { write: (line: string): void => void process.stderr.write(`warning: ${line}\n`) };

const FATAL_UTF8 = new TextDecoder('utf-8', { fatal: true });
const LENIENT_UTF8 = new TextDecoder('utf-8');

/**
 * The lines of a text file, 1-based, decompressing it when its name ends in `.gz`. A `.json` file is read
 * the same way: summarize-from-feedback's `.json` files are JSON Lines. Lines end at LF (a CR before it is
 * dropped). A line with bytes that are not UTF-8 is read with U+FFFD in their place and counted: at the end
 * of the file one warning gives the count and the first such line; with `utf8: 'error'` it throws there.
 */
export async function* readLines(path: string, opts: { utf8?: Utf8Policy } = {}): AsyncGenerator<{ line: number; text: string }> {
  const file = createReadStream(path);
  let input: Readable = file;
  if (path.endsWith('.gz')) {
    const gunzip = createGunzip();
    // `pipe` does not forward errors; the loop sees the gunzip stream's, so route the file's there too.
    file.on('error', (e) => gunzip.destroy(e));
    input = file.pipe(gunzip);
  }
  let line = 0;
  const replaced = { lines: 0, first: 0 };
  const decode = (bytes: Buffer): string => {
    line++;
    const end = bytes.length > 0 && bytes[bytes.length - 1] === 0x0d ? bytes.length - 1 : bytes.length;
    let text: string;
    try {
      text = FATAL_UTF8.decode(bytes.subarray(0, end));
    } catch {
      if (opts.utf8 === 'error') throw new FeedbackError(path, line, 'bytes that are not UTF-8');
      if (replaced.lines++ === 0) replaced.first = line;
      text = LENIENT_UTF8.decode(bytes.subarray(0, end));
    }
    return line === 1 && text.startsWith('\uFEFF') ? text.slice(1) : text;
  };
  try {
    let pending: Buffer[] = []; // the current line's bytes so far, across chunks
    for await (const chunk of input as AsyncIterable<Buffer>) {
      let from = 0;
      for (let nl = chunk.indexOf(0x0a); nl !== -1; nl = chunk.indexOf(0x0a, from)) {
        pending.push(chunk.subarray(from, nl));
        const text = decode(Buffer.concat(pending));
        yield { line, text };
        pending = [];
        from = nl + 1;
      }
      if (from < chunk.length) pending.push(chunk.subarray(from));
    }
    if (pending.length > 0) {
      const text = decode(Buffer.concat(pending));
      yield { line, text };
    }
    if (replaced.lines > 0) {
      dataWarnings.write(`${path}:${replaced.first}: bytes that are not UTF-8, replaced by U+FFFD (${replaced.lines} line${replaced.lines === 1 ? '' : 's'} in this file)`);
    }
  } catch (e) {
    // Name the file: zlib's "incorrect header check" or "unexpected end of file" does not.
    const message = (e as Error).message;
    if (e instanceof FeedbackError || message.includes(path)) throw e;
    throw new Error(line === 0 ? `${path}: ${message}` : `${path}: after line ${line}: ${message}`, { cause: e });
  } finally {
    input.destroy();
    file.destroy();
  }
}

/**
 * The normalised records of a feedback file, in file order, read line by line. Blank lines are ignored.
 * A path `app:FILE.sqlite#project` reads a feedback app's project directly (src/feedback/io.ts appLines).
 * A line that is not JSON or not a record of `format` throws a `FeedbackError` naming the file, the line
 * and the field at fault (`data.jsonl:17: field 'chosen': expected a string or a message list, got a
 * number`), or with `skipInvalid` is reported to `onInvalid` and skipped.
 */
export async function* streamFeedback(path: string, opts: StreamOptions): AsyncGenerator<FeedbackRecord> {
  const limit = opts.limit ?? Infinity;
  if (!(limit >= 0)) throw new Error(`limit must be a non-negative number, got ${opts.limit}`);
  if (limit === 0) return;
  let kept = 0;
  // `app:FILE.sqlite#project`: a feedback app's project, its labels exported in this format's shape.
  const lines = path.startsWith(APP_PREFIX) ? appLines(path, opts.format) : readLines(path);
  for await (const { line, text } of lines) {
    if (text.trim() === '') continue;
    let record: FeedbackRecord;
    try {
      record = parseLine(text, line, path, opts);
    } catch (e) {
      if (!(e instanceof FeedbackError) || !opts.skipInvalid) throw e;
      opts.onInvalid?.({ line, reason: e.reason });
      continue;
    }
    yield record;
    if (++kept >= limit) return;
  }
}

function parseLine(text: string, line: number, file: string, opts: StreamOptions): FeedbackRecord {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    const hint = line === 1 && text.trimStart().startsWith('[') ? ' (expected JSON Lines, one object per line, not a JSON array)' : '';
    throw new FeedbackError(file, line, `invalid JSON: ${(e as Error).message}${hint}`);
  }
  try {
    return parseRecord(opts.format, raw, { chatTemplate: opts.chatTemplate, file, line });
  } catch (e) {
    if (e instanceof RecordError) throw new FeedbackError(file, line, e.message, e.field);
    throw new FeedbackError(file, line, (e as Error).message); // e.g. a chat template that raised
  }
}

/** How many examples of invalid records a report keeps (the count covers all of them). */
export const MAX_INVALID_EXAMPLES = 10;

/** What a load read: non-blank lines, records kept, and the invalid lines skipped with the first reasons. */
export interface LoadReport {
  /** Non-blank lines read. */
  read: number;
  /** Records returned. */
  kept: number;
  /** Lines skipped under `skipInvalid`, with the first few reasons. */
  invalid: { count: number; examples: InvalidRecord[] };
}

/** Options of loadFeedback: the stream's, without the per-record callback (the report collects them). */
export type LoadOptions = Omit<StreamOptions, 'onInvalid'>;

/** All records of a feedback file at once, with a report of what was read, kept and skipped. */
export async function loadFeedback(path: string, opts: LoadOptions): Promise<{ records: FeedbackRecord[]; report: LoadReport }> {
  const records: FeedbackRecord[] = [];
  const invalid: LoadReport['invalid'] = { count: 0, examples: [] };
  const onInvalid = (x: InvalidRecord): void => {
    if (invalid.count++ < MAX_INVALID_EXAMPLES) invalid.examples.push(x);
  };
  for await (const r of streamFeedback(path, { ...opts, onInvalid })) records.push(r);
  return { records, report: { read: records.length + invalid.count, kept: records.length, invalid } };
}
