/**
 * llama2.c checkpoints (Karpathy's llama2.c `export.py`): the "legacy" layout (7 int32 header, then
 * float32 weights in run.c's order, RoPE tables included) and the v1 layout (256-byte header starting
 * with magic "ak42"). Converted to our (Hugging Face) Llama: llama2.c rotates adjacent pairs (2i, 2i+1)
 * where HF rotates halves (i, i + hs/2), so wq and wk rows are permuted as HF's own
 * convert_llama_weights_to_hf.py does.
 */
import { readFileSync } from 'node:fs';
import { tensor, type Tensor } from '../tensor/index.js';
import type { LlamaConfig } from './llama.js';

export interface Llama2cHeader {
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  vocabSize: number;
  seqLen: number;
  sharedClassifier: boolean;
  version: 0 | 1;
}

const MAGIC = 0x616b3432; // "ak42"

export function readLlama2cHeader(buf: Buffer, source: string): { header: Llama2cHeader; offset: number } {
  if (buf.length < 28) throw new Error(`${source}: ${buf.length} bytes is too short for a llama2.c header`);
  const i32 = (k: number) => buf.readInt32LE(k);
  let h: Llama2cHeader;
  let offset: number;
  if (buf.readUInt32LE(0) === MAGIC) {
    const version = i32(4);
    if (version !== 1) throw new Error(`${source}: llama2.c version ${version} is not supported (only legacy and v1 float32)`);
    h = { dim: i32(8), hiddenDim: i32(12), nLayers: i32(16), nHeads: i32(20), nKvHeads: i32(24), vocabSize: i32(28), seqLen: i32(32), sharedClassifier: buf.readUInt8(36) !== 0, version: 1 };
    offset = 256;
  } else {
    const vocab = i32(20);
    // Legacy: a negative vocab size means the classifier is stored separately.
    h = { dim: i32(0), hiddenDim: i32(4), nLayers: i32(8), nHeads: i32(12), nKvHeads: i32(16), vocabSize: Math.abs(vocab), seqLen: i32(24), sharedClassifier: vocab > 0, version: 0 };
    offset = 28;
  }
  for (const [k, v] of Object.entries(h)) {
    if (k !== 'version' && typeof v === 'number' && !(Number.isInteger(v) && v > 0 && v < 1 << 24)) throw new Error(`${source}: header field ${k} = ${v} is not a plausible size`);
  }
  if (h.dim % h.nHeads !== 0 || h.nHeads % h.nKvHeads !== 0) throw new Error(`${source}: dim ${h.dim}, n_heads ${h.nHeads}, n_kv_heads ${h.nKvHeads} are inconsistent`);
  return { header: h, offset };
}

/** The HF-style config for a llama2.c model; `eosTokenIds` covers BOS (1) and EOS (2): these models end a story with BOS. */
export function llama2cConfig(h: Llama2cHeader): LlamaConfig {
  return {
    architecture: 'llama', modelType: 'llama', vocabSize: h.vocabSize, hiddenSize: h.dim, intermediateSize: h.hiddenDim,
    numLayers: h.nLayers, numHeads: h.nHeads, numKvHeads: h.nKvHeads, headDim: h.dim / h.nHeads, maxPositions: h.seqLen,
    rmsNormEps: 1e-5, ropeTheta: 10000, ropeScaling: null, tieWordEmbeddings: h.sharedClassifier, qkvBias: false, oBias: false,
    mlpBias: false, qkNorm: false, slidingWindow: null, slidingLayers: [], initializerRange: 0.02, bosTokenId: 1, eosTokenIds: [1, 2], padTokenId: null,
  };
}

/** Rows of wq/wk from interleaved-pair to half-split rotary layout: view(nh, hs/2, 2, in).transpose(1, 2). */
function permuteRotary(w: Tensor, heads: number): Tensor {
  const [out, inp] = w.shape as [number, number];
  return w.reshape(heads, out / heads / 2, 2, inp).transpose(1, 2).reshape(out, inp);
}

