/**
 * `rlhf lab mitigations --quick` (src/lab/mitigations.ts): every mitigation run traced on the gold–KL
 * plane, its section in the lab report; gold interpolated at a common KL by hand.
 * Tags: @learning
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { rlhf } from '../model/run-cli.js';
import { goldAtKl } from '../../src/lab/mitigations.js';
import { TEST_SEED } from '../env.js';

const TMP = mkdtempSync(join(tmpdir(), 'rlhf-lab-mitigations-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

test('gold at a KL: linear between evaluations, null beyond the run', () => {
  const pts = [{ step: 0, kl: 0, gold: 0.5, proxy: 0 }, { step: 5, kl: 2, gold: 0.7, proxy: 0 }, { step: 10, kl: 4, gold: 0.6, proxy: 0 }];
  assert.ok(Math.abs(goldAtKl(pts, 1)! - 0.6) < 1e-12);
  assert.ok(Math.abs(goldAtKl(pts, 3)! - 0.65) < 1e-12);
  assert.equal(goldAtKl(pts, 5), null);
});

test('rlhf lab mitigations --quick: every run on the frontier plot, one JSON line, the section in the report', async () => {
  const r = await rlhf(['lab', 'mitigations', '--quick', '--seed', String(TEST_SEED), '--out', TMP, '--json']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim().split('\n').length, 1);
  const s = JSON.parse(r.stdout) as { rows: { name: string; endGold: number }[]; report: string };
  assert.deepEqual(s.rows.map((x) => x.name), ['baseline (β 0.01)', 'ensemble mean (2)', 'ensemble min (2)', 'ensemble mean − 1·std', 'length penalty 0.01/token']);
  for (const x of s.rows) assert.ok(x.endGold > 0 && x.endGold <= 1, x.name);
  assert.ok(existsSync(join(TMP, 'sections', 'mitigations.json')));
  assert.match(readFileSync(s.report, 'utf8'), /Mitigations on the gold–KL frontier[\s\S]*<svg/);
  const bad = await rlhf(['lab', 'mitigations', '--quick', '--seed', String(TEST_SEED), '--out', join(TMP, 'x'), '--set', 'proxy.members=1']);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /'proxy\.members' must be >= 2/);
});
