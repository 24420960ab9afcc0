/**
 * Reward-model training end to end (src/reward/train.ts, `rlhf train rm` / `rlhf eval rm`):
 *   - SST-2 as preferences, a 2-layer model from scratch, one epoch: held-out pairwise accuracy ≥ 0.80;
 *   - resume: a run killed after step 5 and rerun continues from its step-4 checkpoint and ends with the
 *     same loss trajectory and byte-identical weights as an uninterrupted run;
 *   - `rlhf eval rm` with the run's split settings selects the same held-out pairs and scores them the same;
 *   - a different config into the same directory is refused (naming --fresh), and --fresh starts over;
 *   - bad configs and bad data fail through the CLI with exit code 1 (2 for usage) and a one-line reason.
 * The tiny runs use synthetic pairs written to a temporary directory. CLI runs that need no trained model
 * start in `before` and run alongside the in-process training.
 * Tags: @learning
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { stringify as toYaml } from 'yaml';

import { deepMerge, loadConfig, validateConfig } from '../../src/config.js';
import { REWARD_DEFAULTS, REWARD_SCHEMA, type RewardTrainConfig } from '../../src/reward/config.js';
import type { PairEvaluation } from '../../src/reward/metrics.js';
import { trainRewardModel, type RewardRunSummary } from '../../src/reward/train.js';
import { ROOT, rlhf, type Run } from './run-cli.js';
import { reportMargin, TEST_SEED, TEST_THREADS } from '../env.js';

const TMP = mkdtempSync(join(tmpdir(), 'rlhf-reward-test-'));
const quiet = () => {};

/** Asserts a successful --json run printed exactly one line of JSON, and returns it parsed. */
function oneJsonLine(r: Run): Record<string, unknown> {
  assert.equal(r.status, 0, `exit ${r.status}: ${r.stderr}`);
  assert.ok(r.stdout.endsWith('\n'), 'stdout must end with a newline');
  assert.equal(r.stdout.split('\n').length, 2, `stdout must be one line, got:\n${r.stdout}`);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

/** Asserts a failed run exited with `status` and wrote exactly one line, `rlhf: <reason>`, to stderr. */
function oneLineFailure(r: Run, status: number, reason: RegExp): void {
  assert.equal(r.status, status, `exit ${r.status}, stderr:\n${r.stderr}`);
  assert.match(r.stderr, /^rlhf: [^\n]+\n$/, `stderr must be one line, got:\n${r.stderr}`);
  assert.match(r.stderr, reason);
}

// ---- synthetic preference pairs: a kind continuation preferred to an unkind one, of varied lengths
const NAMES = ['Tom', 'Lily', 'Ben', 'Sue', 'Max', 'Mia', 'Sam', 'Ann'];
const GOOD = ['kind', 'happy', 'warm', 'gentle', 'brave', 'calm', 'sweet', 'glad'];
const BAD = ['mean', 'sad', 'cold', 'rude', 'scared', 'angry', 'sour', 'cross'];

function syntheticPairs(n: number): string[] {
  return Array.from({ length: n }, (_, i) => {
    const good = i % 3 === 0 ? `${GOOD[i % 8]} and ${GOOD[(i + 3) % 8]}` : GOOD[(i * 5) % 8]!;
    const bad = i % 4 === 1 ? `very ${BAD[(i * 3) % 8]} and ${BAD[i % 8]}` : BAD[(i * 7) % 8]!;
    return JSON.stringify({ prompt: `${NAMES[i % 8]} was`, chosen: ` ${good}.`, rejected: ` ${bad}.` });
  });
}

const PAIRS = join(TMP, 'pairs.jsonl');
writeFileSync(PAIRS, syntheticPairs(64).join('\n') + '\n');
/** The same pairs with line 5 malformed ('chosen' a number). */
const BAD_PAIRS = join(TMP, 'bad-pairs.jsonl');
writeFileSync(BAD_PAIRS, syntheticPairs(64).map((l, i) => (i === 4 ? '{"prompt": "x", "chosen": 5, "rejected": " y."}' : l)).join('\n') + '\n');

/** A tiny scratch reward model over stories260k's tokenizer: ~51 training pairs, 7 steps per epoch. */
function tinyRaw(out: string, over: object = {}): Record<string, unknown> {
  const raw = {
    seed: TEST_SEED, out,
    data: { path: PAIRS, format: 'pairwise', splitSeed: 0, splitRatio: 0.8, maxTokens: 64 },
    model: { init: 'scratch', base: 'stories260k', scratch: { hiddenSize: 16, layers: 1, heads: 2, intermediateSize: 32, maxPositions: 64 } },
    train: { epochs: 2, batchSize: 8, lr: 0.01, warmupSteps: 2, maxSteps: 8, checkpointEvery: 4, evalEvery: 0, threads: TEST_THREADS },
  };
  return deepMerge(raw, over) as Record<string, unknown>;
}
const tinyConfig = (out: string, over: object = {}): RewardTrainConfig => validateConfig(tinyRaw(out, over), REWARD_DEFAULTS, REWARD_SCHEMA, 'tiny');

/** Writes a YAML config file into the temporary directory; returns its path. */
function configFile(name: string, raw: unknown): string {
  const p = join(TMP, name);
  writeFileSync(p, toYaml(raw));
  return p;
}

interface MetricsRow {
  step: number;
  loss?: number;
  accuracy?: number;
  lr?: number;
  gradNorm?: number | null;
  eval?: { accuracy: number; ece: number; n: number; final?: boolean };
}
const metrics = (out: string): MetricsRow[] => readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as MetricsRow);
/** The training rows' step, loss, accuracy, learning rate and gradient norm (not their wall-clock seconds). */
const trajectory = (out: string) => metrics(out).filter((r) => r.loss !== undefined).map(({ step, loss, accuracy, lr, gradNorm }) => ({ step, loss, accuracy, lr, gradNorm }));

