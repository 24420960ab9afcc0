/**
 * DPO end to end on stories260K (src/rlhf/dpo/trainer.ts, `rlhf train dpo`), on preference pairs sampled
 * from the model itself and labelled by AFINN sentiment (src/rlhf/dpo/synthetic-pairs.ts):
 *   - the first step's loss, through the trainer's own loss path, is ln 2 (policy = reference);
 *   - a run interrupted after step 3 resumes from its step-2 checkpoint, reuses the cached reference
 *     log-probs and ends with exactly the metrics and weights of an uninterrupted run;
 *   - a ranking contributes every pair it implies;
 *   - a policy/reference tokenizer mismatch, an unknown config key and a wrong type fail clearly, and
 *     leave no checkpoint behind.
 * Tags: @numeric
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { deepMerge, validateConfig } from '../../src/config.js';
import { loadModel, resolveModelDir, saveModel } from '../../src/models/hub.js';
import { LlamaForCausalLM } from '../../src/models/llama.js';
import { loadTokenizer } from '../../src/text/index.js';
import { Generator } from '../../src/tensor/index.js';
import { DPO_DEFAULTS, DPO_SCHEMA, type DpoConfig } from '../../src/rlhf/dpo/config.js';
import { trainDpo } from '../../src/rlhf/dpo/trainer.js';
import { impliedPairs } from '../../src/rlhf/reference.js';
import { sentimentPairs, writePairs } from '../../src/rlhf/dpo/synthetic-pairs.js';
import { ROOT, rlhf, type Run } from './run-cli.js';
import { reportBound, TEST_THREADS, useTestThreads } from '../env.js';
import { logprobBound, maxAbsLogit, STORIES260K, STORIES260K_VOCAB, U32 } from '../tolerance.js';

const TMP = mkdtempSync(join(tmpdir(), 'rlhf-dpo-test-'));
const PAIRS = join(TMP, 'pairs.jsonl');
const quiet = () => {};

/** 48 sentiment-labelled pairs; 4 steps of 4 pairs, a held-out quarter evaluated every 2 steps. */
function tinyConfig(out: string, over: object = {}): DpoConfig {
  const raw = {
    seed: 0, out,
    data: { path: PAIRS, format: 'pairwise', splitRatio: 0.75, maxTokens: 128 },
    model: { policy: 'stories260k' },
    loss: { beta: 0.1 },
    train: { batchSize: 4, lr: 3e-4, warmupSteps: 1, maxSteps: 4, evalEvery: 2, checkpointEvery: 2, threads: TEST_THREADS },
  };
  return validateConfig(deepMerge(raw, over), DPO_DEFAULTS, DPO_SCHEMA, 'tiny');
}

interface Row {
  step: number;
  loss?: number;
  seconds?: number;
  eval?: Record<string, unknown>;
}
const metrics = (out: string): Row[] => readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Row);
/** Every row without its wall-clock seconds. */
const trajectory = (out: string) => metrics(out).map(({ seconds: _, ...r }) => r);

function oneLineFailure(r: Run, reason: RegExp): void {
  assert.equal(r.status, 1, `exit ${r.status}, stderr:\n${r.stderr}`);
  assert.match(r.stderr, /^rlhf: [^\n]+\n$/, `stderr must be one line, got:\n${r.stderr}`);
  assert.match(r.stderr, reason);
}

let cli: { unknownKey: Promise<Run>; wrongType: Promise<Run> };

/** How far the first step's loss may sit from ln 2 (see the test), set once the pairs exist. */
let ln2Bound = 0;

before(() => {
  useTestThreads();
  const model = loadModel('stories260k');
  try {
    const tok = loadTokenizer(resolveModelDir('stories260k'));
    const pairs = sentimentPairs(model, tok, { n: 48, seed: 7 });
    writePairs(PAIRS, pairs);
    // Policy = reference, but the reference log-probs are cached from other batches: each side of a pair's
    // margin is a sum over its completion tokens of log-prob differences within a log-prob's float32 bound
    // (test/tolerance.ts), and −log σ(β·m) moves by at most β/2·|m| around m = 0.
    const seqs = pairs.flatMap((p) => [p.chosen, p.rejected].map((c) => tok.encode(p.prompt + c, { addBos: true })));
    const longest = Math.max(...seqs.map((s) => s.length));
    const perToken = logprobBound(STORIES260K, longest, maxAbsLogit(model, seqs), STORIES260K_VOCAB);
    ln2Bound = (0.1 / 2) * 2 * longest * perToken + 8 * U32;
  } finally {
    model.dispose();
  }
  const base = ['train', 'dpo', '--json', '--set', `data.path=${PAIRS}`, '--set', `train.threads=${TEST_THREADS}`];
  cli = {
    unknownKey: rlhf([...base, '--set', `out=${join(TMP, 'cli-key')}`, '--set', 'loss.bta=0.5']),
    wrongType: rlhf([...base, '--set', `out=${join(TMP, 'cli-type')}`, '--set', 'train.lr=fast']),
  };
});
after(async () => {
  await Promise.all(Object.values(cli ?? {}));
  rmSync(TMP, { recursive: true, force: true });
});

