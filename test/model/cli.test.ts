/**
 * The `rlhf` command as a user runs it (`node bin/rlhf.js …` in a child process): the golden greedy story
 * of llama2.c's run.c, the --json contract of generate and score (one line of JSON, values matching the
 * library in-process), and exit codes with one-line reasons. Each spawn loads libtorch (~1–2 s), so all
 * of them start at once in `before` and the tests await their results.
 * Tags: @numeric
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { generate } from '../../src/generate/generate.js';
import { tokenLogprobs } from '../../src/generate/score.js';
import type { CausalLM } from '../../src/models/common.js';
import { loadModel, resolveModelDir } from '../../src/models/hub.js';
import { noGrad, scope, tensor } from '../../src/tensor/index.js';
import { loadTokenizer, type Tokenizer } from '../../src/text/index.js';
import { ROOT, rlhf, type Run } from './run-cli.js';
import { completionBound, logprobBound, maxAbsLogit, STORIES260K, STORIES260K_VOCAB } from '../tolerance.js';
import { reportBound } from '../env.js';

const GOLDEN = join(ROOT, 'test', 'fixtures', 'stories260k', 'expected-greedy-200.txt');

/**
 * Starts every command, at most one per CPU at a time (more would only oversubscribe libtorch's
 * threads), and returns one promise per command.
 */
function runAll<K extends string>(commands: Record<K, string[]>): Record<K, Promise<Run>> {
  const slots = Math.max(1, availableParallelism());
  let active = 0;
  const waiting: (() => void)[] = [];
  const limited = (args: string[]) => new Promise<Run>((resolve) => {
    const go = () => {
      active++;
      void rlhf(args).then((r) => {
        active--;
        waiting.shift()?.();
        resolve(r);
      });
    };
    if (active < slots) go();
    else waiting.push(go);
  });
  return Object.fromEntries(Object.entries<string[]>(commands).map(([k, args]) => [k, limited(args)])) as Record<K, Promise<Run>>;
}

const PROMPTS = ['Once upon a time', 'The cat'];
const GEN = ['generate', '--json', '--prompt', PROMPTS[0]!, '--prompt', PROMPTS[1]!, '--max-new-tokens', '60', '--seed', '5'];
const SCORE_TEXT = 'Once upon a time';
const ASSET = (f: string) => join(ROOT, 'assets', 'stories260k', f);

const RUNS = {
  golden: ['generate', '--model', 'stories260k', '--max-new-tokens', '200', '--temperature', '0'],
  json: GEN,
  jsonBatch1: [...GEN, '--batch-size', '1'],
  score: ['score', '--text', SCORE_TEXT, '--json'],
  unknownOption: ['generate', '--max-new-tkens', '5'],
  missingModel: ['generate', '--model', '/nonexistent', '--max-new-tokens', '5'],
  convertNoOut: ['convert', 'llama2c', '--checkpoint', ASSET('model.safetensors'), '--tokenizer', ASSET('tokenizer.bin')],
} satisfies Record<string, string[]>;

let results: Record<keyof typeof RUNS, Promise<Run>>;
let model: CausalLM;

let tok: Tokenizer;

before(() => {
  results = runAll(RUNS);
  model = loadModel('stories260k');
  tok = loadTokenizer(resolveModelDir('stories260k'), { eosIds: model.config.eosTokenIds });
});
after(async () => {
  await Promise.all(Object.values(results)); // no child outlives the file
  model.dispose();
});

