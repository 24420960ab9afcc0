/**
 * The Llama family as Hugging Face configures it (`LlamaForCausalLM`): Llama 2/3, Mistral (sliding-window
 * attention), SmolLM, Qwen2/2.5 (q/k/v biases) and Qwen3 (a per-head RMSNorm on q and k before the rotary
 * embedding, no q/k/v bias). Pre-norm decoder blocks: RMSNorm → self-attention with rotary positions and
 * grouped-query attention → residual → RMSNorm → SwiGLU MLP → residual. Parameter names are HF's, so
 * `model.safetensors` loads by key copy. Every config.json field is honoured or refused by name
 * (LLAMA_FIELDS).
 */
import { decoderStep, type DecoderLayerWeights, type Generator, isGradEnabled, noGrad, scope, type Tensor, type DType } from '../tensor/index.js';
import { Linear, Embedding, RMSNorm } from '../nn/layers.js';
import { Module, ModuleList } from '../nn/module.js';
import { Rotary, ropeInverseFrequencies, type RopeScaling } from '../nn/rotary.js';
import { KVCache } from './cache.js';
import { biasFor, type CausalLM, forwardInputs, type ForwardOptions, groupedAttention, type ModelConfigCommon, type ModelStages, windowBias } from './common.js';
import { checkFields, ConfigReader, type FieldRule, onlyValue } from './config.js';

/** Llama / Mistral / Qwen2 config.json fields (Hugging Face names), rope_scaling included. */
export interface LlamaConfig extends ModelConfigCommon {
  architecture: 'llama';
  modelType: string;
  intermediateSize: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  tieWordEmbeddings: boolean;
  /** q/k/v (and o for attention_bias) carry biases: Qwen2 has q/k/v biases only. */
  qkvBias: boolean;
  oBias: boolean;
  mlpBias: boolean;
  /** Qwen3: q and k each pass an RMSNorm over the head dimension (weights (hs)) before the rotary embedding. */
  qkNorm: boolean;
  /**
   * Sliding-window attention: a query attends its W most recent positions, itself included (HF's
   * `kv_idx > q_idx − W`), in the layers `slidingLayers` marks; null for none.
   */
  slidingWindow: number | null;
  /** Per layer, whether it uses the window (Mistral: every layer; Qwen2/3: layer_types or max_window_layers). */
  slidingLayers: boolean[];
  initializerRange: number;
}

const noDropout: FieldRule = (v) => (v === undefined || v === null || v === 0 ? null : `${JSON.stringify(v)} is not implemented (attention dropout: RLHF runs without it, so rollout and update see the same log-probs); only 0 is`);

/** The fields every Llama-family type shares (transformers' LlamaConfig less its Llama-only switches). */
const LLAMA_COMMON: Record<string, FieldRule> = Object.fromEntries(
  ['vocab_size', 'hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads', 'num_key_value_heads', 'head_dim',
    'hidden_act', 'max_position_embeddings', 'rms_norm_eps', 'rope_theta', 'rope_scaling', 'rope_parameters', 'tie_word_embeddings']
    .map((f) => [f, 'honoured' as FieldRule]),
);
LLAMA_COMMON.attention_dropout = noDropout;
const QWEN_WINDOW: Record<string, FieldRule> = { use_sliding_window: 'honoured', sliding_window: 'honoured', max_window_layers: 'honoured', layer_types: 'honoured' };

/** Per model_type, what each config.json field does (transformers 5.18's config classes); anything else is refused by name. */
export const LLAMA_FIELDS: Readonly<Record<string, Readonly<Record<string, FieldRule>>>> = {
  llama: {
    ...LLAMA_COMMON, attention_bias: 'honoured', mlp_bias: 'honoured',
    pretraining_tp: onlyValue(1, 'tensor-parallel pretraining slices'), is_llama_config: 'metadata',
    rope_interleaved: onlyValue(false, 'interleaved rotary pairs: convert the checkpoint to the rotate-half layout'),
  },
  smollm: { ...LLAMA_COMMON, attention_bias: 'honoured', mlp_bias: 'honoured', pretraining_tp: onlyValue(1, 'tensor-parallel pretraining slices') },
  mistral: { ...LLAMA_COMMON, sliding_window: 'honoured' },
  qwen2: { ...LLAMA_COMMON, ...QWEN_WINDOW, use_mrope: onlyValue(false, "multimodal rotary sections (Qwen2-VL)") },
  qwen3: { ...LLAMA_COMMON, ...QWEN_WINDOW, attention_bias: 'honoured' },
};

