import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { Llama2cTokenizer } from '../../src/text/llama2c.js';
import { HARD_TEXTS, randomTexts, repoPath } from './tokenizer-fixtures.js';

const tok = Llama2cTokenizer.fromFile(repoPath('assets', 'stories260k', 'tokenizer.bin'));
const idOf = (piece: string): number => {
  for (let id = 0; id < tok.vocabSize; id++) if (tok.idToPiece(id) === piece) return id;
  throw new Error(`no piece ${JSON.stringify(piece)}`);
};

describe('llama2.c tokenizer.bin (stories260K)', () => {
  test('reads the 512-entry vocabulary: specials, then <0x00>..<0xFF> at 3..258', () => {
    assert.equal(tok.vocabSize, 512);
    assert.equal(tok.maxTokenLength, 7);
    assert.deepEqual([0, 1, 2].map((id) => tok.idToPiece(id)), ['<unk>', '\n<s>\n', '\n</s>\n']);
    assert.equal(tok.idToPiece(3), '<0x00>');
    assert.equal(tok.idToPiece(3 + 0x0a), '<0x0A>');
    assert.equal(tok.idToPiece(258), '<0xFF>');
    assert.equal(tok.bosId, 1);
    assert.deepEqual(tok.eosIds, [2]);
    assert.equal(tok.padId, null);
    // stories260K ends its stories with BOS: its config passes both.
    assert.deepEqual(Llama2cTokenizer.fromFile(repoPath('assets', 'stories260k', 'tokenizer.bin'), { eosIds: [1, 2] }).eosIds, [1, 2]);
  });

  test('encodes exactly as run.c does', () => {
    // Ids from llama2.c run.c's encode(text, bos=1, eos=0), compiled as a standalone harness on this file.
    const golden: [string, number[]][] = [
      ['Once upon a time', [1, 403, 407, 261, 378]],
      ['Lily\'s mom said, "Lily, let\'s go to the park."', [1, 317, 439, 419, 357, 336, 432, 313, 438, 310, 432, 278, 316, 439, 419, 298, 414, 267, 265, 282, 295, 433, 426, 436]],
      ['héllo 日本 🎉', [1, 270, 485, 306, 414, 410, 233, 154, 168, 233, 159, 175, 410, 243, 162, 145, 140]],
      ['  two  spaces\n\nend', [1, 410, 410, 259, 424, 414, 410, 262, 427, 412, 331, 419, 13, 13, 367]],
    ];
    for (const [text, ids] of golden) assert.deepEqual(tok.encode(text), ids, JSON.stringify(text));
    assert.deepEqual(tok.encode('Once upon a time').map((id) => tok.idToPiece(id)), ['\n<s>\n', ' Once', ' upon', ' a', ' time']);
  });

  test('BOS is optional, and the dummy-prefix space is added only to non-empty text', () => {
    assert.deepEqual(tok.encode(''), [1]);
    assert.deepEqual(tok.encode('', { addBos: false }), []);
    assert.deepEqual(tok.encode('Once upon a time', { addBos: false }), [403, 407, 261, 378]);
  });

  test('code points outside the vocabulary fall back to one <0xXX> token per UTF-8 byte (id = byte + 3)', () => {
    const bytes = [...Buffer.from('🎉', 'utf8')];
    assert.deepEqual(tok.encode('🎉', { addBos: false }), [idOf(' '), ...bytes.map((b) => b + 3)]);
  });

  test('round trip: decode(encode(s)) === s, since the piece after BOS loses exactly the dummy-prefix space', () => {
    const story = readFileSync(repoPath('test', 'fixtures', 'stories260k', 'expected-greedy-200.txt'), 'utf8');
    for (const s of [story, '', ' ', '  ', 'a\u0000b', ...HARD_TEXTS, ...randomTexts(300, 60)]) {
      assert.equal(tok.decode(tok.encode(s)), s, JSON.stringify(s));
      // Without BOS nothing is stripped, so the dummy prefix shows.
      assert.equal(tok.decode(tok.encode(s, { addBos: false })), s === '' ? '' : ' ' + s, JSON.stringify(s));
    }
  });

  test('decode strips a leading space only from the piece right after BOS, and only one', () => {
    const once = idOf(' Once');
    assert.equal(tok.decode([1, once]), 'Once');
    assert.equal(tok.decode([once]), ' Once');
    assert.equal(tok.decode([1, once, once]), 'Once Once');
    assert.equal(tok.decode([1, idOf(' '), once]), ' Once');
    assert.equal(tok.decode([once, 1, once]), ' OnceOnce'); // a BOS mid-sequence strips the next piece too
    // The check is on the stored piece: the byte token <0x20> after BOS stays a space, as in run.c.
    assert.equal(tok.decode([1, 3 + 0x20, once]), '  Once');
  });

  test('byte tokens decode to raw bytes, joined into UTF-8; a lone partial sequence becomes U+FFFD', () => {
    assert.equal(tok.decode([0xe6 + 3, 0x97 + 3, 0xa5 + 3]), '日');
    assert.equal(tok.decode([0xe6 + 3]), '\ufffd');
  });

  test('special tokens are skipped by default; skipSpecial: false shows their pieces', () => {
    const ids = [1, idOf(' Once'), 2];
    assert.equal(tok.decode(ids), 'Once');
    assert.equal(tok.decode(ids, { skipSpecial: false }), '\n<s>\nOnce\n</s>\n');
  });

  test('decode and idToPiece reject ids outside the vocabulary', () => {
    assert.throws(() => tok.decode([1, 512]), /token id 512 is outside the vocabulary \(size 512\)/);
    assert.throws(() => tok.decode([-1]), /token id -1 is outside/);
    assert.throws(() => tok.decode([1.5]), /token id 1.5 is outside/);
    assert.throws(() => tok.idToPiece(600), /token id 600/);
    assert.throws(() => Llama2cTokenizer.fromFile(repoPath('assets', 'stories260k', 'tokenizer.bin'), { eosIds: [512] }), /token id 512/);
  });
});

