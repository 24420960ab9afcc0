// GPT-2's byte-level BPE from `vocab.json` + `merges.txt`, following OpenAI's gpt-2 `src/encoder.py`:
// split the text with GPT-2's pre-tokenizer regex, map each piece's UTF-8 bytes to printable characters
// (`bytes_to_unicode`), then merge the lowest-ranked adjacent pair, all its occurrences at once, until no
// ranked pair is left.

import { Buffer } from 'node:buffer';
import { readFileSync } from 'node:fs';
import { MergeQueue } from './merge-queue.js';
import { checkEosIds, checkIds, type Tokenizer } from './tokenizer.js';
import { readJsonFile } from '../atomic.js';

/**
 * GPT-2's pre-tokenizer pattern. encoder.py compiles it with Python's `regex` module, whose `\s` is the
 * Unicode White_Space property; JavaScript's `\s` differs in two code points (it lacks U+0085 and adds
 * U+FEFF), so we spell `\s` as `\p{White_Space}` to split exactly as the reference does.
 */
const PRETOKENIZE =
  /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\p{White_Space}\p{L}\p{N}]+|\p{White_Space}+(?!\P{White_Space})|\p{White_Space}+/gu;

/** encoder.py's `bytes_to_unicode`: printable bytes map to themselves, the other 68 to U+0100 onwards. */
export function bytesToUnicode(): string[] {
  const table: string[] = [];
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    table[b] = String.fromCharCode(printable ? b : next++);
  }
  return table;
}

const BYTE_TO_CHAR = bytesToUnicode();
const CHAR_TO_BYTE = new Map(BYTE_TO_CHAR.map((c, b) => [c, b]));
/** Words cached before the cache is cleared; bounds memory over a long run over varied text. */
const CACHE_LIMIT = 100_000;

/** GPT-2 BPE's special tokens (encoded as their own ids) and its end-of-sample ids. */
export interface Gpt2BpeOptions {
  /**
   * Vocabulary entries that, written verbatim in the text, encode as their own id instead of as text.
   * Default ['<|endoftext|>'], as Hugging Face's GPT-2 tokenizer does (OpenAI's tiktoken instead refuses
   * such text by default). Pass [] when the text is untrusted and must never produce an EOS.
   */
  specialTokens?: readonly string[];
  /** Ids that end a sample; default [id of '<|endoftext|>']. */
  eosIds?: readonly number[];
}

/** GPT-2's byte-level BPE tokenizer (vocab.json + merges.txt). */
export class Gpt2BpeTokenizer implements Tokenizer {
  readonly vocabSize: number;
  /** `<|endoftext|>`: GPT-2 separates documents with it; `encode` adds it only when asked (`addBos: true`). */
  readonly bosId: number | null;
  readonly eosIds: readonly number[];
  readonly padId: number | null = null;
  /** The longest piece in characters, each one byte of the text (so at most one UTF-16 code unit). */
  readonly maxPieceChars: number;
  private readonly pieces: string[];
  private readonly ids: ReadonlyMap<string, number>;
  /** Merge rank by `left + ' ' + right` (pieces never contain a space: it is 'Ġ'). */
  private readonly ranks = new Map<string, number>();
  private readonly specialIds: ReadonlySet<number>;
  private readonly specialSplit: RegExp | null;
  private readonly cache = new Map<string, number[]>();

