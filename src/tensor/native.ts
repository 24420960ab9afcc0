/**
 * The native boundary, typed in one place (after node-llama-cpp's AddonTypes.ts). Nothing outside
 * src/tensor/ imports this file. Tensors cross as integer handles into the addon's table; -1 stands
 * for "no tensor" in optional arguments and results.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

type H = number;

/** Per-parameter optimiser state: null before the first step; AdamW [step, expAvg, expAvgSq]; SGD [momentum|-1]. */
export type NativeOptimState = (number[] | null)[];

export interface OptimGroupSpec {
  params: H[];
  lr: number;
  weightDecay: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
}

export interface NativeAddon {
  readonly unaryOps: string[];
  readonly binaryOps: string[];
  readonly reduceOps: string[];
  // tensor.cpp: creation, read-back, metadata, lifetime, randomness
  fromBuffer(bytes: ArrayBufferView, dtype: number, shape: number[]): H;
  toBuffer(h: H): ArrayBuffer;
  item(h: H): number;
  extrema(h: H): [number, number];
  full(shape: number[], value: number, dtype: number, device: string): H;
  zeros(shape: number[], dtype: number, device: string): H;
  empty(shape: number[], dtype: number, device: string): H;
  arange(start: number, end: number, step: number, dtype: number, device: string): H;
  linspace(start: number, end: number, steps: number, dtype: number, device: string): H;
  eye(n: number, m: number, dtype: number, device: string): H;
  generatorNew(seed: number, device: string): number;
  generatorFree(g: number): void;
  generatorGetState(g: number): H;
  generatorSetState(g: number, state: H): void;
  manualSeed(seed: number): void;
  rand(shape: number[], dtype: number, device: string, gen: number): H;
  randn(shape: number[], dtype: number, device: string, gen: number): H;
  randint(low: number, high: number, shape: number[], dtype: number, device: string, gen: number): H;
  multinomial(probs: H, n: number, replacement: boolean, gen: number): H;
  uniform_(h: H, low: number, high: number, gen: number): void;
  normal_(h: H, mean: number, std: number, gen: number): void;
  meta(h: H): [number, string, ...number[]];
  strides(h: H): number[];
  free(h: H): void;
  freeMany(hs: Int32Array | H[]): void;
  liveTensors(): number;
  // ops.cpp
  unary(op: number, a: H): H;
  binary(op: number, a: H, b: H): H;
  binaryScalar(op: number, a: H, s: number, reversed: boolean): H;
  reduce(op: number, a: H, dims: number[] | null, keepdim: boolean): H;
  varStd(isStd: boolean, a: H, dims: number[] | null, correction: number, keepdim: boolean): H;
  maxMin(isMin: boolean, a: H, dim: number, keepdim: boolean): [H, H];
  argMaxMin(isMin: boolean, a: H, dim: number | null, keepdim: boolean): H;
  cumsum(a: H, dim: number): H;
  softmax(isLog: boolean, a: H, dim: number): H;
  topk(a: H, k: number, dim: number, largest: boolean, sorted: boolean): [H, H];
  sort(a: H, dim: number, descending: boolean, stable: boolean): [H, H];
  einsum(eq: string, hs: H[]): H;
  clamp(a: H, min: number | null, max: number | null): H;
  where(cond: H, a: H, b: H): H;
  maskedFill(a: H, mask: H, value: number): H;
  to(a: H, dtype: number, device: string): H;
  reshape(a: H, shape: number[]): H;
  view(a: H, shape: number[]): H;
  flatten(a: H, start: number, end: number): H;
  squeeze(a: H, dim: number | null): H;
  unsqueeze(a: H, dim: number): H;
  transpose(a: H, d0: number, d1: number): H;
  permute(a: H, dims: number[]): H;
  expand(a: H, shape: number[]): H;
  repeat(a: H, reps: number[]): H;
  flip(a: H, dims: number[]): H;
  slice(a: H, dim: number, start: number, end: number, step: number): H;
  narrow(a: H, dim: number, start: number, length: number): H;
  select(a: H, dim: number, index: number): H;
  indexSelect(a: H, dim: number, index: H): H;
  gather(a: H, dim: number, index: H): H;
  scatter(a: H, dim: number, index: H, src: H, add: boolean): H;
  index(a: H, indices: H[]): H;
  cat(hs: H[], dim: number): H;
  stack(hs: H[], dim: number): H;
  split(a: H, sizes: number | number[], dim: number): H[];
  chunk(a: H, chunks: number, dim: number): H[];
  triangle(upper: boolean, a: H, diagonal: number): H;
  embedding(weight: H, ids: H): H;
  linear(x: H, w: H, b: H): H;
  layerNorm(x: H, shape: number[], w: H, b: H, eps: number): H;
  rmsNorm(x: H, w: H, eps: number): H;
  // kernels.cpp: fused loops when nothing needs a gradient (float32, CPU), composite ops otherwise
  rotary(x: H, cos: H, sinSigned: H): H;
  groupedAttention(q: H, k: H, v: H, bias: H, causal: boolean): H;
  vectorKernels(on: number): boolean;
  sampleCdf(probs: H, uniforms: Float64Array): H;
  sampleLogits(logits: H, temperature: number, uniforms: Float64Array): [H, H];
  tokenLogprobs(logits: H, tokens: H): H;
  // decode.cpp: one decode position through every layer of a Llama-family decoder
  decoderStep(x: H, weights: H[], kCache: H[], vCache: H[], past: number, cos: H, sinSigned: H, bias: H, numHeads: number, eps: number, headNorm: H, head: H): H;
  dropout(x: H, p: number, train: boolean): H;
  crossEntropy(logits: H, target: H, ignoreIndex: number, reduction: number, labelSmoothing: number): H;
  sdpa(q: H, k: H, v: H, mask: H, dropoutP: number, isCausal: boolean, scale: number | null): H;
  copy_(dst: H, src: H): void;
  fill_(dst: H, value: number): void;
  addScaled_(dst: H, other: H, alpha: number): void;
  mulScalar_(dst: H, s: number): void;
  // autograd.cpp
  setRequiresGrad(h: H, on: boolean): void;
  requiresGrad(h: H): boolean;
  isLeaf(h: H): boolean;
  backward(h: H, grad: H, retainGraph: boolean): void;
  grad(h: H): H;
  zeroGrad(h: H): void;
  retainGrad(h: H): void;
  setGradEnabled(on: boolean): boolean;
  isGradEnabled(): boolean;
  // optim.cpp
  optimizerNew(kind: number, groups: OptimGroupSpec[], fused: boolean): number;
  optimizerStep(o: number): void;
  optimizerZeroGrad(o: number): void;
  optimizerSetLr(o: number, group: number, lr: number): void;
  optimizerFree(o: number): void;
  optimizerGetState(o: number): NativeOptimState;
  optimizerSetState(o: number, state: NativeOptimState): void;
  clipGradNorm(hs: H[], maxNorm: number, normType: number): number;
  // runtime.cpp
  nativeBytes(): { cpu: number; cpuPeak: number };
  resetPeakBytes(): void;
  setNumThreads(torch: number, blas: number): void;
  getNumThreads(): { torch: number; interop: number; blas: number | null };
  blasInfo(): { kind: 'openblas' | 'reference' | 'mkl' | 'unknown'; config: string | null; coreType: string | null; libraries: string[] };
  buildInfo(): {
    torchVersion: string; cudaBuild: boolean; cudaAvailable: boolean; cudaDevices: number; parallel: string;
    /** Real path of the libtorch_cpu loaded; the vector ISA its kernels dispatch to (AVX2, AVX512, …). */
    libtorch: string; cpuCapability: string;
    /** Whether this libtorch has the fused multi-tensor AdamW kernel on the CPU (at::_fused_adamw_, ≥ 2.4). */
    fusedAdamW: boolean;
    /** MKL's and oneDNN's version strings where this libtorch was built with them, else null. */
    mkl: string | null; mkldnn: string | null;
  };
}

