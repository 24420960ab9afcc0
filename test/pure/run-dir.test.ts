/**
 * The run directory's helpers (src/run-dir.ts), without native code: the exclusive lock (a live holder is
 * named, a dead one's or a reused PID's lock taken over), the append-safe metrics log (a torn last line
 * dropped with a warning, a broken line elsewhere named by file and line, a failed append cut back), the
 * recovery of a directory write killed between its renames, and the resume check naming what differs.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';

import { checkResumeConfig, lockRunDir, openMetricsLog, processStartTime, recoverRunDir } from '../../src/run-dir.js';

const TMP = mkdtempSync(join(tmpdir(), 'rlhf-run-dir-'));
after(() => rmSync(TMP, { recursive: true, force: true }));
let n = 0;
const fresh = (name: string) => join(TMP, `${name}-${n++}`);

/** The PID of a process that has exited (a child run to completion). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

describe('the lock of a run directory', () => {
  test('a second lock fails at once naming the holder; released, the directory can be locked again', () => {
    const out = fresh('lock');
    const lock = lockRunDir(out);
    assert.throws(() => lockRunDir(out), new RegExp(`^Error: ${out} is in use by another run \\(PID ${process.pid} on ${hostname()}, this process, started [^)]+\\): wait for it to finish or use another output directory$`));
    lock.release();
    assert.equal(existsSync(join(out, '.lock')), false);
    lockRunDir(out).release();
  });

  test('the lock of a dead process is taken over', () => {
    const out = fresh('stale');
    mkdirSync(out);
    writeFileSync(join(out, '.lock'), JSON.stringify({ pid: deadPid(), host: hostname(), started: '2020-01-01T00:00:00Z', procStart: 1 }));
    const lock = lockRunDir(out);
    assert.equal((JSON.parse(readFileSync(join(out, '.lock'), 'utf8')) as { pid: number }).pid, process.pid);
    lock.release();
  });

  test('a lock whose PID is alive but was reused (another start time) is taken over', { skip: processStartTime(process.pid) === null ? 'no /proc here' : false }, () => {
    const out = fresh('reused');
    mkdirSync(out);
    writeFileSync(join(out, '.lock'), JSON.stringify({ pid: process.pid, host: hostname(), started: '2020-01-01T00:00:00Z', procStart: processStartTime(process.pid)! + 12345 }));
    lockRunDir(out).release();
  });

  test('a directory the lock created is removed with it when the run wrote nothing', () => {
    const out = join(fresh('empty'), 'a', 'b');
    lockRunDir(out).release();
    assert.equal(existsSync(out), false);
  });
});

describe('the metrics log', () => {
  test('a torn last line is dropped with a warning; rows after the checkpoint are cut; appends continue', () => {
    const path = join(fresh('metrics'), 'metrics.jsonl');
    mkdirSync(join(path, '..'));
    writeFileSync(path, '{"step":1,"loss":0.5}\n{"step":2,"loss":0.4}\n{"step":3,"loss":0.3}\n{"step":4,"lo');
    const warnings: string[] = [];
    const log = openMetricsLog(path, 2, (l) => warnings.push(l));
    assert.deepEqual(warnings, [`${path}:4: the last line is incomplete (a run stopped while writing it): dropped`]);
    log({ step: 3, loss: 0.25 });
    assert.equal(readFileSync(path, 'utf8'), '{"step":1,"loss":0.5}\n{"step":2,"loss":0.4}\n{"step":3,"loss":0.25}\n');
  });

  test('a broken line before the last is an error naming the file and line', () => {
    const path = join(fresh('broken'), 'metrics.jsonl');
    mkdirSync(join(path, '..'));
    writeFileSync(path, '{"step":1}\n{"step":2,"lo\n{"step":3}\n');
    assert.throws(() => openMetricsLog(path, 3, () => {}), new RegExp(`^Error: ${path}:2: not a JSON metrics row \\(`));
  });
});

describe('crash leftovers', () => {
  const dead = 99_999_999; // above any pid_max
  const checkpoint = (dir: string, step: number) => {
    mkdirSync(dir);
    writeFileSync(join(dir, 'model.safetensors'), 'weights');
    writeFileSync(join(dir, 'trainer.json'), JSON.stringify({ step }));
  };

  test('killed between the renames: the complete new checkpoint is put back, the rest removed', () => {
    const out = fresh('renames');
    mkdirSync(out);
    checkpoint(join(out, `checkpoint.old-${dead}-0badc0de`), 2);
    checkpoint(join(out, `checkpoint.tmp-${dead}-00c0ffee`), 4);
    mkdirSync(join(out, `model.tmp-${dead}-12345678`));
    writeFileSync(join(out, `eval.json.${dead}.tmp`), '{');
    const done = recoverRunDir(out);
    assert.equal(done.length, 4, done.join('\n'));
    assert.deepEqual(readdirSync(out).sort(), ['checkpoint']);
    assert.equal((JSON.parse(readFileSync(join(out, 'checkpoint', 'trainer.json'), 'utf8')) as { step: number }).step, 4);
  });

  test('killed between the renames with the new checkpoint half written: the previous one is put back', () => {
    const out = fresh('half');
    mkdirSync(out);
    checkpoint(join(out, `checkpoint.old-${dead}-0badc0de`), 2);
    mkdirSync(join(out, `checkpoint.tmp-${dead}-00c0ffee`));
    writeFileSync(join(out, `checkpoint.tmp-${dead}-00c0ffee`, 'trainer.json'), '{"st');
    recoverRunDir(out);
    assert.deepEqual(readdirSync(out), ['checkpoint']);
    assert.equal((JSON.parse(readFileSync(join(out, 'checkpoint', 'trainer.json'), 'utf8')) as { step: number }).step, 2);
  });
});

describe('the resume check', () => {
  test('the output path is not compared; a changed field is named with both values', () => {
    const a = { out: 'runs/a', seed: 0, train: { lr: 0.001, batchSize: 8 } };
    checkResumeConfig('runs/b', a, { ...a, out: 'runs/b' });
    assert.throws(() => checkResumeConfig('runs/a', a, { ...a, train: { lr: 0.002, batchSize: 8 } }),
      /^Error: runs\/a holds a checkpoint of a different configuration \(train\.lr: 0\.001 → 0\.002\): use another --out, or --fresh to start over$/);
  });
});