describe('DPO on stories260K sentiment pairs', () => {
  test('the first step\'s loss is ln 2 when policy = reference (the trainer\'s own loss path)', async () => {
    const out = join(TMP, 'ln2');
    const s = await trainDpo(tinyConfig(out, { train: { maxSteps: 1, batchSize: 16, evalEvery: 0 } }), { progress: quiet });
    assert.equal(s.steps, 1);
    const [row] = metrics(out);
    reportBound('DPO step-1 loss vs ln 2 (policy = reference)', Math.abs(row!.loss! - Math.LN2), ln2Bound, 1e-5);
    assert.ok(Math.abs(row!.loss! - Math.LN2) <= ln2Bound, `step-1 loss ${row!.loss} vs ln 2 = ${Math.LN2} (bound ${ln2Bound})`);
  });

  test('a run interrupted after step 3 resumes from its step-2 checkpoint and reproduces the uninterrupted run exactly', async () => {
    const outA = join(TMP, 'A');
    const outB = join(TMP, 'B');
    const a = await trainDpo(tinyConfig(outA), { progress: quiet });
    assert.equal(a.steps, 4);
    assert.equal(a.referenceCached, false);

    await assert.rejects(trainDpo(tinyConfig(outB), {
      progress: (l) => {
        if (l.includes('step 3/')) throw new Error('interrupted at step 3');
      },
    }), /interrupted at step 3/);
    const b = await trainDpo(tinyConfig(outB), { progress: quiet });
    assert.equal(b.resumedFrom, 2);
    assert.equal(b.referenceCached, true, 'the resumed run reads the reference log-probs back');

    const ta = trajectory(outA);
    assert.deepEqual(ta.map((r) => r.step), [1, 2, 2, 3, 4, 4], 'steps 1-4 and evaluations at 2 and the end');
    assert.ok(new Set(ta.filter((r) => r.loss !== undefined).map((r) => r.loss)).size > 1, 'the loss must move');
    assert.deepEqual(trajectory(outB), ta, 'the resumed run logs exactly the uninterrupted run\'s rows');
    for (const f of ['model/model.safetensors', 'checkpoint/model.safetensors', 'checkpoint/optimizer.safetensors', 'reference-logprobs.json']) {
      assert.ok(readFileSync(join(outA, f)).equals(readFileSync(join(outB, f))), `${f} differs between the runs`);
    }
    assert.deepEqual(b.eval, a.eval);
    assert.ok(a.eval!.n > 0 && a.eval!.n < 48);
  });

  test('a reference with another tokenizer is refused before anything is written', async () => {
    // A random tiny Llama over the GPT-2 BPE vocabulary, saved with its tokenizer files.
    const refDir = join(TMP, 'gpt2-ref');
    const gen = new Generator(0);
    const m = new LlamaForCausalLM({
      architecture: 'llama', modelType: 'llama', vocabSize: 50257, hiddenSize: 8, intermediateSize: 16, numLayers: 1, numHeads: 2,
      numKvHeads: 2, headDim: 4, maxPositions: 64, rmsNormEps: 1e-5, ropeTheta: 10000, ropeScaling: null, tieWordEmbeddings: true,
      qkvBias: false, oBias: false, mlpBias: false, qkNorm: false, slidingWindow: null, slidingLayers: [], initializerRange: 0.02, bosTokenId: 50256, eosTokenIds: [50256], padTokenId: null,
    }, { generator: gen });
    gen.dispose();
    saveModel(m, refDir, { extraFiles: ['vocab.json', 'merges.txt'].map((f) => join(ROOT, 'assets', 'gpt2-bpe', f)) });
    m.dispose();
    const out = join(TMP, 'mismatch');
    await assert.rejects(trainDpo(tinyConfig(out, { model: { reference: refDir } }), { progress: quiet }),
      /tokenizers of policy 'stories260k' and reference '.*gpt2-ref' differ: vocabulary of 512 vs 50257 tokens/);
    assert.ok(!existsSync(join(out, 'checkpoint')), 'no checkpoint is written');
    assert.ok(!existsSync(join(out, 'reference-logprobs.json')), 'no reference cache is written');
  });

  test('a ranking of K trains as its K(K−1)/2 implied pairs, best first', () => {
    const meta = { file: 'r.jsonl', line: 1 };
    const pairs = impliedPairs([{ kind: 'ranking', prompt: 'p', responses: ['a', 'b', 'c'], meta }]);
    assert.deepEqual(pairs.map((x) => [x.chosen, x.rejected]), [['a', 'b'], ['a', 'c'], ['b', 'c']]);
    assert.ok(pairs.every((x) => x.prompt === 'p' && x.kind === 'pair'));
  });

  test('an unknown config key names the nearest valid one; a wrong type names the field (CLI, exit 1)', async () => {
    oneLineFailure(await cli.unknownKey, /unknown key 'loss\.bta' \(did you mean 'loss\.beta'\?\)/);
    oneLineFailure(await cli.wrongType, /'train\.lr' must be a number, got "fast"/);
    assert.ok(!existsSync(join(TMP, 'cli-key')) && !existsSync(join(TMP, 'cli-type')), 'nothing is written');
  });
});
