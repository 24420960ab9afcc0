// Feedback records: the raw formats the loaders read (one JSON object per line) and the normalised
// discriminated union every later stage (reward-model training, evaluation, the lab) consumes.

import type { ChatMessage } from '../text/chat.js';

/** Text in a raw record: plain text, or a conversation as TRL writes it (`[{role, content}]`). */
export type TextOrMessages = string | ChatMessage[];

/**
 * Optional per-record provenance a raw record may carry at its top level. It is kept on the normalised
 * record (`meta`) through to evaluation, so agreement can be broken down by annotator, time or source.
 */
export interface RawMeta {
  /** Who gave the judgement (a crowd-worker id, a model name for AI feedback). */
  annotator?: string;
  /** When it was given, as the source writes it (an ISO 8601 string or a Unix time in seconds). */
  timestamp?: string | number;
  /** The annotator's own confidence, on the source's scale (summarize-from-feedback: 1–9). */
  confidence?: number;
  /** Where the record comes from (a dataset, batch or collection run). */
  source?: string;
  /** A positive weight of the record in training (the feedback app exports its annotator's reliability). */
  weight?: number;
  /** The strength of a preference as a Bradley–Terry margin ≥ 0 (the feedback app's strength scale). */
  margin?: number;
}

/**
 * Pairwise preference, plain or conversational (TRL's "preference" format, with explicit prompt).
 * Conversational records have `prompt`, `chosen` and `rejected` all message lists; they are rendered with
 * the caller's chat template (see `ChatTemplateFn`).
 *
 *     {"prompt": "2+2=", "chosen": " 4", "rejected": " 5"}
 *     {"prompt": [{"role": "user", "content": "2+2?"}], "chosen": [{"role": "assistant", "content": "4"}], ...}
 */
export interface RawPairwise extends RawMeta {
  prompt: TextOrMessages;
  chosen: TextOrMessages;
  rejected: TextOrMessages;
}

/**
 * Anthropic HH-RLHF (Bai et al. 2022): two whole dialogues that share a prefix and differ in the final
 * assistant turn(s).
 *
 *     {"chosen": "\n\nHuman: Hi\n\nAssistant: Hello!", "rejected": "\n\nHuman: Hi\n\nAssistant: Go away."}
 *
 * The prompt is everything up to and including the last "\n\nAssistant:" inside the prefix the two texts
 * share; the responses are what follows it. (Splitting each text at its own last "\n\nAssistant:" is wrong
 * for a few real records whose responses themselves contain "\n\nAssistant:".)
 */
export interface RawHhRlhf extends RawMeta {
  chosen: string;
  rejected: string;
}

/**
 * OpenAI "Learning to summarize from human feedback" comparisons (Stiennon et al. 2020), one per line.
 * `choice` is the index of the summary the labeller preferred; `worker` the labeller's id.
 */
export interface RawSummarizeComparison {
  info: { id?: string; post: string; title?: string; subreddit?: string };
  summaries: [{ text: string }, { text: string }];
  choice: 0 | 1;
  worker?: string;
  extra?: { confidence?: number };
  batch?: string;
  split?: string;
}

/**
 * K-wise ranking (Ouyang et al. 2022 collect K = 4..9 responses per prompt and rank them).
 * `ranking` lists indices into `responses`, best first, and must be a permutation of 0..K-1.
 *
 *     {"prompt": "Name a colour.", "responses": ["blue", "7", "red"], "ranking": [2, 0, 1]}
 */
export interface RawRanking extends RawMeta {
  prompt: TextOrMessages;
  responses: TextOrMessages[];
  ranking: number[];
}

/**
 * Absolute rating of one response: a number, optionally on a Likert scale `[min, max]` (inclusive).
 *
 *     {"prompt": "Tell a joke.", "response": "...", "score": 4, "scale": [1, 7]}
 */
export interface RawRating extends RawMeta {
  prompt: TextOrMessages;
  response: TextOrMessages;
  score: number;
  scale?: [number, number];
}

/**
 * Unpaired binary feedback, as KTO uses it (Ethayarajh et al. 2024; TRL's "unpaired preference" format):
 * a thumbs up (`true`) or down (`false`) on one completion.
 *
 *     {"prompt": "2+2=", "completion": " 4", "label": true}
 */
export interface RawBinary extends RawMeta {
  prompt: TextOrMessages;
  completion: TextOrMessages;
  label: boolean;
}

/** The raw formats `loadFeedback` reads, by name. */
export interface RawFormats {
  pairwise: RawPairwise;
  'hh-rlhf': RawHhRlhf;
  summarize: RawSummarizeComparison;
  ranking: RawRanking;
  rating: RawRating;
  binary: RawBinary;
}
/** Every feedback format by name (the keys of the parser registry). */
export type FeedbackFormat = keyof RawFormats;

/** Provenance of a normalised record: the raw record's optional fields plus where it was read from. */
export interface RecordMeta extends RawMeta {
  /** The file as the caller named it. */
  file: string;
  /** 1-based line number in that file (after decompression). */
  line: number;
  /** The source's own split name where it has one (summarize-from-feedback: 'valid1', 'valid2', ...). */
  sourceSplit?: string;
}

/** One preference: `chosen` was preferred to `rejected` as a continuation of `prompt`. */
export interface PairRecord {
  kind: 'pair';
  prompt: string;
  chosen: string;
  rejected: string;
  meta: RecordMeta;
}

/** A total order of K ≥ 2 responses to one prompt, `responses[0]` the best. */
export interface RankingRecord {
  kind: 'ranking';
  prompt: string;
  /** Best first (the raw record's `responses` reordered by its `ranking`). */
  responses: string[];
  meta: RecordMeta;
}

/** An absolute score for one response. */
export interface RatingRecord {
  kind: 'rating';
  prompt: string;
  response: string;
  score: number;
  /** Inclusive `[min, max]` of a Likert scale, when the source gives one. */
  scale?: [number, number];
  meta: RecordMeta;
}

/** Unpaired binary feedback on one completion (KTO): `label` true = desirable. */
export interface BinaryRecord {
  kind: 'binary';
  prompt: string;
  completion: string;
  label: boolean;
  meta: RecordMeta;
}

/** A normalised feedback record: every text is a plain string (chat templates already applied). */
export type FeedbackRecord = PairRecord | RankingRecord | RatingRecord | BinaryRecord;

/**
 * Renders a conversation to text, e.g. `(m, o) => applyChatTemplate(tokenizer.chatTemplate, m, o)`.
 * With `addGenerationPrompt` the result ends with the header of an assistant turn.
 */
export type ChatTemplateFn = (messages: readonly ChatMessage[], opts: { addGenerationPrompt: boolean }) => string;

/** The texts a record holds after its prompt: the responses compared, rated or labelled. */
export function responsesOf(r: FeedbackRecord): string[] {
  switch (r.kind) {
    case 'pair': return [r.chosen, r.rejected];
    case 'ranking': return r.responses;
    case 'rating': return [r.response];
    case 'binary': return [r.completion];
  }
}