/** Reads a llama2.c checkpoint into HF Llama names and layout. */
export function readLlama2c(path: string): { config: LlamaConfig; state: Map<string, Tensor> } {
  const buf = readFileSync(path);
  const { header: h, offset } = readLlama2cHeader(buf, path);
  const hs = h.dim / h.nHeads;
  const kvDim = h.nKvHeads * hs;
  const L = h.nLayers;
  let pos = offset;
  const take = (shape: number[]): Tensor => {
    const n = shape.reduce((a, b) => a * b, 1);
    if (pos + 4 * n > buf.length) throw new Error(`${path}: truncated: needs ${pos + 4 * n} bytes for the weights, the file has ${buf.length}`);
    // Copy into an aligned Float32Array (the file offset need not be 4-aligned in memory).
    const f = new Float32Array(n);
    new Uint8Array(f.buffer).set(buf.subarray(pos, pos + 4 * n));
    pos += 4 * n;
    return tensor(f, { shape });
  };
  const perLayer = (shape: number[]) => take([L, ...shape]).split(1, 0).map((t) => t.squeeze(0));
  const w: Record<string, Tensor[] | Tensor> = {};
  if (h.version === 0) {
    w.embed = take([h.vocabSize, h.dim]);
    w.attnNorm = perLayer([h.dim]);
    w.wq = perLayer([h.dim, h.dim]);
    w.wk = perLayer([kvDim, h.dim]);
    w.wv = perLayer([kvDim, h.dim]);
    w.wo = perLayer([h.dim, h.dim]);
    w.ffnNorm = perLayer([h.dim]);
    w.w1 = perLayer([h.hiddenDim, h.dim]);
    w.w2 = perLayer([h.dim, h.hiddenDim]);
    w.w3 = perLayer([h.hiddenDim, h.dim]);
    w.norm = take([h.dim]);
    pos += 4 * h.seqLen * hs; // freq_cis_real and freq_cis_imag (seq_len, hs/2) each: recomputed by us
  } else {
    w.attnNorm = perLayer([h.dim]);
    w.ffnNorm = perLayer([h.dim]);
    w.norm = take([h.dim]);
    w.embed = take([h.vocabSize, h.dim]);
    w.wq = perLayer([h.dim, h.dim]);
    w.wk = perLayer([kvDim, h.dim]);
    w.wv = perLayer([kvDim, h.dim]);
    w.wo = perLayer([h.dim, h.dim]);
    w.w1 = perLayer([h.hiddenDim, h.dim]);
    w.w2 = perLayer([h.dim, h.hiddenDim]);
    w.w3 = perLayer([h.hiddenDim, h.dim]);
  }
  const state = new Map<string, Tensor>([['model.embed_tokens.weight', w.embed as Tensor], ['model.norm.weight', w.norm as Tensor]]);
  if (!h.sharedClassifier) state.set('lm_head.weight', take([h.vocabSize, h.dim]));
  if (pos !== buf.length) throw new Error(`${path}: ${buf.length - pos} unexpected trailing bytes after the weights (wrong header?)`);
  const at = (k: string, i: number) => (w[k] as Tensor[])[i]!;
  for (let i = 0; i < L; i++) {
    const p = `model.layers.${i}.`;
    state.set(`${p}input_layernorm.weight`, at('attnNorm', i));
    state.set(`${p}post_attention_layernorm.weight`, at('ffnNorm', i));
    state.set(`${p}self_attn.q_proj.weight`, permuteRotary(at('wq', i), h.nHeads));
    state.set(`${p}self_attn.k_proj.weight`, permuteRotary(at('wk', i), h.nKvHeads));
    state.set(`${p}self_attn.v_proj.weight`, at('wv', i));
    state.set(`${p}self_attn.o_proj.weight`, at('wo', i));
    state.set(`${p}mlp.gate_proj.weight`, at('w1', i));
    state.set(`${p}mlp.down_proj.weight`, at('w2', i));
    state.set(`${p}mlp.up_proj.weight`, at('w3', i));
  }
  return { config: llama2cConfig(h), state };
}
