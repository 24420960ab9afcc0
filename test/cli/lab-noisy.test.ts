/**
 * `rlhf lab noisy`: label noise against proxy accuracy, calibration and the policy's gold.
 *   - flips are drawn from one stream whatever the rate, so a label flipped at 0.1 is flipped at 0.3 too,
 *     and β = ∞ labels without flips follow the gold ordering;
 *   - `--quick` completes, prints one JSON line, writes OUT/report.html with the section
 *     and OUT/sections/noisy.json; a rerun into the same --out skips every finished step;
 *   - an unknown config key or an out-of-range flip rate: exit 1 with a one-line reason naming the field.
 * Tags: @learning
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { goldReward } from '../../src/lab/gold.js';
import { labelComparisons } from '../../src/lab/noisy.js';
import { rlhf } from '../model/run-cli.js';
import { TEST_SEED } from '../env.js';

const TMP = mkdtempSync(join(tmpdir(), 'rlhf-lab-noisy-test-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

describe('rlhf lab noisy', () => {
  test('flips nest across rates; β = ∞ without flips follows the gold ordering', () => {
    const texts = ['a happy good day', 'a sad bad day', 'the dog ran', 'she loved the great cake', 'it was awful', 'they smiled'];
    const comparisons = Array.from({ length: 200 }, (_, i) => ({ prompt: '', a: texts[i % 6]!, b: texts[(i * 5 + 1) % 6]! }));
    const clean = labelComparisons(comparisons, Infinity, 0, 3);
    for (const r of clean) assert.ok(goldReward(r.chosen) >= goldReward(r.rejected), 'β = ∞ picks the higher gold');
    const flipped = (f: number) => new Set(labelComparisons(comparisons, Infinity, f, 3).flatMap((r, i) => (r.chosen !== clean[i]!.chosen ? [i] : [])));
    const [low, high] = [flipped(0.1), flipped(0.3)];
    for (const i of low) assert.ok(high.has(i), `pair ${i} flipped at 0.1 but not at 0.3`);
    assert.ok(high.size > low.size && high.size > 30 && high.size < 90, `${low.size} flips at 0.1, ${high.size} at 0.3 of 200`);
  });

  test('--quick completes, prints one JSON line, writes the report and section; a rerun resumes', async () => {
    const out = join(TMP, 'q');
    const r = await rlhf(['lab', 'noisy', '--quick', '--seed', String(TEST_SEED), '--out', out, '--json']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim().split('\n').length, 1);
    type Res = { experiment: string; rows: { setting: string; accuracy: number; ece: number; gold: number }[]; dpo: { method: string; accuracy: number }[] };
    const res = JSON.parse(r.stdout) as Res;
    assert.equal(res.experiment, 'noisy');
    assert.deepEqual(res.rows.map((x) => x.setting), ['b2-f0', 'binf-f0', 'binf-f0.3', 'binf-f0.3-ls']);
    assert.deepEqual(res.dpo.map((x) => x.method), ['DPO', 'conservative DPO']);
    for (const x of res.rows) assert.ok([x.accuracy, x.ece, x.gold].every(Number.isFinite), JSON.stringify(x));
    assert.ok(existsSync(join(out, 'sections', 'noisy.json')));
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    assert.match(html, /Noisy feedback: annotator rationality and label flips/);
    assert.ok((html.match(/<svg/g) ?? []).length >= 3, 'the section holds its plots');
    assert.match(html, /Label-smoothed BT \(ε 0\.3\) against plain BT/);

    const again = await rlhf(['lab', 'noisy', '--quick', '--seed', String(TEST_SEED), '--out', out, '--json']);
    assert.equal(again.status, 0, again.stderr);
    assert.doesNotMatch(again.stderr, /sampled|\[train rm\] step|\[train ppo\] step 1\/|\[train dpo\] step/, 'finished steps must be skipped');
    const { rows, dpo } = JSON.parse(again.stdout) as Res;
    assert.deepEqual({ rows, dpo }, { rows: res.rows, dpo: res.dpo });
  });

  test('an unknown config key or a flip rate out of range: exit 1 naming the field', async () => {
    const r = await rlhf(['lab', 'noisy', '--quick', '--seed', String(TEST_SEED), '--out', join(TMP, 'bad'), '--set', 'annotators.flipRate=[0.2]']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /unknown key 'annotators\.flipRate' \(did you mean 'annotators\.flipRates'\?\)/);
    const f = await rlhf(['lab', 'noisy', '--quick', '--seed', String(TEST_SEED), '--out', join(TMP, 'bad'), '--set', 'annotators.flipRates=[0.6]']);
    assert.equal(f.status, 1);
    assert.match(f.stderr, /annotators\.flipRates: every rate must be in \[0, 0\.5\), got 0\.6/);
  });
});
