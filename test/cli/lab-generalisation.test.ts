/**
 * `rlhf lab generalisation --quick` (src/lab/generalisation.ts): the proxy's agreement with the gold on
 * in-distribution, new-prompt and RL-policy pairs, with coverage distances; nearest-neighbour distances by hand.
 * Tags: @learning
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { rlhf } from '../model/run-cli.js';
import { nearestCosine, nearestDistances } from '../../src/lab/generalisation.js';
import { TEST_SEED } from '../env.js';

const TMP = mkdtempSync(join(tmpdir(), 'rlhf-lab-generalisation-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

test('nearest-neighbour distances: Euclidean in RMS units, 1 − cosine for bags of words', () => {
  const refs = [Float32Array.from([3, 4]), Float32Array.from([0, 0])]; // RMS norm √(25/2)
  const d = nearestDistances([Float32Array.from([3, 4]), Float32Array.from([0, 1])], refs);
  assert.equal(d[0], 0);
  assert.ok(Math.abs(d[1]! - 1 / Math.sqrt(12.5)) < 1e-9);
  const bow = (o: Record<string, number>) => new Map(Object.entries(o));
  const c = nearestCosine([bow({ a: 1 }), bow({ b: Math.SQRT1_2, c: Math.SQRT1_2 })], [bow({ a: 1 }), bow({ b: 1 })]);
  assert.equal(c[0], 0);
  assert.ok(Math.abs(c[1]! - (1 - Math.SQRT1_2)) < 1e-12);
});

test('rlhf lab generalisation --quick: three kinds of evaluation set, coverage, the section in the report', async () => {
  const r = await rlhf(['lab', 'generalisation', '--quick', '--seed', String(TEST_SEED), '--out', TMP, '--json']);
  assert.equal(r.status, 0, r.stderr);
  const s = JSON.parse(r.stdout) as { rows: { set: string; agreement: number; proxyDist: number; promptDist: number }[]; report: string };
  assert.deepEqual(s.rows.slice(0, 2).map((x) => x.set), ['in-distribution', 'new prompts']);
  assert.ok(s.rows.some((x) => x.set.startsWith('RL step')));
  assert.ok(s.rows[0]!.promptDist < 1e-3 && s.rows[1]!.promptDist > 0.1, 'new prompts are away from the BOS-only training prompt');
  assert.ok(existsSync(join(TMP, 'sections', 'generalisation.json')));
  assert.match(readFileSync(s.report, 'utf8'), /Incorrect generalisation[\s\S]*<svg/);
  const bad = await rlhf(['lab', 'generalisation', '--quick', '--seed', String(TEST_SEED), '--out', join(TMP, 'x'), '--set', 'newPrompts=[]']);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /newPrompts must list non-empty prompts/);
});
