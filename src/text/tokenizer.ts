// The tokenizer interface every model uses, and the loader that picks a format from a model directory.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Gpt2BpeTokenizer } from './bpe.js';
import { HfTokenizer } from './hf.js';
import { Llama2cTokenizer } from './llama2c.js';
import { readJsonFile } from '../atomic.js';

/**
 * Text ⇄ token ids for one model's vocabulary.
 *
 * Conventions shared by every implementation:
 * - `encode` never appends EOS; `addBos` defaults to what the model was trained with (llama2.c: true,
 *   GPT-2: false, Hugging Face: `add_bos_token` or what its post-processor does). Text that already carries
 *   its special tokens (a rendered chat template) should be encoded with `addBos: false`.
 * - `decode` skips special tokens by default (`skipSpecial: true`): they are control symbols, not text, and
 *   rewards, judges and people read decoded text. Pass `skipSpecial: false` to see them.
 * - `decode` throws on an id outside `[0, vocabSize)`, naming the id and the vocabulary size, rather than
 *   decoding garbage from a model whose head is wider than its vocabulary.
 */
export interface Tokenizer {
  /** Number of ids the tokenizer knows (max id + 1); a model's embedding may be wider. */
  readonly vocabSize: number;
  /** Id prepended by `encode({ addBos: true })`, or null if the vocabulary has none. */
  readonly bosId: number | null;
  /** Ids that end a sample (generation stops on any of them). */
  readonly eosIds: readonly number[];
  /** Id used to pad batches, or null if the vocabulary has none (callers then pad with an EOS id). */
  readonly padId: number | null;
  encode(text: string, opts?: { addBos?: boolean }): number[];
  decode(ids: readonly number[], opts?: { skipSpecial?: boolean }): string;
  /** The vocabulary entry of one id, as stored (e.g. `' the'`, `'<0x0A>'`, `'Ġthe'`, `'▁the'`). */
  idToPiece(id: number): string;
  /**
   * An upper bound on the UTF-16 code units of text one token stands for, so that a text longer than
   * `maxTokens × maxPieceChars` is known to be over `maxTokens` without encoding it ({@link cannotFit}).
   */
  readonly maxPieceChars: number;
}

/**
 * Whether the concatenation of `texts` certainly encodes to more than `maxTokens` tokens, from its length alone: O(1), so that
 * loaders drop a 10 MB record without spending the tokenizer's time on it. False says nothing (encode to
 * know).
 */
export function cannotFit(tok: Tokenizer, maxTokens: number, ...texts: readonly string[]): boolean {
  // The parts' lengths summed, so that a caller about to encode prompt + response need not build it first.
  return texts.reduce((n, t) => n + t.length, 0) > maxTokens * tok.maxPieceChars;
}

/** Options for {@link loadTokenizer}. */
export interface LoadTokenizerOptions {
  /**
   * End-of-sequence ids, overriding what the directory says. Without it, `eos_token_id` (a number or a list)
   * from `generation_config.json`, then `config.json`, in the directory is used when present, else the
   * format's own default (llama2.c: [2]; GPT-2: [50256]; Hugging Face: `tokenizer_config.json`'s eos_token).
   * stories260K ends stories with BOS, so its directory's config must list [1, 2].
   */
  eosIds?: readonly number[];
}

/**
 * Loads the tokenizer of a model directory, picking the format from the files present, in this order:
 * `tokenizer.json` (Hugging Face, with `tokenizer_config.json` when present), `tokenizer.bin` (llama2.c),
 * `vocab.json` + `merges.txt` (GPT-2 byte-level BPE).
 */
export function loadTokenizer(dir: string, opts: LoadTokenizerOptions = {}): Tokenizer {
  const has = (f: string): boolean => existsSync(join(dir, f));
  const eosIds = opts.eosIds ?? eosIdsFromConfig(dir);
  if (has('tokenizer.json')) return HfTokenizer.fromDir(dir, { eosIds });
  if (has('tokenizer.bin')) return Llama2cTokenizer.fromFile(join(dir, 'tokenizer.bin'), { eosIds });
  if (has('vocab.json') && has('merges.txt')) {
    return Gpt2BpeTokenizer.fromFiles(join(dir, 'vocab.json'), join(dir, 'merges.txt'), { eosIds });
  }
  throw new Error(
    `no tokenizer found in ${dir}: looked for tokenizer.json (Hugging Face), tokenizer.bin (llama2.c), ` +
      `vocab.json + merges.txt (GPT-2 BPE)`,
  );
}

/** `eos_token_id` from the directory's generation_config.json, else config.json (HF conventions), if any. */
function eosIdsFromConfig(dir: string): readonly number[] | undefined {
  for (const file of ['generation_config.json', 'config.json']) {
    const path = join(dir, file);
    if (!existsSync(path)) continue;
    const eos = readJsonFile<{ eos_token_id?: unknown }>(path).eos_token_id;
    if (eos === undefined || eos === null) continue;
    const ids = Array.isArray(eos) ? eos : [eos];
    if (!ids.every((id) => Number.isInteger(id) && (id as number) >= 0)) {
      throw new Error(`${path}: eos_token_id must be a non-negative integer or a list of them, got ${JSON.stringify(eos)}`);
    }
    return ids as number[];
  }
  return undefined;
}

/** Throws unless every id is an integer in [0, vocabSize); shared by the implementations' `decode`. */
export function checkIds(ids: readonly number[], vocabSize: number): void {
  for (const id of ids) {
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw new Error(`token id ${id} is outside the vocabulary (size ${vocabSize})`);
    }
  }
}

/** Validates constructor-supplied EOS ids against the vocabulary. */
export function checkEosIds(eosIds: readonly number[], vocabSize: number): readonly number[] {
  checkIds(eosIds, vocabSize);
  return Object.freeze([...eosIds]);
}
