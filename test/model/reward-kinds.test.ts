/**
 * Reward models beyond plain pairs (src/reward/train.ts, evaluate.ts, ensemble-model.ts), trained from
 * scratch on the synthetic fixtures of test/fixtures/feedback-rm, where a response's quality is how many
 * of its four words are 'happy' (all responses one length, so length cannot stand in for quality):
 *   - K-wise rankings (K = 2..4, unequal within a batch) with Plackett–Luce: the loss falls, and held-out
 *     accuracy over every pair the rankings imply is far above chance;
 *   - Plackett–Luce on pairs is Bradley–Terry (K = 2): the same trajectory from the same start, 2 heads;
 *   - ratings with the Gaussian loss: the scale is the training ratings' and is stored; rewards
 *     correlate with held-out scores;
 *   - a 3-member bootstrap ensemble trains, saves, loads and its members differ (spread > 0); identical
 *     copies have spread exactly 0; an interrupted ensemble resumes member by member; `rlhf eval rm`
 *     on the ensemble directory reports its accuracy and spread;
 *   - a multi-head model aggregates its heads like an ensemble;
 *   - a data format that does not fit the loss is a config error naming both fields.
 * Tags: @numeric @learning
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { stringify as toYaml } from 'yaml';

import { deepMerge, validateConfig } from '../../src/config.js';
import { loadFeedback, split, type RankingRecord, type RatingRecord } from '../../src/data/index.js';
import { leftPad } from '../../src/generate/generate.js';
import { REWARD_DEFAULTS, REWARD_SCHEMA, type RewardTrainConfig } from '../../src/reward/config.js';
import { loadRewardEnsemble, saveEnsembleManifest, type EnsembleManifest } from '../../src/reward/ensemble-model.js';
import { evaluateRewardModel, type PairReport } from '../../src/reward/evaluate.js';
import { loadRewardRecords, tokenizeRecords } from '../../src/reward/pairs.js';
import { trainRewardModel, type RewardRunSummary } from '../../src/reward/train.js';
import { memory, noGrad, scope } from '../../src/tensor/index.js';
import { loadTokenizer } from '../../src/text/index.js';
import { ROOT, rlhf, type Run } from './run-cli.js';
import { reportBound, reportMargin, TEST_SEED, TEST_THREADS } from '../env.js';
import { loadTensors } from '../../src/nn/serialize.js';
import { gradientBound, sumBound, U32 } from '../tolerance.js';

const FIXTURES = join(ROOT, 'test', 'fixtures', 'feedback-rm');
const RANKING = join(FIXTURES, 'ranking.jsonl');
const RATING = join(FIXTURES, 'rating.jsonl');
const PAIRS = join(FIXTURES, 'pairs.jsonl');
const TMP = mkdtempSync(join(tmpdir(), 'rlhf-reward-kinds-'));
const quiet = () => {};

function oneJsonLine(r: Run): Record<string, unknown> {
  assert.equal(r.status, 0, `exit ${r.status}: ${r.stderr}`);
  assert.equal(r.stdout.split('\n').length, 2, `stdout must be one line, got:\n${r.stdout}`);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

/** A tiny scratch model over stories260k's tokenizer, on the ranking fixture with Plackett–Luce unless overridden. */
function tinyRaw(out: string, over: object = {}): Record<string, unknown> {
  return deepMerge({
    seed: TEST_SEED, out,
    data: { path: RANKING, format: 'ranking', maxTokens: 64 },
    model: { init: 'scratch', base: 'stories260k', scratch: { hiddenSize: 16, layers: 1, heads: 2, intermediateSize: 32, maxPositions: 64 } },
    loss: { type: 'plackett_luce' },
    train: { epochs: 3, batchSize: 8, lr: 0.01, warmupSteps: 2, threads: TEST_THREADS },
  }, over) as Record<string, unknown>;
}
const tiny = (out: string, over: object = {}): RewardTrainConfig => validateConfig(tinyRaw(out, over), REWARD_DEFAULTS, REWARD_SCHEMA, 'tiny');

