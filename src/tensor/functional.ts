/** Free functions over several tensors, the neural-network ops, autograd mode and the runtime. */
import { native } from './native.js';
import { tensor } from './create.js';
import { Tensor } from './tensor.js';

const handles = (ts: readonly Tensor[]) => ts.map((t) => t.handle);
const opt = (t: Tensor | null | undefined) => (t ? t.handle : -1);

/** Concatenates tensors along an existing dimension. */
export function cat(ts: readonly Tensor[], dim = 0): Tensor {
  return new Tensor(native.cat(handles(ts), dim));
}
/** Stacks tensors of one shape along a new dimension. */
export function stack(ts: readonly Tensor[], dim = 0): Tensor {
  return new Tensor(native.stack(handles(ts), dim));
}
/** Elementwise `cond ? a : b`, broadcasting all three. */
export function where(cond: Tensor, a: Tensor, b: Tensor): Tensor {
  return new Tensor(native.where(cond.handle, a.handle, b.handle));
}
/** Einstein summation, e.g. `einsum('bij,bjk->bik', a, b)`. */
export function einsum(equation: string, ...operands: Tensor[]): Tensor {
  return new Tensor(native.einsum(equation, handles(operands)));
}
/** Matrix product with broadcasting (torch.matmul). */
export function matmul(a: Tensor, b: Tensor): Tensor {
  return a.matmul(b);
}

// ---- neural-network functional ops ------------------------------------------------------------------
/** Rows of `weight` (V, D) at integer `ids` (any shape) → (…ids, D). */
export function embedding(weight: Tensor, ids: Tensor): Tensor {
  return new Tensor(native.embedding(weight.handle, ids.handle));
}
/** x · Wᵀ + b, with W (out, in) as torch.nn.Linear stores it. */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  return new Tensor(native.linear(x.handle, weight.handle, opt(bias)));
}
/** Layer normalisation over the trailing `normalizedShape` dimensions (torch.nn.functional.layer_norm). */
export function layerNorm(x: Tensor, normalizedShape: readonly number[], weight?: Tensor | null, bias?: Tensor | null, eps = 1e-5): Tensor {
  return new Tensor(native.layerNorm(x.handle, [...normalizedShape], opt(weight), opt(bias), eps));
}
/** RMSNorm over the last dim (Zhang & Sennrich 2019), in float32 for 16-bit inputs as HF Llama does. */
export function rmsNorm(x: Tensor, weight?: Tensor | null, eps = 1e-6): Tensor {
  return new Tensor(native.rmsNorm(x.handle, opt(weight), eps));
}
/** Zeroes elements with probability p and scales the rest by 1/(1 − p) while training; the identity otherwise. */
export function dropout(x: Tensor, p: number, training: boolean): Tensor {
  return new Tensor(native.dropout(x.handle, p, training));
}

/** How a loss reduces over its elements. */
export type Reduction = 'none' | 'mean' | 'sum';
const REDUCTION: Record<Reduction, number> = { none: 0, mean: 1, sum: 2 };

/**
 * Cross-entropy of `logits` (N, C) or (N, C, d…) against class indices `target` (N) / (N, d…).
 * Targets equal to `ignoreIndex` contribute nothing, and 'mean' averages over the others only.
 */
export function crossEntropy(logits: Tensor, target: Tensor, opts: { ignoreIndex?: number; reduction?: Reduction; labelSmoothing?: number } = {}): Tensor {
  const red = REDUCTION[opts.reduction ?? 'mean'];
  if (red === undefined) throw new Error(`crossEntropy: unknown reduction '${String(opts.reduction)}'`);
  return new Tensor(native.crossEntropy(logits.handle, target.handle, opts.ignoreIndex ?? -100, red, opts.labelSmoothing ?? 0));
}

/**
 * softmax(q kᵀ · scale + mask) v, q/k/v (B, nh, T, hs). `mask` is boolean (true = attend) or additive
 * float; `isCausal` masks the future. `scale` defaults to 1/√hs. libtorch 1.13 reaches the private op
 * (native/compat.h).
 */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, opts: { mask?: Tensor | null; dropoutP?: number; isCausal?: boolean; scale?: number } = {}): Tensor {
  return new Tensor(native.sdpa(q.handle, k.handle, v.handle, opt(opts.mask), opts.dropoutP ?? 0, opts.isCausal ?? false, opts.scale ?? null));
}

/**
 * Rotary position embedding in the half-split layout, x (B, nh, T, hs): x·cos + swapHalves(x)·sinSigned,
 * with cos and sinSigned (B, 1, T, hs) and rotate_half's sign folded into sinSigned (src/nn/rotary.ts).
 * A fused loop when nothing needs a gradient (float32, CPU); libtorch ops otherwise.
 */
