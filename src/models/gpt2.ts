/**
 * GPT-2 as Hugging Face implements it (`GPT2LMHeadModel`; Radford et al. 2019): learned absolute
 * positions, pre-norm blocks LayerNorm → multi-head attention → residual → LayerNorm → GELU MLP →
 * residual, a final LayerNorm, and an LM head tied to the token embedding by default. Parameter names
 * are HF's (`transformer.h.0.attn.c_attn.weight`), and the projections keep HF's Conv1D storage
 * (in, out), so a checkpoint loads by key copy once `gpt2StateFromHf` has normalised its keys.
 *
 * Dropout (resid/embd/attn_pdrop) is not applied: RLHF runs with it off, since it makes the policy's
 * log-probabilities differ between rollout and update for the same weights. reorder_and_upcast_attn is
 * ignored too: it only changes the precision of 16-bit attention scores, not what is computed.
 */
import { type DType, type Generator, linear, noGrad, normal_, scope, type Tensor, zeros } from '../tensor/index.js';
import { Embedding, LayerNorm, Linear } from '../nn/layers.js';
import { Module, ModuleList } from '../nn/module.js';
import { KVCache } from './cache.js';
import { biasFor, type CausalLM, type ForwardOptions, groupedAttention, type ModelConfigCommon, type ModelStages, forwardInputs } from './common.js';
import { checkFields, ConfigReader, type FieldRule, onlyValue } from './config.js';

/** GPT-2's config.json fields (Hugging Face names). */
export interface Gpt2Config extends ModelConfigCommon {
  architecture: 'gpt2';
  /** n_head; GPT-2 has no grouped-query attention (every head has its own keys and values). */
  numHeads: number;
  /** n_embd / n_head */
  headDim: number;
  /** n_inner: the MLP's hidden width (default 4 · n_embd). */
  innerSize: number;
  /** layer_norm_epsilon (default 1e-5) */
  layerNormEps: number;
  /** From activation_function: 'gelu_new' (and 'gelu_pytorch_tanh') is the tanh approximation, 'gelu' the exact erf form. */
  geluApproximate: 'tanh' | 'none';
  /** initializer_range: σ of the normal init (default 0.02). */
  initializerRange: number;
  /** tie_word_embeddings (default true): logits = h · wteᵀ, no lm_head parameter. */
  tieWordEmbeddings: boolean;
  /** scale_attn_weights (default true): divide attention scores by √headDim. */
  scaleAttnWeights: boolean;
  /** scale_attn_by_inverse_layer_idx (default false): also divide layer i's scores by i + 1 (Stanford CRFM's Mistral GPT-2 runs). */
  scaleAttnByInverseLayerIdx: boolean;
}

const GELU: Record<string, 'tanh' | 'none'> = { gelu_new: 'tanh', gelu_pytorch_tanh: 'tanh', gelu: 'none' };

/**
 * What each GPT-2 config.json field does (transformers' GPT2Config); anything else is refused by name. The
 * dropouts and reorder_and_upcast_attn are accepted and not applied (see the file's comment); the
 * summary_* fields configure GPT2DoubleHeadsModel's head, not the LM.
 */
export const GPT2_FIELDS: Readonly<Record<string, FieldRule>> = {
  ...Object.fromEntries(['vocab_size', 'n_embd', 'n_head', 'n_layer', 'n_positions', 'n_inner', 'activation_function', 'layer_norm_epsilon',
    'tie_word_embeddings', 'scale_attn_weights', 'scale_attn_by_inverse_layer_idx'].map((f) => [f, 'honoured' as FieldRule])),
  ...Object.fromEntries(['n_ctx', 'resid_pdrop', 'embd_pdrop', 'attn_pdrop', 'reorder_and_upcast_attn', 'summary_type', 'summary_use_proj',
    'summary_activation', 'summary_proj_to_labels', 'summary_first_dropout'].map((f) => [f, 'metadata' as FieldRule])),
  add_cross_attention: onlyValue(false, 'cross-attention to an encoder'),
};

