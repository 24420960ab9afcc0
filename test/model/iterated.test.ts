/**
 * Iterated RLHF (src/rlhf/iterated) on stories260K at a tiny size (16 labels and 3 PPO steps a round):
 *   - a 2-round run completes and logs both rounds; round 2's reward model trains on both rounds' labels
 *     (counted); round 2's RL starts from round 1's policy with the initial policy as its reference;
 *   - a rerun skips finished rounds (the annotator is not asked again); more rounds run only the new ones;
 *   - a run interrupted during round 2's RL resumes and ends where an uninterrupted run ends;
 *   - `rlhf train online --json`: one line of JSON with the synthetic gold annotator's rounds and gold scores;
 *   - bad input: unknown config keys, an annotator that returns the wrong number of records or
 *     malformed ones — a clear error naming the round.
 * Tags: @numeric @learning
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';

import { loadConfig, validateConfig } from '../../src/config.js';
import type { Annotator, Comparison, PairwiseLabel } from '../../src/rlhf/iterated/annotator.js';
import { ITERATED_DEFAULTS, ITERATED_SCHEMA, type IteratedConfig } from '../../src/rlhf/iterated/config.js';
import { type IteratedSummary, type RoundRow, trainIterated } from '../../src/rlhf/iterated/trainer.js';
import { rlhf } from './run-cli.js';
import { loadModel } from '../../src/models/hub.js';
import { llamaLogitScale, logprobBound, STORIES260K, STORIES260K_VOCAB } from '../tolerance.js';
import { reportBound } from '../env.js';

const TMP = mkdtempSync(join(tmpdir(), 'rlhf-iterated-test-'));
after(() => rmSync(TMP, { recursive: true, force: true }));
const quiet = () => {};

const TINY = {
  rounds: 2, maxNewTokens: 16, labels: { perRound: 16 },
  rm: { epochs: 1, batchSize: 8, splitRatio: 0.75 },
  rl: { steps: 3, prompts: 4, samplesPerPrompt: 2, evalSamples: 8, checkpointEvery: 1 },
};

function config(out: string, over: Record<string, unknown> = {}): IteratedConfig {
  return validateConfig({ ...TINY, ...over, out: join(TMP, out) }, ITERATED_DEFAULTS, ITERATED_SCHEMA, 'test');
}

/** Prefers the longer completion; counts its calls and the rounds it was asked in. */
function longerAnnotator(): Annotator & { rounds: number[] } {
  const rounds: number[] = [];
  return {
    id: 'longer', rounds,
    label(cs: readonly Comparison[], ctx) {
      rounds.push(ctx.round);
      return cs.map((c) => (c.a.length >= c.b.length ? { prompt: c.prompt, chosen: c.a, rejected: c.b } : { prompt: c.prompt, chosen: c.b, rejected: c.a }));
    },
  };
}

const evaluate = (texts: readonly string[]) => texts.map((t) => t.length / 100);
const lines = (path: string) => readFileSync(path, 'utf8').split('\n').filter(Boolean);
const rowsOf = (out: string) => lines(join(out, 'rounds.jsonl')).map((l) => JSON.parse(l) as RoundRow);

