import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  DTYPE_SIZE,
  decodeValues,
  encodeValues,
  parseSafetensors,
  readSafetensorsFile,
  readSafetensorsIndex,
  serializeSafetensors,
  writeSafetensorsFile,
  type RawTensor,
  type SafetensorsDtype,
} from '../../src/nn/safetensors.js';

/** The repository root: the nearest ancestor holding package.json, of this compiled file or else of the cwd. */
function repoRoot(): string {
  for (const start of [dirname(fileURLToPath(import.meta.url)), process.cwd()]) {
    for (let d = start; ; d = dirname(d)) {
      if (existsSync(join(d, 'package.json'))) return d;
      if (dirname(d) === d) break;
    }
  }
  throw new Error('no package.json above the test file or the working directory');
}

const FIXTURES = join(repoRoot(), 'test', 'fixtures', 'safetensors');
const FIXTURE = join(FIXTURES, 'all-dtypes.safetensors');

interface Expected {
  metadata: Record<string, string>;
  tensors: Record<string, { dtype: SafetensorsDtype; shape: number[]; values: (number | string | boolean)[] }>;
}
const expected = JSON.parse(readFileSync(join(FIXTURES, 'all-dtypes.expected.json'), 'utf8')) as Expected;

const scratch = mkdtempSync(join(tmpdir(), 'rlhf-ts-safetensors-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

const u16 = (bits: number): Uint8Array => new Uint8Array([bits & 0xff, bits >> 8]);
const bitsOf = (t: RawTensor): number => t.data[0]! | (t.data[1]! << 8);
const f16 = (x: number): number => bitsOf(encodeValues('F16', [], [x]));
const bf16 = (x: number): number => bitsOf(encodeValues('BF16', [], [x]));
const fromF16 = (bits: number): number => decodeValues({ dtype: 'F16', shape: [], data: u16(bits) })[0] as number;
const fromBF16 = (bits: number): number => decodeValues({ dtype: 'BF16', shape: [], data: u16(bits) })[0] as number;

describe('reading the all-dtypes fixture', () => {
  const bytes = new Uint8Array(readFileSync(FIXTURE));
  const { metadata, tensors } = readSafetensorsFile(FIXTURE);

  test('a file read tensor by tensor (as one over 1 GiB is: Node buffers stop at 2 GiB) gives the same tensors', () => {
    const piecewise = readSafetensorsFile(FIXTURE, 0);
    assert.deepEqual(piecewise.metadata, metadata);
    assert.deepEqual([...piecewise.tensors.keys()], [...tensors.keys()]);
    for (const [k, t] of tensors) assert.deepEqual({ ...piecewise.tensors.get(k)!, data: [...piecewise.tensors.get(k)!.data] }, { ...t, data: [...t.data] }, k);
    const cut = join(scratch, 'truncated.safetensors');
    writeFileSync(cut, bytes.subarray(0, bytes.length - 3));
    assert.throws(() => readSafetensorsFile(cut, 0), /truncated\.safetensors: .*run past the .*-byte data buffer|not covered/);
  });

  test('covers every dtype, in file order, with __metadata__', () => {
    assert.deepEqual(metadata, expected.metadata);
    assert.deepEqual([...tensors.keys()], Object.keys(expected.tensors));
    const dtypes = new Set(Object.values(expected.tensors).map((t) => t.dtype));
    assert.deepEqual([...dtypes].sort(), Object.keys(DTYPE_SIZE).sort());
  });

  for (const [name, want] of Object.entries(expected.tensors)) {
    test(`${name}: exact dtype, shape and values`, () => {
      const t = tensors.get(name);
      assert.ok(t, `missing tensor ${name}`);
      assert.equal(t.dtype, want.dtype);
      assert.deepEqual(t.shape, want.shape);
      assert.equal(t.data.length, want.values.length * DTYPE_SIZE[want.dtype]);
      const got = decodeValues(t);
      assert.equal(got.length, want.values.length);
      got.forEach((v, i) => {
        const w = want.dtype === 'I64' ? BigInt(want.values[i] as string) : want.values[i];
        // Object.is: -0 must stay -0, and floats must match to the last bit.
        assert.ok(Object.is(v, w), `${name}[${i}]: got ${String(v)}, want ${String(w)}`);
      });
    });
  }

  test('re-serialising reproduces the file byte for byte', () => {
    assert.deepEqual(serializeSafetensors(tensors, metadata), bytes);
    assert.deepEqual(serializeSafetensors(Object.fromEntries(tensors), metadata), bytes);
    assert.deepEqual(serializeSafetensors([...tensors], metadata), bytes);
  });

  test('tensor data are views of the input buffer', () => {
    const parsed = parseSafetensors(bytes);
    assert.equal(parsed.tensors.get('f64')?.data.buffer, bytes.buffer);
  });
});

describe('serialising', () => {
  test('writes no __metadata__ unless given, pads with spaces to 8, keeps the given order', () => {
    const out = serializeSafetensors([
      ['a', encodeValues('I16', [2], [-1, 2])],
      ['9', encodeValues('U8', [1], [7])], // integer-like: JSON.stringify of an object would move it first
    ]);
    const n = Number(new DataView(out.buffer).getBigUint64(0, true));
    assert.equal(n % 8, 0);
    const header = new TextDecoder().decode(out.subarray(8, 8 + n));
    assert.equal(header.trimEnd(), '{"a":{"dtype":"I16","shape":[2],"data_offsets":[0,4]},"9":{"dtype":"U8","shape":[1],"data_offsets":[4,5]}}');
    assert.match(header, /^[^ ]* *$/);
    assert.deepEqual([...out.subarray(8 + n)], [0xff, 0xff, 2, 0, 7]);
    const back = parseSafetensors(out);
    assert.deepEqual(back.metadata, {});
    assert.deepEqual([...back.tensors.keys()], ['a', '9']);
    assert.deepEqual(serializeSafetensors(back.tensors), out);
  });

  test('an empty file is {} padded to 8 bytes', () => {
    assert.deepEqual([...serializeSafetensors({})], [8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]);
  });

  test('rejects malformed tensors and metadata, naming the key', () => {
    const ok = encodeValues('F32', [2], [1, 2]);
    const cases: [Parameters<typeof serializeSafetensors>, RegExp][] = [
      [[{ w: { ...ok, data: new Uint8Array(7) } }], /"w".*needs 8 bytes, data has 7/],
      [[{ w: { ...ok, dtype: 'F8' as SafetensorsDtype } }], /"w".*unknown dtype "F8"/],
      [[{ w: { ...ok, shape: [-2] } }], /"w".*shape \[-2\]/],
      [[{ __metadata__: ok }], /"__metadata__".*reserved/],
      [[[['w', ok], ['w', ok]]], /"w".*given twice/],
      [[{ w: ok }, { step: 3 as unknown as string }], /metadata key "step"/],
    ];
    for (const [args, message] of cases) assert.throws(() => serializeSafetensors(...args), message);
  });
});

describe('values', () => {
  test('every fixture tensor survives decode → encode bit for bit', () => {
    for (const [name, t] of readSafetensorsFile(FIXTURE).tensors) {
      assert.deepEqual(encodeValues(t.dtype, t.shape, decodeValues(t)).data, new Uint8Array(t.data), name);
    }
  });

  test('F16 and BF16: all 65536 bit patterns decode → encode to themselves (NaNs to the canonical NaN)', () => {
    for (const [decode, encode, nan] of [[fromF16, f16, 0x7e00], [fromBF16, bf16, 0x7fc0]] as const) {
      for (let bits = 0; bits < 0x10000; bits++) {
        const x = decode(bits);
        const again = encode(x);
        if (Number.isNaN(x)) assert.equal(again, nan);
        else if (again !== bits) assert.fail(`bits 0x${bits.toString(16)} → ${x} → 0x${again.toString(16)}`);
      }
    }
  });

  test('F16 decodes landmark bit patterns exactly', () => {
    const cases: [number, number][] = [
      [0x3c00, 1], [0xc000, -2], [0x3555, 0.333251953125], [0x0001, 2 ** -24], [0x03ff, 1023 * 2 ** -24],
      [0x0400, 2 ** -14], [0x7bff, 65504], [0x7c00, Infinity], [0xfc00, -Infinity], [0x0000, 0], [0x8000, -0],
    ];
    for (const [bits, x] of cases) assert.ok(Object.is(fromF16(bits), x), `0x${bits.toString(16)}`);
    assert.ok(Number.isNaN(fromF16(0x7e00)) && Number.isNaN(fromF16(0xfc01)));
  });

  test('BF16 decodes landmark bit patterns exactly', () => {
    const cases: [number, number][] = [
      [0x3f80, 1], [0xc020, -2.5], [0x0001, 2 ** -133], [0x0080, 2 ** -126], [0x7f7f, 255 * 2 ** 120],
      [0x7f80, Infinity], [0xff80, -Infinity], [0x8000, -0],
    ];
    for (const [bits, x] of cases) assert.ok(Object.is(fromBF16(bits), x), `0x${bits.toString(16)}`);
    assert.ok(Number.isNaN(fromBF16(0x7fc0)));
  });

  test('F16 encoding rounds to nearest, ties to even, straight from float64', () => {
    const cases: [number, number][] = [
      [1 + 2 ** -11, 0x3c00], // tie → even mantissa 0
      [1 + 3 * 2 ** -11, 0x3c02], // tie → even mantissa 2
      [1 + 2 ** -11 + 2 ** -30, 0x3c01], // just above the tie; via float32 it would double-round down to 1
      [2 - 2 ** -12, 0x4000], // mantissa rounds up past all ones: carry into the exponent
      [65519, 0x7bff],
      [65520, 0x7c00], // halfway to 2^16 rounds to infinity
      [-1e6, 0xfc00],
      [2 ** -25, 0x0000], // half the smallest subnormal: tie → 0
      [3 * 2 ** -25, 0x0002], // 1.5 units: tie → 2
      [2 ** -25 + 2 ** -40, 0x0001],
      [1023.5 * 2 ** -24, 0x0400], // largest subnormal + half a unit rounds up into the normals
      [-1e-10, 0x8000], // underflow keeps the sign
      [-0, 0x8000],
      [NaN, 0x7e00],
    ];
    for (const [x, bits] of cases) assert.equal(f16(x), bits, `${x}`);
  });

  test('BF16 encoding rounds to nearest, ties to even', () => {
    const cases: [number, number][] = [
      [1 + 2 ** -8, 0x3f80],
      [1 + 3 * 2 ** -8, 0x3f82],
      [2 - 2 ** -9, 0x4000], // carry into the exponent
      [0.1, 0x3dcd],
      [3.4028234663852886e38, 0x7f80], // float32 max is past bf16's last tie: infinity, as in PyTorch
      [2 ** -134, 0x0000],
      [3 * 2 ** -134, 0x0002],
      [-Infinity, 0xff80],
    ];
    for (const [x, bits] of cases) assert.equal(bf16(x), bits, `${x}`);
  });

  test('integers and booleans round-trip at their extremes; I64 keeps all 64 bits', () => {
    const cases: [SafetensorsDtype, (number | bigint | boolean)[]][] = [
      ['I64', [-(2n ** 63n), -9007199254740993n, 2n ** 63n - 1n]],
      ['I32', [-(2 ** 31), 2 ** 31 - 1]],
      ['I16', [-32768, 32767]],
      ['I8', [-128, 127]],
      ['U8', [0, 255]],
      ['BOOL', [true, false]],
      ['F64', [Number.MIN_VALUE, -Number.MAX_VALUE, -0]],
    ];
    for (const [dtype, values] of cases) {
      assert.deepEqual(decodeValues(encodeValues(dtype, [values.length], values)), values, dtype);
    }
    assert.deepEqual(decodeValues(encodeValues('I64', [1], [-5])), [-5n]);
  });

  test('encodeValues rejects values the dtype cannot hold, naming the element', () => {
    const cases: [SafetensorsDtype, (number | bigint | boolean)[], RegExp][] = [
      ['I8', [0, 128], /I8.*value 1.*128/],
      ['U8', [-1], /U8.*value 0/],
      ['I32', [1.5], /I32.*1\.5/],
      ['I64', [2n ** 63n], /I64/],
      ['I64', [2 ** 53], /I64.*safe integer/],
      ['F32', [1n], /F32.*expected a number/],
      ['BOOL', [1], /BOOL.*expected a boolean/],
    ];
    for (const [dtype, values, message] of cases) assert.throws(() => encodeValues(dtype, [values.length], values), message);
    assert.throws(() => encodeValues('F32', [2, 2], [1, 2, 3]), /4 elements but 3 values/);
    assert.throws(() => decodeValues({ dtype: 'F32', shape: [2], data: new Uint8Array(4) }), /needs 8 bytes, data has 4/);
  });
});

/** A safetensors file with the given header (JSON value, text or bytes; space-padded to 8) and data buffer. */
function craft(header: string | object, data: Uint8Array = new Uint8Array(), headerLength?: bigint): Uint8Array {
  const json = header instanceof Uint8Array ? header : new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + padded + data.length).fill(0x20, 8, 8 + padded);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength ?? padded), true);
  out.set(json, 8);
  out.set(data, 8 + padded);
  return out;
}

