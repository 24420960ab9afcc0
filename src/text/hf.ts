// Hugging Face `tokenizer.json` tokenizers (BPE, WordPiece, Unigram with their normalizers, pre-tokenizers
// and decoders) through `@huggingface/tokenizers`, a pure-JS port of the Rust `tokenizers` crate, plus the
// special tokens and chat template that `tokenizer_config.json` declares.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer as HfLibTokenizer } from '@huggingface/tokenizers';
import { checkEosIds, checkIds, type Tokenizer } from './tokenizer.js';

/**
 * The part of `@huggingface/tokenizers`' Tokenizer we use. Its published .d.ts files use extensionless
 * relative imports, which NodeNext resolution rejects, so the class reaches us untyped; this interface is
 * the checked boundary (method names and options as in its `types/core/Tokenizer.d.ts`, version 0.2.0).
 */
interface HfLib {
  encode(text: string, options: { add_special_tokens: boolean }): { ids: number[] };
  decode(ids: number[], options: { skip_special_tokens: boolean; clean_up_tokenization_spaces: boolean }): string;
  token_to_id(token: string): number | undefined;
  id_to_token(id: number): string | undefined;
  get_vocab(withAddedTokens: boolean): Map<string, number>;
  get_added_tokens_decoder(): Map<number, { content: string; special: boolean }>;
}

/** A special token in tokenizer_config.json: a string, or a serialized AddedToken with `content`. */
export type HfTokenSpec = string | { content: string } | null;

/** The fields of `tokenizer_config.json` we read; others are passed through to the library. */
export interface HfTokenizerConfig {
  bos_token?: HfTokenSpec;
  eos_token?: HfTokenSpec;
  pad_token?: HfTokenSpec;
  unk_token?: HfTokenSpec;
  /** Whether to prepend BOS; when absent, whatever the tokenizer.json post-processor does. */
  add_bos_token?: boolean;
  /** transformers' decode-time removal of spaces before punctuation; default false, as in transformers ≥ 4.45. */
  clean_up_tokenization_spaces?: boolean;
  /** A Jinja template, or named templates of which we take "default" (else the first). */
  chat_template?: string | readonly { name: string; template: string }[];
  [key: string]: unknown;
}

/** How a tokenizer.json is loaded. */
export interface HfTokenizerOptions {
  /** Ids that end a sample; default the id of the config's eos_token (none if it has none). */
  eosIds?: readonly number[];
}

/**
 * A tokenizer.json tokenizer. `encode` prepends BOS by default when the config's `add_bos_token` says so or,
 * without that flag, when the tokenizer.json post-processor would (Llama's does, GPT-2's and Qwen's do not);
 * it never adds the post-processor's other tokens (EOS, [SEP]). `decode` applies `clean_up_tokenization_spaces`
 * only when the config asks for it, so that decode inverts encode.
 */
