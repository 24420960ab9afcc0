/**
 * What machine a run is on, as far as it changes the numbers: the CPU and its vector extensions (they pick
 * OpenBLAS's kernels, libtorch's and our own fused loops, and so the order of every sum), the BLAS and its
 * core type, the OpenMP runtimes loaded, and which path our fused kernels take. `rlhf info`, every bench
 * JSON and the demo report print it, so a figure always names the processor it was measured on.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { arch, cpus } from 'node:os';
import { basename } from 'node:path';
import { blasInfo, type BlasInfo, buildInfo, vectorKernels } from './tensor/index.js';

/** The instruction-set extensions that change which kernels run (x86-64: AVX2/FMA/AVX-512; Arm: NEON/SVE). */
export interface VectorExtensions {
  avx2: boolean;
  fma: boolean;
  avx512f: boolean;
  avx512bf16: boolean;
  avx512fp16: boolean;
  neon: boolean;
  sve: boolean;
}

/** The machine a run runs on: CPU model, architecture, cores and vector extensions, the BLAS and OpenMP runtimes loaded, the kernels' path. */
export interface MachineInfo {
  cpu: { model: string; arch: string; logicalCores: number; vector: VectorExtensions };
  blas: BlasInfo;
  /**
   * The libtorch in this process: version, real path, the vector ISA its own kernels dispatch to (DEFAULT,
   * AVX2, AVX512, …), the MKL / oneDNN versions it carries (null when built without) and whether it has
   * the fused CPU AdamW kernel (AdamW's default path where it does).
   */
  libtorch: { version: string; path: string; cpuCapability: string; mkl: string | null; mkldnn: string | null; fusedAdamW: boolean };
  /** Real paths of the OpenMP runtimes mapped into this process (libgomp, Intel's libiomp5, LLVM's libomp). */
  openmp: string[];
  /** The fused inference loops' path: 'avx2' (AVX2 + FMA, chosen at run time) or 'scalar' (RLHF_SCALAR_KERNELS=1 or no AVX2). */
  kernels: 'avx2' | 'scalar';
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return ''; // not Linux: what Node reports is all there is
  }
}

/** The first processor's model name and its flag words (x86 `flags`, Arm `Features`) from /proc/cpuinfo. */
function cpuinfo(): { model: string; flags: Set<string> } {
  const text = readText('/proc/cpuinfo');
  const field = (name: string) => new RegExp(`^${name}\\s*:\\s*(.+)$`, 'm').exec(text)?.[1]?.trim();
  const model = field('model name') ?? field('Model') ?? field('CPU part') ?? cpus()[0]?.model ?? 'unknown';
  return { model, flags: new Set((field('flags') ?? field('Features') ?? '').split(/\s+/)) };
}

/** Real paths of the shared libraries mapped into this process whose file name contains one of `names` (Linux). */
export function mappedLibraries(...names: string[]): string[] {
  const found = new Set<string>();
  for (const line of readText('/proc/self/maps').split('\n')) {
    const at = line.indexOf('/');
    if (at < 0 || !names.some((n) => basename(line.slice(at)).includes(n))) continue;
    try {
      found.add(realpathSync(line.slice(at)));
    } catch {
      found.add(line.slice(at)); // deleted or unreadable: the mapped name is still the best answer
    }
  }
  return [...found];
}

function libtorchInfo(): MachineInfo['libtorch'] {
  const b = buildInfo();
  return { version: b.torchVersion, path: b.libtorch, cpuCapability: b.cpuCapability, mkl: b.mkl, mkldnn: b.mkldnn, fusedAdamW: b.fusedAdamW };
}

/** The machine a run runs on, read from the OS, /proc/cpuinfo and the loaded libraries. */
export function machineInfo(): MachineInfo {
  const { model, flags } = cpuinfo();
  const isArm = arch() === 'arm64';
  return {
    cpu: {
      model, arch: arch(), logicalCores: cpus().length,
      vector: {
        avx2: flags.has('avx2'), fma: flags.has('fma'), avx512f: flags.has('avx512f'),
        avx512bf16: flags.has('avx512_bf16'), avx512fp16: flags.has('avx512_fp16'),
        // NEON is part of every AArch64 CPU; /proc/cpuinfo calls it asimd.
        neon: flags.has('asimd') || flags.has('neon') || isArm, sve: flags.has('sve'),
      },
    },
    blas: blasInfo(),
    libtorch: libtorchInfo(),
    openmp: mappedLibraries('libgomp', 'libiomp', 'libomp'),
    kernels: vectorKernels() ? 'avx2' : 'scalar',
  };
}

const EXTENSION_NAMES: Record<keyof VectorExtensions, string> = {
  avx2: 'AVX2', fma: 'FMA', avx512f: 'AVX-512F', avx512bf16: 'AVX-512 BF16', avx512fp16: 'AVX-512 FP16', neon: 'NEON', sve: 'SVE',
};

/** One line for people: "AMD EPYC (x64; AVX2 FMA), OpenBLAS Haswell, libtorch 1.13.1 AVX2, kernels avx2". */
export function machineSummary(m: MachineInfo = machineInfo()): string {
  const ext = (Object.keys(EXTENSION_NAMES) as (keyof VectorExtensions)[]).filter((k) => m.cpu.vector[k]).map((k) => EXTENSION_NAMES[k]);
  const blas = m.blas.kind === 'openblas' ? `OpenBLAS${m.blas.coreType ? ' ' + m.blas.coreType : ''}` : m.blas.kind;
  return `${m.cpu.model} (${m.cpu.arch}; ${ext.join(' ') || 'no vector extensions seen'}), ${blas}, libtorch ${m.libtorch.version} ${m.libtorch.cpuCapability}, kernels ${m.kernels}`;
}