describe('iterated RLHF', () => {
  const cfg = config('two');
  let first: RoundRow[] = [];

  test('2 rounds: both logged; round 2 trains its reward model on both rounds\' labels; the reference stays the initial policy', async () => {
    const ann = longerAnnotator();
    const s = await trainIterated(cfg, ann, { evaluate, progress: quiet });
    first = s.rounds;
    assert.deepEqual(ann.rounds, [1, 2]);
    const rows = rowsOf(cfg.out);
    assert.deepEqual(rows.map((r) => r.round), [1, 2]);
    assert.deepEqual(rows.map((r) => [r.newLabels, r.labels]), [[16, 16], [16, 32]]);
    const r1 = lines(join(cfg.out, 'round-1', 'labels.jsonl'));
    const r2 = lines(join(cfg.out, 'round-2', 'labels.jsonl'));
    assert.deepEqual(lines(join(cfg.out, 'round-2', 'rm-data.jsonl')), [...r1, ...r2]);
    // Every label is used, but a pair of two identical samples, which says nothing (skipped and counted).
    assert.equal(rows[1]!.rm.trainPairs + rows[1]!.rm.heldOutPairs + rows[1]!.rm.skippedIdentical, 32);
    assert.equal(rows[0]!.rm.trainPairs + rows[0]!.rm.heldOutPairs + rows[0]!.rm.skippedIdentical, 16);
    assert.equal((JSON.parse(r2[0]!) as { source: string }).source, 'round-2');
    // Round 2 continues round 1's policy; both measure KL from the initial policy.
    const rl2 = JSON.parse(readFileSync(join(cfg.out, 'round-2', 'rl', 'checkpoint', 'trainer.json'), 'utf8')) as { config: { model: { policy: string; reference: string } } };
    assert.deepEqual(rl2.config.model, { policy: join(cfg.out, 'round-1', 'rl', 'model'), reference: 'stories260k' });
    assert.equal(rows[0]!.rl.policy, 'stories260k');
    // Bound: the sampled log-probs (decode path) against the reference's (scoring path) of the same weights,
    // ≤ maxNewTokens tokens per sequence, each within a log-prob's float32 bound (test/tolerance.ts).
    const model = loadModel('stories260k');
    const klBound = cfg.maxNewTokens * logprobBound(STORIES260K, 64, llamaLogitScale(model), STORIES260K_VOCAB);
    model.dispose();
    reportBound('iterated RLHF round-1 KL at the reference', Math.abs(rows[0]!.rl.initial!.kl), klBound, 1e-4);
    assert.ok(Math.abs(rows[0]!.rl.initial!.kl) <= klBound, `round 1 starts at the reference (KL ${rows[0]!.rl.initial!.kl}, bound ${klBound})`);
    assert.ok(rows[1]!.rl.initial!.kl > 10 * Math.abs(rows[0]!.rl.initial!.kl), 'round 2 is further from the reference than rounding');
    assert.ok(rows[1]!.rl.initial!.kl > 0.1, `round 2 starts where round 1 left the policy, away from the reference (KL ${rows[1]!.rl.initial!.kl})`);
    for (const r of rows) {
      assert.ok(typeof r.score === 'number' && typeof r.scoreSe === 'number', 'the evaluator scores every round');
      assert.equal(r.agreement, 1, "the evaluator (length) agrees with the 'longer' annotator");
      assert.ok(existsSync(join(cfg.out, `round-${r.round}`, 'done.json')));
    }
  });

  test('a rerun skips finished rounds; more rounds run only the new one', async () => {
    const ann = longerAnnotator();
    const said: string[] = [];
    const s = await trainIterated(cfg, ann, { evaluate, progress: (l) => said.push(l) });
    assert.deepEqual(ann.rounds, []);
    assert.equal(said.filter((l) => l.includes('skipped')).length, 2);
    assert.ok(!said.some((l) => l.includes('[train ')), 'no trainer ran');
    assert.deepEqual(s.rounds, first);
    const more = await trainIterated({ ...cfg, rounds: 3 }, ann, { evaluate, progress: quiet });
    assert.deepEqual(ann.rounds, [3]);
    assert.deepEqual(more.rounds.slice(0, 2), first);
    assert.deepEqual(rowsOf(cfg.out).map((r) => r.labels), [16, 32, 48]);
  });

  test("interrupted during round 2's RL: resumes, and ends where the uninterrupted run ended", async () => {
    const c = config('interrupted');
    const ac = new AbortController();
    const progress = (l: string) => {
      if (l.startsWith('[round 2/2 ppo]') && l.includes('step 1/3')) ac.abort();
    };
    await assert.rejects(trainIterated(c, longerAnnotator(), { evaluate, progress, signal: ac.signal }), /interrupted after step 1/);
    assert.ok(existsSync(join(c.out, 'round-1', 'done.json')) && !existsSync(join(c.out, 'round-2', 'done.json')));
    const ann = longerAnnotator();
    const s = await trainIterated(c, ann, { evaluate, progress: quiet });
    assert.deepEqual(ann.rounds, [], "round 2's labels are reused, not asked again");
    assert.equal(s.rounds[1]!.rl.resumedFrom, 1);
    for (const k of ['reward', 'kl', 'score'] as const) {
      assert.equal((s.rounds[1]!.rl.final as Record<string, unknown>)[k], (first[1]!.rl.final as Record<string, unknown>)[k], `final ${k}`);
    }
    assert.deepEqual(rowsOf(c.out).map((r) => r.round), [1, 2]);
  });
});

