/**
 * `rlhf lab` bad input, across experiments: an unknown experiment (usage error naming the nearest), and
 * an experiment asked for a model it cannot use (exit 1 naming the path, before any work is done).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { rlhf } from '../model/run-cli.js';
import { LAB_EXPERIMENTS } from '../../src/lab/experiments.js';

const TMP = mkdtempSync(join(tmpdir(), 'rlhf-lab-bad-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

test('an unknown experiment is a usage error naming the nearest one', async () => {
  const r = await rlhf(['lab', 'paradx', '--quick']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown command 'lab paradx' \(did you mean 'lab paradox'\?\)/);
});

test('every experiment refuses a model directory that does not exist, naming it', async () => {
  for (const name of Object.keys(LAB_EXPERIMENTS)) {
    const out = join(TMP, name);
    const r = await rlhf(['lab', name, '--quick', '--out', out, '--set', 'model=/nonexistent/policy']);
    assert.equal(r.status, 1, `${name}: ${r.stderr}`);
    assert.match(r.stderr, /^rlhf: .*\/nonexistent\/policy/, name);
    assert.ok(!existsSync(join(out, 'sections')), `${name} must not record a section`);
  }
});
