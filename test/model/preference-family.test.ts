/**
 * The offline preference family at small size on stories260K, with pairs and unpaired labels sampled from
 * the model itself and judged by AFINN sentiment (src/rlhf/dpo/synthetic-pairs.ts):
 *   - IPO, robust DPO, SimPO, ORPO (losses of the DPO trainer) and KTO (its own trainer, unpaired labels)
 *     each beat 0.5 held-out implicit-reward accuracy on 128 pairs sampled with another seed, for any seed
 *     (640 training pairs in 40 steps: 160 pairs in 20 steps fell to 0.50–0.53 on some seeds); SimPO and
 *     ORPO by their own reward (length-normalised log-prob), KTO by β(log π − log π_ref);
 *   - SimPO loads no reference model: the trainer's loader sees only the policy, no reference cache is
 *     written, and no more tensors are alive while it trains than while DPO does (whose reference is gone);
 *   - KTO on a balanced set moves desirable and undesirable log-ratios apart;
 *   - bad input: unpaired data to a paired method and pairs to KTO name the file and line; an unknown
 *     key, a wrong type, a paired format for KTO and a reference for a reference-free loss fail clearly.
 * The full-size measurement (≥ 1000 training pairs, ≥ 200 held out) uses configs/{ipo,simpo,orpo,kto}-stories.yaml.
 * Tags: @learning
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { deepMerge, validateConfig } from '../../src/config.js';
import { loadModel, resolveModelDir } from '../../src/models/hub.js';
import { loadTokenizer } from '../../src/text/index.js';
import { memory } from '../../src/tensor/index.js';
import { DPO_DEFAULTS, DPO_SCHEMA, type DpoConfig } from '../../src/rlhf/dpo/config.js';
import { trainDpo } from '../../src/rlhf/dpo/trainer.js';
import { sequenceLogprobs } from '../../src/rlhf/reference.js';
import { sentimentLabels, sentimentPairs, writeLabels, writePairs } from '../../src/rlhf/dpo/synthetic-pairs.js';
import { KTO_DEFAULTS, KTO_SCHEMA, type KtoConfig } from '../../src/rlhf/kto/config.js';
import { tokenizeLabelled, trainKto } from '../../src/rlhf/kto/trainer.js';
import { loadFeedback, type BinaryRecord } from '../../src/data/index.js';
import { rlhf, type Run } from './run-cli.js';
import { reportMargin, TEST_SEED, TEST_THREADS, testSeed, useTestThreads } from '../env.js';

const TMP = mkdtempSync(join(tmpdir(), 'rlhf-preference-family-'));
const TRAIN = join(TMP, 'train.jsonl');
const TEST = join(TMP, 'test.jsonl');
const LABELS = join(TMP, 'labels.jsonl');
const quiet = () => {};

/** 640 pairs, 40 steps of 16 (lr 5e-4, constant after warm-up): dpo-sentiment.test.ts's run with another loss. */
function pairedConfig(out: string, loss: object, over: object = {}): DpoConfig {
  const raw = {
    seed: TEST_SEED, out,
    data: { path: TRAIN, testPath: TEST, maxTokens: 128 },
    loss,
    train: { batchSize: 16, lr: 5e-4, warmupSteps: 2, schedule: 'constant', threads: TEST_THREADS },
  };
  return validateConfig(deepMerge(raw, over), DPO_DEFAULTS, DPO_SCHEMA, 'test');
}

function ktoConfig(out: string, over: object = {}): KtoConfig {
  const raw = {
    seed: TEST_SEED, out,
    data: { path: LABELS, testPath: TEST, maxTokens: 128 },
    train: { batchSize: 32, lr: 5e-4, warmupSteps: 2, schedule: 'constant', threads: TEST_THREADS },
  };
  return validateConfig(deepMerge(raw, over), KTO_DEFAULTS, KTO_SCHEMA, 'test');
}

function oneLineFailure(r: Run, reason: RegExp): void {
  assert.equal(r.status, 1, `exit ${r.status}, stderr:\n${r.stderr}`);
  assert.match(r.stderr, /^rlhf: [^\n]+\n$/, `stderr must be one line, got:\n${r.stderr}`);
  assert.match(r.stderr, reason);
}

let cli: { ktoFormat: Promise<Run>; ktoKey: Promise<Run>; ipoUnpaired: Promise<Run> };