const f32 = (shape: number[], begin: number, end: number) => ({ dtype: 'F32', shape, data_offsets: [begin, end] });

describe('malformed files are rejected with the source and the key at fault', () => {
  const cases: [string, Uint8Array, RegExp][] = [
    ['shorter than 8 bytes', new Uint8Array(5), /too short/],
    ['header length beyond the file', craft({}, new Uint8Array(), 4096n), /header length 4096 runs past the end/],
    ['header length beyond the file (2^64 - 1)', craft({}, new Uint8Array(), 2n ** 64n - 1n), /header length 18446744073709551615 runs past the end/],
    ['invalid JSON', craft('{"w": {"dtype": '), /not valid UTF-8 JSON/],
    ['invalid UTF-8', craft(new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d])), /not valid UTF-8 JSON/], // {"\xff":1}
    ['header not an object', craft('[1, 2]'), /not a JSON object/],
    ['entry not an object', craft({ w: 3 }), /"w": entry is not a JSON object/],
    ['unknown dtype', craft({ w: { ...f32([1], 0, 4), dtype: 'F8_E4M3' } }, new Uint8Array(4)), /"w": unknown dtype "F8_E4M3"/],
    ['negative dim', craft({ w: f32([-1], 0, 4) }, new Uint8Array(4)), /"w": shape \[-1\]/],
    ['fractional dim', craft({ w: f32([1.5], 0, 4) }, new Uint8Array(4)), /"w": shape \[1\.5\]/],
    ['offsets not a pair', craft({ w: { ...f32([1], 0, 4), data_offsets: [0] } }, new Uint8Array(4)), /"w": data_offsets \[0\]/],
    ['offsets as strings', craft({ w: { ...f32([1], 0, 4), data_offsets: ['0', '4'] } }, new Uint8Array(4)), /"w": data_offsets/],
    ['size mismatch', craft({ w: f32([2], 0, 4) }, new Uint8Array(4)), /"w": F32 shape \[2\] needs 8 bytes but data_offsets \[0, 4\] span 4/],
    ['end before begin', craft({ w: f32([0], 4, 0) }, new Uint8Array(4)), /"w": data_offsets \[4, 0\] end before/],
    ['offsets out of range', craft({ w: f32([4], 0, 16) }, new Uint8Array(8)), /"w": data_offsets \[0, 16\] run past the 8-byte data buffer/],
    ['overlap', craft({ a: f32([2], 0, 8), b: f32([2], 4, 12) }, new Uint8Array(12)), /"b": data_offsets \[4, 12\] overlap tensor "a"/],
    ['empty tensor inside another', craft({ a: f32([2], 0, 8), e: f32([0], 4, 4) }, new Uint8Array(8)), /"e".*overlap tensor "a"/],
    ['gap', craft({ a: f32([1], 0, 4), b: f32([1], 8, 12) }, new Uint8Array(12)), /"b": data_offsets \[8, 12\] leave a gap/],
    ['trailing bytes', craft({ a: f32([1], 0, 4) }, new Uint8Array(8)), /4 bytes after the last tensor/],
    ['non-string metadata', craft({ __metadata__: { step: 3 } }), /__metadata__ key "step" has non-string value 3/],
    ['metadata not an object', craft({ __metadata__: 'pt' }), /__metadata__ is not a JSON object/],
  ];
  for (const [what, bytes, message] of cases) {
    test(what, () => {
      assert.throws(() => parseSafetensors(bytes, 'bad.safetensors'), (e: unknown) => {
        assert.ok(e instanceof Error);
        assert.match(e.message, /^safetensors bad\.safetensors: /);
        assert.match(e.message, message);
        return true;
      });
    });
  }

  test('the crafted files are otherwise well-formed (a valid one parses)', () => {
    const ok = craft({ a: f32([1], 0, 4), e: f32([0, 3], 4, 4), b: f32([], 4, 8) }, new Uint8Array(8));
    assert.deepEqual([...parseSafetensors(ok).tensors.keys()], ['a', 'e', 'b']);
  });

  test('readSafetensorsFile names the path', () => {
    const path = join(scratch, 'broken.safetensors');
    writeFileSync(path, craft({ w: f32([2], 0, 4) }, new Uint8Array(4)));
    assert.throws(() => readSafetensorsFile(path), (e: unknown) => e instanceof Error && e.message.includes(path) && e.message.includes('"w"'));
  });
});