/** Asserts a successful --json run printed exactly one line of JSON, and returns it parsed. */
function oneJsonLine(r: Run): Record<string, unknown> {
  assert.equal(r.status, 0, `exit ${r.status}: ${r.stderr}`);
  assert.ok(r.stdout.endsWith('\n'), 'stdout must end with a newline');
  assert.equal(r.stdout.split('\n').length, 2, `stdout must be one line, got:\n${r.stdout}`);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

interface CliCompletion {
  prompt: string;
  text: string;
  tokens: number[];
  logprobs: number[];
  finish_reason: string;
}

describe('rlhf generate', () => {
  test('greedy 200 tokens from BOS print exactly llama2.c run.c\'s story', async () => {
    const r = await results.golden;
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, readFileSync(GOLDEN, 'utf8') + '\n', 'the story, then the newline a terminal needs');
  });

  test('--json: one line with completions[].{prompt,text,tokens,logprobs,finish_reason}, text = decode(prompt+tokens) − decode(prompt)', async () => {
    const out = oneJsonLine(await results.json);
    assert.deepEqual(Object.keys(out), ['completions']);
    const cs = out.completions as CliCompletion[];
    assert.equal(cs.length, 2);
    cs.forEach((c, i) => {
      assert.deepEqual(Object.keys(c).sort(), ['finish_reason', 'logprobs', 'prompt', 'text', 'tokens']);
      assert.equal(c.prompt, PROMPTS[i]);
      assert.equal(c.tokens.length, c.logprobs.length);
      assert.ok(c.tokens.length > 0 && c.tokens.length <= 60);
      assert.ok(c.tokens.every((t) => Number.isInteger(t) && t >= 0 && t < 512));
      assert.ok(c.logprobs.every((lp) => Number.isFinite(lp) && lp <= 0));
      assert.ok(['eos', 'length', 'stop'].includes(c.finish_reason));
      assert.equal(c.finish_reason === 'length', c.tokens.length === 60);
      const p = tok.encode(PROMPTS[i]!, { addBos: true });
      const whole = tok.decode([...p, ...c.tokens]);
      const head = tok.decode(p);
      assert.ok(whole.startsWith(head));
      assert.equal(c.text, whole.slice(head.length));
      assert.ok(c.text.length > 0);
    });
    // What the library gives in-process for the same prompts, seed and streams.
    const ps = PROMPTS.map((t) => tok.encode(t, { addBos: true }));
    const lib = generate(model, ps, { maxNewTokens: 60, temperature: 1, seed: 5 });
    // The CLI may run on another thread count than this process: the float32 bound (test/tolerance.ts).
    const bound = completionBound(model, STORIES260K, ps, lib.map((c) => c.tokens));
    reportBound('rlhf generate (CLI) vs generate() in-process (log-probs)', Math.max(0, ...lib.flatMap((c, i) => c.logprobs.map((lp, j) => Math.abs(lp - cs[i]!.logprobs[j]!)))), bound, 1e-6);
    lib.forEach((c, i) => {
      assert.deepEqual(cs[i]!.tokens, c.tokens, `prompt ${i}`);
      c.logprobs.forEach((lp, j) => assert.ok(Math.abs(lp - cs[i]!.logprobs[j]!) <= bound, `prompt ${i} logprob ${j}: ${lp} vs ${cs[i]!.logprobs[j]} (bound ${bound})`));
    });
  });

  test('--batch-size 1 gives the same completions as one batch', async () => {
    const [batched, single] = [oneJsonLine(await results.json), oneJsonLine(await results.jsonBatch1)];
    const a = batched.completions as CliCompletion[];
    const b = single.completions as CliCompletion[];
    assert.deepEqual(b.map(({ logprobs: _, ...rest }) => rest), a.map(({ logprobs: _, ...rest }) => rest));
    // Batch 1 against one left-padded batch: other GEMM shapes and attention lengths (test/tolerance.ts).
    const bound = completionBound(model, STORIES260K, PROMPTS.map((t) => tok.encode(t, { addBos: true })), a.map((c) => c.tokens));
    reportBound('rlhf generate --batch-size 1 vs one batch (log-probs)', Math.max(0, ...a.flatMap((c, i) => c.logprobs.map((lp, j) => Math.abs(lp - b[i]!.logprobs[j]!)))), bound, 1e-4);
    a.forEach((c, i) => c.logprobs.forEach((lp, j) => assert.ok(Math.abs(lp - b[i]!.logprobs[j]!) <= bound, `prompt ${i} logprob ${j} (bound ${bound})`)));
  });
});

describe('rlhf score', () => {
  test('--json: tokens from BOS, one log-prob per next token, their sum; equal to tokenLogprobs in-process', async () => {
    const out = oneJsonLine(await results.score);
    assert.deepEqual(Object.keys(out).sort(), ['logprobs', 'sum_logprob', 'tokens']);
    const tokens = out.tokens as number[];
    const logprobs = out.logprobs as number[];
    assert.equal(tokens[0], 1);
    assert.deepEqual(tokens, tok.encode(SCORE_TEXT, { addBos: true }));
    assert.equal(logprobs.length, tokens.length - 1);
    assert.equal(out.sum_logprob, logprobs.reduce((a, b) => a + b, 0));
    assert.ok(logprobs.every((lp) => lp <= 0));
    const want = noGrad(() => scope(() => Array.from(tokenLogprobs(model, tensor([tokens.map(BigInt)]), null).data() as Float32Array)));
    const bound = logprobBound(STORIES260K, tokens.length, maxAbsLogit(model, [tokens]), STORIES260K_VOCAB); // another process, maybe other threads
    reportBound('rlhf score (CLI) vs tokenLogprobs in-process', Math.max(0, ...want.map((lp, j) => Math.abs(lp - logprobs[j]!))), bound, 1e-6);
    want.forEach((lp, j) => assert.ok(Math.abs(lp - logprobs[j]!) <= bound, `logprob ${j}: ${logprobs[j]} vs ${lp} (bound ${bound})`));
  });
});

describe('exit codes', () => {
  /** A failed run: the expected status, nothing on stdout, one line on stderr; returns that line. */
  function failure(r: Run, status: number): string {
    assert.equal(r.status, status, `exit ${r.status}, stderr: ${r.stderr}`);
    assert.equal(r.stdout, '');
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, `stderr must be one line, got:\n${r.stderr}`);
    return lines[0]!;
  }

  test('an unknown option exits 2 naming the nearest valid one', async () => {
    const line = failure(await results.unknownOption, 2);
    assert.match(line, /--max-new-tkens/);
    assert.match(line, /did you mean --max-new-tokens\?/);
  });

  test('a model directory that does not exist exits 1 with the reason', async () => {
    const line = failure(await results.missingModel, 1);
    assert.match(line, /\/nonexistent/);
    assert.match(line, /does not exist/);
  });

  test('convert llama2c without --out exits 2', async () => {
    assert.match(failure(await results.convertNoOut, 2), /--out is required/);
  });
});
