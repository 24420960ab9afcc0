/** `rlhf info`: what this installation runs on (libtorch, the CPU and its vector extensions, BLAS, OpenMP, threads, CUDA). */
import { addonRecord, buildInfo, getNumThreads } from '../tensor/index.js';
import { machineInfo } from '../machine.js';
import type { Command } from './main.js';

export const infoCommand: Command = {
  summary: 'show the libtorch build, the CPU and its vector extensions, BLAS, OpenMP runtimes, threads and devices in use',
  options: [],
  async run() {
    const b = buildInfo();
    const m = machineInfo();
    return {
      node: process.version,
      torch: b.torchVersion,
      // Which libtorch: the one loaded (path, version, the ISA its kernels dispatch to, MKL / oneDNN), the
      // addon file, how the build chose that libtorch, and the Python whose torch is the same (the bench baseline).
      libtorch: { ...m.libtorch, addon: addonRecord().path, source: addonRecord().source, python: addonRecord().python },
      cuda: { build: b.cudaBuild, available: b.cudaAvailable, devices: b.cudaDevices },
      cpu: m.cpu,
      kernels: m.kernels,
      threads: getNumThreads(),
      blas: m.blas,
      openmp: m.openmp,
    };
  },
};