describe('atomic writes', () => {
  const tensors = new Map<string, RawTensor>([
    ['w', encodeValues('BF16', [2], [0.5, -3])],
    ['n', encodeValues('I64', [1], [42n])],
  ]);

  test('write → read round trip leaves only the target file', () => {
    const dir = mkdtempSync(join(scratch, 'write-'));
    const path = join(dir, 'model.safetensors');
    writeSafetensorsFile(path, tensors, { format: 'pt' });
    writeSafetensorsFile(path, tensors, { format: 'pt', step: '2' }); // overwrite in place
    assert.deepEqual(readdirSync(dir), ['model.safetensors']);
    assert.deepEqual(new Uint8Array(readFileSync(path)), serializeSafetensors(tensors, { format: 'pt', step: '2' }));
    const back = readSafetensorsFile(path);
    assert.deepEqual(back.metadata, { format: 'pt', step: '2' });
    assert.deepEqual(decodeValues(back.tensors.get('w')!), [0.5, -3]);
  });

  test('invalid input throws before touching the old file', () => {
    const dir = mkdtempSync(join(scratch, 'invalid-'));
    const path = join(dir, 'model.safetensors');
    writeSafetensorsFile(path, tensors);
    const before = readFileSync(path);
    const bad = { w: { dtype: 'F32' as const, shape: [3], data: new Uint8Array(4) } };
    assert.throws(() => writeSafetensorsFile(path, bad), /"w".*needs 12 bytes/);
    assert.deepEqual(readFileSync(path), before);
    assert.deepEqual(readdirSync(dir), ['model.safetensors']);
  });

  test('a failed rename removes the temp file and leaves the target as it was', () => {
    const dir = mkdtempSync(join(scratch, 'rename-'));
    const target = join(dir, 'model.safetensors');
    mkdirSync(target); // renaming a file over a non-empty directory fails
    writeFileSync(join(target, 'keep'), 'x');
    assert.throws(() => writeSafetensorsFile(target, tensors), (e: unknown) => e instanceof Error && 'code' in e);
    assert.deepEqual(readdirSync(dir), ['model.safetensors']);
    assert.deepEqual(readdirSync(target), ['keep']);
  });

  test('a missing directory fails without creating anything', () => {
    assert.throws(() => writeSafetensorsFile(join(scratch, 'no', 'such', 'dir', 'm.safetensors'), tensors), /ENOENT/);
    assert.equal(existsSync(join(scratch, 'no')), false);
  });
});