// ---- CLI runs that need no trained model, started at once
const TRAIN = ['train', 'rm', '--json'];
const TINY_FILE = configFile('tiny.yaml', tinyRaw(join(TMP, 'cli-tiny')));
const NO_PATH_FILE = configFile('no-path.yaml', deepMerge(tinyRaw(join(TMP, 'cli-no-path')), { data: { path: '' } }));
const LR_FAST_FILE = configFile('lr-fast.yaml', deepMerge(tinyRaw(join(TMP, 'cli-lr-fast')), { train: { lr: 'fast' } }));
const BAD_DATA_FILE = configFile('bad-data.yaml', deepMerge(tinyRaw(join(TMP, 'cli-bad-data')), { data: { path: BAD_PAIRS }, train: { maxSteps: 1 } }));
const SKIP_FILE = configFile('skip.yaml', deepMerge(tinyRaw(join(TMP, 'cli-skip')), { data: { path: BAD_PAIRS, skipInvalid: true }, train: { maxSteps: 1 } }));

const EARLY = {
  unknownKey: [...TRAIN, '--config', TINY_FILE, '--set', 'train.lrr=0.1'],
  wrongType: [...TRAIN, '--config', LR_FAST_FILE],
  badEnum: [...TRAIN, '--config', TINY_FILE, '--set', 'loss.type=bt'],
  noPath: [...TRAIN, '--config', NO_PATH_FILE],
  badRecord: [...TRAIN, '--config', BAD_DATA_FILE],
  skipInvalid: [...TRAIN, '--config', SKIP_FILE],
  unknownOption: [...TRAIN, '--config', TINY_FILE, '--fersh'],
} satisfies Record<string, string[]>;
let early: Record<keyof typeof EARLY, Promise<Run>>;

/** Starts the commands two at a time (the machine this runs on has few cores; in-process training shares them). */
function runAll<K extends string>(commands: Record<K, string[]>): Record<K, Promise<Run>> {
  const lanes: Promise<unknown>[] = [Promise.resolve(), Promise.resolve()];
  return Object.fromEntries(Object.entries<string[]>(commands).map(([k, args], i) => {
    const run = lanes[i % 2]!.then(() => rlhf(args));
    lanes[i % 2] = run;
    return [k, run];
  })) as Record<K, Promise<Run>>;
}

before(() => {
  early = runAll(EARLY);
});
after(async () => {
  await Promise.all(Object.values(early)); // no child outlives the file
  rmSync(TMP, { recursive: true, force: true });
});

