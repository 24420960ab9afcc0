// Tensors through safetensors: the independently written fixture read exactly into tensors, and
// written back byte for byte.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { loadTensors, saveTensors } from '../../src/nn/serialize.js';
import { scope } from '../../src/tensor/index.js';

const fixtureDir = fileURLToPath(new URL('../../../test/fixtures/safetensors/', import.meta.url));
const fixture = join(fixtureDir, 'all-dtypes.safetensors');
const expected = JSON.parse(readFileSync(join(fixtureDir, 'all-dtypes.expected.json'), 'utf8')) as {
  metadata: Record<string, string>;
  tensors: Record<string, { dtype: string; shape: number[]; values: (number | string | boolean)[] }>;
};
const DTYPE: Record<string, string> = { F64: 'float64', F32: 'float32', F16: 'float16', BF16: 'bfloat16', I64: 'int64', I32: 'int32', I16: 'int16', I8: 'int8', U8: 'uint8', BOOL: 'bool' };

test('every fixture tensor loads with its exact dtype, shape and values', () => {
  scope(() => {
    const { tensors, metadata } = loadTensors(fixture);
    assert.deepEqual(metadata, expected.metadata);
    assert.deepEqual([...tensors.keys()].sort(), Object.keys(expected.tensors).sort());
    for (const [name, want] of Object.entries(expected.tensors)) {
      const t = tensors.get(name)!;
      assert.equal(t.dtype, DTYPE[want.dtype], name);
      assert.deepEqual(t.shape, want.shape, name);
      let got: unknown[];
      if (t.dtype === 'int64') got = Array.from(t.data() as BigInt64Array, (v) => v.toString());
      else if (t.dtype === 'bool') got = Array.from(t.data() as Uint8Array, (v) => v !== 0);
      else if (t.dtype === 'float16' || t.dtype === 'bfloat16') got = Array.from(t.float().data() as Float32Array);
      else got = Array.from(t.data() as ArrayLike<number>);
      assert.equal(got.length, want.values.length, name);
      // Object.is: -0.0 and subnormals must survive exactly.
      got.forEach((v, i) => assert.ok(Object.is(v, want.values[i]), `${name}[${i}]: ${String(v)} vs ${String(want.values[i])}`));
    }
  });
});

test('saving the loaded tensors reproduces the fixture byte for byte', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rlhf-st-'));
  try {
    scope(() => {
      const { tensors, metadata } = loadTensors(fixture);
      const out = join(dir, 'copy.safetensors');
      saveTensors(out, tensors, metadata);
      assert.deepEqual(readFileSync(out), readFileSync(fixture));
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
