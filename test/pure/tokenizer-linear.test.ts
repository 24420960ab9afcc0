// The tokenizers' merge loops against the quadratic algorithms they replaced (kept here as references):
// token-for-token equal on random short texts and vocabularies built to tie, and work that grows linearly
// (n log n) with the text instead of quadratically.
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, test } from 'node:test';
import { bytesToUnicode, Gpt2BpeTokenizer } from '../../src/text/bpe.js';
import { Llama2cTokenizer } from '../../src/text/llama2c.js';
import { mergeWork } from '../../src/text/merge-queue.js';
import { mulberry32 } from '../../src/random.js';
import { randomTexts, repoPath } from './tokenizer-fixtures.js';

/** run.c's merge loop as it was: rescan every pair, merge the best (leftmost on ties), repeat. */
function referenceLlama2c(tok: Llama2cTokenizer, text: string): number[] {
  const pieces = Array.from({ length: tok.vocabSize }, (_, id) => Buffer.from(tok.idToPiece(id), 'utf8').toString('latin1'));
  const ids = new Map<string, number>();
  pieces.forEach((p, id) => ids.has(p) || ids.set(p, id));
  if (text.length === 0) return [1];
  const tokens = [ids.get(' ')!];
  for (const ch of text) {
    const bytes = Buffer.from(ch, 'utf8').toString('latin1');
    const id = ids.get(bytes);
    if (id !== undefined) tokens.push(id);
    else for (let i = 0; i < bytes.length; i++) tokens.push(3 + bytes.charCodeAt(i));
  }
  for (;;) {
    let best = -1e10;
    let at = -1;
    let merged = -1;
    for (let i = 0; i + 1 < tokens.length; i++) {
      const id = ids.get(pieces[tokens[i]!]! + pieces[tokens[i + 1]!]!);
      if (id !== undefined && tok.score(id) > best) [best, at, merged] = [tok.score(id), i, id];
    }
    if (at === -1) return [1, ...tokens];
    tokens.splice(at, 2, merged);
  }
}

/** encoder.py's bpe() as it was, per pre-tokenized word: merge the lowest rank at every occurrence, repeat. */
function referenceWord(ranks: Map<string, number>, symbols: string[]): string[] {
  while (symbols.length > 1) {
    let best = -1;
    let bestRank = Infinity;
    for (let i = 0; i + 1 < symbols.length; i++) {
      const r = ranks.get(`${symbols[i]} ${symbols[i + 1]}`);
      if (r !== undefined && r < bestRank) [best, bestRank] = [i, r];
    }
    if (best === -1) break;
    const [a, b] = [symbols[best]!, symbols[best + 1]!];
    const out: string[] = [];
    for (let i = 0; i < symbols.length; i++) {
      if (symbols[i] === a && symbols[i + 1] === b) out.push(a + b), i++;
      else out.push(symbols[i]!);
    }
    symbols = out;
  }
  return symbols;
}

