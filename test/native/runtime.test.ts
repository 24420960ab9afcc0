/**
 * The process's runtime as `rlhf info` reports it, on whichever libtorch the addon links (the pip wheel's
 * 2.x by default, Debian's 1.13 with RLHF_LIBTORCH=debian): exactly one OpenMP runtime mapped (the wheel
 * ships its own libgomp; a second one would run a second thread pool), the passive wait policy, the
 * thread settings holding on libtorch's pool and on OpenBLAS's where there is one, which libtorch and ISA
 * run, and a CUDA request on an addon that has no CUDA device failing with a one-line error.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, test } from 'node:test';

import { infoCommand } from '../../src/cli/info.js';
import { machineInfo } from '../../src/machine.js';
import { addonRecord, buildInfo, getNumThreads, scope, setNumThreads, tensor } from '../../src/tensor/index.js';

describe('runtime', () => {
  test('exactly one OpenMP runtime is mapped, and the wait policy is passive', () => {
    tensor([1, 2]).matmul(tensor([[1], [2]])).dispose(); // libtorch's pools have started
    const m = machineInfo();
    assert.equal(m.openmp.length, 1, `OpenMP runtimes mapped: ${m.openmp.join(', ')}`);
    assert.equal(process.env.OMP_WAIT_POLICY, 'PASSIVE');
  });

  test('setNumThreads bounds libtorch and, where the BLAS is OpenBLAS, its pool', () => {
    const before = getNumThreads();
    try {
      setNumThreads(2, { blas: 2 });
      const t = getNumThreads();
      assert.equal(t.torch, 2);
      // MKL (the wheel's BLAS) runs in libtorch's OpenMP pool: there is no separate BLAS pool to report.
      assert.equal(t.blas, machineInfo().blas.kind === 'openblas' ? 2 : null);
    } finally {
      setNumThreads(before.torch, { blas: before.blas ?? before.torch });
    }
  });

  test('rlhf info names the libtorch loaded, its version, ISA and BLAS', async () => {
    const info = (await infoCommand.run({})) as { torch: string; libtorch: { version: string; path: string; cpuCapability: string; mkl: string | null; addon: string } };
    assert.equal(info.libtorch.version, buildInfo().torchVersion);
    assert.ok(existsSync(info.libtorch.path) && /libtorch_cpu/.test(info.libtorch.path), info.libtorch.path);
    assert.match(info.libtorch.cpuCapability, /^(DEFAULT|AVX2|AVX512|AVX512_VNNI|AVX512_BF16|AMX|NEON|SVE\d*|VSX|ZVECTOR)$/);
    assert.equal(info.libtorch.addon, addonRecord().path);
    if (machineInfo().blas.kind === 'mkl') assert.ok(info.libtorch.mkl, 'MKL in use but no MKL version reported');
  });

  test('a CUDA request with no CUDA device is a one-line error, and the process carries on', () => {
    if (buildInfo().cudaDevices > 0) return; // a GPU machine: the GPU tier covers CUDA
    const t = tensor([1, 2, 3]);
    try {
      assert.throws(() => t.to('cuda'), (e: unknown) => e instanceof Error && /no CUDA device/.test(e.message) && !e.message.includes('\n'));
      assert.throws(() => tensor([1], { device: 'cuda:0' }), /no CUDA device/);
      assert.deepEqual(scope(() => [...(t.add(1).data() as Float32Array)]), [2, 3, 4]);
    } finally {
      t.dispose();
    }
  });
});
