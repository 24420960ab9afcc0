// Per-record schema checks and normalisation: one parser per raw format, in a registry keyed by format
// name. A parser sees one parsed JSON line and either returns a `FeedbackRecord` or throws a
// `RecordError` naming the field at fault; the loader adds the file and line.

import type { ChatMessage } from '../text/chat.js';
import type {
  BinaryRecord, ChatTemplateFn, FeedbackFormat, FeedbackRecord, PairRecord, RankingRecord, RatingRecord, RecordMeta,
} from './types.js';

/** A record that does not fit its format. `field` is a path such as `summaries[1].text`, when one is at fault. */
export class RecordError extends Error {
  constructor(readonly reason: string, readonly field?: string) {
    super(field === undefined ? reason : `field '${field}': ${reason}`);
    this.name = 'RecordError';
  }
}

/** Where a record came from (file and line) and its format's options, for parsers and their errors. */
export interface ParseContext {
  /** Renders conversational records; without it a message list is an error. */
  chatTemplate?: ChatTemplateFn;
  file: string;
  line: number;
}

type JsonObject = { readonly [key: string]: unknown };
/** A feedback format's parser: one JSON object to one typed record, or a FeedbackError naming the field. */
export type RecordParser = (raw: JsonObject, ctx: ParseContext) => FeedbackRecord;

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (v === undefined) return 'nothing (missing)';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

function str(v: unknown, field: string): string {
  if (typeof v !== 'string') throw new RecordError(`expected a string, got ${describe(v)}`, field);
  return v;
}

function optStr(v: unknown, field: string): string | undefined {
  return v === undefined ? undefined : str(v, field);
}

function num(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new RecordError(`expected a finite number, got ${describe(v)}`, field);
  return v;
}

function obj(v: unknown, field: string): JsonObject {
  if (!isObject(v)) throw new RecordError(`expected an object, got ${describe(v)}`, field);
  return v;
}

function arr(v: unknown, field: string): readonly unknown[] {
  if (!Array.isArray(v)) throw new RecordError(`expected an array, got ${describe(v)}`, field);
  return v;
}

/** The generic optional provenance fields, from the top level of a raw record. */
function rawMeta(raw: JsonObject, ctx: ParseContext): RecordMeta {
  const meta: RecordMeta = { file: ctx.file, line: ctx.line };
  const annotator = optStr(raw['annotator'], 'annotator');
  if (annotator !== undefined) meta.annotator = annotator;
  const ts = raw['timestamp'];
  if (ts !== undefined) {
    if (typeof ts !== 'string' && (typeof ts !== 'number' || !Number.isFinite(ts))) {
      throw new RecordError(`expected a string or a number, got ${describe(ts)}`, 'timestamp');
    }
    meta.timestamp = ts;
  }
  if (raw['confidence'] !== undefined) meta.confidence = num(raw['confidence'], 'confidence');
  const source = optStr(raw['source'], 'source');
  if (source !== undefined) meta.source = source;
  if (raw['weight'] !== undefined) {
    const w = num(raw['weight'], 'weight');
    if (!(w > 0)) throw new RecordError(`expected a positive number, got ${w}`, 'weight');
    meta.weight = w;
  }
  if (raw['margin'] !== undefined) {
    const m = num(raw['margin'], 'margin');
    if (!(m >= 0)) throw new RecordError(`expected a number ≥ 0, got ${m}`, 'margin');
    meta.margin = m;
  }
  return meta;
}

function messages(v: readonly unknown[], field: string): ChatMessage[] {
  return v.map((m, i) => {
    const o = obj(m, `${field}[${i}]`);
    return { role: str(o['role'], `${field}[${i}].role`), content: str(o['content'], `${field}[${i}].content`) };
  });
}

/**
 * A record's prompt and responses as text. Plain records pass through. Conversational ones (prompt a
 * message list) are rendered as TRL's `maybe_apply_chat_template` does: the prompt with the generation
 * prompt, each response as render(prompt ++ response) minus that rendered prompt — so prompt + response is
 * exactly the conversation the template would write. (Where a template renders history differently from a
 * generation prompt, TRL silently shortens the prompt to the common prefix; we report an error instead.)
 */