before(() => {
  useTestThreads();
  const model = loadModel('stories260k');
  const tok = loadTokenizer(resolveModelDir('stories260k'));
  try {
    writePairs(TRAIN, sentimentPairs(model, tok, { n: 640, seed: testSeed(11) }));
    writePairs(TEST, sentimentPairs(model, tok, { n: 128, seed: testSeed(12) }));
    writeLabels(LABELS, sentimentLabels(model, tok, { n: 1280, seed: testSeed(13) }));
  } finally {
    model.dispose();
  }
  cli = {
    ktoFormat: rlhf(['train', 'kto', '--json', '--set', `data.path=${TRAIN}`, '--set', 'data.format=pairwise', '--set', `out=${join(TMP, 'cli-format')}`]),
    ktoKey: rlhf(['train', 'kto', '--json', '--set', `data.path=${LABELS}`, '--set', 'loss.desirableWeigth=2', '--set', `out=${join(TMP, 'cli-key')}`]),
    ipoUnpaired: rlhf(['train', 'ipo', '--json', '--set', `data.path=${LABELS}`, '--set', `train.threads=${TEST_THREADS}`, '--set', `out=${join(TMP, 'cli-unpaired')}`]),
  };
});
after(async () => {
  await Promise.all(Object.values(cli ?? {}));
  rmSync(TMP, { recursive: true, force: true });
});

describe('the offline preference family beats chance on held-out sentiment pairs', () => {
  const paired: [string, object][] = [
    ['ipo', { type: 'ipo', beta: 0.1 }],
    ['robust', { type: 'robust', beta: 0.1, labelSmoothing: 0.1 }],
    ['simpo', { type: 'simpo', beta: 2, simpoGamma: 1 }],
    ['orpo', { type: 'orpo', orpoLambda: 10 }],
  ];
  for (const [name, loss] of paired) {
    test(`${name}: 640 pairs, 40 steps → held-out accuracy > 0.5 on 128 pairs`, async () => {
      const s = await trainDpo(pairedConfig(join(TMP, name), loss), { progress: quiet });
      assert.equal(s.steps, 40);
      assert.equal(s.eval!.n, 128);
      reportMargin({ test: name, metric: 'held-out accuracy', value: s.eval!.accuracy, bar: 0.5 });
      assert.ok(s.eval!.accuracy > 0.5, `${name}: held-out implicit-reward accuracy ${s.eval!.accuracy}`);
    });
  }

  test('kto: 1280 unpaired labels, 40 steps → held-out pair accuracy > 0.5 on 128 pairs', async () => {
    const s = await trainKto(ktoConfig(join(TMP, 'kto')), { progress: quiet });
    assert.equal(s.steps, 40);
    assert.equal(s.desirable, 640);
    assert.equal(s.undesirable, 640);
    assert.equal(s.eval!.n, 128);
    reportMargin({ test: 'kto', metric: 'held-out accuracy', value: s.eval!.accuracy, bar: 0.5 });
    assert.ok(s.eval!.accuracy > 0.5, `kto: held-out implicit-reward accuracy ${s.eval!.accuracy}`);
  });
});

describe('SimPO needs no reference model', () => {
  test('only the policy is loaded, no reference cache is written, and no more tensors live than in DPO', async () => {
    const run = async (loss: object, out: string) => {
      const loaded: string[] = [];
      let liveAtStep1 = -1;
      const s = await trainDpo(pairedConfig(out, loss, { train: { maxSteps: 2 } }), {
        loadModel: (dir) => {
          loaded.push(dir);
          return loadModel(dir);
        },
        progress: (l) => {
          if (l.includes('step 1/')) liveAtStep1 = memory().liveTensors;
        },
      });
      return { s, loaded, liveAtStep1 };
    };
    const simpo = await run({ type: 'simpo', beta: 2 }, join(TMP, 'simpo-ref'));
    const dpo = await run({ type: 'sigmoid' }, join(TMP, 'dpo-ref'));
    assert.equal(dpo.loaded.length, 2, 'DPO loads the reference and the policy');
    assert.deepEqual(simpo.loaded, [resolveModelDir('stories260k')], 'SimPO loads the policy alone');
    assert.equal(simpo.s.referenceCached, null);
    assert.ok(!existsSync(join(TMP, 'simpo-ref', 'reference-logprobs.json')), 'no reference cache');
    assert.ok(existsSync(join(TMP, 'dpo-ref', 'reference-logprobs.json')));
    assert.ok(simpo.liveAtStep1 > 0 && simpo.liveAtStep1 <= dpo.liveAtStep1, `live tensors while training: SimPO ${simpo.liveAtStep1}, DPO ${dpo.liveAtStep1}`);
  });
});

