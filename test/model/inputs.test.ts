// Hostile inputs (issue 15): over-long records refused before they are tokenized, config.json sizes checked
// against the weights before allocation, bad bytes and identical pairs counted, usage errors exit 2.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { PairRecord } from '../../src/data/index.js';
import { dataWarnings } from '../../src/data/load.js';
import { loadModel } from '../../src/models/hub.js';
import { loadRewardRecords, tokenizeRecords } from '../../src/reward/pairs.js';
import { tokenizeLabelled } from '../../src/rlhf/kto/trainer.js';
import { tokenizeExamples } from '../../src/rlhf/sft/data.js';
import { memory } from '../../src/tensor/index.js';
import { Llama2cTokenizer, type Tokenizer } from '../../src/text/index.js';
import { mergeWork } from '../../src/text/merge-queue.js';
import { ROOT, rlhfInProcess } from './run-cli.js';

const TMP = mkdtempSync(join(tmpdir(), 'rlhf-inputs-'));
after(() => rmSync(TMP, { recursive: true, force: true }));
const STORIES = join(ROOT, 'assets', 'stories260k');

/** stories260K's tokenizer, counting the characters it is asked to encode. */
function countingTokenizer(): { tok: Tokenizer; encoded: () => number } {
  const inner = Llama2cTokenizer.fromFile(join(STORIES, 'tokenizer.bin'));
  let chars = 0;
  const tok = Object.assign(Object.create(inner) as Tokenizer, {
    encode: (text: string, opts?: { addBos?: boolean }) => ((chars += text.length), inner.encode(text, opts)),
  });
  return { tok, encoded: () => chars };
}

const MEGABYTE_WORD = 'a'.repeat(1 << 20);
const WORDS_100K = Array.from({ length: 100_000 }, (_, i) => ['Once', 'upon', 'a', 'time'][i % 4]).join(' ');

describe('over-long records are refused before they are tokenized', () => {
  test('every loader drops a 1 MB word and a 100k-word record after encoding only the short ones', async () => {
    const pairs = join(TMP, 'long-pairs.jsonl');
    writeFileSync(pairs, [
      { prompt: 'Once', chosen: ' upon a time', rejected: ' there was' },
      { prompt: MEGABYTE_WORD, chosen: ' a', rejected: ' b' },
      { prompt: 'Once', chosen: WORDS_100K, rejected: ' b' },
    ].map((r) => JSON.stringify(r)).join('\n') + '\n');
    const src = { path: pairs, testPath: '', format: 'pairwise', splitSeed: 0, splitRatio: 0, skipInvalid: false };
    const records = (await loadRewardRecords(src, 'test')).records as PairRecord[];
    assert.equal(records.length, 3);
    const short = 64; // what the one short record costs, with room to spare
    // Reward models and the DPO family (tokenPairs is tokenizeRecords):
    let t = countingTokenizer();
    assert.equal(tokenizeRecords(records, t.tok, 256).tooLong, 2);
    assert.ok(t.encoded() < short, `reward/DPO records encoded ${t.encoded()} characters`);
    // KTO:
    t = countingTokenizer();
    const labelled = records.map((r) => ({ ...r, kind: 'binary' as const, completion: r.chosen, label: true }));
    assert.equal(tokenizeLabelled(labelled, t.tok, 256).tooLong, 2);
    assert.ok(t.encoded() < short, `KTO records encoded ${t.encoded()} characters`);
    // SFT:
    t = countingTokenizer();
    assert.equal(tokenizeExamples(records.map((r) => ({ prompt: r.prompt, completion: r.chosen })), t.tok, { maxTokens: 256, eosId: 2 }).tooLong, 2);
    assert.ok(t.encoded() < short, `SFT examples encoded ${t.encoded()} characters`);
  });

  test('generate refuses a 1 MB or 100k-word prompt (exit 2, naming the prompt) without running the tokenizer', async () => {
    for (const prompt of [MEGABYTE_WORD, WORDS_100K]) {
      const before = mergeWork.candidates;
      const r = await rlhfInProcess(['generate', '--prompt', 'Once', '--prompt', prompt, '--max-new-tokens', '4']);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /^rlhf: --prompt 2 is \d+ characters: over the \d+ tokens/);
      assert.ok(mergeWork.candidates - before < 100, `${mergeWork.candidates - before} merge candidates: the refused prompt was encoded`);
    }
  });
});

