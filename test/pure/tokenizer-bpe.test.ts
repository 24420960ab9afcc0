import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Gpt2BpeTokenizer } from '../../src/text/bpe.js';
import { HARD_TEXTS, randomTexts, repoPath } from './tokenizer-fixtures.js';

const files = [repoPath('assets', 'gpt2-bpe', 'vocab.json'), repoPath('assets', 'gpt2-bpe', 'merges.txt')] as const;
const tok = Gpt2BpeTokenizer.fromFiles(...files);

describe('GPT-2 byte-level BPE', () => {
  test('vocabulary and special ids', () => {
    assert.equal(tok.vocabSize, 50257);
    assert.equal(tok.bosId, 50256);
    assert.deepEqual(tok.eosIds, [50256]);
    assert.equal(tok.padId, null);
    assert.equal(tok.idToPiece(262), 'Ġthe');
    assert.equal(tok.idToPiece(50256), '<|endoftext|>');
  });

  test('known ids', () => {
    assert.deepEqual(tok.encode('Hello world'), [15496, 995]);
    assert.deepEqual(tok.encode(' the'), [262]);
    assert.deepEqual(tok.encode(''), []);
    assert.deepEqual(tok.encode('Hello world', { addBos: true }), [50256, 15496, 995]);
  });

  test('matches OpenAI encoder.py (Python `regex`) on contractions, whitespace runs, bytes and Unicode whitespace', () => {
    // Ids from OpenAI gpt-2 src/encoder.py's algorithm run with Python's `regex` module (the same ids as
    // Hugging Face `tokenizers` 0.23 ByteLevel BPE on these files). The last two need `\p{White_Space}`:
    // with JavaScript's `\s`, ' \u0085' and ' \ufeff' would split differently.
    const golden: [string, number[]][] = [
      ["I'm   here\n\n  ok ", [40, 1101, 220, 220, 994, 628, 220, 12876, 220]],
      ['héllo 日本 🎉\n', [71, 2634, 18798, 10545, 245, 98, 17312, 105, 12520, 236, 231, 198]],
      ['a \u0085b', [64, 220, 126, 227, 65]],
      ['a \ufeffb', [64, 27332, 119, 123, 65]],
    ];
    for (const [text, ids] of golden) assert.deepEqual(tok.encode(text), ids, JSON.stringify(text));
  });

  test('round trip is exact for any text (byte-level: every byte has a piece)', () => {
    for (const s of ['', ' ', '  \n \t', ...HARD_TEXTS, ...randomTexts(300, 80)]) {
      assert.equal(tok.decode(tok.encode(s)), s, JSON.stringify(s));
    }
  });

  test('<|endoftext|> written in the text is the special token (as in Hugging Face), unless disabled', () => {
    assert.deepEqual(tok.encode('<|endoftext|>'), [50256]);
    assert.deepEqual(tok.encode('a<|endoftext|>b'), [64, 50256, 65]);
    const plain = Gpt2BpeTokenizer.fromFiles(...files, { specialTokens: [] });
    const ids = plain.encode('<|endoftext|>');
    assert.ok(!ids.includes(50256) && ids.length > 1);
    assert.equal(plain.decode(ids), '<|endoftext|>');
  });

  test('decode skips <|endoftext|> by default; skipSpecial: false keeps it', () => {
    const ids = tok.encode('one<|endoftext|>two');
    assert.equal(tok.decode(ids), 'onetwo');
    assert.equal(tok.decode(ids, { skipSpecial: false }), 'one<|endoftext|>two');
  });

  test('decode rejects ids outside the vocabulary', () => {
    assert.throws(() => tok.decode([15496, 50257]), /token id 50257 is outside the vocabulary \(size 50257\)/);
  });

  test('a vocabulary with gaps or a malformed merge line is a clear error', () => {
    assert.throws(() => new Gpt2BpeTokenizer({ a: 0, b: 2 }, []), /one-to-one onto ids 0..1/);
    assert.throws(() => new Gpt2BpeTokenizer({ a: 0 }, [], { specialTokens: ['<|x|>'] }), /special token "<\|x\|>" is not in the GPT-2 vocabulary/);
  });
});
