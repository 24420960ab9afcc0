/**
 * The online-algorithm registry (src/rlhf/algorithms.ts) is what every embedding chooses from:
 *   - `rlhf demo --quick --set rl.algorithm=rloo|remax|reinforcepp` completes, and its RL phase ran that
 *     algorithm (the checkpoint names it; the report titles it);
 *   - iterated RLHF (`rlhf train online`) with rl.algorithm=rloo completes both rounds with RLOO;
 *   - every `rlhf train <name>` command is the registry's, and a config field naming an algorithm lists
 *     the registry's names.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { COMMANDS } from '../../src/cli/main.js';
import { ONLINE_ALGORITHM_NAMES, ONLINE_ALGORITHMS } from '../../src/rlhf/algorithms.js';
import { ITERATED_DEFAULTS, ITERATED_SCHEMA } from '../../src/rlhf/iterated/config.js';
import { DEMO_DEFAULTS, DEMO_SCHEMA } from '../../src/lab/demo-config.js';
import type { IteratedSummary } from '../../src/rlhf/iterated/trainer.js';
import { rlhf } from '../model/run-cli.js';
import { TEST_SEED } from '../env.js';

const TMP = mkdtempSync(join(tmpdir(), 'rlhf-algorithms-test-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

describe('the online-algorithm registry', () => {
  test('every `rlhf train <name>` of an online algorithm comes from the registry; rl.algorithm accepts each name', () => {
    for (const name of ONLINE_ALGORITHM_NAMES) {
      assert.equal(COMMANDS[`train ${name}`]?.summary, ONLINE_ALGORITHMS[name].summary, `train ${name}`);
      assert.equal(loadConfig(undefined, [`rl.algorithm=${name}`], DEMO_DEFAULTS, DEMO_SCHEMA).rl.algorithm, name);
      assert.equal(loadConfig(undefined, [`rl.algorithm=${name}`], ITERATED_DEFAULTS, ITERATED_SCHEMA).rl.algorithm, name);
    }
    assert.throws(
      () => loadConfig(undefined, ['rl.algorithm=rlo'], DEMO_DEFAULTS, DEMO_SCHEMA),
      /one of ppo, grpo, rloo, remax, reinforce, reinforcepp \(nearest: 'rloo'\)/,
    );
  });

  for (const name of ['rloo', 'remax', 'reinforcepp'] as const) {
    test(`rlhf demo --quick --set rl.algorithm=${name}: the RL phase runs ${ONLINE_ALGORITHMS[name].title}`, async () => {
      const out = join(TMP, `demo-${name}`);
      const r = await rlhf(['demo', '--quick', '--seed', String(TEST_SEED), '--out', out, '--set', `rl.algorithm=${name}`, '--json']);
      assert.equal(r.status, 0, r.stderr);
      const s = JSON.parse(r.stdout) as { algorithm: string; gold: { end: number } };
      assert.equal(s.algorithm, name);
      assert.ok(Number.isFinite(s.gold.end));
      const state = JSON.parse(readFileSync(join(out, 'rl', 'checkpoint', 'trainer.json'), 'utf8')) as { algorithm: string };
      assert.equal(state.algorithm, name);
      assert.match(readFileSync(join(out, 'report.html'), 'utf8'), new RegExp(`${ONLINE_ALGORITHMS[name].title.replace(/\+/g, '\\+')} training`));
    });
  }

  test('iterated RLHF with rl.algorithm=rloo: both rounds run RLOO', async () => {
    const out = join(TMP, 'iterated-rloo');
    const sets = [
      'rounds=2',
      'maxNewTokens=16',
      'labels.perRound=16',
      'rm.epochs=1',
      'rm.batchSize=8',
      'rm.splitRatio=0.75',
      'rl.algorithm=rloo',
      'rl.steps=2',
      'rl.prompts=4',
      'rl.samplesPerPrompt=2',
      'rl.evalSamples=8',
      `seed=${TEST_SEED}`,
      `out=${out}`,
    ];
    const r = await rlhf(['train', 'online', ...sets.flatMap((x) => ['--set', x]), '--json']);
    assert.equal(r.status, 0, r.stderr);
    const s = JSON.parse(r.stdout) as IteratedSummary;
    assert.deepEqual(
      s.rounds.map((x) => x.rl.algorithm),
      ['rloo', 'rloo'],
    );
    const bad = await rlhf(['train', 'online', '--set', 'rl.algorithm=rloo', '--set', 'rl.samplesPerPrompt=1']);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /rl\.samplesPerPrompt must be ≥ 2 for RLOO/);
  });
});