describe('sharded checkpoints (model.safetensors.index.json)', () => {
  const a = encodeValues('F32', [2], [1, 2]);
  const b = encodeValues('F16', [1], [0.5]);
  const c = encodeValues('I32', [3], [7, 8, 9]);
  const s1 = 'model-00001-of-00002.safetensors';
  const s2 = 'model-00002-of-00002.safetensors';

  /** A checkpoint dir with shard1 = {a, b}, shard2 = {c} and the given index (default: the true one). */
  function checkpoint(index: unknown = { metadata: { total_size: 22 }, weight_map: { a: s1, b: s1, c: s2 } }): string {
    const dir = mkdtempSync(join(scratch, 'sharded-'));
    writeSafetensorsFile(join(dir, s1), { a, b });
    writeSafetensorsFile(join(dir, s2), { c });
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify(index));
    return dir;
  }

  test('merges all shards in weight_map order', () => {
    const { metadata, tensors } = readSafetensorsIndex(checkpoint());
    assert.deepEqual(metadata, { total_size: 22 });
    assert.deepEqual([...tensors.keys()], ['a', 'b', 'c']);
    assert.deepEqual(decodeValues(tensors.get('a')!), [1, 2]);
    assert.deepEqual(decodeValues(tensors.get('b')!), [0.5]);
    assert.deepEqual(decodeValues(tensors.get('c')!), [7, 8, 9]);
  });

  const broken: [string, unknown, RegExp][] = [
    ['a missing shard', { weight_map: { a: s1, b: s1, c: s2, d: 'model-00003.safetensors' } }, /shard "model-00003\.safetensors" \(for tensor "d"\) does not exist/],
    ['a tensor not where the map says', { weight_map: { a: s1, b: s1, c: s1 } }, /tensor "c" is not in shard "model-00001/],
    ['a tensor the map places elsewhere', { weight_map: { a: s1, b: s2, c: s2 } }, /shard "model-00001-of-00002\.safetensors" holds tensor "b", which weight_map places in "model-00002/],
    ['a tensor the map omits', { weight_map: { a: s1, c: s2 } }, /holds tensor "b", which weight_map does not list/],
    ['a shard outside the directory', { weight_map: { a: `../${s1}` } }, /tensor "a": shard "\.\.\/model-00001/],
    ['no weight_map', { metadata: {} }, /expected \{"metadata"/],
  ];
  for (const [what, index, message] of broken) {
    test(`rejects ${what}`, () => {
      const dir = checkpoint(index);
      assert.throws(() => readSafetensorsIndex(dir), (e: unknown) => {
        assert.ok(e instanceof Error);
        assert.ok(e.message.includes(join(dir, 'model.safetensors.index.json')), e.message);
        assert.match(e.message, message);
        return true;
      });
    });
  }

  test('rejects a directory without an index', () => {
    assert.throws(() => readSafetensorsIndex(mkdtempSync(join(scratch, 'empty-'))), /cannot read \(ENOENT/);
  });
});