interface MetricsRow {
  step: number;
  loss?: number;
  accuracy?: number | null;
}
const trajectory = (out: string) => readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n')
  .map((l) => JSON.parse(l) as MetricsRow).filter((r) => r.loss !== undefined);
const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const readJson = <T>(p: string): T => JSON.parse(readFileSync(p, 'utf8')) as T;

/** The records of one part of a fixture, split as the runs split it (seed 0, ratio 0.8). */
async function part<R>(file: string, format: 'ranking' | 'rating', which: 'train' | 'test'): Promise<R[]> {
  const { records } = await loadFeedback(file, { format });
  return split(records, { seed: 0, ratio: 0.8, part: which }) as R[];
}

before(() => {
  assert.ok(existsSync(RANKING) && existsSync(RATING) && existsSync(PAIRS), `fixtures missing under ${FIXTURES} (node test/fixtures/feedback-rm/generate.mjs writes them)`);
});
let live = 0;
beforeEach(() => {
  live = memory().liveTensors;
});
afterEach(() => {
  assert.equal(memory().liveTensors, live, 'the test leaked native tensors');
});
after(() => rmSync(TMP, { recursive: true, force: true }));

describe('K-wise rankings with Plackett–Luce', () => {
  const out = join(TMP, 'ranking');
  let s: RewardRunSummary;

  test('the loss falls and held-out accuracy over the implied pairs is far above chance', async () => {
    const ks = new Set((await part<RankingRecord>(RANKING, 'ranking', 'train')).map((r) => r.responses.length));
    assert.deepEqual([...ks].sort(), [2, 3, 4], 'batches mix rankings of unequal K');
    s = await trainRewardModel(tiny(out), { progress: quiet });
    const rows = trajectory(out);
    assert.equal(rows.length, s.steps);
    const first = mean(rows.slice(0, 5).map((r) => r.loss!));
    const last = mean(rows.slice(-5).map((r) => r.loss!));
    assert.ok(last < 0.6 * first, `PL loss ${first} → ${last}`);

    const held = await part<RankingRecord>(RANKING, 'ranking', 'test');
    assert.equal(s.heldOutPairs, held.length);
    const e = s.eval!;
    assert.equal(e.n, held.reduce((n, r) => n + (r.responses.length * (r.responses.length - 1)) / 2, 0), 'every implied pair (i < j) is evaluated');
    reportMargin({ test: 'rm plackett-luce', metric: 'held-out accuracy', value: e.accuracy, bar: 0.85 });
    assert.ok(e.accuracy >= 0.85, `held-out pairwise accuracy ${e.accuracy}`);
    assert.equal(e.length_corr, null, 'all responses have one length');
    assert.equal(e.length_baseline_accuracy, 0.5);
    assert.equal(s.ratingEval, null);
    assert.deepEqual(readJson(join(out, 'eval.json')), e);
  });

  test('`rlhf eval rm --format ranking` reports the run\'s held-out evaluation', async () => {
    assert.ok(s, 'needs the previous test\'s run');
    const got = oneJsonLine(await rlhf(['eval', 'rm', '--json', '--model', join(out, 'model'), '--data', RANKING, '--format', 'ranking', '--max-tokens', '64', '--threads', String(TEST_THREADS)]));
    assert.equal(got.n, s.eval!.n);
    assert.equal(got.accuracy, s.eval!.accuracy);
    assert.deepEqual(got.margins, s.eval!.margins);
    assert.ok(!('spread' in got), 'a single one-head model reports no spread');
  });
});