function findAddon(): string {
  // RLHF_ADDON picks one of several builds in one checkout (build-debian/, build-cuda/: scripts/build-native.mjs).
  const chosen = process.env.RLHF_ADDON;
  if (chosen) {
    if (!existsSync(chosen)) throw new Error(`RLHF_ADDON=${chosen}: no such file (build it with RLHF_BUILD_DIR=… node scripts/build-native.mjs)`);
    return chosen;
  }
  // src/tensor/native.ts runs from dist/src/tensor/: walk up to the package root.
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'build', 'rlhf_native.node');
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new Error('rlhf-ts native addon not built: run `npm run setup` (or `node scripts/build-native.mjs`)');
}

// OpenBLAS (pthreads) and libtorch's OpenMP pool both busy-wait between jobs. With more than one thread
// in each they starve each other on the same cores: on this 2-core machine, 2 + 2 threads made a
// stories260K training step ~3× and a batch-256 decode step ~2× slower than 1 thread. Passive OpenMP
// waiting removes that (measured: 2 + 2 threads then cost the same as 1). libgomp reads this when it
// loads, with the addon, so it is set first; a policy the user chose is kept. Child processes inherit
// it, the Python baselines of `rlhf bench` included.
process.env.OMP_WAIT_POLICY ??= 'PASSIVE';
const addonPath = findAddon();
export const native: NativeAddon = createRequire(import.meta.url)(addonPath) as NativeAddon;

/** What scripts/build-native.mjs recorded beside the addon: its libtorch and the Python whose `torch` is that libtorch. */
export interface AddonRecord {
  path: string;
  torchCmakeDir: string | null;
  source: string | null;
  /** Interpreter whose `torch` is the very libtorch the addon links (the benchmarks' baseline); null for a bare libtorch. */
  python: string | null;
}

/** The record of the addon this process loaded (rlhf_native.json beside it); empty fields where it has none. */
export function addonRecord(): AddonRecord {
  const file = join(dirname(addonPath), 'rlhf_native.json');
  let rec: Partial<AddonRecord> = {};
  try {
    rec = JSON.parse(readFileSync(file, 'utf8')) as Partial<AddonRecord>;
  } catch {
    // built before the record existed, or by hand: nothing known beyond the addon's own facts
  }
  return { path: addonPath, torchCmakeDir: rec.torchCmakeDir ?? null, source: rec.source ?? null, python: rec.python ?? null };
}