describe('SST-2 as preferences, from scratch (configs/rm-sst2.yaml, one epoch)', () => {
  test('held-out pairwise accuracy >= 0.80, with a bootstrap interval around it and ECE reported', async () => {
    const out = join(TMP, 'sst2');
    const cfg = loadConfig(join(ROOT, 'configs', 'rm-sst2.yaml'), [
      'train.epochs=1', 'train.evalEvery=0', `out=${out}`, `seed=${TEST_SEED}`, `train.threads=${TEST_THREADS}`,
      // The config's paths are relative to the package root; this test may run from elsewhere.
      `data.path=${join(ROOT, 'data', 'sst2', 'stsa.binary.train')}`, `data.testPath=${join(ROOT, 'data', 'sst2', 'stsa.binary.test')}`,
      `model.tokenizer=${join(ROOT, 'assets', 'gpt2-bpe')}`,
    ], REWARD_DEFAULTS, REWARD_SCHEMA);
    const s = await trainRewardModel(cfg, { progress: quiet });
    const e = s.eval!;
    assert.equal(s.trainPairs, 3610);
    assert.equal(e.n, 909, 'every positive sentence of stsa.binary.test gives one held-out pair');
    reportMargin({ test: 'rm sst-2', metric: 'held-out accuracy', value: e.accuracy, bar: 0.8 });
    assert.ok(e.accuracy >= 0.8, `held-out accuracy ${e.accuracy}`);
    assert.ok(Number.isFinite(e.ece) && e.ece >= 0 && e.ece <= 1, `ece ${e.ece}`);
    const [lo, hi] = e.accuracy_ci;
    assert.ok(lo <= e.accuracy && e.accuracy <= hi && lo < hi, `accuracy ${e.accuracy} outside its interval [${lo}, ${hi}]`);
    assert.ok(hi - lo < 0.1, `a 95% interval over 909 pairs should be narrow, got [${lo}, ${hi}]`);
    assert.deepEqual(JSON.parse(readFileSync(join(out, 'eval.json'), 'utf8')), e);
  });
});