describe('llama2.c merge rule on a hand-made vocabulary', () => {
  // ids: 0..2 specials, 3 ' ', 4 'a', 5 'b', 6 'ab', 7 'ba', 8 ' a'; no byte pieces.
  const make = (abScore: number, baScore: number): Llama2cTokenizer => {
    const pieces = ['<unk>', '<s>', '</s>', ' ', 'a', 'b', 'ab', 'ba', ' a'].map((p) => new TextEncoder().encode(p));
    return new Llama2cTokenizer(pieces, Float32Array.from([0, 0, 0, 0, 0, 0, abScore, baScore, -5]), 2);
  };

  test('the highest-scoring pair merges first; the leftmost wins a tie', () => {
    assert.deepEqual(make(1, 1).encode('aba', { addBos: false }), [3, 6, 4]); // ' ' 'ab' 'a'
    assert.deepEqual(make(1, 2).encode('aba', { addBos: false }), [8, 7]); // ' ' 'a' 'ba' → ' a' 'ba'
  });

  test('scores are compared as run.c does: nothing at or below -1e10 ever merges', () => {
    assert.deepEqual(make(-1e10, -1e10).encode('ab', { addBos: false }), [8, 5]);
  });

  test('a missing code point is a clear error when the vocabulary has no byte pieces', () => {
    assert.throws(() => make(1, 1).encode('c'), /U\+0063 is not in this llama2.c vocabulary/);
  });

  test('a truncated file is a clear error', () => {
    const bytes = readFileSync(repoPath('assets', 'stories260k', 'tokenizer.bin'));
    assert.throws(() => Llama2cTokenizer.fromBytes(bytes.subarray(0, 101)), /truncated|past the end/);
  });
});
