import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Gpt2BpeTokenizer } from '../../src/text/bpe.js';
import { HfTokenizer, type HfTokenizerConfig } from '../../src/text/hf.js';
import { loadTokenizer } from '../../src/text/tokenizer.js';
import { HARD_TEXTS, randomTexts, repoPath } from './tokenizer-fixtures.js';

// test/fixtures/hf-tokenizer: a hand-made Llama-style tokenizer.json (Prepend/Replace '▁' normalizer, BPE with
// byte fallback, Sequence decoder, TemplateProcessing adding <s>) and its tokenizer_config.json.
const fixtureDir = repoPath('test', 'fixtures', 'hf-tokenizer');
const tokenizerJson = JSON.parse(readFileSync(join(fixtureDir, 'tokenizer.json'), 'utf8')) as object;
const config = JSON.parse(readFileSync(join(fixtureDir, 'tokenizer_config.json'), 'utf8')) as HfTokenizerConfig;
const tok = HfTokenizer.fromDir(fixtureDir);
const tmp = mkdtempSync(join(tmpdir(), 'rlhf-hf-tok-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('Hugging Face tokenizer.json', () => {
  test('special tokens and template come from tokenizer_config.json', () => {
    assert.equal(tok.vocabSize, 299);
    assert.equal(tok.bosId, 1);
    assert.deepEqual(tok.eosIds, [2]);
    assert.equal(tok.padId, 298);
    assert.equal(tok.bosToken, '<s>'); // given as a serialized AddedToken object
    assert.equal(tok.eosToken, '</s>');
    assert.match(tok.chatTemplate ?? '', /<\|im_start\|>/);
    assert.equal(tok.idToPiece(295), '▁Hello');
  });

  test('ids and decodes equal the Rust `tokenizers` crate on the same files', () => {
    // From Hugging Face `tokenizers` 0.23.2 (Python): encode(s, add_special_tokens=True).ids, and decode of
    // those ids without special tokens.
    const golden: [string, number[]][] = [
      ['Hello world', [1, 295, 291]],
      ['the world and a Hello', [1, 282, 291, 294, 292, 295]],
      ['Hello, world!', [1, 295, 276, 291, 278]],
      ['héllo 日本 🎉', [1, 259, 264, 198, 172, 283, 268, 259, 233, 154, 168, 233, 159, 175, 259, 243, 162, 145, 140]],
      ['  two  spaces', [1, 259, 259, 281, 272, 268, 259, 259, 270, 115, 260, 102, 263, 270]],
      ['zzz', [1, 259, 125, 125, 125]],
      ['', [1]],
    ];
    for (const [text, ids] of golden) {
      assert.deepEqual(tok.encode(text), ids, JSON.stringify(text));
      assert.equal(tok.decode(ids), text);
    }
    // Llama's legacy normalizer prepends '▁' to the text after a special token, in Rust and here alike.
    const chat = tok.encode('<|im_start|>user\nHello<|im_end|>', { addBos: false });
    assert.deepEqual(chat, [296, 259, 120, 270, 263, 269, 13, 286, 297]);
    assert.equal(tok.decode(chat), 'user\nHello');
    assert.equal(tok.decode(chat, { skipSpecial: false }), '<|im_start|> user\nHello<|im_end|>');
  });

  test('round trip is exact (byte fallback covers every character)', () => {
    for (const s of [' ', ...HARD_TEXTS.filter((t) => !t.includes('<s>')), ...randomTexts(200, 60)]) {
      assert.equal(tok.decode(tok.encode(s)), s, JSON.stringify(s));
    }
  });

  test('addBos: add_bos_token when given, else whether the post-processor prepends BOS', () => {
    const { add_bos_token: _, ...withoutFlag } = config;
    assert.deepEqual(new HfTokenizer(tokenizerJson, withoutFlag).encode('Hello'), [1, 295]);
    assert.deepEqual(new HfTokenizer(tokenizerJson, { ...config, add_bos_token: false }).encode('Hello'), [295]);
    assert.deepEqual(tok.encode('Hello', { addBos: false }), [295]);
    const noBos = new HfTokenizer(tokenizerJson, { ...config, bos_token: null });
    assert.deepEqual(noBos.encode('Hello'), [295]);
    assert.throws(() => noBos.encode('Hello', { addBos: true }), /no bos_token/);
  });

  test('a GPT-2 tokenizer.json gives the same ids as the GPT-2 BPE implementation', () => {
    const vocab = JSON.parse(readFileSync(repoPath('assets', 'gpt2-bpe', 'vocab.json'), 'utf8')) as Record<string, number>;
    const merges = readFileSync(repoPath('assets', 'gpt2-bpe', 'merges.txt'), 'utf8').split('\n').filter((l) => l !== '');
    const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
    const gpt2Json = {
      added_tokens: [{ id: 50256, content: '<|endoftext|>', special: true, normalized: false }],
      normalizer: null,
      pre_tokenizer: byteLevel,
      post_processor: byteLevel,
      decoder: byteLevel,
      model: { type: 'BPE', vocab, merges, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, byte_fallback: false },
    };
    const hf = new HfTokenizer(gpt2Json, { bos_token: '<|endoftext|>', eos_token: '<|endoftext|>' });
    const ours = Gpt2BpeTokenizer.fromFiles(repoPath('assets', 'gpt2-bpe', 'vocab.json'), repoPath('assets', 'gpt2-bpe', 'merges.txt'));
    assert.equal(hf.vocabSize, 50257);
    assert.deepEqual(hf.encode('Hello world'), [15496, 995]); // GPT-2's post-processor adds no BOS
    for (const s of [...HARD_TEXTS, 'a<|endoftext|>b', ...randomTexts(100, 60, 7)]) {
      assert.deepEqual(hf.encode(s), ours.encode(s), JSON.stringify(s));
      assert.equal(hf.decode(hf.encode(s), { skipSpecial: false }), s);
    }
  });

  test('errors name the problem', () => {
    assert.throws(() => tok.decode([1, 299]), /token id 299 is outside the vocabulary \(size 299\)/);
    assert.equal(tok.decode([]), '');
    assert.throws(() => new HfTokenizer(tokenizerJson, { ...config, eos_token: '<eos>' }), /eos_token "<eos>" is not in the vocabulary/);
    assert.throws(() => HfTokenizer.fromDir(tmp), /Hugging Face tokenizer in .*rlhf-hf-tok-.*: no tokenizer\.json/);
  });
});