describe('tiny synthetic run: resume, eval rm, --fresh', () => {
  const outA = join(TMP, 'A');
  const outB = join(TMP, 'B');
  let a: RewardRunSummary;

  test('a run interrupted after step 5 resumes from its step-4 checkpoint and ends exactly as an uninterrupted run', async () => {
    a = await trainRewardModel(tinyConfig(outA), { progress: quiet });
    assert.equal(a.steps, 8);
    assert.equal(a.resumedFrom, null);

    const cfgB = tinyConfig(outB);
    await assert.rejects(trainRewardModel(cfgB, {
      progress: (l) => {
        if (l.includes('step 5/')) throw new Error('interrupted at step 5');
      },
    }), /interrupted at step 5/);
    assert.deepEqual(metrics(outB).map((r) => r.step), [1, 2, 3, 4, 5], 'the interrupted run logged steps 1-5');

    const b = await trainRewardModel(cfgB, { progress: quiet });
    assert.equal(b.resumedFrom, 4);
    assert.equal(b.steps, 8);

    const ta = trajectory(outA);
    assert.deepEqual(ta.map((r) => r.step), [1, 2, 3, 4, 5, 6, 7, 8]);
    assert.ok(new Set(ta.map((r) => r.loss)).size > 1, 'the loss must move');
    assert.deepEqual(trajectory(outB), ta, 'steps 1-8 of the resumed run (step 5 only once) equal the uninterrupted run');
    for (const f of ['model/model.safetensors', 'model/config.json', 'checkpoint/model.safetensors', 'checkpoint/optimizer.safetensors']) {
      assert.ok(readFileSync(join(outA, f)).equals(readFileSync(join(outB, f))), `${f} differs between the runs`);
    }
    assert.deepEqual(b.eval, a.eval);
  });

  test('`rlhf eval rm` with the run\'s split settings reports the run\'s held-out evaluation', async () => {
    assert.ok(a, 'needs the previous test\'s run');
    const saved = JSON.parse(readFileSync(join(outA, 'eval.json'), 'utf8')) as PairEvaluation;
    const r = await rlhf(['eval', 'rm', '--json', '--model', join(outA, 'model'), '--data', PAIRS,
      '--split-seed', '0', '--split-ratio', '0.8', '--max-tokens', '64', '--seed', String(TEST_SEED), '--threads', String(TEST_THREADS)]);
    const got = oneJsonLine(r) as unknown as PairEvaluation & { dropped: unknown };
    for (const k of ['accuracy', 'accuracy_ci', 'ece', 'length_corr', 'length_baseline_accuracy', 'n']) assert.ok(k in got, `no ${k} in ${r.stdout}`);
    assert.equal(got.n, a.heldOutPairs);
    assert.ok(got.n > 0 && got.n < 64);
    assert.equal(got.accuracy, saved.accuracy);
    assert.deepEqual(got.accuracy_ci, saved.accuracy_ci);
    assert.equal(got.ece, saved.ece);
    assert.deepEqual(got.margins, saved.margins, 'the same pairs get the same rewards');
    assert.equal(typeof got.length_corr, 'number', 'the synthetic responses vary in length');
    assert.equal(got.length_baseline_accuracy, saved.length_baseline_accuracy);
    assert.deepEqual(got.dropped, { invalid: 0, tooLong: 0 });
  });

  test('a different config into the same directory is refused, naming --fresh; --fresh starts over', async () => {
    const out = join(TMP, 'C');
    const first = await trainRewardModel(tinyConfig(out, { train: { maxSteps: 2 } }), { progress: quiet });
    assert.equal(first.steps, 2);

    const changed = configFile('c-changed.yaml', tinyRaw(out, { train: { maxSteps: 2, lr: 0.02 } }));
    const refused = await rlhf([...TRAIN, '--config', changed]);
    assert.equal(refused.status, 1, refused.stderr);
    assert.equal(refused.stdout, '');
    const last = refused.stderr.trimEnd().split('\n').at(-1)!;
    assert.match(last, /^rlhf: .*different configuration.*--fresh/, refused.stderr);
    assert.deepEqual(trajectory(out).map((r) => r.step), [1, 2], 'the refused run must not touch the directory');

    const fresh = oneJsonLine(await rlhf([...TRAIN, '--config', changed, '--fresh'])) as unknown as RewardRunSummary;
    assert.equal(fresh.resumedFrom, null);
    assert.equal(fresh.steps, 2);
    const rows = trajectory(out);
    assert.deepEqual(rows.map((r) => r.step), [1, 2], 'the old run\'s metrics are gone, not appended to');
    // Warm-up over 2 steps: the multiplier is 0 at the first step and 1/2 at the second (0.005 before).
    assert.deepEqual(rows.map((r) => r.lr), [0, 0.01], 'the steps ran at the new learning rate');
  });
});

describe('bad input through the CLI: exit code 1 (2 for usage) and a one-line reason', () => {
  test('an unknown config key names the nearest valid one', async () => {
    oneLineFailure(await early.unknownKey, 1, /unknown key 'train\.lrr' \(did you mean 'train\.lr'\?\)/);
  });

  test('a wrong type names the field and the file', async () => {
    oneLineFailure(await early.wrongType, 1, /lr-fast\.yaml: 'train\.lr' must be a number, got "fast"/);
  });

  test('an enum outside its values lists the allowed values', async () => {
    oneLineFailure(await early.badEnum, 1, /'loss\.type' must be one of bradley_terry, label_smoothed_bt/);
  });

  test('a missing data.path says it is required', async () => {
    oneLineFailure(await early.noPath, 1, /data\.path is required/);
  });

  test('a malformed record names the file and line; with data.skipInvalid it trains and counts it', async () => {
    oneLineFailure(await early.badRecord, 1, new RegExp(`bad-pairs\\.jsonl:5: .*'chosen'`));
    const s = oneJsonLine(await early.skipInvalid) as unknown as RewardRunSummary;
    assert.equal(s.steps, 1);
    assert.equal(s.dropped.invalid, 1);
  });

  test('an unknown option is a usage error (exit 2) naming the nearest option', async () => {
    oneLineFailure(await early.unknownOption, 2, /unknown option --fersh \(did you mean --fresh\?\)/);
  });
});
