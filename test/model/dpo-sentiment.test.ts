/**
 * DPO at small size learns what its labels mean: 640 training pairs of stories260K samples labelled by
 * AFINN sentiment (src/rlhf/dpo/synthetic-pairs.ts), 40 steps; on 128 held-out pairs sampled with another
 * seed, the implicit reward β log(π/π_ref) orders chosen above rejected more often than chance (ties ½),
 * for any seed (160 pairs in 20 steps fell to 0.50–0.53 on some).
 * The full-size measurement (≥ 1000 / ≥ 200 pairs) is configs/dpo-stories.yaml.
 * Tags: @learning
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';

import { validateConfig } from '../../src/config.js';
import { loadModel, resolveModelDir } from '../../src/models/hub.js';
import { loadTokenizer } from '../../src/text/index.js';
import { DPO_DEFAULTS, DPO_SCHEMA } from '../../src/rlhf/dpo/config.js';
import { trainDpo } from '../../src/rlhf/dpo/trainer.js';
import { sentimentPairs, writePairs } from '../../src/rlhf/dpo/synthetic-pairs.js';
import { reportMargin, TEST_SEED, TEST_THREADS, testSeed, useTestThreads } from '../env.js';

const TMP = mkdtempSync(join(tmpdir(), 'rlhf-dpo-sentiment-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

test('640 sentiment pairs, 40 steps: held-out implicit-reward accuracy > 0.5 on 128 pairs', async () => {
  useTestThreads();
  const model = loadModel('stories260k');
  const tok = loadTokenizer(resolveModelDir('stories260k'));
  try {
    writePairs(join(TMP, 'train.jsonl'), sentimentPairs(model, tok, { n: 640, seed: testSeed(11) }));
    writePairs(join(TMP, 'test.jsonl'), sentimentPairs(model, tok, { n: 128, seed: testSeed(12) }));
  } finally {
    model.dispose();
  }
  const cfg = validateConfig({
    seed: TEST_SEED, out: join(TMP, 'run'),
    data: { path: join(TMP, 'train.jsonl'), testPath: join(TMP, 'test.jsonl'), maxTokens: 128 },
    loss: { beta: 0.1 },
    train: { batchSize: 16, lr: 5e-4, warmupSteps: 2, schedule: 'constant', threads: TEST_THREADS },
  }, DPO_DEFAULTS, DPO_SCHEMA, 'test');
  const s = await trainDpo(cfg, { progress: () => {} });
  assert.equal(s.steps, 40);
  assert.equal(s.eval!.n, 128);
  reportMargin({ test: 'dpo', metric: 'held-out accuracy', value: s.eval!.accuracy, bar: 0.5 });
  assert.ok(s.eval!.accuracy > 0.5, `held-out implicit-reward accuracy ${s.eval!.accuracy}`);
  assert.ok(s.eval!.margin > 0, `held-out mean margin ${s.eval!.margin}`);
});
