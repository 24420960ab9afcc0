/**
 * Progress on stderr (src/cli/progress.ts): on a pseudo-terminal (util-linux `script`) a training run's
 * step lines become one bar redrawn in place (carriage return + erase-line) with count, rate and ETA; piped,
 * the same run writes its line log; --quiet writes nothing but a failure's reason.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { progressOf, renderBar } from '../../src/cli/progress.js';
import { ROOT } from '../model/run-cli.js';

const TMP = mkdtempSync(join(tmpdir(), 'rlhf-progress-'));
after(() => rmSync(TMP, { recursive: true, force: true }));
const CONFIG = join(TMP, 'grpo.yaml');
writeFileSync(CONFIG, 'rollout: { prompts: 2, samplesPerPrompt: 2, maxNewTokens: 8 }\ntrain: { steps: 4, evalSamples: 4, checkpointEvery: 0, miniBatchSize: 4 }\n');

function run(cmd: string, args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: ROOT, timeout: 120_000, env: { ...process.env, COLUMNS: '200' } }, (err, stdout, stderr) => {
      resolve({ status: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

const rlhf = (extra: string) => `node bin/rlhf.js train grpo --config ${CONFIG} --set out=${join(TMP, 'run')} --fresh ${extra}`.trim();

describe('progress', () => {
  test('a k/N count in a log line is a bar: phase, count, rate, ETA, caption', () => {
    assert.deepEqual(progressOf('[train grpo] step 3/12 reward 0.1'), { phase: '[train grpo]', done: 3, total: 12, rest: 'reward 0.1' });
    assert.equal(progressOf('[train grpo] step 0: eval on 128 fresh samples'), null);
    assert.equal(progressOf('tok/s gen 3000'), null);
    const bar = renderBar({ phase: '[x]', done: 6, total: 12, rest: 'loss 1' }, 2, 200);
    assert.match(bar, /^\[x\] █{12}░{12} 6\/12 2\.00\/s ETA 0:03 loss 1$/);
    assert.ok(renderBar({ phase: '', done: 1, total: 2, rest: 'x'.repeat(500) }, 1, 80).length < 80);
  });

  test('on a pseudo-terminal the step lines are one bar redrawn in place; piped, the line log; --quiet, nothing', async () => {
    const tty = await run('script', ['-qec', rlhf(''), '/dev/null']);
    assert.equal(tty.status, 0, tty.stdout);
    const redraws = tty.stdout.split('\r\x1b[2K').filter((s) => s.startsWith('[train grpo] █') || s.startsWith('[train grpo] ░'));
    assert.ok(redraws.length >= 4, `the bar is redrawn per step (${redraws.length} draws)`);
    assert.match(redraws.at(-1)!, /4\/4 [\d.]+\/s ETA 0:00/);
    assert.ok(!/\[train grpo\] step 2\/4 reward[^\r]*\r?\n/.test(tty.stdout), 'no step line of its own on a terminal');
    const piped = await run('node', rlhf('').split(' ').slice(1));
    assert.equal(piped.status, 0, piped.stderr);
    assert.ok(!piped.stderr.includes('\x1b[2K'), 'no terminal codes in a pipe');
    for (const k of [1, 2, 3, 4]) assert.match(piped.stderr, new RegExp(`\\[train grpo\\] step ${k}/4 reward .*\\n`));
    const quiet = await run('script', ['-qec', rlhf('--quiet --json'), '/dev/null']);
    assert.equal(quiet.status, 0);
    assert.match(quiet.stdout, /^\{"algorithm":"grpo"[^\n]*\}\r?\n$/, 'only the JSON result');
    const failed = await run('node', [...rlhf('--quiet').split(' ').slice(1), '--set', 'train.lr=-1']);
    assert.notEqual(failed.status, 0);
    assert.match(failed.stderr, /^rlhf: .*train\.lr/);
  });
});
