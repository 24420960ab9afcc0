// llama2.c's tokenizer (`tokenizer.bin`): a SentencePiece-style vocabulary with merge scores, encoded and
// decoded exactly as Karpathy's llama2.c `run.c` does (`encode`, `decode`), so token ids match the
// reference implementation's and golden outputs can be compared string for string.
//
// File format (little-endian): int32 max_token_length, then per token: float32 score, int32 byte length,
// the piece's bytes (UTF-8, no terminator). The file does not store the vocabulary size (run.c takes it from
// the checkpoint header); we read entries until the end of the file.
//
// Pieces are held as "binary strings" (one char per byte, code units 0..255) so that lookups and merges
// compare bytes, as run.c's strcmp does, and only the final decode interprets UTF-8.

import { Buffer } from 'node:buffer';
import { readFileSync } from 'node:fs';
import { MergeQueue } from './merge-queue.js';
import { checkEosIds, checkIds, type Tokenizer } from './tokenizer.js';

/** A llama2.c tokenizer's end-of-sample ids. */
export interface Llama2cOptions {
  /**
   * Ids that end a sample; default [2] (SentencePiece's `</s>`). llama2.c itself stops when the model emits
   * BOS (1), which is how stories260K ends a story, so that model's directory config lists [1, 2] and
   * `loadTokenizer` passes it here.
   */
  eosIds?: readonly number[];
}

/** run.c's fixed special ids: 0 `<unk>`, 1 `<s>` (BOS), 2 `</s>` (EOS); bytes follow at 3 + byte. */
const UNK = 0;
const BOS = 1;
const EOS = 2;
const BYTE_OFFSET = 3;
/** run.c's initial best score: a merge whose score is not above it never happens. */
const NO_SCORE = -1e10;