describe('Plackett–Luce on pairs is Bradley–Terry', () => {
  // One SGD step of lr 1 (its change is the gradient itself): over several Adam steps the two losses'
  // rounding differences would be amplified past any bound (Adam's step is ≈ lr·sign(g)).
  test('the same model and batch give the same loss, accuracy and SGD step, with 2 heads', async () => {
    const over = (type: string) => ({ data: { path: PAIRS, format: 'pairwise' }, loss: { type }, model: { heads: 2 }, train: { maxSteps: 1, optimizer: 'sgd', lr: 1, warmupSteps: 0 } });
    await trainRewardModel(tiny(join(TMP, 'pairs-bt'), over('bradley_terry')), { progress: quiet });
    await trainRewardModel(tiny(join(TMP, 'pairs-pl'), over('plackett_luce')), { progress: quiet });
    const [bt, pl] = [trajectory(join(TMP, 'pairs-bt')), trajectory(join(TMP, 'pairs-pl'))];
    assert.equal(pl.length, 1);
    // The same rewards (the same forward, by construction) give the same accuracy; the losses are two
    // formulas of −log σ(r_c − r_r), each off by a few roundings at the loss's magnitude, then a mean over
    // the batch (test/tolerance.ts).
    assert.equal(pl[0]!.accuracy, bt[0]!.accuracy);
    const lossBound = 8 * U32 * Math.max(1, bt[0]!.loss!) + sumBound(8, 8 * Math.max(1, bt[0]!.loss!));
    reportBound('reward model: Plackett–Luce on pairs vs Bradley–Terry (step loss)', Math.abs(bt[0]!.loss! - pl[0]!.loss!), lossBound, 1e-5);
    assert.ok(Math.abs(bt[0]!.loss! - pl[0]!.loss!) <= lossBound, `BT ${bt[0]!.loss} vs PL ${pl[0]!.loss} (bound ${lossBound})`);
    // lr 0 saves the initial weights: the step, and so the gradient's scale, is their difference.
    const zero = tiny(join(TMP, 'pairs-init'), deepMerge(over('bradley_terry'), { train: { lr: 0 } }) as object);
    await trainRewardModel(zero, { progress: quiet });
    const weights = (dir: string) => loadTensors(join(TMP, dir, 'model', 'model.safetensors')).tensors;
    const [wb, wp, w0] = [weights('pairs-bt'), weights('pairs-pl'), weights('pairs-init')];
    const s = zero.model.scratch;
    const dims = { layers: s.layers, hidden: s.hiddenSize, intermediate: s.intermediateSize, heads: s.heads, headDim: s.hiddenSize / s.heads };
    let d = 0;
    let g = 0;
    scope(() => {
      for (const [k, t] of wb) {
        d = Math.max(d, t.sub(wp.get(k)!).abs().max().item());
        g = Math.max(g, t.sub(w0.get(k)!).abs().max().item());
      }
    });
    assert.ok(g > 1e-4, `the SGD step must move the weights (max step ${g})`);
    // Bound: pairs of ≤ 64 tokens, 8 per batch, both sides' tokens summed into each gradient (test/tolerance.ts).
    const bound = gradientBound(dims, 64, 8 * 2 * 64, g);
    reportBound('reward model: Plackett–Luce vs Bradley–Terry (one SGD step; was 4 AdamW steps\' losses)', d, bound, 1e-5);
    assert.ok(d <= bound, `BT and PL weights after one SGD step differ by ${d} > ${bound}`);
    for (const t of [...wb.values(), ...wp.values(), ...w0.values()]) t.dispose();
  });
});