  constructor(vocab: Readonly<Record<string, number>>, merges: readonly (readonly [string, string])[], opts: Gpt2BpeOptions = {}) {
    this.ids = new Map(Object.entries(vocab));
    this.vocabSize = this.ids.size;
    this.pieces = new Array<string>(this.vocabSize);
    for (const [piece, id] of this.ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize || this.pieces[id] !== undefined) {
        throw new Error(`vocab.json must map its ${this.vocabSize} pieces one-to-one onto ids 0..${this.vocabSize - 1}; ${JSON.stringify(piece)} has id ${id}`);
      }
      for (const c of piece) {
        if (!CHAR_TO_BYTE.has(c)) throw new Error(`vocab.json piece ${JSON.stringify(piece)} is not byte-level (has ${JSON.stringify(c)})`);
      }
      this.pieces[id] = piece;
    }
    this.maxPieceChars = [...this.ids.keys()].reduce((m, p) => Math.max(m, p.length), 1);
    merges.forEach(([a, b], rank) => {
      const key = `${a} ${b}`;
      if (!this.ranks.has(key)) this.ranks.set(key, rank); // a repeated merge keeps its first (best) rank
    });
    const special = opts.specialTokens ?? ['<|endoftext|>'];
    this.specialIds = new Set(special.map((s) => this.idOf(s, 'special token')));
    // Longest first, so that one special token that is a prefix of another does not split it.
    const alternatives = [...special].sort((a, b) => b.length - a.length).map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
    this.specialSplit = alternatives.length > 0 ? new RegExp(`(${alternatives.join('|')})`, 'u') : null;
    const endOfText = this.ids.get('<|endoftext|>') ?? null;
    this.bosId = endOfText;
    this.eosIds = checkEosIds(opts.eosIds ?? (endOfText === null ? [] : [endOfText]), this.vocabSize);
  }

  /** Reads a Hugging Face-style `vocab.json` and `merges.txt` (an optional `#version` first line). */
  static fromFiles(vocabPath: string, mergesPath: string, opts: Gpt2BpeOptions = {}): Gpt2BpeTokenizer {
    const vocab = readJsonFile<Record<string, number>>(vocabPath);
    const merges: [string, string][] = [];
    readFileSync(mergesPath, 'utf8')
      .split('\n')
      .forEach((line, i) => {
        line = line.replace(/\r$/, '');
        if (line === '' || (i === 0 && line.startsWith('#version'))) return;
        const parts = line.split(' ');
        if (parts.length !== 2) throw new Error(`${mergesPath}:${i + 1}: expected two pieces separated by a space, got ${JSON.stringify(line)}`);
        merges.push([parts[0]!, parts[1]!]);
      });
    return new Gpt2BpeTokenizer(vocab, merges, opts);
  }

  encode(text: string, opts: { addBos?: boolean } = {}): number[] {
    const out: number[] = [];
    if (opts.addBos ?? false) {
      if (this.bosId === null) throw new Error('this GPT-2 vocabulary has no <|endoftext|> to use as BOS');
      out.push(this.bosId);
    }
    // With a capturing group, split puts the special tokens at the odd indices.
    const parts = this.specialSplit === null ? [text] : text.split(this.specialSplit);
    parts.forEach((part, i) => {
      if (i % 2 === 1) out.push(this.ids.get(part)!);
      else for (const [word] of part.matchAll(PRETOKENIZE)) out.push(...this.encodeWord(word));
    });
    return out;
  }

  /** decode: pieces → bytes through the inverse byte table → UTF-8 (invalid sequences become U+FFFD). */
  decode(ids: readonly number[], opts: { skipSpecial?: boolean } = {}): string {
    checkIds(ids, this.vocabSize);
    const skipSpecial = opts.skipSpecial ?? true;
    const bytes: number[] = [];
    for (const id of ids) {
      if (skipSpecial && (this.specialIds.has(id) || this.eosIds.includes(id))) continue;
      for (const c of this.pieces[id]!) bytes.push(CHAR_TO_BYTE.get(c)!);
    }
    return Buffer.from(bytes).toString('utf8');
  }

  idToPiece(id: number): string {
    checkIds([id], this.vocabSize);
    return this.pieces[id]!;
  }

  /** The ids of one pre-tokenized word, cached (the same words recur constantly in real text). */
  private encodeWord(word: string): number[] {
    const cached = this.cache.get(word);
    if (cached !== undefined) return cached;
    const symbols = this.mergeWord(Array.from(Buffer.from(word, 'utf8'), (b) => BYTE_TO_CHAR[b]!));
    const ids = symbols.map((s) => this.idOf(s, 'BPE result'));
    if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
    this.cache.set(word, ids);
    return ids;
  }

  /**
   * encoder.py's loop: merge the lowest-ranked adjacent pair at every occurrence, left to right, until no
   * ranked pair is left. encoder.py rescans every pair per merge (quadratic in the word's length); here the
   * pairs sit in a queue by rank then position, and all the queued occurrences of the lowest rank are taken
   * as one pass before any pair that pass creates, as encoder.py's passes do: O(n log n).
   */
  private mergeWord(bytes: string[]): string[] {
    const pieces = [...bytes]; // the queue holds indices into this list; merges append to it
    const q = new MergeQueue(bytes.map((_, i) => i));
    const offer = (left: number): void => {
      const right = left === -1 ? -1 : q.after(left);
      if (right === -1) return;
      const [a, b] = [pieces[q.symbols[left]!]!, pieces[q.symbols[right]!]!];
      const rank = this.ranks.get(`${a} ${b}`);
      if (rank !== undefined) q.push(left, rank, -1);
    };
    for (let i = 0; i + 1 < bytes.length; i++) offer(i);
    for (let first = q.take(); first !== null; first = q.take()) {
      // One rank is one pair (a, b), and a pass creates no new (a, b): a + b is neither a nor b.
      const pass = [first];
      for (let c = q.peek(); c !== null && c.priority === first.priority; c = q.peek()) pass.push(q.take()!);
      const merged = pieces.length;
      pieces.push(pieces[q.symbols[first.left]!]! + pieces[q.symbols[first.right]!]!);
      const done: number[] = [];
      for (const c of pass) {
        if (!q.valid(c)) continue; // overlapped by the previous occurrence ('a a a' merges the first two)
        q.apply({ ...c, result: merged });
        done.push(c.left);
      }
      for (const left of done) {
        offer(q.before(left));
        offer(left);
      }
    }
    return q.remaining().map((i) => pieces[i]!);
  }

  private idOf(piece: string, what: string): number {
    const id = this.ids.get(piece);
    if (id === undefined) throw new Error(`${what} ${JSON.stringify(piece)} is not in the GPT-2 vocabulary`);
    return id;
  }
}
