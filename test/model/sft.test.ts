/**
 * Supervised fine-tuning on stories260K (src/rlhf/sft, `rlhf train sft`):
 *   - completion-only loss: prompt positions weigh 0, every completion token (and the EOS) weighs 1;
 *   - packing computes what each example computes alone (block-diagonal attention, positions restart);
 *   - gradient accumulation: batch 4 in one micro-batch against 4 micro-batches of 1 give the same
 *     parameters after one SGD step of lr 1 (the step is the accumulated gradient), within the float32
 *     bound of a gradient (test/tolerance.ts), and the same loss within a log-prob's bound;
 *   - a run interrupted after step 3 resumes from its step-2 checkpoint and logs the same metrics;
 *   - a malformed line fails through the CLI naming file:line and the field.
 * Tags: @numeric
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { deepMerge, validateConfig } from '../../src/config.js';
import { loadModel, resolveModelDir } from '../../src/models/hub.js';
import { loadTokenizer } from '../../src/text/index.js';
import { noGrad, scope } from '../../src/tensor/index.js';
import { SFT_DEFAULTS, SFT_SCHEMA, type SftConfig } from '../../src/rlhf/sft/config.js';
import { buildRows, tokenizeExamples } from '../../src/rlhf/sft/data.js';
import { collateRows, rowLogprobs, trainSft } from '../../src/rlhf/sft/trainer.js';
import { rlhf, type Run } from './run-cli.js';
import { gradientBound, logprobBound, maxAbsLogit, STORIES260K, STORIES260K_VOCAB, sumBound } from '../tolerance.js';
import { reportBound, TEST_THREADS, useTestThreads } from '../env.js';

const TMP = mkdtempSync(join(tmpdir(), 'rlhf-sft-test-'));
const DATA = join(TMP, 'data.jsonl');
const BAD = join(TMP, 'bad.jsonl');
const quiet = () => {};

const EXAMPLES = [
  { prompt: 'Once upon a time', completion: ', there was a happy dog named Max.' },
  { prompt: 'Lily saw a bird.', completion: ' She smiled.' },
  { text: 'Tom had a red ball. He liked to play with it in the park every day.' },
  { prompt: 'One day', completion: ', the sun was warm and the kids went out to play in the big green garden.' },
  { prompt: 'Mom said', completion: ' "Time for bed!"' },
  { text: 'The cat was sad.' },
  { prompt: 'Ben and Sue', completion: ' were friends. They shared their toys and had fun together.' },
  { prompt: 'A little fish', completion: ' swam fast.' },
];
writeFileSync(DATA, EXAMPLES.map((e) => JSON.stringify(e)).join('\n') + '\n');
writeFileSync(BAD, [JSON.stringify(EXAMPLES[0]), '{"prompt": "x"}'].join('\n') + '\n');

function config(out: string, over: object = {}): SftConfig {
  const raw = {
    seed: 0, out,
    data: { path: DATA, maxTokens: 64 },
    train: { batchSize: 4, lr: 1e-4, warmupSteps: 0, schedule: 'constant', maxSteps: 2, threads: TEST_THREADS },
  };
  return validateConfig(deepMerge(raw, over), SFT_DEFAULTS, SFT_SCHEMA, 'test');
}

const tok = () => loadTokenizer(resolveModelDir('stories260k'));
let badLine: Promise<Run>;

before(() => {
  useTestThreads();
  badLine = rlhf(['train', 'sft', '--json', '--set', `data.path=${BAD}`, '--set', `out=${join(TMP, 'bad')}`]);
});
after(async () => {
  await badLine;
  rmSync(TMP, { recursive: true, force: true });
});

describe('SFT on stories260K', () => {
  test('completion-only loss: prompt positions weigh 0, completion tokens and EOS weigh 1', () => scope(() => {
    const t = tok();
    const { examples } = tokenizeExamples([{ prompt: 'Once upon a time', completion: ', there was a dog.' }], t, { maxTokens: 64, eosId: 1 });
    const e = examples[0]!;
    assert.deepEqual(e.ids.slice(0, e.promptLen), t.encode('Once upon a time', { addBos: true }));
    assert.equal(e.ids.at(-1), 1, 'the completion ends with the EOS id');
    const b = collateRows(examples, [[0]]);
    const w = Array.from(b.weights.data() as Float32Array);
    // Column c scores token c+1: the first target is token promptLen, at column promptLen − 1.
    assert.deepEqual(w, e.ids.slice(1).map((_, c) => (c + 1 >= e.promptLen ? 1 : 0)));
    assert.equal(b.targets, e.ids.length - e.promptLen);
    assert.ok(e.promptLen > 1 && b.targets > 1);
  }));

  test('a packed row computes what each of its examples computes alone', () => scope(() => {
    const model = loadModel('stories260k');
    try {
      const { examples } = tokenizeExamples(EXAMPLES.map((e) => ('text' in e ? { prompt: '', completion: e.text! } : { prompt: e.prompt!, completion: e.completion! })), tok(), { maxTokens: 64, eosId: 1 });
      const rows = buildRows(examples, { packing: true, maxTokens: 64, seed: 0 });
      assert.ok(rows.length < examples.length && rows.some((r) => r.length >= 3), `rows ${JSON.stringify(rows)}`);
      // Bound: a packed row's GEMMs and masked attention over ≤ 64 keys against each example alone (test/tolerance.ts).
      const bound = logprobBound(STORIES260K, 64, maxAbsLogit(model, examples.map((e) => e.ids)), STORIES260K_VOCAB);
      noGrad(() => {
        const packed = collateRows(examples, rows);
        const lp = rowLogprobs(model, packed).mul(packed.weights);
        rows.forEach((row, r) => {
          const got = Array.from(lp.select(0, r).data() as Float32Array);
          let off = 0;
          let worst = 0;
          for (const i of row) {
            const alone = collateRows(examples, [[i]]);
            const want = Array.from(rowLogprobs(model, alone).mul(alone.weights).data() as Float32Array);
            const n = examples[i]!.ids.length;
            // Inside example i: its n − 1 columns; the column before it (scoring its BOS) weighs 0.
            want.forEach((v, c) => {
              const d = Math.abs(got[off + c]! - v);
              worst = Math.max(worst, d);
              assert.ok(d <= bound, `row ${r}, example ${i}, column ${c}: ${got[off + c]} vs ${v} (bound ${bound})`);
            });
            if (off > 0) assert.equal(Math.abs(got[off - 1]!), 0);
            off += n;
          }
          reportBound('SFT packed row vs each example alone (log-probs)', worst, bound, 1e-5);
        });
      });
    } finally {
      model.dispose();
    }
  }));

  test('gradient accumulation: batch 4 vs 4 micro-batches of 1 give the same SGD step (within the float32 bound)', async () => {
    const one = join(TMP, 'one');
    const four = join(TMP, 'four');
    // SGD with lr 1: the step is the accumulated gradient itself (Adam's first step, ≈ lr·sign(g), would
    // turn float noise in near-zero gradients into full-size differences).
    const sgd = { train: { optimizer: 'sgd', lr: 1, maxSteps: 1 } };
    await trainSft(config(one, sgd), { progress: quiet });
    await trainSft(config(four, { train: { ...sgd.train, batchSize: 1, gradAccum: 4 } }), { progress: quiet });
    const [a, b, init] = [loadModel(join(one, 'model')), loadModel(join(four, 'model')), loadModel('stories260k')];
    try {
      let maxDiff = 0;
      let moved = 0;
      for (const [k, ta] of a.stateDict()) {
        const va = ta.data() as Float32Array;
        const vb = b.stateDict().get(k)!.data() as Float32Array;
        const v0 = init.stateDict().get(k)!.data() as Float32Array;
        va.forEach((x, i) => {
          maxDiff = Math.max(maxDiff, Math.abs(x - vb[i]!));
          moved = Math.max(moved, Math.abs(x - v0[i]!));
        });
      }
      assert.ok(moved > 1e-4, `the parameters must move (max change ${moved})`);
      // Bound: the step's examples (the first optimiser step of seed 0's order) over ≤ 64 positions, their
      // tokens summed into each gradient, the largest gradient as the terms' scale (test/tolerance.ts).
      const rows = (out: string) => readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { tokens: number; loss: number });
      const [r1, r4] = [rows(one), rows(four)];
      assert.equal(r1.length, 1);
      assert.deepEqual(r1.map((r) => r.tokens), r4.map((r) => r.tokens), 'the same tokens per step');
      const bound = gradientBound(STORIES260K, 64, r1[0]!.tokens + 4, moved);
      reportBound('SFT gradient accumulation 4×1 vs 4 (one SGD step; was 2 AdamW steps)', maxDiff, bound, 1e-5);
      assert.ok(maxDiff <= bound, `max parameter difference ${maxDiff} > ${bound}`);
      // The loss, a mean of per-token log-probs: each within a log-prob's bound, the mean's own sum within γ.
      const { examples } = tokenizeExamples(EXAMPLES.map((e) => ('text' in e ? { prompt: '', completion: e.text! } : { prompt: e.prompt!, completion: e.completion! })), tok(), { maxTokens: 64, eosId: 1 });
      const lossBound = logprobBound(STORIES260K, 64, maxAbsLogit(init, examples.map((e) => e.ids)), STORIES260K_VOCAB) + sumBound(r1[0]!.tokens, Math.abs(r1[0]!.loss));
      reportBound('SFT gradient accumulation: the step loss', Math.abs(r1[0]!.loss - r4[0]!.loss), lossBound, 1e-5);
      assert.ok(Math.abs(r1[0]!.loss - r4[0]!.loss) <= lossBound, `loss ${r1[0]!.loss} vs ${r4[0]!.loss} (bound ${lossBound})`);
    } finally {
      for (const m of [a, b, init]) m.dispose();
    }
  });

  test('a run interrupted after step 3 resumes from its step-2 checkpoint with the same metrics (packed, held-out loss)', async () => {
    const over = { data: { packing: true, splitRatio: 0.75 }, train: { epochs: 3, batchSize: 1, maxSteps: 4, checkpointEvery: 2, evalEvery: 2 } };
    const outA = join(TMP, 'resume-a');
    const outB = join(TMP, 'resume-b');
    await trainSft(config(outA, over), { progress: quiet });
    await assert.rejects(trainSft(config(outB, over), {
      progress: (l) => {
        if (l.includes('step 3/')) throw new Error('interrupted');
      },
    }), /interrupted/);
    const b = await trainSft(config(outB, over), { progress: quiet });
    assert.equal(b.resumedFrom, 2);
    const traj = (out: string) => readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => {
      const { seconds: _, ...r } = JSON.parse(l) as Record<string, unknown>;
      return r;
    });
    assert.deepEqual(traj(outA).map((r) => r.step), [1, 2, 2, 3, 4, 4]);
    assert.deepEqual(traj(outB), traj(outA));
    assert.ok(readFileSync(join(outA, 'model/model.safetensors')).equals(readFileSync(join(outB, 'model/model.safetensors'))));
  });

  test('a malformed line names file:line and the field (CLI, exit 1)', async () => {
    const r = await badLine;
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /^rlhf: .*bad\.jsonl:2: field 'completion': expected a string \(a line needs prompt and completion, or text\)\n$/);
  });
});