describe('ratings with the Gaussian loss', () => {
  const out = join(TMP, 'rating');
  let s: RewardRunSummary;

  test('the scale is the training ratings\', stored with the model, and rewards track held-out scores', async () => {
    s = await trainRewardModel(tiny(out, { data: { path: RATING, format: 'rating' }, loss: { type: 'gaussian' } }), { progress: quiet });
    const scores = (await part<RatingRecord>(RATING, 'rating', 'train')).map((r) => r.score);
    const m = mean(scores);
    const std = Math.sqrt(scores.reduce((a, x) => a + (x - m) ** 2, 0) / (scores.length - 1));
    assert.ok(Math.abs(s.scoreScale!.mean - m) < 1e-12 && Math.abs(s.scoreScale!.std - std) < 1e-12, JSON.stringify(s.scoreScale));
    const stored = readJson<{ rlhf_reward: { score_scale: unknown } }>(join(out, 'model', 'config.json')).rlhf_reward.score_scale;
    assert.deepEqual(stored, s.scoreScale);

    const e = s.ratingEval!;
    assert.equal(s.eval, null);
    assert.equal(e.n, s.heldOutPairs);
    reportMargin({ test: 'rm gaussian ratings', metric: 'held-out pearson', value: e.pearson!, bar: 0.8 });
    assert.ok(e.pearson! > 0.8 && e.spearman! > 0.8, `pearson ${e.pearson}, spearman ${e.spearman}`);
    assert.ok(e.rmse < 0.6 * std, `rmse ${e.rmse} should beat always predicting the mean (${std})`);
    assert.deepEqual(readJson(join(out, 'eval.json')), e);
  });

  test('`rlhf eval rm --format rating` reads the stored scale and reports the same correlations', async () => {
    assert.ok(s, 'needs the previous test\'s run');
    const got = oneJsonLine(await rlhf(['eval', 'rm', '--json', '--model', join(out, 'model'), '--data', RATING, '--format', 'rating', '--max-tokens', '64', '--threads', String(TEST_THREADS)]));
    for (const k of ['n', 'pearson', 'spearman', 'rmse', 'score_scale'] as const) assert.deepEqual(got[k], s.ratingEval![k], k);
  });
});

