/**
 * The CUDA build, checked without a GPU: scripts/cuda-build.sh (`npm run test:cuda`) builds the addon
 * against PyTorch's CUDA wheel into build-cuda/ and runs this tier with RLHF_ADDON pointing at it. The
 * binary loads, says CUDA is built in, `rlhf info` reports the devices the driver sees (none here), and a
 * CUDA request with no device fails with a one-line error instead of libtorch's driver message or a crash.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';

import { mappedLibraries } from '../../src/machine.js';
import { packageRoot } from '../../src/models/hub.js';
import { buildInfo, scope, tensor } from '../../src/tensor/index.js';

const gpuPresent = existsSync('/dev/nvidia0');

describe('CUDA build', () => {
  test('the addon loaded is built with CUDA and links libtorch_cuda', () => {
    assert.ok(process.env.RLHF_ADDON, 'run through scripts/cuda-build.sh (RLHF_ADDON names the CUDA build)');
    const b = buildInfo();
    assert.equal(b.cudaBuild, true);
    assert.ok(mappedLibraries('libtorch_cuda').length === 1, 'libtorch_cuda.so is not mapped');
    // The CPU side still works on the CUDA build.
    assert.deepEqual(scope(() => [...(tensor([1, 2]).mul(3).data() as Float32Array)]), [3, 6]);
  });

  test('rlhf info reports CUDA built in and the devices the driver sees', async () => {
    const root = packageRoot();
    const out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, [join(root, 'bin', 'rlhf.js'), 'info', '--json'], { cwd: root, timeout: 60_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout))),
    );
    const info = JSON.parse(out) as { cuda: { build: boolean; available: boolean; devices: number } };
    assert.equal(info.cuda.build, true);
    if (!gpuPresent) assert.deepEqual(info.cuda, { build: true, available: false, devices: 0 });
  });

  test('a CUDA request without a device is a one-line error, not a crash', () => {
    if (gpuPresent) return;
    const t = tensor([1, 2, 3]);
    try {
      for (const attempt of [() => t.to('cuda'), () => tensor([1], { device: 'cuda' }), () => t.to('cuda:1')]) {
        assert.throws(attempt, (e: unknown) => e instanceof Error && /no CUDA device/.test(e.message) && !e.message.includes('\n'));
      }
    } finally {
      t.dispose();
    }
  });
});
