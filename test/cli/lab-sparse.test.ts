/**
 * `rlhf lab sparse`: the same gold signal per sequence, per sentence and per token.
 *   - the token- and sentence-level rewards of real samples sum to the sequence reward (the gold), and the
 *     sequence granularity puts it all on the last token;
 *   - `--quick` completes, prints one JSON line and writes the report with its section;
 *   - a bad config: exit 1 with a one-line reason naming the field.
 * Tags: @learning
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { loadModel, resolveModelDir } from '../../src/models/hub.js';
import { loadTokenizer } from '../../src/text/index.js';
import { sample } from '../../src/rlhf/online/rollout.js';
import { goldReward } from '../../src/lab/gold.js';
import { prefixGoldReward } from '../../src/lab/sparse.js';
import { rlhf } from '../model/run-cli.js';
import { TEST_SEED } from '../env.js';

const TMP = mkdtempSync(join(tmpdir(), 'rlhf-lab-sparse-test-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

describe('rlhf lab sparse', () => {
  test('token and sentence rewards of a sample sum to its sequence reward, the gold', () => {
    const dir = resolveModelDir('stories260k');
    const tok = loadTokenizer(dir);
    const policy = loadModel(dir);
    try {
      const s = sample(policy, tok, ['', '', '', ''], { maxNewTokens: 24, temperature: 1, topK: 0, topP: 1 }, 7);
      for (const g of ['sequence', 'sentence', 'token'] as const) {
        const out = prefixGoldReward(g, tok).score(s);
        s.completions.forEach((c, i) => {
          assert.ok(Math.abs(out.rewards[i]! - goldReward(c)) < 1e-12, `${g}: the sequence reward is the gold`);
          const dense = out.tokenRewards![i]!;
          assert.equal(dense.length, s.completionIds[i]!.length);
          const sum = dense.reduce((a, x) => a + x, 0);
          assert.ok(Math.abs(sum - out.rewards[i]!) < 1e-9, `${g}: token rewards sum to ${sum}, sequence reward ${out.rewards[i]}`);
          if (g === 'sequence') assert.ok(dense.slice(0, -1).every((x) => x === 0));
        });
        if (g === 'token') assert.ok(out.tokenRewards!.some((d) => d.filter((x) => x !== 0).length > 1), 'token rewards are spread over the sequence');
      }
    } finally {
      policy.dispose();
    }
  });

  test('--quick completes, prints one JSON line, writes the report and section', async () => {
    const out = join(TMP, 'q');
    const r = await rlhf(['lab', 'sparse', '--quick', '--seed', String(TEST_SEED), '--out', out, '--json']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim().split('\n').length, 1);
    const res = JSON.parse(r.stdout) as { experiment: string; runs: Record<string, { finalGold: number }> };
    assert.equal(res.experiment, 'sparse');
    assert.deepEqual(Object.keys(res.runs), ['sequence', 'sentence', 'token']);
    assert.ok(existsSync(join(out, 'sections', 'sparse.json')));
    for (const g of ['sequence', 'sentence', 'token']) assert.ok(existsSync(join(out, 'sparse', g, 'checkpoint', 'trainer.json')), `missing ${g} checkpoint`);
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    assert.match(html, /Sparse vs dense feedback/);
    assert.ok((html.match(/<svg/g) ?? []).length >= 2, 'the section holds its plots');
  });

  test('a bad config: exit 1 naming the field', async () => {
    const r = await rlhf(['lab', 'sparse', '--quick', '--seed', String(TEST_SEED), '--out', join(TMP, 'bad'), '--set', 'granularities=[token,word]']);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /granularities/);
    const s = await rlhf(['lab', 'sparse', '--quick', '--seed', String(TEST_SEED), '--out', join(TMP, 'bad'), '--set', 'steps=0']);
    assert.equal(s.status, 1, s.stderr);
    assert.match(s.stderr, /steps/);
  });
});
