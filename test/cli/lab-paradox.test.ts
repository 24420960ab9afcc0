/**
 * `rlhf lab paradox --quick` (the accuracy paradox, src/lab/paradox.ts): completes through the command line
 * with one JSON line, writes its section and the lab report, resumes (a rerun skips the finished proxies),
 * and refuses bad configs; Spearman's ρ by hand.
 * Tags: @learning
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { rlhf } from '../model/run-cli.js';
import { spearman } from '../../src/lab/paradox.js';
import { TEST_SEED } from '../env.js';

const TMP = mkdtempSync(join(tmpdir(), 'rlhf-lab-paradox-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

test('Spearman ρ: monotone = 1, reversed = −1, ties share ranks', () => {
  assert.equal(spearman([1, 2, 3, 4], [10, 20, 25, 40]), 1);
  assert.equal(spearman([1, 2, 3], [3, 2, 1]), -1);
  assert.ok(Math.abs(spearman([1, 2, 2, 3], [1, 2, 3, 4]) - 0.9487) < 1e-3);
  assert.ok(Number.isNaN(spearman([1, 2], [2, 1])));
});

test('rlhf lab paradox --quick: one JSON line, its section in the lab report, resumable', async () => {
  const r = await rlhf(['lab', 'paradox', '--quick', '--seed', String(TEST_SEED), '--out', TMP, '--json']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim().split('\n').length, 1);
  const s = JSON.parse(r.stdout) as { rows: { steps: number; accuracy: number; goldAfter: number }[]; report: string };
  assert.deepEqual(s.rows.map((x) => x.steps), [1, 8]);
  for (const x of s.rows) assert.ok(x.accuracy >= 0 && x.accuracy <= 1 && x.goldAfter > 0);
  assert.ok(existsSync(join(TMP, 'sections', 'paradox.json')));
  assert.match(readFileSync(s.report, 'utf8'), /The accuracy paradox[\s\S]*<svg/);
  const again = await rlhf(['lab', 'paradox', '--quick', '--seed', String(TEST_SEED), '--out', TMP, '--json']);
  assert.equal(again.status, 0, again.stderr);
  assert.doesNotMatch(again.stderr, /\[train rm\] step|\[train ppo\] step/, 'finished proxies must be skipped');
  assert.deepEqual(JSON.parse(again.stdout).rows, s.rows);
});

test('bad configs: an unknown key names the nearest; one proxy is not a comparison', async () => {
  const bad = await rlhf(['lab', 'paradox', '--quick', '--seed', String(TEST_SEED), '--out', join(TMP, 'x'), '--set', 'rmStep=[1,2]']);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /unknown key 'rmStep' \(did you mean 'rmSteps'\?\)/);
  const one = await rlhf(['lab', 'paradox', '--quick', '--seed', String(TEST_SEED), '--out', join(TMP, 'y'), '--set', 'rmSteps=[4]']);
  assert.equal(one.status, 1);
  assert.match(one.stderr, /rmSteps must list at least 2 positive integers/);
});
