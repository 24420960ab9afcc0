/**
 * `rlhf lab misspecification --quick` through the command line:
 *   - it completes, prints one line of JSON, and writes OUT/report.html with the
 *     section and OUT/sections/misspecification.json; the two groups disagree on some held-out pairs;
 *   - a rerun into the same --out resumes from the done-markers (same numbers, no training);
 *   - an unknown config key, or group fractions that do not sum to 1: exit 1 with a one-line reason.
 * Tags: @learning
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { rlhf } from '../model/run-cli.js';
import { TEST_SEED } from '../env.js';

const TMP = mkdtempSync(join(tmpdir(), 'rlhf-lab-misspec-test-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

interface Result {
  experiment: string;
  report: string;
  seconds: number;
  disagreement: number;
  accuracy: Record<string, Record<string, number>>;
}

describe('rlhf lab misspecification --quick', () => {
  const out = join(TMP, 'lab');
  let first: Result;

  test('completes, prints one JSON line, writes the report and the section', async () => {
    const r = await rlhf(['lab', 'misspecification', '--quick', '--seed', String(TEST_SEED), '--out', out, '--json']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim().split('\n').length, 1);
    first = JSON.parse(r.stdout) as Result;
    assert.equal(first.experiment, 'misspecification');
    assert.ok(first.disagreement > 0 && first.disagreement < 1, `groups should disagree on some pairs, got ${first.disagreement}`);
    for (const rm of ['pooled', 'sentiment', 'brevity', 'conditioned']) {
      for (const g of ['sentiment', 'brevity']) assert.ok(first.accuracy[rm]![g]! >= 0 && first.accuracy[rm]![g]! <= 1, `${rm}/${g}`);
    }
    const section = JSON.parse(readFileSync(join(out, 'sections', 'misspecification.json'), 'utf8')) as { section: { id: string; paragraphs: string[]; tables: unknown[] } };
    assert.equal(section.section.id, 'misspecification');
    assert.ok(section.section.tables.length >= 1);
    assert.match(section.section.paragraphs.join(' '), /disagree|order the two texts differently/);
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    assert.match(html, /Misspecification/);
    assert.ok((html.match(/<svg/g) ?? []).length >= 2, 'the section must hold its plots');
    for (const f of ['train-pooled.jsonl', 'train-conditioned.jsonl', 'heldout.json', 'rm-pooled/model/config.json', 'eval.done.json']) {
      assert.ok(existsSync(join(out, 'misspecification', f)), `missing ${f}`);
    }
    // The conditioned RM's records carry the annotator's tag as their prompt.
    const rec = JSON.parse(readFileSync(join(out, 'misspecification', 'train-conditioned.jsonl'), 'utf8').split('\n')[0]!) as { prompt: string; annotator: string };
    assert.equal(rec.prompt, `[${rec.annotator}] `);
  });

  test('a rerun into the same --out resumes: same numbers, nothing retrained', async () => {
    const r = await rlhf(['lab', 'misspecification', '--quick', '--seed', String(TEST_SEED), '--out', out, '--json']);
    assert.equal(r.status, 0, r.stderr);
    const again = JSON.parse(r.stdout) as Result;
    assert.deepEqual(again.accuracy, first.accuracy);
    assert.doesNotMatch(r.stderr, /\[train rm\]|\[train ppo\]/);
  });

  test('an unknown key or fractions not summing to 1: exit 1 with a one-line reason', async () => {
    const unknown = await rlhf(['lab', 'misspecification', '--quick', '--seed', String(TEST_SEED), '--out', join(TMP, 'bad'), '--set', 'groups.brevity.wordScal=10']);
    assert.equal(unknown.status, 1);
    assert.match(unknown.stderr, /^rlhf: .*unknown key 'groups\.brevity\.wordScal' \(did you mean 'groups\.brevity\.wordScale'\?\)\n$/);
    const sum = await rlhf(['lab', 'misspecification', '--quick', '--seed', String(TEST_SEED), '--out', join(TMP, 'bad'), '--set', 'groups.sentiment.fraction=0.7']);
    assert.equal(sum.status, 1);
    assert.match(sum.stderr, /^rlhf: groups\.sentiment\.fraction \+ groups\.brevity\.fraction must sum to 1, got 0\.7 \+ 0\.4/m);
  });
});