export function rotary(x: Tensor, cos: Tensor, sinSigned: Tensor): Tensor {
  return new Tensor(native.rotary(x.handle, cos.handle, sinSigned.handle));
}

/**
 * softmax(q kᵀ/√hs + bias [+ causal]) v with grouped-query heads: q (B, nh, T, hs), k/v (B, nkv, L, hs),
 * query head h reading kv head ⌊h·nkv/nh⌋ (HF's repeat_kv, without repeating anything). `bias` is
 * additive (B or 1, 1, T, L); `causal` masks keys after each query's position, queries sitting at the
 * last T of the L positions (a KV cache's layout). A fused loop for decoding (T ≤ 4, no gradient,
 * float32, CPU); libtorch's attention otherwise.
 */
export function groupedAttention(q: Tensor, k: Tensor, v: Tensor, opts: { bias?: Tensor | null; causal?: boolean } = {}): Tensor {
  return new Tensor(native.groupedAttention(q.handle, k.handle, v.handle, opt(opts.bias), opts.causal ?? false));
}
/**
 * Inverse-CDF sampling, one token per row of probabilities (B, V): the number of j with
 * cdf_j ≤ u · cdf_{V−1}, the cdf summed in float64, clamped to V − 1; u is the row's uniform in [0, 1).
 * With u < 1, u · total < the cdf of the last token of non-zero probability, so a token filtered to
 * probability 0 (an empty interval) is never chosen, even at u → 1; the comparison is ≤, not <, since
 * with < u = 0 would choose token 0 even when it was filtered out. On the CPU one native pass
 * (native/kernels.cpp, the same float64 arithmetic without the (B, V) float64 temporaries); elsewhere
 * tensor ops.
 */
export function sampleCdf(probs: Tensor, uniforms: Float64Array): Tensor {
  if (probs.device === 'cpu' && probs.dtype === 'float32' && probs.ndim === 2) return new Tensor(native.sampleCdf(probs.handle, uniforms));
  const cdf = probs.double().cumsum(-1);
  const total = cdf.narrow(-1, cdf.size(-1) - 1, 1); // (B, 1): 1 up to rounding
  const u = tensor(uniforms, { shape: [uniforms.length, 1], device: probs.device }).mul(total);
  return cdf.le(u).sum(-1).clamp(0, probs.size(-1) - 1);
}

/**
 * The next token of every row of float32 CPU logits (B, V) in one native pass per row: sampled from
 * softmax(logits / temperature) by the inverse-CDF rule of sampleCdf (u from `uniforms`, one per row), or
 * greedy (the first maximal logit) at temperature 0; with the raw model's log-prob of each token,
 * log softmax(logits)[token], whatever the temperature. The weights are e^((l − max) / T) in float32, the
 * cdf summed in blocks of 8 (float32 within a block, float64 across blocks: non-decreasing, ending exactly
 * at the total). No top-k / top-p: src/generate/sampling.ts composes ops for those.
 */
export function sampleLogits(logits: Tensor, temperature: number, uniforms: Float64Array): { tokens: Tensor; logprobs: Tensor } {
  const [t, l] = native.sampleLogits(logits.handle, temperature, uniforms);
  return { tokens: new Tensor(t), logprobs: new Tensor(l) };
}

/** log softmax(logits)[token] per row of float32 CPU logits (B, V), tokens (B,) int64: sampleLogits' arithmetic. */
export function gatherLogprobs(logits: Tensor, tokens: Tensor): Tensor {
  return new Tensor(native.tokenLogprobs(logits.handle, tokens.handle));
}

/** One decoder layer's weights for decoderStep, Hugging Face's Llama names; biases absent where the model has none. */
export interface DecoderLayerWeights {
  inputNorm: Tensor;
  postAttentionNorm: Tensor;
  q: Tensor; k: Tensor; v: Tensor; o: Tensor;
  gate: Tensor; up: Tensor; down: Tensor;
  qBias?: Tensor | null; kBias?: Tensor | null; vBias?: Tensor | null; oBias?: Tensor | null;
  gateBias?: Tensor | null; upBias?: Tensor | null; downBias?: Tensor | null;
}

/**
 * One decode position (T = 1) through every layer of a pre-norm decoder with rotary positions,
 * grouped-query attention and a SwiGLU MLP (the Llama family), in one native call (native/decode.cpp):
 * x (B, C) → the hidden state after the last layer (B, C), before the final norm. Layer l's rotated key
 * and value are written at position `past` of kCache[l] / vCache[l] (B, nkv, capacity, hs), and the query
 * attends over [0, past] with `bias` (B, ≥ past + 1) added (−∞ on padding; null: none). cos / sinSigned
 * are the rotary tables at each row's position, (B, hs) or any shape of that size. Inference only:
 * float32 on the CPU, nothing needing a gradient, contiguous weights and caches (it throws otherwise).
 * With `head` (the final norm's weight and the LM head (V, C)) it returns the logits (B, V) instead.
 */
