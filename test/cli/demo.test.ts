/**
 * `rlhf demo --quick`, the main job at test size, through the command line:
 *   - it completes, prints one line of JSON, and writes report.html, metrics.jsonl, summary.json and the
 *     phases' checkpoints; the same command and seed give the same numbers;
 *   - a rerun with the same --out resumes (every finished phase is skipped);
 *   - SIGINT during RL stops with a message saying how to resume, and the rerun completes with the same
 *     numbers as an uninterrupted run;
 *   - an unknown config key, or an --out that cannot be written: exit 1 with a one-line reason.
 * Tags: @learning
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ROOT, rlhf } from '../model/run-cli.js';
import { TEST_SEED } from '../env.js';

const TMP = mkdtempSync(join(tmpdir(), 'rlhf-demo-test-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

interface Summary {
  seconds: number;
  out: string;
  report: string;
  gold: { before: number; peak: number; end: number; peakStep: number };
  proxy: { before: number; end: number };
  [k: string]: unknown;
}

/** The summary without wall time and paths: what must repeat exactly. */
function numbers(s: Summary): unknown {
  const { seconds: _s, out: _o, report: _r, ...rest } = s;
  return rest;
}

describe('rlhf demo --quick', () => {
  let first: Summary;

  test('completes, prints one JSON line, writes the report, metrics and checkpoints', async () => {
    const out = join(TMP, 'a');
    const r = await rlhf(['demo', '--quick', '--seed', String(TEST_SEED), '--out', out, '--json']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim().split('\n').length, 1);
    first = JSON.parse(r.stdout) as Summary;
    for (const f of ['report.html', 'metrics.jsonl', 'summary.json', 'preferences.jsonl', 'proxy/model/config.json', 'rl/checkpoint/trainer.json', 'rl/model/model.safetensors']) {
      assert.ok(existsSync(join(out, f)), `missing ${f}`);
    }
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    assert.match(html, /Over-optimisation/);
    assert.ok((html.match(/<svg/g) ?? []).length >= 4, 'report must hold its plots');
    assert.doesNotMatch(html, /https?:\/\/(?!www\.w3\.org)/, 'the report must not reference the network');
    const rows = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { phase: string });
    assert.ok(rows.some((x) => x.phase === 'rl') && rows.some((x) => x.phase === 'bon'));
    assert.match(r.stderr, /\[demo 1\/5 preferences\].*\n[\s\S]*\[demo 5\/5 report\]/);
  });

  test('the same command and seed give the same numbers; a rerun into the same --out resumes', async () => {
    const again = await rlhf(['demo', '--quick', '--seed', String(TEST_SEED), '--out', join(TMP, 'b'), '--json']);
    assert.equal(again.status, 0, again.stderr);
    assert.deepEqual(numbers(JSON.parse(again.stdout) as Summary), numbers(first));
    const resumed = await rlhf(['demo', '--quick', '--seed', String(TEST_SEED), '--out', join(TMP, 'a'), '--json']);
    assert.equal(resumed.status, 0, resumed.stderr);
    assert.doesNotMatch(resumed.stderr, /sampled|\[train rm\] step|\[train ppo\] step 1\//, 'finished phases must be skipped');
    assert.deepEqual(numbers(JSON.parse(resumed.stdout) as Summary), numbers(first));
  });

  test('SIGINT during RL: a clear message, and the rerun completes with the same numbers', async () => {
    const out = join(TMP, 'c');
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'rlhf.js'), 'demo', '--quick', '--seed', String(TEST_SEED), '--out', out, '--json'], { cwd: ROOT });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (/\[train ppo\] step 1\//.test(stderr) && !child.killed) child.kill('SIGINT');
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(code, 130, stderr);
    assert.match(stderr, /rlhf: interrupted after step \d+: checkpoint written to .*rerun the same command to resume/);
    const rerun = await rlhf(['demo', '--quick', '--seed', String(TEST_SEED), '--out', out, '--json']);
    assert.equal(rerun.status, 0, rerun.stderr);
    assert.match(rerun.stderr, /resuming from step \d+/);
    assert.deepEqual(numbers(JSON.parse(rerun.stdout) as Summary), numbers(first));
  });

  test('an unknown config key and an unwritable --out: exit 1 with a one-line reason', async () => {
    const bad = await rlhf(['demo', '--quick', '--seed', String(TEST_SEED), '--out', join(TMP, 'd'), '--set', 'rl.stepz=3']);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /^rlhf: .*unknown key 'rl\.stepz' \(did you mean 'rl\.steps'\?\)\n$/);
    // A path under a regular file cannot be made a directory, even by root.
    const file = join(TMP, 'a-file');
    writeFileSync(file, 'not a directory');
    const ro = await rlhf(['demo', '--quick', '--seed', String(TEST_SEED), '--out', join(file, 'run')]);
    assert.equal(ro.status, 1);
    assert.match(ro.stderr, /^rlhf: --out .*a-file\/run cannot be written: .*\n$/);
  });

  test('rlhf lab overoptimisation --quick: one demo per preference-data size, one comparing report', async () => {
    const out = join(TMP, 'sweep');
    const r = await rlhf(['lab', 'overoptimisation', '--quick', '--pairs', '32,96', '--out', out, '--json']);
    assert.equal(r.status, 0, r.stderr);
    const s = JSON.parse(r.stdout) as { settings: { pairs: number; gold: { peak: number } }[]; report: string };
    assert.deepEqual(s.settings.map((x) => x.pairs), [32, 96]);
    for (const dir of ['pairs-32', 'pairs-96']) assert.ok(existsSync(join(out, dir, 'report.html')), dir);
    assert.match(readFileSync(s.report, 'utf8'), /How much data the proxy saw[\s\S]*<svg/);
    const bad = await rlhf(['lab', 'overoptimisation', '--pairs', '32,x']);
    assert.equal(bad.status, 2);
  });
});
