/**
 * TensorBoard event files (src/tensorboard.ts), in the model tier for its one GRPO run. The golden file test/fixtures/tensorboard/
 * events.out.tfevents.golden holds fixtures/tensorboard/metrics.jsonl (rows of a real GRPO run) and one
 * text summary, written with a fixed clock; scripts/check-tensorboard-golden.py reads it with TensorBoard's
 * own EventAccumulator and checks every scalar's tag, step and value against metrics.jsonl (run once with
 * TensorBoard 2.21.0 when the golden was made), so the suite needs no Python: here the writer must reproduce
 * the golden byte for byte, and a reader written from the format (framing, both CRC-32Cs, the protobuf
 * fields) must find metrics.jsonl's values and steps in it. RLHF_UPDATE_GOLDEN=1 rewrites the golden.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { crc32c, scalarTags, TensorBoardWriter } from '../../src/tensorboard.js';
import { packageRoot } from '../../src/models/hub.js';

const DIR = join(packageRoot(), 'test', 'fixtures', 'tensorboard');
const TMP = mkdtempSync(join(tmpdir(), 'rlhf-tb-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

const rows = readFileSync(join(DIR, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown> & { step: number });

/** Writes the fixture's rows and a text summary with clock 1700000000 + k, into `dir`; returns the file. */
function writeFixture(dir: string): string {
  let t = 1_700_000_000;
  const w = new TensorBoardWriter(dir, { clock: () => t++, fileSuffix: 'golden' });
  for (const r of rows) w.scalars(r.step, r);
  w.text(4, 'eval/samples', '| prompt | completion |\n| --- | --- |\n|  | Once upon a time |');
  return w.path;
}

// ---- a reader from the format, independent of the writer's helpers -----------------------------------

function readVarint(b: Buffer, at: { i: number }): bigint {
  let x = 0n;
  let shift = 0n;
  for (;;) {
    const byte = b[at.i++]!;
    x |= BigInt(byte & 0x7f) << shift;
    if (!(byte & 0x80)) return x;
    shift += 7n;
  }
}

/** Fields of one protobuf message: field number → values (numbers for varint/fixed, Buffers for length-delimited). */
function fields(b: Buffer): Map<number, (bigint | number | Buffer)[]> {
  const out = new Map<number, (bigint | number | Buffer)[]>();
  const at = { i: 0 };
  while (at.i < b.length) {
    const k = Number(readVarint(b, at));
    const [f, wire] = [k >> 3, k & 7];
    let v: bigint | number | Buffer;
    if (wire === 0) v = readVarint(b, at);
    else if (wire === 1) (v = b.readDoubleLE(at.i)), (at.i += 8);
    else if (wire === 5) (v = b.readFloatLE(at.i)), (at.i += 4);
    else if (wire === 2) {
      const n = Number(readVarint(b, at));
      v = b.subarray(at.i, at.i + n);
      at.i += n;
    } else throw new Error(`wire type ${wire}`);
    out.set(f, [...(out.get(f) ?? []), v]);
  }
  return out;
}

const unmask = (m: number) => {
  const r = (m - 0xa282ead8) >>> 0;
  return ((r >>> 17) | (r << 15)) >>> 0;
};

/** Every scalar (tag, step, value) of an event file, checking each record's two CRCs. */
function readScalars(path: string): { tag: string; step: number; value: number }[] {
  const b = readFileSync(path);
  const out: { tag: string; step: number; value: number }[] = [];
  for (let i = 0; i < b.length; ) {
    const n = Number(b.readBigUInt64LE(i));
    assert.equal(unmask(b.readUInt32LE(i + 8)), crc32c(b.subarray(i, i + 8)), 'length CRC');
    const data = b.subarray(i + 12, i + 12 + n);
    assert.equal(unmask(b.readUInt32LE(i + 12 + n)), crc32c(data), 'data CRC');
    i += 16 + n;
    const e = fields(data);
    const step = Number(e.get(2)?.[0] ?? 0n);
    for (const v of (e.get(5) ?? []).flatMap((s) => fields(s as Buffer).get(1) ?? [])) {
      const value = fields(v as Buffer);
      if (value.has(2)) out.push({ tag: (value.get(1)![0] as Buffer).toString('utf8'), step, value: value.get(2)![0] as number });
    }
  }
  return out;
}

/** metrics.jsonl's scalars as TensorBoard stores them (float32). */
const expected = (rs: readonly (Record<string, unknown> & { step: number })[]) => rs.flatMap((r) => scalarTags(r).map(([tag, x]) => ({ tag, step: r.step, value: Math.fround(x) })));

test('CRC-32C of the standard check string', () => {
  assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
});

test('the writer reproduces the golden file (checked by TensorBoard\'s own reader) byte for byte', () => {
  const path = writeFixture(TMP);
  const golden = join(DIR, 'events.out.tfevents.golden');
  if (process.env.RLHF_UPDATE_GOLDEN === '1') writeFileSync(golden, readFileSync(path));
  assert.ok(readFileSync(path).equals(readFileSync(golden)), 'the event file differs from the golden');
  assert.deepEqual(readScalars(golden), expected(rows));
});

test('a GRPO run with logging.tensorboard: its event file holds metrics.jsonl\'s values at metrics.jsonl\'s steps', async () => {
  const { validateConfig } = await import('../../src/config.js');
  const { GRPO_DEFAULTS, GRPO_SCHEMA } = await import('../../src/rlhf/grpo/config.js');
  const { trainGrpo } = await import('../../src/rlhf/grpo/trainer.js');
  const out = join(TMP, 'run');
  const cfg = validateConfig({ out, rollout: { prompts: 2, samplesPerPrompt: 2, maxNewTokens: 8 }, train: { steps: 3, evalSamples: 4, checkpointEvery: 0, miniBatchSize: 4, threads: 1 }, logging: { tensorboard: join(out, 'tb') } }, GRPO_DEFAULTS, GRPO_SCHEMA, 'test');
  await trainGrpo(cfg, { progress: () => {} });
  const metrics = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown> & { step: number });
  const files = readdirSync(join(out, 'tb'));
  assert.equal(files.length, 1);
  const got = readScalars(join(out, 'tb', files[0]!));
  assert.deepEqual(got, expected(metrics));
  assert.ok(got.some((s) => s.tag === 'eval/reward' && s.step === 3) && got.some((s) => s.tag === 'tokensPerSecond/generation'));
});