function texts(
  raw: JsonObject, promptField: string, responses: ReadonlyArray<readonly [field: string, value: unknown]>, ctx: ParseContext,
): { prompt: string; responses: string[] } {
  const p = raw[promptField];
  for (const [f, v] of [[promptField, p] as const, ...responses]) {
    if (typeof v !== 'string' && !Array.isArray(v)) throw new RecordError(`expected a string or a message list, got ${describe(v)}`, f);
  }
  if (typeof p === 'string') {
    return {
      prompt: p,
      responses: responses.map(([f, v]) => {
        if (typeof v !== 'string') throw new RecordError(`expected a string, as '${promptField}' is one (got a message list)`, f);
        return v;
      }),
    };
  }
  const promptMessages = messages(p as unknown[], promptField);
  const responseMessages = responses.map(([f, v]) => {
    if (!Array.isArray(v)) throw new RecordError(`expected a message list, as '${promptField}' is one (got a string)`, f);
    return messages(v, f);
  });
  const render = ctx.chatTemplate;
  if (render === undefined) throw new RecordError('a message list needs a chat template: pass { chatTemplate } to the loader', promptField);
  const prompt = render(promptMessages, { addGenerationPrompt: true });
  return {
    prompt,
    responses: responseMessages.map((m, i) => {
      const whole = render([...promptMessages, ...m], { addGenerationPrompt: false });
      if (!whole.startsWith(prompt)) {
        throw new RecordError(`the chat template's rendering of '${promptField}' + this does not start with '${promptField}' rendered with a generation prompt`, responses[i]![0]);
      }
      return whole.slice(prompt.length);
    }),
  };
}

const fields = (raw: JsonObject, ...names: string[]): (readonly [string, unknown])[] => names.map((f) => [f, raw[f]] as const);

function parsePairwise(raw: JsonObject, ctx: ParseContext): PairRecord {
  const { prompt, responses: [chosen, rejected] } = texts(raw, 'prompt', fields(raw, 'chosen', 'rejected'), ctx);
  return { kind: 'pair', prompt, chosen: chosen!, rejected: rejected!, meta: rawMeta(raw, ctx) };
}

const HH_ASSISTANT = '\n\nAssistant:';

/** Splits an HH-RLHF pair at the last "\n\nAssistant:" inside the prefix the two dialogues share. */
function parseHhRlhf(raw: JsonObject, ctx: ParseContext): PairRecord {
  const chosen = str(raw['chosen'], 'chosen');
  const rejected = str(raw['rejected'], 'rejected');
  if (chosen === rejected) throw new RecordError("'chosen' and 'rejected' are the same text");
  let shared = 0;
  while (shared < chosen.length && shared < rejected.length && chosen[shared] === rejected[shared]) shared++;
  const at = chosen.lastIndexOf(HH_ASSISTANT, shared - HH_ASSISTANT.length);
  if (shared < HH_ASSISTANT.length || at < 0) {
    throw new RecordError(`'chosen' and 'rejected' share no "\\n\\nAssistant:" (they differ from character ${shared})`);
  }
  const cut = at + HH_ASSISTANT.length;
  return { kind: 'pair', prompt: chosen.slice(0, cut), chosen: chosen.slice(cut), rejected: rejected.slice(cut), meta: rawMeta(raw, ctx) };
}

/**
 * A summarize-from-feedback comparison. The prompt is the query format of Stiennon et al. 2020 (and of
 * the reproductions, Huang et al. 2024): "SUBREDDIT: r/…\n\nTITLE: …\n\nPOST: …\n\nTL;DR:", leaving out
 * a missing subreddit or title; CNN/DM batches (`info.article`) get "Article:\n…\n\nTL;DR:". The
 * summaries keep their leading space, the continuation of "TL;DR:".
 */
function parseSummarize(raw: JsonObject, ctx: ParseContext): PairRecord {
  const info = obj(raw['info'], 'info');
  let prompt: string;
  if (info['post'] === undefined && info['article'] !== undefined) {
    prompt = `Article:\n${str(info['article'], 'info.article')}\n\nTL;DR:`;
  } else {
    const post = str(info['post'], 'info.post');
    const title = optStr(info['title'], 'info.title');
    const subreddit = optStr(info['subreddit'], 'info.subreddit');
    prompt = (subreddit === undefined ? '' : `SUBREDDIT: r/${subreddit}\n\n`) + (title === undefined ? '' : `TITLE: ${title}\n\n`) + `POST: ${post}\n\nTL;DR:`;
  }
  const summaries = arr(raw['summaries'], 'summaries');
  if (summaries.length !== 2) throw new RecordError(`expected 2 summaries, got ${summaries.length}`, 'summaries');
  const text = summaries.map((s, i) => str(obj(s, `summaries[${i}]`)['text'], `summaries[${i}].text`));
  const choice = raw['choice'];
  if (choice !== 0 && choice !== 1) throw new RecordError(`expected 0 or 1, got ${JSON.stringify(choice) ?? 'nothing (missing)'}`, 'choice');

  const meta: RecordMeta = { file: ctx.file, line: ctx.line };
  const worker = optStr(raw['worker'], 'worker');
  if (worker !== undefined) meta.annotator = worker;
  if (raw['extra'] !== undefined) {
    const confidence = obj(raw['extra'], 'extra')['confidence'];
    if (confidence !== undefined) meta.confidence = num(confidence, 'extra.confidence');
  }
  const batch = optStr(raw['batch'], 'batch');
  if (batch !== undefined) meta.source = batch;
  const split = optStr(raw['split'], 'split');
  if (split !== undefined) meta.sourceSplit = split;
  return { kind: 'pair', prompt, chosen: text[choice]!, rejected: text[1 - choice]!, meta };
}