describe('bad input', () => {
  test('an unknown config key names the nearest; fields that do not fit together are refused', () => {
    assert.throws(() => validateConfig({ rl: { stepz: 3 } }, ITERATED_DEFAULTS, ITERATED_SCHEMA, 'test'), /unknown key 'rl\.stepz' \(did you mean 'rl\.steps'\?\)/);
    assert.throws(() => loadConfig(undefined, ['labels.perRund=8'], ITERATED_DEFAULTS, ITERATED_SCHEMA), /unknown key 'labels\.perRund' \(did you mean 'labels\.perRound'\?\)/);
    assert.throws(() => loadConfig(undefined, ['rl.algorithm=dpo'], ITERATED_DEFAULTS, ITERATED_SCHEMA), /'rl\.algorithm' must be one of ppo, grpo/);
    return assert.rejects(trainIterated(config('split', { rm: { splitRatio: 1 } }), longerAnnotator(), { progress: quiet }), /rm\.splitRatio must be in \(0, 1\)/);
  });

  test('an annotator that returns the wrong number of records: a clear error naming the round', async () => {
    const short: Annotator = { id: 'short', label: async (cs) => longerAnnotator().label(cs.slice(1), { round: 1, seed: 0 }) };
    await assert.rejects(trainIterated(config('short'), short, { progress: quiet }), /round 1: annotator 'short' returned 15 records for 16 comparisons/);
  });

  test('malformed records in round 2: a clear error naming round 2 and the record; nothing is written for the round', async () => {
    const c = config('malformed');
    const good = longerAnnotator();
    const liar = (mutate: (r: PairwiseLabel[]) => unknown[]): Annotator => ({
      id: 'liar', label: (cs, ctx) => (ctx.round === 1 ? good.label(cs, ctx) : mutate(good.label(cs, ctx) as PairwiseLabel[])) as PairwiseLabel[],
    });
    await assert.rejects(trainIterated(c, liar((r) => r.map((x, i) => (i === 3 ? { ...x, chosen: 'a story nobody was shown' } : x))), { progress: quiet }),
      /round 2: annotator 'liar': record 3 is not its comparison/);
    assert.ok(existsSync(join(c.out, 'round-1', 'done.json')) && !existsSync(join(c.out, 'round-2', 'labels.jsonl')));
    await assert.rejects(trainIterated(c, liar((r) => r.map((x, i) => (i === 0 ? null : x))), { progress: quiet }), /round 2: annotator 'liar': record 0 is not an object/);
    await assert.rejects(trainIterated(c, liar((r) => r.map(({ rejected: _r, ...x }) => x)), { progress: quiet }), /round 2: annotator 'liar': record 0 has no string 'rejected'/);
  });
});

describe('rlhf train online', () => {
  test('--json: one line with every round, labelled by the gold annotator and scored by the gold reward; an unknown key fails', async () => {
    const out = join(TMP, 'cli');
    const sets = ['rounds=2', 'maxNewTokens=16', 'labels.perRound=16', 'rm.epochs=1', 'rm.batchSize=8', 'rm.splitRatio=0.75', 'rl.steps=2', 'rl.prompts=4', 'rl.samplesPerPrompt=2', 'rl.evalSamples=8', `out=${out}`];
    const r = await rlhf(['train', 'online', ...sets.flatMap((x) => ['--set', x]), '--json']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim().split('\n').length, 1);
    const s = JSON.parse(r.stdout) as IteratedSummary;
    assert.deepEqual(s.rounds.map((x) => x.labels), [16, 32]);
    for (const x of s.rounds) assert.ok(x.score! > 0 && x.score! <= 1 && x.agreement! > 0.5, `gold in (0, 1] and labels mostly agree with it: ${x.score}, ${x.agreement}`);
    assert.match(lines(join(out, 'round-1', 'labels.jsonl'))[0]!, /"annotator":"gold-bt"/);
    const bad = await rlhf(['train', 'online', '--set', 'annotator.beta=3']);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /unknown key 'annotator\.beta' \(did you mean 'annotator\.rationality'\?\)/);
  });
});