describe('an ensemble of 3 members on bootstrap resamples', () => {
  const out = join(TMP, 'ensemble');
  const over = { data: { path: PAIRS, format: 'pairwise' }, loss: { type: 'bradley_terry' }, model: { ensemble: { members: 3 } }, train: { epochs: 2, checkpointEvery: 2 } };
  let s: RewardRunSummary;

  test('trains each member into member-k/ and writes the manifest; the members differ', async () => {
    s = await trainRewardModel(tiny(out, over), { progress: quiet });
    assert.equal(s.members!.length, 3);
    s.members!.forEach((m, k) => {
      assert.equal(m.out, join(out, `member-${k}`));
      assert.equal(m.trainPairs, s.trainPairs, 'a bootstrap resample has as many records as the training part');
      assert.ok(existsSync(join(m.out, 'checkpoint', 'trainer.json')) && existsSync(join(m.out, 'model', 'model.safetensors')));
    });
    const manifest = readJson<EnsembleManifest>(join(out, 'model', 'ensemble.json'));
    assert.deepEqual(manifest.members, ['../member-0/model', '../member-1/model', '../member-2/model']);
    assert.equal(manifest.aggregation, 'mean');
    assert.equal(manifest.bootstrap, true);
    const e = s.eval!;
    assert.ok(e.spread! > 0, `members trained on different resamples from different seeds must disagree, spread ${e.spread}`);
    assert.equal(e.ensemble!.size, 3);
    assert.deepEqual(e.ensemble!.member_scores, s.members!.map((m) => m.eval!.accuracy), 'each member\'s own accuracy');
    reportMargin({ test: 'rm bootstrap ensemble', metric: 'held-out accuracy', value: e.accuracy, bar: 0.75 });
    assert.ok(e.accuracy >= 0.75, `ensemble accuracy ${e.accuracy}`);
    assert.deepEqual(readJson(join(out, 'eval.json')), e);
  });

  test('loads as (K, B) members with every aggregation; identical copies have zero spread', async () => {
    assert.ok(s, 'needs the previous test\'s run');
    const ens = loadRewardEnsemble(join(out, 'model'));
    try {
      assert.equal(ens.size, 3);
      const tok = loadTokenizer(join(out, 'model'));
      const seqs = [tok.encode('Tom was happy happy big big.'), tok.encode('Sue was big big big happy.'), tok.encode('Max was happy happy happy happy.')];
      noGrad(() => scope(() => {
        const { ids, mask } = leftPad(seqs);
        const members = ens.rewards(ids, mask);
        assert.deepEqual(members.shape, [3, 3]);
        const rows = members.toArray() as number[][];
        const meanR = ens.aggregate(members).reward.toArray() as number[];
        const minR = ens.aggregate(members, 'min').reward.toArray() as number[];
        const lcb = ens.aggregate(members, 'mean_minus_std', { lambda: 2 });
        const spread = lcb.uncertainty.toArray() as number[];
        seqs.forEach((_, b) => {
          const col = rows.map((r) => r[b]!);
          // min is exact; a float32 mean of 3 is off by ≤ γ₃·Σ|r| (+ its division); mean − 2·std by a few
          // roundings at the magnitude of its terms (test/tolerance.ts).
          const scale = col.reduce((a, x) => a + Math.abs(x), 0);
          assert.equal(minR[b], Math.min(...col));
          reportBound('reward ensemble mean vs JS', Math.abs(meanR[b]! - mean(col)), sumBound(3, scale), 1e-6);
          assert.ok(Math.abs(meanR[b]! - mean(col)) <= sumBound(3, scale));
          assert.ok(Math.abs((lcb.reward.toArray() as number[])[b]! - (meanR[b]! - 2 * spread[b]!)) <= 8 * U32 * (scale + 2 * spread[b]!));
        });
      }));
    } finally {
      ens.dispose();
    }

    // The same member three times: an ensemble that cannot disagree.
    const same = join(TMP, 'same-member');
    const member0 = join(out, 'member-0', 'model');
    saveEnsembleManifest(same, {
      rlhf_reward_ensemble: 1, members: [member0, member0, member0], aggregation: 'mean', lambda: 1,
      bootstrap: false, seed: 0, mean: null, std: null, score_scale: null,
    }, { extraFiles: [join(member0, 'tokenizer.bin')] });
    const copies = loadRewardEnsemble(same);
    try {
      const { records } = await loadRewardRecords({ path: PAIRS, testPath: '', format: 'pairwise', splitSeed: 0, splitRatio: 0.8, skipInvalid: false }, 'test');
      const r: PairReport = evaluateRewardModel(copies, tokenizeRecords(records, loadTokenizer(same), 64).records, 0);
      assert.equal(r.spread, 0);
      assert.equal(r.accuracy, s.members![0]!.eval!.accuracy, 'the mean of three copies is the member');
      assert.deepEqual(r.ensemble!.member_scores, [r.accuracy, r.accuracy, r.accuracy]);
    } finally {
      copies.dispose();
    }
  });

  test('`rlhf eval rm --json` on the ensemble directory prints its accuracy and spread', async () => {
    assert.ok(s, 'needs the first test\'s run');
    const got = oneJsonLine(await rlhf(['eval', 'rm', '--json', '--model', join(out, 'model'), '--data', PAIRS, '--max-tokens', '64', '--threads', String(TEST_THREADS)])) as unknown as PairReport;
    assert.equal(got.accuracy, s.eval!.accuracy);
    assert.equal(got.spread, s.eval!.spread);
    assert.ok(got.spread! > 0);
    assert.deepEqual(got.ensemble, s.eval!.ensemble);
  });

  test('an ensemble interrupted in member 1 resumes member by member and ends as the uninterrupted one', async () => {
    assert.ok(s, 'needs the first test\'s run');
    const outB = join(TMP, 'ensemble-b');
    await assert.rejects(trainRewardModel(tiny(outB, over), {
      progress: (l) => {
        if (l.startsWith('[train rm member 1] step 3/')) throw new Error('interrupted');
      },
    }), /interrupted/);
    assert.ok(!existsSync(join(outB, 'member-2')) && !existsSync(join(outB, 'model')));
    const b = await trainRewardModel(tiny(outB, over), { progress: quiet });
    assert.deepEqual(b.members!.map((m) => m.resumedFrom), [s.steps, 2, null], 'member 0 was done, member 1 had a step-2 checkpoint');
    for (const k of [0, 1, 2]) {
      const f = join(`member-${k}`, 'model', 'model.safetensors');
      assert.ok(readFileSync(join(out, f)).equals(readFileSync(join(outB, f))), `${f} differs between the runs`);
    }
    assert.deepEqual(b.eval, s.eval);
  });
});