/** The rotary base and scaling: transformers 5 writes `rope_parameters`, 4.x `rope_theta` and `rope_scaling`. */
function readRope(r: ConfigReader, raw: Record<string, unknown>): { theta: number; scaling: RopeScaling | null } {
  const params = raw.rope_parameters as (RopeScaling & { rope_theta?: number }) | null | undefined;
  const field = params ? 'rope_parameters' : 'rope_scaling';
  const theta = params?.rope_theta ?? r.num('rope_theta', 10000);
  const scaling = params ?? (raw.rope_scaling as RopeScaling | null | undefined) ?? null;
  if (typeof theta !== 'number' || !(theta > 0)) r.fail(field === 'rope_parameters' ? 'rope_parameters.rope_theta' : 'rope_theta', `expected a positive number, got ${JSON.stringify(theta)}`);
  try {
    ropeInverseFrequencies(2, theta, scaling);
  } catch (e) {
    r.fail(field, (e as Error).message);
  }
  return { theta, scaling: scaling && (scaling.rope_type ?? scaling.type ?? 'default') !== 'default' ? scaling : null };
}

/**
 * Which layers attend through a sliding window: Mistral's `sliding_window` covers every layer; Qwen2/3's
 * only with `use_sliding_window`, in the layers `layer_types` names 'sliding_attention' (by default those
 * from `max_window_layers` on), as transformers 5.18 reads them.
 */
function readWindows(r: ConfigReader, raw: Record<string, unknown>, modelType: string, layers: number): { slidingWindow: number | null; slidingLayers: boolean[] } {
  const none = { slidingWindow: null, slidingLayers: [] };
  const types = raw.layer_types;
  if (types !== undefined && types !== null && (!Array.isArray(types) || types.length !== layers || types.some((t) => t !== 'full_attention' && t !== 'sliding_attention'))) {
    r.fail('layer_types', `expected ${layers} entries (num_hidden_layers), each 'full_attention' or 'sliding_attention'`);
  }
  const window = raw.sliding_window === undefined || raw.sliding_window === null ? null : r.int('sliding_window');
  if (modelType === 'mistral') return window === null ? none : { slidingWindow: window, slidingLayers: Array(layers).fill(true) };
  if (!modelType.startsWith('qwen') || window === null || !r.bool('use_sliding_window', false)) return none;
  if (Array.isArray(types)) return { slidingWindow: window, slidingLayers: types.map((t) => t === 'sliding_attention') };
  const from = raw.max_window_layers === undefined ? 28 : r.num('max_window_layers');
  return { slidingWindow: window, slidingLayers: Array.from({ length: layers }, (_, i) => i >= from) };
}

/** Reads a Hugging Face config.json object for the Llama family; errors name the missing/bad/unimplemented field. */
export function parseLlamaConfig(raw: Record<string, unknown>, source = 'config.json'): LlamaConfig {
  const r = new ConfigReader(raw, source);
  const modelType = r.str('model_type', 'llama');
  const fields = LLAMA_FIELDS[modelType];
  if (!fields) r.fail('model_type', `'${modelType}' is not a Llama-family type (${Object.keys(LLAMA_FIELDS).join(', ')})`);
  checkFields(raw, source, `model_type '${modelType}'`, fields);
  const hidden = r.int('hidden_size');
  const heads = r.int('num_attention_heads');
  const kvHeads = r.int('num_key_value_heads', heads);
  if (heads % kvHeads !== 0) r.fail('num_key_value_heads', `${kvHeads} does not divide num_attention_heads ${heads}`);
  const headDim = r.int('head_dim', hidden / heads);
  const act = r.str('hidden_act', 'silu');
  if (act !== 'silu') r.fail('hidden_act', `'${act}' is not supported for Llama-family models (only silu)`);
  const attnBias = r.bool('attention_bias', false);
  const numLayers = r.int('num_hidden_layers');
  const rope = readRope(r, raw);
  return {
    architecture: 'llama',
    modelType,
    vocabSize: r.int('vocab_size'),
    hiddenSize: hidden,
    intermediateSize: r.int('intermediate_size'),
    numLayers,
    numHeads: heads,
    numKvHeads: kvHeads,
    headDim,
    maxPositions: r.int('max_position_embeddings', 2048),
    rmsNormEps: r.num('rms_norm_eps', 1e-6),
    ropeTheta: rope.theta,
    ropeScaling: rope.scaling,
    tieWordEmbeddings: r.bool('tie_word_embeddings', false),
    qkvBias: attnBias || modelType === 'qwen2',
    oBias: attnBias,
    mlpBias: r.bool('mlp_bias', false),
    qkNorm: modelType === 'qwen3',
    ...readWindows(r, raw, modelType, numLayers),
    initializerRange: r.num('initializer_range', 0.02),
    bosTokenId: r.optInt('bos_token_id'),
    eosTokenIds: r.intList('eos_token_id'),
    padTokenId: r.optInt('pad_token_id'),
  };
}