/** A llama2.c vocabulary over 'ab ' with random merges whose scores tie often. */
function tyingLlama2c(rand: () => number): Llama2cTokenizer {
  const pieces = ['<unk>', '<s>', '</s>', ...Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`), ' ', 'a', 'b'];
  const have = new Set(pieces);
  while (pieces.length < 259 + 3 + 24) {
    const p = pieces[259 + Math.floor(rand() * (pieces.length - 259))]! + pieces[259 + Math.floor(rand() * (pieces.length - 259))]!;
    if (p.length <= 6 && !have.has(p)) have.add(p), pieces.push(p);
  }
  const scores = Float32Array.from(pieces, (_, i) => (i < 259 ? 0 : Math.floor(rand() * 4)));
  return new Llama2cTokenizer(pieces.map((p) => Buffer.from(p, 'latin1')), scores, 6);
}

describe('merge loops: the same tokens as the quadratic references, in n log n work', () => {
  test('llama2.c: stories260K and vocabularies built to tie, on random short texts', () => {
    const rand = mulberry32(7);
    const stories = Llama2cTokenizer.fromFile(repoPath('assets', 'stories260k', 'tokenizer.bin'));
    for (const s of randomTexts(200, 40)) assert.deepEqual(stories.encode(s), referenceLlama2c(stories, s), JSON.stringify(s));
    for (let v = 0; v < 20; v++) {
      const tok = tyingLlama2c(rand);
      for (let i = 0; i < 30; i++) {
        const s = Array.from({ length: 1 + Math.floor(rand() * 30) }, () => 'ab '[Math.floor(rand() * 3)]).join('');
        assert.deepEqual(tok.encode(s), referenceLlama2c(tok, s), `vocabulary ${v}, ${JSON.stringify(s)}`);
      }
    }
  });

  test('GPT-2: the real merges, and random merge lists in hostile orders, on random words', () => {
    const rand = mulberry32(11);
    const gpt2 = Gpt2BpeTokenizer.fromFiles(repoPath('assets', 'gpt2-bpe', 'vocab.json'), repoPath('assets', 'gpt2-bpe', 'merges.txt'));
    const merges = new Map<string, number>();
    for (const s of randomTexts(100, 40)) assert.equal(gpt2.decode(gpt2.encode(s)), s); // the real vocabulary round-trips
    for (let v = 0; v < 20; v++) {
      // Random merges over 'abc', products included in the vocabulary, ranks shuffled (a product may rank
      // before the merge that makes its parts: the case where merging per occurrence would differ).
      const pieces = ['a', 'b', 'c'];
      const list: [string, string][] = [];
      while (list.length < 12) {
        const [x, y] = [pieces[Math.floor(rand() * pieces.length)]!, pieces[Math.floor(rand() * pieces.length)]!];
        if (!pieces.includes(x + y)) pieces.push(x + y), list.push([x, y]);
      }
      list.sort(() => rand() - 0.5);
      const bytes = Array.from({ length: 256 }, (_, b) => b);
      const vocab: Record<string, number> = {};
      const table = bytesToUnicode();
      bytes.forEach((b) => (vocab[table[b]!] = b));
      for (const p of pieces.slice(3)) vocab[p] = Object.keys(vocab).length;
      const tok = new Gpt2BpeTokenizer(vocab, list, { specialTokens: [] });
      merges.clear();
      list.forEach(([x, y], r) => merges.set(`${x} ${y}`, r));
      for (let i = 0; i < 30; i++) {
        const word = Array.from({ length: 1 + Math.floor(rand() * 24) }, () => 'abc'[Math.floor(rand() * 3)]).join('');
        const want = referenceWord(merges, [...word]).map((p) => vocab[p]!);
        assert.deepEqual(tok.encode(word), want, `merges ${JSON.stringify(list)}, word ${word}`);
      }
    }
  });

  test('work grows linearly: 64× the text queues at most ~64× the candidates (a rescan per merge: ~4096×)', () => {
    const stories = Llama2cTokenizer.fromFile(repoPath('assets', 'stories260k', 'tokenizer.bin'));
    const gpt2 = Gpt2BpeTokenizer.fromFiles(repoPath('assets', 'gpt2-bpe', 'vocab.json'), repoPath('assets', 'gpt2-bpe', 'merges.txt'));
    const words = (n: number) => Array.from({ length: n }, (_, i) => ['Once', 'upon', 'a', 'time', 'there', 'was'][i % 6]).join(' ');
    for (const [name, encode, text] of [
      ['llama2.c, words', (s: string) => stories.encode(s), words],
      ['llama2.c, one word', (s: string) => stories.encode(s), (n: number) => 'ab'.repeat(2 * n)],
      ['GPT-2, one word', (s: string) => gpt2.encode(s), (n: number) => 'ab'.repeat(2 * n)],
    ] as const) {
      const work = (n: number) => {
        const before = mergeWork.candidates;
        encode(text(n));
        return mergeWork.candidates - before;
      };
      const small = work(250);
      const large = work(16_000);
      assert.ok(small > 0 && large <= 64 * small * 1.5, `${name}: ${small} candidates for the short text, ${large} for 64× it`);
    }
  });
});