describe('a multi-head model is an ensemble of its heads', () => {
  test('its heads disagree, and it is saved and loaded with its aggregation', async () => {
    const out = join(TMP, 'heads');
    const s = await trainRewardModel(tiny(out, {
      data: { path: PAIRS, format: 'pairwise' }, loss: { type: 'bradley_terry' },
      model: { heads: 3, ensemble: { aggregation: 'min' } }, train: { maxSteps: 2 },
    }), { progress: quiet });
    assert.equal(s.eval!.ensemble!.size, 3);
    assert.equal(s.eval!.ensemble!.aggregation, 'min');
    assert.ok(s.eval!.spread! > 0);
    const ens = loadRewardEnsemble(join(out, 'model'));
    try {
      assert.equal(ens.size, 3);
      assert.equal(ens.aggregation, 'min');
    } finally {
      ens.dispose();
    }
  });
});

describe('a data format that does not fit the loss is a config error naming both', () => {
  const cases: [string, object, RegExp][] = [
    ['ratings with a pairwise loss', { data: { path: RATING, format: 'rating' }, loss: { type: 'bradley_terry' } },
      /^Error: data\.format 'rating' does not fit loss\.type 'bradley_terry': rating records train with loss\.type gaussian$/],
    ['pairs with the Gaussian loss', { data: { path: PAIRS, format: 'pairwise' }, loss: { type: 'gaussian' } },
      /^Error: data\.format 'pairwise' does not fit loss\.type 'gaussian': pair records train with loss\.type bradley_terry or label_smoothed_bt or plackett_luce$/],
    ['rankings with label-smoothed BT', { loss: { type: 'label_smoothed_bt' } }, /data\.format 'ranking' does not fit loss\.type 'label_smoothed_bt'.*plackett_luce/],
    ['ratings with Plackett–Luce', { data: { path: RATING, format: 'rating' } }, /data\.format 'rating' does not fit loss\.type 'plackett_luce'/],
    ['reward centring on rankings', { loss: { centerCoef: 0.01 } }, /loss\.centerCoef applies to pairwise data/],
    ['a margin with Plackett–Luce', { data: { path: PAIRS, format: 'pairwise' }, loss: { margin: 1 } }, /loss\.margin applies to .*not 'plackett_luce'/],
    ['ensemble members and heads together', { model: { heads: 2, ensemble: { members: 2 } } }, /model\.ensemble\.members 2 and model\.heads 2/],
  ];
  for (const [name, over, message] of cases) {
    test(name, async () => {
      const out = join(TMP, `mismatch-${name.replace(/\W+/g, '-')}`);
      await assert.rejects(trainRewardModel(tiny(out, over), { progress: quiet }), message);
      assert.ok(!existsSync(out), 'refused before touching the output directory');
    });
  }

  test('through the CLI: exit code 1 and the reason on one line', async () => {
    const file = join(TMP, 'mismatch.yaml');
    writeFileSync(file, toYaml(tinyRaw(join(TMP, 'cli-mismatch'), { data: { path: RATING, format: 'rating' }, loss: { type: 'bradley_terry' } })));
    const r = await rlhf(['train', 'rm', '--json', '--config', file]);
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^rlhf: data\.format 'rating' does not fit loss\.type 'bradley_terry'[^\n]*\n$/);
  });
});