interface Init {
  dtype?: DType;
  generator?: Generator;
  std: number;
}

class LlamaAttention extends Module {
  readonly q_proj: Linear;
  readonly k_proj: Linear;
  readonly v_proj: Linear;
  readonly o_proj: Linear;
  /** Qwen3's per-head RMSNorms on q and k (weights (hs)); null elsewhere. */
  readonly q_norm: RMSNorm | null;
  readonly k_norm: RMSNorm | null;
  constructor(private readonly c: LlamaConfig, init: Init) {
    super();
    const { hiddenSize: d, numHeads: nh, numKvHeads: nkv, headDim: hs } = c;
    this.q_proj = this.child('q_proj', new Linear(d, nh * hs, { ...init, bias: c.qkvBias }));
    this.k_proj = this.child('k_proj', new Linear(d, nkv * hs, { ...init, bias: c.qkvBias }));
    this.v_proj = this.child('v_proj', new Linear(d, nkv * hs, { ...init, bias: c.qkvBias }));
    this.o_proj = this.child('o_proj', new Linear(nh * hs, d, { ...init, bias: c.oBias }));
    this.q_norm = c.qkNorm ? this.child('q_norm', new RMSNorm(hs, c.rmsNormEps, init)) : null;
    this.k_norm = c.qkNorm ? this.child('k_norm', new RMSNorm(hs, c.rmsNormEps, init)) : null;
  }
  forward(x: Tensor, rope: { cos: Tensor; sin: Tensor }, bias: Tensor | null, layer: number, cache: KVCache | null): Tensor {
    const [b, t] = x.shape as [number, number];
    const { numHeads: nh, numKvHeads: nkv, headDim: hs } = this.c;
    let q = this.q_proj.forward(x).view(b, t, nh, hs); // (B, T, nh, hs)
    let k = this.k_proj.forward(x).view(b, t, nkv, hs); // (B, T, nkv, hs)
    if (this.q_norm && this.k_norm) [q, k] = [this.q_norm.forward(q), this.k_norm.forward(k)];
    q = Rotary.rotate(q.transpose(1, 2), rope); // (B, nh, T, hs)
    k = Rotary.rotate(k.transpose(1, 2), rope); // (B, nkv, T, hs)
    let v = this.v_proj.forward(x).view(b, t, nkv, hs).transpose(1, 2); // (B, nkv, T, hs)
    if (cache) ({ k, v } = cache.append(layer, k, v)); // (B, nkv, L, hs)
    const y = groupedAttention(q, k, v, bias, true); // (B, nh, T, hs)
    return this.o_proj.forward(y.transpose(1, 2).reshape(b, t, nh * hs));
  }
}

/** SwiGLU: down(silu(gate(x)) · up(x)). */
class LlamaMLP extends Module {
  readonly gate_proj: Linear;
  readonly up_proj: Linear;
  readonly down_proj: Linear;
  constructor(c: LlamaConfig, init: Init) {
    super();
    this.gate_proj = this.child('gate_proj', new Linear(c.hiddenSize, c.intermediateSize, { ...init, bias: c.mlpBias }));
    this.up_proj = this.child('up_proj', new Linear(c.hiddenSize, c.intermediateSize, { ...init, bias: c.mlpBias }));
    this.down_proj = this.child('down_proj', new Linear(c.intermediateSize, c.hiddenSize, { ...init, bias: c.mlpBias }));
  }
  forward(x: Tensor): Tensor {
    return this.down_proj.forward(this.gate_proj.forward(x).silu().mul(this.up_proj.forward(x)));
  }
}