export function decoderStep(x: Tensor, layers: readonly DecoderLayerWeights[], cache: { k: readonly Tensor[]; v: readonly Tensor[] }, past: number,
  rope: { cos: Tensor; sin: Tensor }, bias: Tensor | null, numHeads: number, eps: number, head?: { norm: Tensor; weight: Tensor } | null): Tensor {
  const weights = layers.flatMap((w) => [w.inputNorm, w.postAttentionNorm, w.q, w.k, w.v, w.o, w.gate, w.up, w.down,
    w.qBias, w.kBias, w.vBias, w.oBias, w.gateBias, w.upBias, w.downBias].map(opt));
  return new Tensor(native.decoderStep(x.handle, weights, cache.k.map((t) => t.handle), cache.v.map((t) => t.handle), past,
    rope.cos.handle, rope.sin.handle, opt(bias), numHeads, eps, opt(head?.norm), opt(head?.weight)));
}

/**
 * Whether the fused decode loops use their AVX2 + FMA path (x86-64 CPUs that have both; chosen at run
 * time). `on` switches it (the scalar loop is the fallback the tests compare against); returns the state
 * afterwards, false where the CPU lacks the instructions.
 */
export function vectorKernels(on?: boolean): boolean {
  return native.vectorKernels(on === undefined ? -1 : on ? 1 : 0);
}

// ---- autograd mode ---------------------------------------------------------------------------------
/** Runs `fn` with gradient tracking off (torch.no_grad). Synchronous: grad mode is per thread. */
export function noGrad<T>(fn: () => T): T {
  const prev = native.setGradEnabled(false);
  try {
    return fn();
  } finally {
    native.setGradEnabled(prev);
  }
}
/** Whether autograd records operations here (false inside noGrad). */
export function isGradEnabled(): boolean {
  return native.isGradEnabled();
}

/**
 * Rescales gradients in place so their joint `normType` norm is at most `maxNorm`; returns the norm
 * before clipping (torch.nn.utils.clip_grad_norm_).
 */
export function clipGradNorm(params: readonly Tensor[], maxNorm: number, normType = 2): number {
  return native.clipGradNorm(handles(params), maxNorm, normType);
}

// ---- runtime ---------------------------------------------------------------------------------------
/**
 * Sets libtorch's intra-op threads and OpenBLAS's pool (torch.set_num_threads alone does not bound
 * OpenBLAS); `blas` gives OpenBLAS a different count (both pools spinning on the same cores can starve
 * each other).
 */
export function setNumThreads(n: number, opts: { blas?: number } = {}): void {
  for (const [what, t] of [['threads', n], ['blas threads', opts.blas ?? n]] as const) {
    // 256 bounds what oversubscription can cost (1000 threads ran 20× slower); configs check the same range.
    if (!(Number.isInteger(t) && t >= 1 && t <= 256)) throw new RangeError(`setNumThreads: ${what} must be an integer in 1..256, got ${t}`);
  }
  native.setNumThreads(n, opts.blas ?? n);
}
/** libtorch's intra-op and inter-op thread counts, and OpenBLAS's (null without OpenBLAS). */
export function getNumThreads(): { torch: number; interop: number; blas: number | null } {
  return native.getNumThreads();
}
/** The BLAS libtorch is linked to, as blasInfo reports it. */
export type BlasInfo = ReturnType<typeof native.blasInfo>;
/** The BLAS in use (OpenBLAS and its core type, or the slow reference BLAS). */
export function blasInfo(): BlasInfo {
  return native.blasInfo();
}
/** How the addon was built (buildInfo()): libtorch version, CPU capability, MKL / oneDNN, CUDA. */
export type BuildInfo = ReturnType<typeof native.buildInfo>;
/** How the addon was built: libtorch version, compiler, ABI, CUDA. */
export function buildInfo(): BuildInfo {
  return native.buildInfo();
}
export { type AddonRecord, addonRecord } from './native.js';

let warned = false;
/**
 * Warns once on stderr when the loaded BLAS is the slow reference one (~6 GFLOP/s against ~100 for
 * OpenBLAS on this class of machine). Returns the BLAS description.
 */
export function checkBlas(): BlasInfo {
  const info = native.blasInfo();
  if (info.kind === 'reference' && !warned) {
    warned = true;
    process.stderr.write('rlhf-ts: warning: libtorch is using the reference BLAS (slow matmuls); install libopenblas0-pthread\n');
  }
  return info;
}