function parseRanking(raw: JsonObject, ctx: ParseContext): RankingRecord {
  const items = arr(raw['responses'], 'responses');
  const k = items.length;
  if (k < 2) throw new RecordError(`expected at least 2 responses, got ${k}`, 'responses');
  const ranking = arr(raw['ranking'], 'ranking');
  if (ranking.length !== k) throw new RecordError(`expected a permutation of 0..${k - 1} (${k} entries), got ${ranking.length} entries`, 'ranking');
  const seen = new Set<number>();
  ranking.forEach((v, i) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= k) {
      throw new RecordError(`expected an index in 0..${k - 1}, got ${JSON.stringify(v)}`, `ranking[${i}]`);
    }
    if (seen.has(v)) throw new RecordError(`not a permutation of 0..${k - 1}: index ${v} appears twice`, 'ranking');
    seen.add(v);
  });
  const { prompt, responses } = texts(raw, 'prompt', items.map((v, i) => [`responses[${i}]`, v] as const), ctx);
  return { kind: 'ranking', prompt, responses: (ranking as number[]).map((i) => responses[i]!), meta: rawMeta(raw, ctx) };
}

function parseRating(raw: JsonObject, ctx: ParseContext): RatingRecord {
  const { prompt, responses: [response] } = texts(raw, 'prompt', fields(raw, 'response'), ctx);
  const score = num(raw['score'], 'score');
  const record: RatingRecord = { kind: 'rating', prompt, response: response!, score, meta: rawMeta(raw, ctx) };
  if (raw['scale'] !== undefined) {
    const s = arr(raw['scale'], 'scale');
    if (s.length !== 2) throw new RecordError(`expected [min, max], got ${s.length} entries`, 'scale');
    const lo = num(s[0], 'scale[0]');
    const hi = num(s[1], 'scale[1]');
    if (!(lo < hi)) throw new RecordError(`expected min < max, got [${lo}, ${hi}]`, 'scale');
    if (score < lo || score > hi) throw new RecordError(`${score} is outside the scale [${lo}, ${hi}]`, 'score');
    record.scale = [lo, hi];
  }
  return record;
}

function parseBinary(raw: JsonObject, ctx: ParseContext): BinaryRecord {
  const { prompt, responses: [completion] } = texts(raw, 'prompt', fields(raw, 'completion'), ctx);
  const label = raw['label'];
  if (typeof label !== 'boolean') throw new RecordError(`expected true or false, got ${describe(label)}`, 'label');
  return { kind: 'binary', prompt, completion: completion!, label, meta: rawMeta(raw, ctx) };
}

/** The parser of each raw format (see `RawFormats` for what each reads). */
export const PARSERS: Readonly<Record<FeedbackFormat, RecordParser>> = {
  pairwise: parsePairwise,
  'hh-rlhf': parseHhRlhf,
  summarize: parseSummarize,
  ranking: parseRanking,
  rating: parseRating,
  binary: parseBinary,
};

/** Normalises one parsed JSON line of `format`; throws `RecordError` when it does not fit. */
export function parseRecord(format: FeedbackFormat, raw: unknown, ctx: ParseContext): FeedbackRecord {
  if (!isObject(raw)) throw new RecordError(`expected a JSON object, got ${describe(raw)}`);
  const record = PARSERS[format](raw, ctx);
  // A pair that prefers a text over itself teaches nothing, and its accuracy is a tie however it is scored.
  if (record.kind === 'pair' && record.chosen === record.rejected) {
    throw new RecordError('chosen and rejected are the same text (skipInvalid skips such pairs)', 'rejected');
  }
  return record;
}