describe('config.json is checked against the weights before the model is built', () => {
  const withConfig = (name: string, edit: (c: Record<string, unknown>) => void): string => {
    const dir = join(TMP, name);
    cpSync(STORIES, dir, { recursive: true });
    const c = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    edit(c);
    writeFileSync(join(dir, 'config.json'), JSON.stringify(c));
    return dir;
  };

  test('1,000,000 layers, hidden_size 1e9, or sizes the weights contradict fail naming the field, allocating nothing', () => {
    const cases: [string, (c: Record<string, unknown>) => void, RegExp][] = [
      ['layers', (c) => (c.num_hidden_layers = 1_000_000), /field 'num_hidden_layers': 1000000 is over the limit/],
      ['hidden', (c) => (c.hidden_size = 1e9), /field 'hidden_size': 1000000000 is over the limit/],
      ['fewer', (c) => (c.num_hidden_layers = 500), /field 'num_hidden_layers' is 500 but .*model\.safetensors has 5 layers/],
      ['vocab', (c) => (c.vocab_size = 4096), /field 'vocab_size' is 4096 but model\.embed_tokens\.weight in .* has shape \[512, 64\]/],
      ['ffn', (c) => (c.intermediate_size = 100_000), /field 'intermediate_size' is 100000 but model\.layers\.0\.mlp\.gate_proj\.weight/],
    ];
    for (const [name, edit, message] of cases) {
      const dir = withConfig(name, edit);
      const [native, rss] = [memory().nativeBytes, process.memoryUsage().rss];
      assert.throws(() => loadModel(dir), (e: Error) => message.test(e.message) && e.message.includes(join(dir, 'config.json')), name);
      assert.ok(memory().nativeBytes - native < 4 << 20, `${name}: native memory grew ${memory().nativeBytes - native} bytes`);
      assert.ok(process.memoryUsage().rss - rss < 64 << 20, `${name}: RSS grew ${process.memoryUsage().rss - rss} bytes`);
    }
  });
});

describe('bad data is counted, not trained on silently', () => {
  test('bytes that are not UTF-8 give one warning with the count and the first file:line', async () => {
    const file = join(TMP, 'latin1.jsonl');
    const good = Buffer.from(JSON.stringify({ prompt: 'p', chosen: 'a', rejected: 'b' }) + '\n');
    const bad = Buffer.concat([Buffer.from('{"prompt": "caf'), Buffer.from([0xe9]), Buffer.from('", "chosen": "a", "rejected": "b"}\n')]);
    writeFileSync(file, Buffer.concat([good, bad, good, bad]));
    const warnings: string[] = [];
    const write = dataWarnings.write;
    dataWarnings.write = (l) => void warnings.push(l);
    try {
      const { records } = await loadRewardRecords({ path: file, testPath: '', format: 'pairwise', splitSeed: 0, splitRatio: 0, skipInvalid: false }, 'test');
      assert.equal(records.length, 4);
    } finally {
      dataWarnings.write = write;
    }
    assert.deepEqual(warnings, [`${file}:2: bytes that are not UTF-8, replaced by U+FFFD (2 lines in this file)`]);
  });

  test('a pair with chosen == rejected is an error naming file:line, or skipped and counted with skipInvalid', async () => {
    const file = join(TMP, 'same.jsonl');
    writeFileSync(file, [{ prompt: 'p', chosen: 'a', rejected: 'b' }, { prompt: 'p', chosen: 'same', rejected: 'same' }].map((r) => JSON.stringify(r)).join('\n'));
    const src = { path: file, testPath: '', format: 'pairwise', splitSeed: 0, splitRatio: 0, skipInvalid: false };
    await assert.rejects(loadRewardRecords(src, 'test'), new RegExp(`${file.replace(/[.]/g, '\\.')}:2: field 'rejected': chosen and rejected are the same text`));
    const r = await loadRewardRecords({ ...src, skipInvalid: true }, 'test');
    assert.deepEqual([r.records.length, r.invalid], [1, 1]);
  });
});

describe('usage errors and output', () => {
  test('generate: out-of-range options exit 2; plain output ends with a newline', async () => {
    for (const args of [['--seed', '1e300'], ['--seed', '-1'], ['--top-p', '0'], ['--temperature', '-1'], ['--max-new-tokens', '1.5'], ['--batch-size', '0']]) {
      const r = await rlhfInProcess(['generate', ...args]);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
    const ok = await rlhfInProcess(['generate', '--prompt', 'Once', '--max-new-tokens', '3', '--temperature', '0']);
    assert.equal(ok.status, 0, ok.stderr);
    assert.ok(ok.stdout.endsWith('\n') && ok.stdout.startsWith('Once'), JSON.stringify(ok.stdout));
  });

  test('--threads and seeds out of range are usage errors in every command that takes them', async () => {
    for (const args of [['eval', 'rm', '--threads', '-2'], ['eval', 'rm', '--threads', '1000'], ['eval', 'rm', '--seed', '1e300'], ['sample', 'sentiment-pairs', '--threads', '2.5']]) {
      const r = await rlhfInProcess(args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    }
    const r = await rlhfInProcess(['train', 'rm', '--set', 'train.threads=-2']);
    assert.match(r.stderr, /--set train\.threads=-2: 'train\.threads' must be >= 0/);
    const s = await rlhfInProcess(['train', 'dpo', '--set', 'seed=1e300']);
    assert.match(s.stderr, /--set seed=1e300: 'seed' must be <= 4294967295/);
  });
});