class LlamaDecoderLayer extends Module {
  readonly self_attn: LlamaAttention;
  readonly mlp: LlamaMLP;
  readonly input_layernorm: RMSNorm;
  readonly post_attention_layernorm: RMSNorm;
  constructor(c: LlamaConfig, init: Init) {
    super();
    this.self_attn = this.child('self_attn', new LlamaAttention(c, init));
    this.mlp = this.child('mlp', new LlamaMLP(c, init));
    this.input_layernorm = this.child('input_layernorm', new RMSNorm(c.hiddenSize, c.rmsNormEps, init));
    this.post_attention_layernorm = this.child('post_attention_layernorm', new RMSNorm(c.hiddenSize, c.rmsNormEps, init));
  }
  forward(x: Tensor, rope: { cos: Tensor; sin: Tensor }, bias: Tensor | null, layer: number, cache: KVCache | null): Tensor {
    const h = x.add(this.self_attn.forward(this.input_layernorm.forward(x), rope, bias, layer, cache));
    return h.add(this.mlp.forward(this.post_attention_layernorm.forward(h)));
  }
}

class LlamaModel extends Module {
  readonly embed_tokens: Embedding;
  readonly layers: ModuleList<LlamaDecoderLayer>;
  readonly norm: RMSNorm;
  readonly rotary: Rotary;
  constructor(c: LlamaConfig, init: Init) {
    super();
    this.embed_tokens = this.child('embed_tokens', new Embedding(c.vocabSize, c.hiddenSize, init));
    this.layers = this.child('layers', new ModuleList(Array.from({ length: c.numLayers }, () => new LlamaDecoderLayer(c, init))));
    this.norm = this.child('norm', new RMSNorm(c.hiddenSize, c.rmsNormEps, init));
    this.rotary = this.child('rotary_emb', new Rotary(c.headDim, c.maxPositions, c.ropeTheta, c.ropeScaling));
  }
}

let fused = true;
/**
 * Whether Llama-family decode steps (a cache, one new position, no gradient, float32 on the CPU) run
 * every layer in one native call (native/decode.cpp) instead of layer by layer. On by default; `on`
 * switches it (the tests compare the two paths). Returns the state afterwards.
 */
export function fusedDecode(on?: boolean): boolean {
  if (on !== undefined) fused = on;
  return fused;
}

/**
 * Why a model's decode steps cannot take the fused native step (and run layer by layer), or null when they
 * can. The native step has one attention bias row for every layer, so a window that only some layers use
 * cannot be expressed (one every layer uses is folded into that row), and it has no q/k norms.
 */
export function fusedDecodeFallback(c: LlamaConfig): string | null {
  if (c.qkNorm) return 'the fused step has no per-head q/k RMSNorm (Qwen3)';
  if (c.slidingWindow !== null && !c.slidingLayers.every((on) => on)) return 'the sliding window covers only some layers (layer_types)';
  return null;
}

/**
 * The Llama family (Llama, Mistral, Qwen2, Qwen3) with Hugging Face parameter names; decode steps run as one
 * fused native call where fusedDecodeFallback allows.
 */
export class LlamaForCausalLM extends Module implements CausalLM {
  readonly model: LlamaModel;
  readonly lm_head: Linear | null;
  constructor(readonly config: LlamaConfig, opts: { dtype?: DType; generator?: Generator } = {}) {
    super();
    const init = { ...opts, std: config.initializerRange };
    this.model = this.child('model', new LlamaModel(config, init));
    this.lm_head = config.tieWordEmbeddings ? null : this.child('lm_head', new Linear(config.hiddenSize, config.vocabSize, { ...init, bias: false }));
  }

  hidden(ids: Tensor, opts: ForwardOptions = {}): Tensor {
    return this.decode(ids, opts, false);
  }

  stages(ids: Tensor, opts: ForwardOptions = {}): ModelStages {
    if (opts.cache) throw new Error('stages(): a forward with a KV cache cannot be cut into recomputable blocks');
    const { b, t, past, positions } = forwardInputs(ids, this.config, opts);
    const c = this.config;
    const rope = this.model.rotary.tables(positions);
    const embed = () => this.model.embed_tokens.forward(ids); // (B, T, C)
    const like = noGrad(embed);
    const bias = biasFor(opts, b, t, past, like);
    const windowed = c.slidingWindow !== null && c.slidingLayers.some((on) => on) ? windowBias(bias, t, past, c.slidingWindow, like) : null;
    return {
      embed,
      blocks: this.model.layers.items.map((layer, i) => (x: Tensor) => layer.forward(x, rope, c.slidingLayers[i] ? windowed : bias, i, null)),
      finish: (x) => this.model.norm.forward(x),
    };
  }

