/** `rlhf info`: what this installation runs on (libtorch, BLAS, threads, CUDA). */
import { blasInfo, buildInfo, getNumThreads } from '../tensor/index.js';
import type { Command } from './main.js';

export const infoCommand: Command = {
  summary: 'show the libtorch build, BLAS, thread counts and devices in use',
  options: [],
  async run() {
    const b = buildInfo();
    return {
      node: process.version,
      torch: b.torchVersion,
      cuda: { build: b.cudaBuild, available: b.cudaAvailable, devices: b.cudaDevices },
      threads: getNumThreads(),
      blas: blasInfo(),
    };
  },
};