describe('KTO moves desirable and undesirable log-ratios apart', () => {
  test('after 6 steps on a balanced set, mean log π/π_ref of desirable − undesirable training completions > 0 (it is 0 at the start)', async () => {
    const out = join(TMP, 'kto-apart');
    await trainKto(ktoConfig(out, { data: { testPath: '' }, train: { maxSteps: 6 } }), { progress: quiet });
    const tok = loadTokenizer(resolveModelDir('stories260k'));
    const { records } = await loadFeedback(LABELS, { format: 'binary' });
    const { items } = tokenizeLabelled(records as BinaryRecord[], tok, 128);
    const ref = (JSON.parse(readFileSync(join(out, 'reference-logprobs.json'), 'utf8')) as { sets: { train: number[] } }).sets.train;
    const policy = loadModel(join(out, 'model'));
    let lp: Float32Array;
    try {
      lp = sequenceLogprobs(policy, items, 32);
    } finally {
      policy.dispose();
    }
    const mean = (want: boolean) => {
      const r = items.flatMap((x, i) => (x.desirable === want ? [lp[i]! - ref[i]!] : []));
      return r.reduce((a, b) => a + b, 0) / r.length;
    };
    const [up, down] = [mean(true), mean(false)];
    assert.equal(items.filter((x) => x.desirable).length, items.length / 2, 'balanced');
    assert.ok(up - down > 0, `desirable ${up}, undesirable ${down}`);
  });
});

describe('bad input', () => {
  test('unpaired data given to a paired method names the file and line (library and CLI)', async () => {
    await assert.rejects(trainDpo(pairedConfig(join(TMP, 'bad-1'), { type: 'orpo' }, { data: { path: LABELS, testPath: '' } }), { progress: quiet }),
      (e: Error) => e.message.startsWith(`${LABELS}:1: an unpaired record {prompt, completion, label}`) && /orpo \(loss\.type orpo\) needs pairs/.test(e.message) && /rlhf train kto/.test(e.message));
    oneLineFailure(await cli.ipoUnpaired, /labels\.jsonl:1: an unpaired record .* ipo \(loss\.type ipo\) needs pairs/);
    assert.ok(!existsSync(join(TMP, 'bad-1')) && !existsSync(join(TMP, 'cli-unpaired')), 'nothing is written');
  });

  test('pairs given to KTO, as training data or through its config, fail clearly', async () => {
    await assert.rejects(trainKto(ktoConfig(join(TMP, 'bad-2'), { data: { path: TRAIN } }), { progress: quiet }),
      (e: Error) => e.message.startsWith(`${TRAIN}:1: a preference pair {prompt, chosen, rejected}, but kto needs unpaired records`));
    await assert.rejects(trainKto(ktoConfig(join(TMP, 'bad-3'), { data: { testPath: LABELS } }), { progress: quiet }),
      /labels\.jsonl:1: an unpaired record .* kto evaluation \(data\.testPath\) needs pairs/);
    oneLineFailure(await cli.ktoFormat, /'data\.format' must be one of binary .*got "pairwise"/);
    assert.ok(!existsSync(join(TMP, 'bad-2')) && !existsSync(join(TMP, 'bad-3')), 'nothing is written');
  });

  test('invalid configs: an unknown key names the nearest, a wrong type names the field, a reference for a reference-free loss is refused', async () => {
    oneLineFailure(await cli.ktoKey, /unknown key 'loss\.desirableWeigth' \(did you mean 'loss\.desirableWeight'\?\)/);
    assert.throws(() => ktoConfig(join(TMP, 'x'), { loss: { beta: 'high' } }), /'loss\.beta' must be a number, got "high"/);
    assert.throws(() => pairedConfig(join(TMP, 'x'), { type: 'simpoo' }), /'loss\.type' must be one of sigmoid, ipo, robust, simpo, orpo \(nearest: 'simpo'\)/);
    await assert.rejects(trainDpo(pairedConfig(join(TMP, 'bad-4'), { type: 'simpo' }, { model: { reference: 'stories260k' } }), { progress: quiet }),
      /model\.reference is set \('stories260k'\) but loss\.type simpo uses no reference model/);
    assert.ok(!existsSync(join(TMP, 'cli-key')) && !existsSync(join(TMP, 'bad-4')));
  });
});