export class HfTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosIds: readonly number[];
  readonly padId: number | null;
  readonly bosToken: string | null;
  readonly eosToken: string | null;
  /** The Jinja chat template (for `applyChatTemplate`), or null if the model declares none. */
  readonly chatTemplate: string | null;
  /**
   * Four times the longest vocabulary entry: a normalizer may shrink the text before the model splits it
   * (accents stripped, characters replaced), which the slack allows for in every ordinary case.
   */
  readonly maxPieceChars: number;
  private readonly lib: HfLib;
  private readonly addBosByDefault: boolean;
  private readonly cleanUpSpaces: boolean;
  private readonly specialIds: ReadonlySet<number>;

  /** `tokenizerJson` is the parsed tokenizer.json; `config` the parsed tokenizer_config.json, if any. */
  constructor(tokenizerJson: object, config: HfTokenizerConfig = {}, opts: HfTokenizerOptions = {}) {
    const [bos, eos, pad, unk] = [config.bos_token, config.eos_token, config.pad_token, config.unk_token].map(tokenContent);
    this.lib = new HfLibTokenizer(tokenizerJson, { ...config, bos_token: bos, eos_token: eos, pad_token: pad, unk_token: unk }) as HfLib;
    let maxId = -1;
    let longest = 1;
    for (const [piece, id] of this.lib.get_vocab(true)) {
      maxId = Math.max(maxId, id);
      longest = Math.max(longest, piece.length);
    }
    this.vocabSize = maxId + 1;
    this.maxPieceChars = 4 * longest;
    this.bosToken = bos;
    this.eosToken = eos;
    this.bosId = this.idOfToken(bos, 'bos_token');
    this.padId = this.idOfToken(pad, 'pad_token');
    const eosId = this.idOfToken(eos, 'eos_token');
    this.eosIds = checkEosIds(opts.eosIds ?? (eosId === null ? [] : [eosId]), this.vocabSize);
    // Without add_bos_token, ask the post-processor: it prepends BOS (e.g. Llama's TemplateProcessing) or not
    // (GPT-2's and Qwen's ByteLevel). encode() then adds BOS itself, so that it never adds anything else.
    const probe = this.lib.encode('', { add_special_tokens: true }).ids;
    this.addBosByDefault = this.bosId !== null && (config.add_bos_token ?? probe[0] === this.bosId);
    this.cleanUpSpaces = config.clean_up_tokenization_spaces ?? false;
    const special = [...this.lib.get_added_tokens_decoder()].filter(([, t]) => t.special).map(([id]) => id);
    this.specialIds = new Set([...special, ...this.eosIds, ...[this.bosId, this.padId].filter((id) => id !== null)]);
    this.chatTemplate = pickChatTemplate(config.chat_template);
  }

  /**
   * Loads `tokenizer.json` and, when present, `tokenizer_config.json`, `special_tokens_map.json` (where older
   * models keep bos/eos/pad; it overrides, as in transformers) and `chat_template.jinja` (where newer
   * transformers versions save the template; it takes precedence, as there).
   */
  static fromDir(dir: string, opts: HfTokenizerOptions = {}): HfTokenizer {
    const read = (f: string): string | null => (existsSync(join(dir, f)) ? readFileSync(join(dir, f), 'utf8') : null);
    try {
      const json = read('tokenizer.json');
      if (json === null) throw new Error('no tokenizer.json');
      const configText = read('tokenizer_config.json');
      const mapText = read('special_tokens_map.json');
      const config: HfTokenizerConfig = {
        ...(configText === null ? {} : (JSON.parse(configText) as HfTokenizerConfig)),
        ...(mapText === null ? {} : (JSON.parse(mapText) as HfTokenizerConfig)),
      };
      const template = read('chat_template.jinja');
      if (template !== null) config.chat_template = template;
      return new HfTokenizer(JSON.parse(json) as object, config, opts);
    } catch (e) {
      throw new Error(`Hugging Face tokenizer in ${dir}: ${(e as Error).message}`, { cause: e });
    }
  }

  /**
   * Encodes without the post-processor's special tokens and prepends BOS when `addBos` (default: see the
   * class). Special tokens written in the text (`<|im_start|>`) become their ids.
   */
  encode(text: string, opts: { addBos?: boolean } = {}): number[] {
    const ids = this.lib.encode(text, { add_special_tokens: false }).ids;
    if (!(opts.addBos ?? this.addBosByDefault)) return ids;
    if (this.bosId === null) throw new Error('addBos: this tokenizer has no bos_token');
    return [this.bosId, ...ids];
  }

  /** Decodes through tokenizer.json's decoder; with `skipSpecial` (default), special ids are dropped first. */
  decode(ids: readonly number[], opts: { skipSpecial?: boolean } = {}): string {
    checkIds(ids, this.vocabSize);
    const kept = (opts.skipSpecial ?? true) ? ids.filter((id) => !this.specialIds.has(id)) : [...ids];
    if (kept.length === 0) return ''; // the library throws on an empty list
    return this.lib.decode(kept, { skip_special_tokens: false, clean_up_tokenization_spaces: this.cleanUpSpaces });
  }

  idToPiece(id: number): string {
    checkIds([id], this.vocabSize);
    const piece = this.lib.id_to_token(id);
    if (piece === undefined) throw new Error(`token id ${id} has no entry in this vocabulary (a gap in its ids)`);
    return piece;
  }

  private idOfToken(token: string | null, field: string): number | null {
    if (token === null) return null;
    const id = this.lib.token_to_id(token);
    if (id === undefined) throw new Error(`tokenizer_config.json ${field} ${JSON.stringify(token)} is not in the vocabulary`);
    return id;
  }
}

function tokenContent(spec: HfTokenSpec | undefined): string | null {
  if (spec === undefined || spec === null) return null;
  return typeof spec === 'string' ? spec : spec.content;
}

function pickChatTemplate(t: HfTokenizerConfig['chat_template']): string | null {
  if (t === undefined) return null;
  if (typeof t === 'string') return t;
  return (t.find((x) => x.name === 'default') ?? t[0])?.template ?? null;
}