/** Reads a Hugging Face GPT-2 config.json object; errors name the missing/bad/unimplemented field. */
export function parseGpt2Config(raw: Record<string, unknown>, source = 'config.json'): Gpt2Config {
  const r = new ConfigReader(raw, source);
  checkFields(raw, source, 'GPT-2', GPT2_FIELDS);
  const hidden = r.int('n_embd');
  const heads = r.int('n_head');
  if (hidden % heads !== 0) r.fail('n_head', `${heads} does not divide n_embd ${hidden}`);
  const act = r.str('activation_function', 'gelu_new');
  const approximate = GELU[act];
  if (approximate === undefined) r.fail('activation_function', `'${act}' is not supported for GPT-2 (supported: ${Object.keys(GELU).join(', ')})`);
  return {
    architecture: 'gpt2',
    vocabSize: r.int('vocab_size'),
    hiddenSize: hidden,
    numLayers: r.int('n_layer'),
    maxPositions: r.int('n_positions'),
    numHeads: heads,
    headDim: hidden / heads,
    innerSize: r.int('n_inner', 4 * hidden),
    layerNormEps: r.num('layer_norm_epsilon', 1e-5),
    geluApproximate: approximate,
    initializerRange: r.num('initializer_range', 0.02),
    tieWordEmbeddings: r.bool('tie_word_embeddings', true),
    scaleAttnWeights: r.bool('scale_attn_weights', true),
    scaleAttnByInverseLayerIdx: r.bool('scale_attn_by_inverse_layer_idx', false),
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

/**
 * HF's Conv1D, the projection of the original TensorFlow GPT-2: y = x W + b with W stored (in, out),
 * the transpose of nn.Linear's (out, in). Keeping that storage makes checkpoints load by key copy;
 * `linear(x, Wᵀ)` then multiplies by W itself, so the transposed view costs no copy.
 */
export class Conv1D extends Module {
  /** (in, out) */
  readonly weight: Tensor;
  /** (out) */
  readonly bias: Tensor;
  constructor(readonly inFeatures: number, readonly outFeatures: number, init: Init) {
    super();
    const dtype = init.dtype ?? 'float32';
    this.weight = this.param('weight', normal_(zeros([inFeatures, outFeatures], { dtype }), 0, init.std, init.generator));
    this.bias = this.param('bias', zeros([outFeatures], { dtype }));
  }
  forward(x: Tensor): Tensor {
    return linear(x, this.weight.T, this.bias);
  }
}

/**
 * GPT-2's scaled init for the projections into the residual stream: σ / √(2 · n_layer), since each of
 * the 2 · n_layer residual branches adds to the same stream (HF `_init_weights`, "c_proj.weight").
 */
function residualInit(c: Gpt2Config, init: Init): Init {
  return { ...init, std: init.std / Math.sqrt(2 * c.numLayers) };
}

class Gpt2Attention extends Module {
  readonly c_attn: Conv1D;
  readonly c_proj: Conv1D;
  /** What q is multiplied by so that the 1/√hs the attention op applies becomes the configured scale. */
  private readonly qFactor: number;
  constructor(private readonly c: Gpt2Config, private readonly layer: number, init: Init) {
    super();
    this.c_attn = this.child('c_attn', new Conv1D(c.hiddenSize, 3 * c.hiddenSize, init));
    this.c_proj = this.child('c_proj', new Conv1D(c.hiddenSize, c.hiddenSize, residualInit(c, init)));
    this.qFactor = (c.scaleAttnWeights ? 1 : Math.sqrt(c.headDim)) / (c.scaleAttnByInverseLayerIdx ? layer + 1 : 1);
  }
  forward(x: Tensor, bias: Tensor | null, cache: KVCache | null): Tensor {
    const [b, t] = x.shape as [number, number];
    const { hiddenSize: d, numHeads: nh, headDim: hs } = this.c;
    const [qs, ks, vs] = this.c_attn.forward(x).split(d, 2); // 3 × (B, T, C)
    let q = qs!.view(b, t, nh, hs).transpose(1, 2); // (B, nh, T, hs)
    let k = ks!.view(b, t, nh, hs).transpose(1, 2); // (B, nh, T, hs)
    let v = vs!.view(b, t, nh, hs).transpose(1, 2); // (B, nh, T, hs)
    if (this.qFactor !== 1) q = q.mul(this.qFactor);
    if (cache) ({ k, v } = cache.append(this.layer, k, v)); // (B, nh, L, hs)
    const y = groupedAttention(q, k, v, bias, true); // (B, nh, T, hs)
    return this.c_proj.forward(y.transpose(1, 2).reshape(b, t, d));
  }
}

/** c_proj(gelu(c_fc(x))) */
class Gpt2MLP extends Module {
  readonly c_fc: Conv1D;
  readonly c_proj: Conv1D;
  constructor(private readonly c: Gpt2Config, init: Init) {
    super();
    this.c_fc = this.child('c_fc', new Conv1D(c.hiddenSize, c.innerSize, init));
    this.c_proj = this.child('c_proj', new Conv1D(c.innerSize, c.hiddenSize, residualInit(c, init)));
  }
  forward(x: Tensor): Tensor {
    return this.c_proj.forward(this.c_fc.forward(x).gelu(this.c.geluApproximate));
  }
}

class Gpt2Block extends Module {
  readonly ln_1: LayerNorm;
  readonly attn: Gpt2Attention;
  readonly ln_2: LayerNorm;
  readonly mlp: Gpt2MLP;
  constructor(c: Gpt2Config, layer: number, init: Init) {
    super();
    this.ln_1 = this.child('ln_1', new LayerNorm(c.hiddenSize, c.layerNormEps, init));
    this.attn = this.child('attn', new Gpt2Attention(c, layer, init));
    this.ln_2 = this.child('ln_2', new LayerNorm(c.hiddenSize, c.layerNormEps, init));
    this.mlp = this.child('mlp', new Gpt2MLP(c, init));
  }
  forward(x: Tensor, bias: Tensor | null, cache: KVCache | null): Tensor {
    const h = x.add(this.attn.forward(this.ln_1.forward(x), bias, cache));
    return h.add(this.mlp.forward(this.ln_2.forward(h)));
  }
}

/** HF's GPT2Model: embeddings, blocks and the final norm, under `transformer.` in the state dict. */
class Gpt2Model extends Module {
  readonly wte: Embedding;
  readonly wpe: Embedding;
  readonly h: ModuleList<Gpt2Block>;
  readonly ln_f: LayerNorm;
  constructor(c: Gpt2Config, init: Init) {
    super();
    this.wte = this.child('wte', new Embedding(c.vocabSize, c.hiddenSize, init));
    this.wpe = this.child('wpe', new Embedding(c.maxPositions, c.hiddenSize, init));
    this.h = this.child('h', new ModuleList(Array.from({ length: c.numLayers }, (_, i) => new Gpt2Block(c, i, init))));
    this.ln_f = this.child('ln_f', new LayerNorm(c.hiddenSize, c.layerNormEps, init));
  }
}

/** GPT-2 (Radford et al. 2019) with Hugging Face parameter names, so a checkpoint loads by key copy. */
export class Gpt2LMHeadModel extends Module implements CausalLM {
  readonly transformer: Gpt2Model;
  /** null when tied to `transformer.wte` (the default). */
  readonly lm_head: Linear | null;
  constructor(readonly config: Gpt2Config, opts: { dtype?: DType; generator?: Generator } = {}) {
    super();
    const init = { ...opts, std: config.initializerRange };
    this.transformer = this.child('transformer', new Gpt2Model(config, init));
    this.lm_head = config.tieWordEmbeddings ? null : this.child('lm_head', new Linear(config.hiddenSize, config.vocabSize, { ...init, bias: false }));
  }

  hidden(ids: Tensor, opts: ForwardOptions = {}): Tensor {
    const { b, t, cache, past, positions } = forwardInputs(ids, this.config, opts);
    const { wte, wpe, h, ln_f } = this.transformer;
    let x = wte.forward(ids).add(wpe.forward(positions)); // (B, T, C)
    // Without padding or a cache, the causal flag alone masks (no bias tensor to build).
    const bias = biasFor(opts, b, t, past, x);
    for (const block of h.items) {
      const input = x;
      x = scope(() => block.forward(input, bias, cache)); // the block's temporaries freed as it ends
    }
    cache?.advance(t);
    return ln_f.forward(x);
  }

  stages(ids: Tensor, opts: ForwardOptions = {}): ModelStages {
    if (opts.cache) throw new Error('stages(): a forward with a KV cache cannot be cut into recomputable blocks');
    const { b, t, past, positions } = forwardInputs(ids, this.config, opts);
    const { wte, wpe, h, ln_f } = this.transformer;
    const embed = () => wte.forward(ids).add(wpe.forward(positions)); // (B, T, C)
    const bias = biasFor(opts, b, t, past, noGrad(embed));
    return { embed, blocks: h.items.map((block) => (x: Tensor) => block.forward(x, bias, null)), finish: (x) => ln_f.forward(x) };
  }

  forward(ids: Tensor, opts: ForwardOptions = {}): Tensor {
    let h = this.hidden(ids, opts);
    if (opts.lastOnly) h = h.narrow(1, h.size(1) - 1, 1); // (B, 1, C)
    return this.logits(h);
  }

  logits(h: Tensor): Tensor {
    return linear(h, (this.lm_head ?? this.transformer.wte).weight); // (..., V)
  }

  newCache(batch: number, maxLen: number): KVCache {
    const c = this.config;
    const w = this.transformer.wte.weight;
    return new KVCache(c.numLayers, batch, c.numHeads, maxLen, c.headDim, { dtype: w.dtype, device: w.device });
  }
}

const PREFIXLESS = /^(wte|wpe|ln_f|h)\./;
const MASK_BUFFER = /\.attn\.(bias|masked_bias)$/;

/**
 * Normalises a GPT-2 checkpoint's state to this module's keys (the tensors are shared, not copied;
 * dropped ones stay the caller's to dispose):
 * - keys saved from a bare GPT2Model, as the original OpenAI conversions are (`h.0.attn.c_attn.weight`,
 *   `wte.weight`), get the `transformer.` prefix;
 * - the causal-mask buffers `h.{i}.attn.bias` / `h.{i}.attn.masked_bias`, which older transformers
 *   versions saved, are dropped (they are constants, not parameters);
 * - `lm_head.weight` is dropped when it equals `wte.weight` elementwise, i.e. when the checkpoint was
 *   saved tied; a checkpoint with a distinct head keeps it, for a model configured untied.
 */
export function gpt2StateFromHf(state: ReadonlyMap<string, Tensor>): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [key, t] of state) {
    const k = PREFIXLESS.test(key) ? `transformer.${key}` : key;
    if (!MASK_BUFFER.test(k)) out.set(k, t);
  }
  const head = out.get('lm_head.weight');
  const wte = out.get('transformer.wte.weight');
  if (head && wte && sameValues(head, wte)) out.delete('lm_head.weight');
  return out;
}

function sameValues(a: Tensor, b: Tensor): boolean {
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) return false;
  return scope(() => a.ne(b).any().item()) === 0;
}
