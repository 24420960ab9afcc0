/**
 * Runs that never lose work and never collide (issue 15), on the one offline loop (src/nn/train-loop.ts)
 * and the run directory's helpers (src/run-dir.ts), with tiny runs of `train rm`, `sft`, `dpo` and `kto`:
 *   - a torn last line of metrics.jsonl is dropped with a warning and the run resumes;
 *   - a second run on a live run's directory fails at once naming its PID, and the first ends with exactly
 *     its own metrics; through the CLI too;
 *   - an interrupt (the AbortSignal, as Ctrl-C raises it) during each trainer writes a checkpoint, even with
 *     checkpointEvery 0, and the rerun ends where an uninterrupted run ends; one real SIGINT through the CLI
 *     exits 130 saying how to resume;
 *   - `train.lr 1e30` stops at the first non-finite step naming it and the learning rate, saving no model;
 *   - leftovers of a kill mid-save are removed, and a kill between the two renames resumes (not step 0);
 *   - a moved run directory resumes; a changed field is named.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { deepMerge, validateConfig } from '../../src/config.js';
import { REWARD_DEFAULTS, REWARD_SCHEMA, type RewardTrainConfig } from '../../src/reward/config.js';
import { trainRewardModel } from '../../src/reward/train.js';
import { SFT_DEFAULTS, SFT_SCHEMA } from '../../src/rlhf/sft/config.js';
import { trainSft } from '../../src/rlhf/sft/trainer.js';
import { DPO_DEFAULTS, DPO_SCHEMA } from '../../src/rlhf/dpo/config.js';
import { trainDpo } from '../../src/rlhf/dpo/trainer.js';
import { KTO_DEFAULTS, KTO_SCHEMA } from '../../src/rlhf/kto/config.js';
import { trainKto } from '../../src/rlhf/kto/trainer.js';
import { readSafetensorsFile } from '../../src/nn/safetensors.js';
import { lockRunDir } from '../../src/run-dir.js';
import { setNumThreads } from '../../src/tensor/index.js';
import { ROOT, rlhf } from './run-cli.js';

const TMP = mkdtempSync(join(tmpdir(), 'rlhf-run-safety-'));
const quiet = () => {};
const FIXTURE = join(ROOT, 'test', 'fixtures', 'feedback-rm', 'pairs.jsonl');
const PAIRS = readFileSync(FIXTURE, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { prompt: string; chosen: string; rejected: string });
const BINARY = join(TMP, 'binary.jsonl');
writeFileSync(BINARY, PAIRS.slice(0, 16).flatMap((p) => [{ prompt: p.prompt, completion: p.chosen, label: true }, { prompt: p.prompt, completion: p.rejected, label: false }]).map((r) => JSON.stringify(r)).join('\n') + '\n');
const SFT_DATA = join(TMP, 'sft.jsonl');
writeFileSync(SFT_DATA, PAIRS.slice(0, 16).map((p) => JSON.stringify({ prompt: p.prompt, completion: p.chosen })).join('\n') + '\n');

/** A tiny scratch reward model: 4 steps of 8 pairs. */
function rmRaw(out: string, over: object = {}): Record<string, unknown> {
  return deepMerge({
    seed: 0, out,
    data: { path: FIXTURE, format: 'pairwise', splitRatio: 0.8, maxTokens: 64 },
    model: { init: 'scratch', base: 'stories260k', scratch: { hiddenSize: 16, layers: 1, heads: 2, intermediateSize: 32, maxPositions: 64 } },
    train: { epochs: 2, batchSize: 8, lr: 0.01, warmupSteps: 1, maxSteps: 4, checkpointEvery: 0, evalEvery: 2, threads: 1 },
  }, over) as Record<string, unknown>;
}
const rmConfig = (out: string, over: object = {}): RewardTrainConfig => validateConfig(rmRaw(out, over), REWARD_DEFAULTS, REWARD_SCHEMA, 'rm');

/** Each trainer as (out, overrides, options) → its run: 4 steps on stories260K (the reward model from scratch). */
type Opts = { progress?: (l: string) => void; signal?: AbortSignal };
const TRAINERS: Record<string, (out: string, over: object, o: Opts) => Promise<{ steps: number; resumedFrom: number | null }>> = {
  rm: (out, over, o) => trainRewardModel(rmConfig(out, over), o),
  sft: (out, over, o) => trainSft(validateConfig(deepMerge({
    seed: 0, out, data: { path: SFT_DATA, maxTokens: 64 },
    train: { batchSize: 4, lr: 1e-3, warmupSteps: 0, schedule: 'constant', maxSteps: 4, evalEvery: 0, checkpointEvery: 0, threads: 1 },
  }, over), SFT_DEFAULTS, SFT_SCHEMA, 'sft'), o),
  dpo: (out, over, o) => trainDpo(validateConfig(deepMerge({
    seed: 0, out, data: { path: FIXTURE, format: 'pairwise', splitRatio: 0.75, maxTokens: 64, limit: 16 },
    train: { batchSize: 4, lr: 1e-3, warmupSteps: 1, maxSteps: 4, evalEvery: 0, checkpointEvery: 0, threads: 1 },
  }, over), DPO_DEFAULTS, DPO_SCHEMA, 'dpo'), o),
  kto: (out, over, o) => trainKto(validateConfig(deepMerge({
    seed: 0, out, data: { path: BINARY, maxTokens: 64 },
    train: { batchSize: 8, lr: 1e-3, warmupSteps: 1, maxSteps: 4, evalEvery: 0, checkpointEvery: 0, threads: 1 },
  }, over), KTO_DEFAULTS, KTO_SCHEMA, 'kto'), o),
};