  forward(ids: Tensor, opts: ForwardOptions = {}): Tensor {
    return this.decode(ids, opts, true);
  }

  /** The final (normed) hidden states (B, T, C), or with `head` the logits (B, T, V) ((B, 1, V) with lastOnly). */
  private decode(ids: Tensor, opts: ForwardOptions, head: boolean): Tensor {
    const { b, t, cache, past, positions } = forwardInputs(ids, this.config, opts);
    const c = this.config;
    const rope = this.model.rotary.tables(positions);
    let x = this.model.embed_tokens.forward(ids); // (B, T, C)
    // Without padding, a cache or a window, the causal flag alone masks (no bias tensor to build).
    const bias = biasFor(opts, b, t, past, x);
    const windowed = c.slidingWindow !== null && c.slidingLayers.some((on) => on) ? windowBias(bias, t, past, c.slidingWindow, x) : null;
    if (cache && t === 1 && this.fusable(x)) {
      // A decode step: every layer (and the head) in one native call (native/decode.cpp), the arithmetic below.
      cache.reserve(past + 1);
      const rowBias = (windowed ?? bias)?.select(1, 0).select(1, 0).expand(b, past + 1) ?? null; // (B, L)
      const headWeights = head ? { norm: this.model.norm.weight, weight: (this.lm_head ?? this.model.embed_tokens).weight } : null;
      const out = decoderStep(x.view(b, c.hiddenSize), this.decoderWeights(), cache, past, rope, rowBias, c.numHeads, c.rmsNormEps, headWeights);
      cache.advance(1);
      return head ? out.view(b, 1, c.vocabSize) : this.model.norm.forward(out.view(b, 1, c.hiddenSize));
    }
    // Each layer in its own scope: its temporaries are freed as it ends, not when the caller's scope does
    // (without a graph that is most of a forward's memory; with one, autograd keeps what backward needs).
    this.model.layers.items.forEach((layer, i) => {
      const input = x;
      x = scope(() => layer.forward(input, rope, c.slidingLayers[i] ? windowed : bias, i, cache));
    });
    cache?.advance(t);
    let h = this.model.norm.forward(x);
    if (!head) return h;
    if (opts.lastOnly) h = h.narrow(1, h.size(1) - 1, 1);
    return this.logits(h);
  }

  /** Whether a decode step can take the fused path: switched on, no gradient, float32 weights on the CPU, an architecture it covers, no unmerged adapter. */
  private fusable(x: Tensor): boolean {
    return fused && !isGradEnabled() && x.dtype === 'float32' && x.device === 'cpu' && fusedDecodeFallback(this.config) === null && !this.adapted();
  }

  /** Whether an active LoRA adapter changes a Linear the fused step reads only as a weight (merged adapters do not). */
  private adapted(): boolean {
    if (this.lm_head?.adapted) return true;
    return this.model.layers.items.some(({ self_attn: a, mlp: m }) => [a.q_proj, a.k_proj, a.v_proj, a.o_proj, m.gate_proj, m.up_proj, m.down_proj].some((l) => l.adapted));
  }

  private decoderWeights(): DecoderLayerWeights[] {
    return this.model.layers.items.map(({ self_attn: a, mlp: m, input_layernorm, post_attention_layernorm }) => ({
      inputNorm: input_layernorm.weight, postAttentionNorm: post_attention_layernorm.weight,
      q: a.q_proj.weight, k: a.k_proj.weight, v: a.v_proj.weight, o: a.o_proj.weight,
      gate: m.gate_proj.weight, up: m.up_proj.weight, down: m.down_proj.weight,
      qBias: a.q_proj.bias, kBias: a.k_proj.bias, vBias: a.v_proj.bias, oBias: a.o_proj.bias,
      gateBias: m.gate_proj.bias, upBias: m.up_proj.bias, downBias: m.down_proj.bias,
    }));
  }

  logits(h: Tensor): Tensor {
    return this.lm_head ? this.lm_head.forward(h) : h.matmul(this.model.embed_tokens.weight.T); // (..., V)
  }

  newCache(batch: number, maxLen: number): KVCache {
    const c = this.config;
    const w = this.model.embed_tokens.weight;
    return new KVCache(c.numLayers, batch, c.numKvHeads, maxLen, c.headDim, { dtype: w.dtype, device: w.device });
  }
}