describe('loadTokenizer', () => {
  test('picks the format from the files in the directory', () => {
    assert.ok(loadTokenizer(fixtureDir) instanceof HfTokenizer);
    const l2c = loadTokenizer(repoPath('assets', 'stories260k'));
    assert.equal(l2c.constructor.name, 'Llama2cTokenizer');
    assert.deepEqual(l2c.eosIds, [1, 2]); // from the directory's generation_config.json: stories end with BOS
    assert.deepEqual(loadTokenizer(repoPath('assets', 'stories260k'), { eosIds: [2] }).eosIds, [2]);
    assert.ok(loadTokenizer(repoPath('assets', 'gpt2-bpe')) instanceof Gpt2BpeTokenizer);
  });

  test("reads eos_token_id (a number or a list) from generation_config.json, then config.json; and the side files", () => {
    const dir = join(tmp, 'model');
    cpSync(fixtureDir, dir, { recursive: true });
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ eos_token_id: 297 }));
    assert.deepEqual(loadTokenizer(dir).eosIds, [297]);
    writeFileSync(join(dir, 'generation_config.json'), JSON.stringify({ eos_token_id: [2, 297] }));
    assert.deepEqual(loadTokenizer(dir).eosIds, [2, 297]);
    assert.deepEqual(loadTokenizer(dir, { eosIds: [2] }).eosIds, [2]);
    writeFileSync(join(dir, 'special_tokens_map.json'), JSON.stringify({ eos_token: '<|im_end|>' }));
    writeFileSync(join(dir, 'chat_template.jinja'), '{{ messages[0].content }}');
    const fromFiles = HfTokenizer.fromDir(dir);
    assert.equal(fromFiles.eosToken, '<|im_end|>'); // special_tokens_map.json overrides tokenizer_config.json
    assert.equal(fromFiles.chatTemplate, '{{ messages[0].content }}'); // chat_template.jinja wins too
    writeFileSync(join(dir, 'generation_config.json'), JSON.stringify({ eos_token_id: 'x' }));
    assert.throws(() => loadTokenizer(dir), /generation_config\.json: eos_token_id must be/);
  });

  test('an empty directory is an error naming it and the files looked for', () => {
    const empty = mkdtempSync(join(tmp, 'empty-'));
    assert.throws(
      () => loadTokenizer(empty),
      (e: Error) => e.message.includes(empty) && /tokenizer\.json.*tokenizer\.bin.*vocab\.json \+ merges\.txt/.test(e.message),
    );
  });
});