interface Row {
  step: number;
  loss?: number;
  seconds?: number;
}
const rows = (out: string): Row[] => readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Row);
/** Every row without its wall-clock seconds. */
const trajectory = (out: string) => rows(out).map(({ seconds: _, ...r }) => r);
const checkpointStep = (out: string) => (JSON.parse(readFileSync(join(out, 'checkpoint', 'trainer.json'), 'utf8')) as { step: number }).step;

/** Runs `trainer` into `out`, aborting it once its progress shows `step k/`. */
async function interrupted(name: string, out: string, k: number): Promise<void> {
  const ac = new AbortController();
  const progress = (l: string) => {
    if (l.includes(`step ${k}/`)) ac.abort();
  };
  await assert.rejects(TRAINERS[name]!(out, {}, { progress, signal: ac.signal }), new RegExp(`interrupted after step ${k}: checkpoint written to .*rerun the same command to resume`));
}

const reference: Record<string, string> = {};
before(async () => {
  setNumThreads(1);
  for (const name of Object.keys(TRAINERS)) {
    reference[name] = join(TMP, `${name}-reference`);
    await TRAINERS[name]!(reference[name], {}, { progress: quiet });
  }
});
after(() => rmSync(TMP, { recursive: true, force: true }));

describe('run safety: interruption, locks, divergence, crash leftovers, moved directories', () => {
  for (const name of ['rm', 'sft', 'dpo', 'kto']) {
    test(`an interrupt during train ${name} writes a checkpoint (checkpointEvery 0), and the rerun ends where an uninterrupted run ends`, async () => {
      const out = join(TMP, `${name}-interrupted`);
      await interrupted(name, out, 2);
      assert.equal(checkpointStep(out), 2);
      assert.equal(existsSync(join(out, 'model')), false, 'an interrupted run saves no final model');
      const again = await TRAINERS[name]!(out, {}, { progress: quiet });
      assert.equal(again.resumedFrom, 2);
      assert.deepEqual(trajectory(out), trajectory(reference[name]!));
    });
  }

  test('a torn last line of metrics.jsonl is dropped with a warning, and the run resumes', async () => {
    const out = join(TMP, 'torn');
    await interrupted('rm', out, 2);
    writeFileSync(join(out, 'metrics.jsonl'), readFileSync(join(out, 'metrics.jsonl'), 'utf8') + '{"step":3,"loss":0.69,"accur');
    const lines: string[] = [];
    const r = await TRAINERS.rm!(out, {}, { progress: (l) => lines.push(l) });
    assert.equal(r.resumedFrom, 2);
    assert.ok(lines.some((l) => /metrics\.jsonl:\d+: the last line is incomplete .*dropped/.test(l)), lines.join('\n'));
    assert.deepEqual(trajectory(out), trajectory(reference.rm!));
  });

  test('a second run on a live run\'s directory fails at once naming its PID; the first ends with exactly its own metrics', async () => {
    const out = join(TMP, 'locked');
    let second = null as Promise<Error | null> | null;
    const first = TRAINERS.rm!(out, {}, {
      progress: (l) => {
        if (!second && l.includes('step 1/')) second = TRAINERS.rm!(out, {}, { progress: quiet }).then(() => null, (e: Error) => e);
      },
    });
    await first;
    const err = await second;
    assert.match(err?.message ?? 'the second run succeeded', new RegExp(`in use by another run \\(PID ${process.pid} `));
    assert.deepEqual(trajectory(out), trajectory(reference.rm!));
    assert.equal(existsSync(join(out, '.lock')), false, 'the lock is released at the end');
  });

  test('through the CLI: a held directory makes `train rm` exit 1 at once naming the holder\'s PID', async () => {
    const out = join(TMP, 'cli-locked');
    const lock = lockRunDir(out);
    try {
      const cfg = join(TMP, 'cli-locked.json');
      writeFileSync(cfg, JSON.stringify(rmRaw(out)));
      const r = await rlhf(['train', 'rm', '--config', cfg]);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`^rlhf: .*in use by another run \\(PID ${process.pid} [^\\n]*\\n$`));
      assert.deepEqual(readdirSync(out), ['.lock'], 'the refused run wrote nothing');
    } finally {
      lock.release();
    }
  });

  test('one real SIGINT through the CLI: exit 130 with how to resume; the rerun resumes from its checkpoint', async () => {
    const out = join(TMP, 'cli-sigint');
    const cfg = join(TMP, 'cli-sigint.json');
    writeFileSync(cfg, JSON.stringify(rmRaw(out, { train: { maxSteps: 60, epochs: 100, evalEvery: 0 } })));
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'rlhf.js'), 'train', 'rm', '--config', cfg], { cwd: ROOT });
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (/\[train rm\] step 2\//.test(stderr) && !child.killed) child.kill('SIGINT');
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    clearTimeout(timer);
    assert.equal(code, 130, stderr);
    const m = /rlhf: interrupted after step (\d+): checkpoint written to .*rerun the same command to resume\n$/.exec(stderr);
    assert.ok(m, stderr);
    const k = Number(m[1]);
    assert.ok(k >= 2 && k < 60, `stopped after step ${k}`);
    assert.equal(checkpointStep(out), k);
    const again = await trainRewardModel(rmConfig(out, { train: { maxSteps: 60, epochs: 100, evalEvery: 0 } }), { progress: quiet });
    assert.equal(again.resumedFrom, k);
    assert.deepEqual(rows(out).filter((r) => r.loss !== undefined).map((r) => r.step), Array.from({ length: 60 }, (_, i) => i + 1));
  });

  for (const name of ['rm', 'sft']) {
    test(`train ${name} with lr 1e30 stops at the first non-finite step, naming it and the learning rate; no NaN model is saved`, async () => {
      const out = join(TMP, `${name}-diverged`);
      const err = await TRAINERS[name]!(out, { train: { lr: 1e30, checkpointEvery: 1 } }, { progress: quiet }).then(() => null, (e: Error) => e);
      assert.ok(err, 'the run must fail');
      const m = /^step (\d+): the (loss|gradient norm) is (NaN|-?Infinity) — training diverged; likely cause: the learning rate is too high \(train\.lr 1e\+30;/.exec(err.message);
      assert.ok(m, err.message);
      const logged = rows(out).filter((r) => r.loss !== undefined);
      assert.equal(Number(m[1]), logged.length + 1, 'the first non-finite step stops the run');
      assert.ok(logged.every((r) => Number.isFinite(r.loss)));
      assert.equal(existsSync(join(out, 'model')), false, 'no model saved');
      if (logged.length > 0) {
        assert.equal(checkpointStep(out), logged.length, 'the last finite checkpoint stays');
        for (const t of readSafetensorsFile(join(out, 'checkpoint', 'model.safetensors')).tensors.values()) {
          assert.ok(new Float32Array(t.data.buffer, t.data.byteOffset, t.data.byteLength / 4).every(Number.isFinite), 'the checkpoint holds finite weights');
        }
      }
    });
  }

  test('leftovers of a kill mid-save are removed, and a kill between the two renames resumes instead of restarting', async () => {
    const out = join(TMP, 'leftovers');
    await interrupted('rm', out, 2);
    const dead = 99_999_999; // above any pid_max: never a live process
    renameSync(join(out, 'checkpoint'), join(out, `checkpoint.old-${dead}-0badc0de`)); // killed between the renames…
    mkdirSync(join(out, `checkpoint.tmp-${dead}-00c0ffee`)); // …with the new checkpoint half written
    writeFileSync(join(out, `checkpoint.tmp-${dead}-00c0ffee`, 'model.safetensors'), 'partial');
    mkdirSync(join(out, `model.tmp-${dead}-12345678`));
    writeFileSync(join(out, `metrics.jsonl.${dead}.tmp`), '');
    const lines: string[] = [];
    const r = await TRAINERS.rm!(out, {}, { progress: (l) => lines.push(l) });
    assert.equal(r.resumedFrom, 2, lines.join('\n'));
    assert.deepEqual(readdirSync(out).filter((f) => /\.(tmp|old)/.test(f)), []);
    assert.deepEqual(trajectory(out), trajectory(reference.rm!));
  });

  test('a moved run directory resumes; a changed field is named', async () => {
    const first = join(TMP, 'moved-from');
    await interrupted('rm', first, 2);
    const moved = join(TMP, 'moved-to');
    renameSync(first, moved);
    await assert.rejects(TRAINERS.rm!(moved, { train: { lr: 0.02 } }, { progress: quiet }), /holds a checkpoint of a different configuration \(train\.lr: 0\.01 → 0\.02\): use another --out, or --fresh/);
    const r = await TRAINERS.rm!(moved, {}, { progress: quiet });
    assert.equal(r.resumedFrom, 2);
    assert.deepEqual(trajectory(moved), trajectory(reference.rm!));
  });
});