/** llama2.c's SentencePiece-style BPE tokenizer (tokenizer.bin). */
export class Llama2cTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number = BOS;
  readonly eosIds: readonly number[];
  readonly padId: number | null = null;
  /** run.c sizes its merge buffer with this; kept for reference only. */
  readonly maxTokenLength: number;
  /**
   * The longest piece in bytes: a token covers at most that many UTF-8 bytes of the text, hence at most
   * that many UTF-16 code units (every code unit is at least one byte).
   */
  readonly maxPieceChars: number;
  /** Per id: the piece's bytes as a binary string, its merge score (float32), and the bytes it decodes to. */
  private readonly pieces: string[];
  private readonly scores: Float32Array;
  private readonly decoded: string[];
  private readonly ids = new Map<string, number>();
  private readonly special: ReadonlySet<number>;
  /** Whether ids 3..258 are `<0x00>`..`<0xFF>`, as byte fallback in run.c assumes without checking. */
  private readonly hasByteFallback: boolean;

  constructor(pieces: readonly Uint8Array[], scores: Float32Array, maxTokenLength: number, opts: Llama2cOptions = {}) {
    if (pieces.length !== scores.length) throw new Error(`${pieces.length} pieces but ${scores.length} scores`);
    if (pieces.length <= EOS) throw new Error(`a llama2.c vocabulary needs at least 3 entries, got ${pieces.length}`);
    this.vocabSize = pieces.length;
    this.maxTokenLength = maxTokenLength;
    this.scores = scores;
    this.pieces = pieces.map((p) => Buffer.from(p).toString('latin1'));
    this.maxPieceChars = pieces.reduce((m, p) => Math.max(m, p.length), 1);
    // run.c's str_lookup is a bsearch over the sorted vocabulary, so for a duplicated piece it returns an
    // unspecified one of its ids; we take the lowest. (stories260K has no duplicates.)
    this.pieces.forEach((p, id) => {
      if (!this.ids.has(p)) this.ids.set(p, id);
    });
    this.decoded = this.pieces.map((p) => {
      const byte = byteOfPiece(p);
      return byte === undefined ? p : String.fromCharCode(byte);
    });
    this.hasByteFallback = Array.from({ length: 256 }, (_, b) => b).every(
      (b) => byteOfPiece(this.pieces[BYTE_OFFSET + b] ?? '') === b,
    );
    this.eosIds = checkEosIds(opts.eosIds ?? [EOS], this.vocabSize);
    this.special = new Set([UNK, BOS, EOS, ...this.eosIds]);
  }

  /** Parses the bytes of a `tokenizer.bin`. */
  static fromBytes(data: Uint8Array, opts: Llama2cOptions = {}): Llama2cTokenizer {
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    if (data.byteLength < 4) throw new Error(`tokenizer.bin too short (${data.byteLength} bytes)`);
    const maxTokenLength = view.getInt32(0, true);
    const pieces: Uint8Array[] = [];
    const scores: number[] = [];
    let at = 4;
    while (at < data.byteLength) {
      if (at + 8 > data.byteLength) throw new Error(`tokenizer.bin truncated in the header of token ${pieces.length}`);
      scores.push(view.getFloat32(at, true));
      const len = view.getInt32(at + 4, true);
      if (len < 0 || at + 8 + len > data.byteLength) {
        throw new Error(`tokenizer.bin: token ${pieces.length} has length ${len}, past the end of the file`);
      }
      pieces.push(data.subarray(at + 8, at + 8 + len));
      at += 8 + len;
    }
    return new Llama2cTokenizer(pieces, Float32Array.from(scores), maxTokenLength, opts);
  }

  static fromFile(path: string, opts: Llama2cOptions = {}): Llama2cTokenizer {
    try {
      return Llama2cTokenizer.fromBytes(readFileSync(path), opts);
    } catch (e) {
      throw new Error(`${path}: ${(e as Error).message}`, { cause: e });
    }
  }

  /**
   * run.c's `encode(text, bos, eos=0)`: optional BOS, the dummy-prefix piece " " when the text is non-empty,
   * one piece per UTF-8 code point (or one `<0xXX>` token per byte when the code point is not a piece), then
   * repeatedly merge the adjacent pair whose concatenation is the piece with the highest score (leftmost on
   * ties) until no adjacent pair is a piece.
   *
   * One deliberate difference: run.c reads a C string, so it stops at a NUL character; we encode U+0000
   * like any other code point (as `<0x00>`).
   */
  encode(text: string, opts: { addBos?: boolean } = {}): number[] {
    let tokens: number[] = [];
    if (text.length > 0) {
      tokens.push(this.lookup(' ', 'the dummy-prefix piece " "'));
      // A JS string is well-formed UTF-16 up to lone surrogates, which (like TextEncoder) become U+FFFD; so
      // run.c's grouping of a leading byte with its continuation bytes is exactly one code point here.
      for (const ch of text) {
        const bytes = Buffer.from(ch, 'utf8').toString('latin1');
        const id = this.ids.get(bytes);
        if (id !== undefined) tokens.push(id);
        else for (let i = 0; i < bytes.length; i++) tokens.push(this.byteId(bytes.charCodeAt(i), ch));
      }
      tokens = this.merge(tokens);
    }
    return (opts.addBos ?? true) ? [BOS, ...tokens] : tokens;
  }

  /**
   * run.c's merge loop: repeatedly merge the adjacent pair whose concatenation is the piece with the highest
   * score, the leftmost on ties, until no adjacent pair is a piece. run.c rescans every pair per merge
   * (quadratic in the text's length); a queue of candidates ordered by score then position picks the same
   * merges in O(n log n).
   */
  private merge(tokens: number[]): number[] {
    const q = new MergeQueue(tokens);
    const offer = (left: number): void => {
      const right = left === -1 ? -1 : q.after(left);
      if (right === -1) return;
      const id = this.ids.get(this.pieces[q.symbols[left]!]! + this.pieces[q.symbols[right]!]!);
      // Strictly above run.c's initial best score, which also keeps out a NaN score.
      if (id !== undefined && this.scores[id]! > NO_SCORE) q.push(left, -this.scores[id]!, id);
    };
    for (let i = 0; i + 1 < tokens.length; i++) offer(i);
    for (let c = q.take(); c !== null; c = q.take()) {
      q.apply(c);
      offer(q.before(c.left));
      offer(c.left);
    }
    return q.remaining();
  }

  /**
   * run.c's `decode(prev, token)` applied along the sequence, the pieces' bytes concatenated and read as
   * UTF-8 (invalid sequences become U+FFFD): a piece that follows BOS loses one leading space (SentencePiece
   * strips the dummy prefix), and a `<0xXX>` piece is the raw byte.
   *
   * For ids = [1, ...generated] this is what run.c prints, with two differences: run.c's `safe_printf` drops
   * single bytes that are neither printable nor whitespace (so it prints no byte-fallback emoji or CJK at
   * all, and no control characters); we keep every byte, so `decode` inverts `encode`. And run.c stops at
   * BOS rather than printing it; with `skipSpecial` (the default) we skip 0, 1, 2 and the EOS ids.
   *
   * Round trip: decode(encode(s)) === s for every string s without lone surrogates, because the first
   * piece after BOS always begins with the dummy-prefix space and loses exactly that space. Without BOS the
   * prefix stays: decode(encode(s, { addBos: false })) === ' ' + s for non-empty s.
   */
  decode(ids: readonly number[], opts: { skipSpecial?: boolean } = {}): string {
    checkIds(ids, this.vocabSize);
    const skipSpecial = opts.skipSpecial ?? true;
    let out = '';
    let prev = -1;
    for (const id of ids) {
      if (!(skipSpecial && this.special.has(id))) {
        // Check the stored piece, not the decoded byte: a `<0x20>` after BOS stays a space in run.c.
        const strip = prev === BOS && this.pieces[id]!.startsWith(' ');
        out += strip ? this.decoded[id]!.slice(1) : this.decoded[id]!;
      }
      prev = id;
    }
    return Buffer.from(out, 'latin1').toString('utf8');
  }

  idToPiece(id: number): string {
    checkIds([id], this.vocabSize);
    return Buffer.from(this.pieces[id]!, 'latin1').toString('utf8');
  }

  /** The merge score of an id (SentencePiece's log-probability-like score; higher merges first). */
  score(id: number): number {
    checkIds([id], this.vocabSize);
    return this.scores[id]!;
  }

  private lookup(piece: string, what: string): number {
    const id = this.ids.get(piece);
    if (id === undefined) throw new Error(`this llama2.c vocabulary has no ${what}`);
    return id;
  }

  private byteId(byte: number, ch: string): number {
    if (!this.hasByteFallback) {
      const cp = ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
      throw new Error(`U+${cp} is not in this llama2.c vocabulary, which has no <0x00>..<0xFF> byte pieces at ids 3..258`);
    }
    return BYTE_OFFSET + byte;
  }
}

/**
 * The byte a `<0xXX>` piece stands for. run.c uses sscanf("<0x%02hhX>"), which would also accept e.g.
 * "<0xA" or lower-case digits; SentencePiece only writes the exact `<0xXX>` form, which is all we accept.
 */
function byteOfPiece(piece: string): number | undefined {
  const m = /^<0x([0-9A-F]{2})>$/.exec(piece);
  return m === null ? undefined : Number.parseInt(m[1]!, 16);
}
