/**
 * Model directories in the layout Hugging Face `transformers` loads: config.json, model.safetensors (or
 * a sharded model.safetensors.index.json), generation_config.json, plus the tokenizer files. `stories260k`
 * names the embedded default (assets/stories260k, converted from llama2.c).
 */
import { chmodSync, existsSync, readFileSync, writeFileSync, copyFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dispose, type Generator, type Tensor } from '../tensor/index.js';
import { fromRaw, toRaw } from '../nn/serialize.js';
import { readSafetensorsFile, readSafetensorsIndex, SAFETENSORS_INDEX_FILE, writeSafetensorsFile, type RawTensor } from '../nn/safetensors.js';
import type { CausalLM } from './common.js';
import { LlamaForCausalLM, type LlamaConfig, parseLlamaConfig } from './llama.js';
import { Gpt2LMHeadModel, type Gpt2Config, gpt2StateFromHf, parseGpt2Config } from './gpt2.js';
import { writeDirAtomic } from '../atomic.js';

export { writeDirAtomic };

export type AnyModelConfig = LlamaConfig | Gpt2Config;

/** The repository root (where package.json is), found from this compiled file. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('rlhf-ts package root not found');
    dir = up;
  }
  return dir;
}

/** Resolves a model argument: 'stories260k' is the embedded default; anything else is a directory. */
export function resolveModelDir(name: string): string {
  if (name === 'stories260k') return join(packageRoot(), 'assets', 'stories260k');
  const dir = resolve(name);
  if (!existsSync(dir)) throw new Error(`model directory '${name}' does not exist (use 'stories260k' for the embedded default)`);
  return dir;
}

/** Hugging Face's causal-LM class name per Llama-family model_type (what config.json's `architectures` says). */
const LLAMA_ARCHITECTURES: Readonly<Record<string, string>> = {
  llama: 'LlamaForCausalLM', smollm: 'LlamaForCausalLM', mistral: 'MistralForCausalLM', qwen2: 'Qwen2ForCausalLM', qwen3: 'Qwen3ForCausalLM',
};

/** Parses config.json into a typed config, dispatching on model_type (or, without one, architectures). */
export function parseConfig(raw: Record<string, unknown>, source: string): AnyModelConfig {
  const type = typeof raw.model_type === 'string' ? raw.model_type : undefined;
  const arch = Array.isArray(raw.architectures) ? String(raw.architectures[0]) : undefined;
  const llamaType = type ?? Object.entries(LLAMA_ARCHITECTURES).find(([, a]) => a === arch)?.[0];
  if (llamaType && LLAMA_ARCHITECTURES[llamaType]) return parseLlamaConfig({ ...raw, model_type: llamaType }, source);
  if (type === 'gpt2' || arch === 'GPT2LMHeadModel') return parseGpt2Config(raw, source);
  throw new Error(`${source}: unknown architecture (model_type ${JSON.stringify(raw.model_type)}, architectures ${JSON.stringify(raw.architectures)}); supported: ${Object.keys(LLAMA_ARCHITECTURES).join(', ')}, gpt2`);
}

/** The Llama-family fields that only some model types have, in HF's names, written only where the type has them. */
function llamaTypeFields(c: LlamaConfig): Record<string, unknown> {
  const window = c.slidingWindow;
  if (c.modelType === 'mistral') return { sliding_window: window };
  const bias = { attention_bias: c.oBias };
  if (!c.modelType.startsWith('qwen')) return { ...bias, mlp_bias: c.mlpBias };
  const types = window === null ? {} : { layer_types: c.slidingLayers.map((on) => (on ? 'sliding_attention' : 'full_attention')) };
  return { ...(c.modelType === 'qwen3' ? bias : {}), use_sliding_window: window !== null, sliding_window: window, ...types };
}

/** A model of `config` with fresh weights (HF's init: normal(0, initializer_range), unit norms), from `generator` when given. */
export function buildModel(config: AnyModelConfig, opts: { generator?: Generator } = {}): CausalLM {
  return config.architecture === 'llama' ? new LlamaForCausalLM(config, opts) : new Gpt2LMHeadModel(config, opts);
}

export function readJson(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new Error(`${path}: cannot be read`);
  }
  try {
    const v = JSON.parse(text) as unknown;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a JSON object');
    return v as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${path}: invalid JSON (${(e as Error).message})`);
  }
}

/** Reads a directory's weights (single file or sharded) as raw tensors. */
export function readWeights(dir: string): Map<string, RawTensor> {
  if (existsSync(join(dir, 'model.safetensors'))) return readSafetensorsFile(join(dir, 'model.safetensors')).tensors;
  if (existsSync(join(dir, SAFETENSORS_INDEX_FILE))) return readSafetensorsIndex(dir).tensors;
  throw new Error(`${dir}: no model.safetensors or ${SAFETENSORS_INDEX_FILE}`);
}

/**
 * The config.json fields each architecture's weights pin down: per field, a tensor (HF names; GPT-2's
 * with or without its `transformer.` prefix) and the dimension that must equal it.
 */
const WEIGHT_CHECKS: Record<AnyModelConfig['architecture'], { layers: RegExp; fields: [string, (c: never) => number, string, number][] }> = {
  llama: {
    layers: /^model\.layers\.(\d+)\./,
    fields: [
      ['vocab_size', (c: LlamaConfig) => c.vocabSize, 'model.embed_tokens.weight', 0],
      ['hidden_size', (c: LlamaConfig) => c.hiddenSize, 'model.embed_tokens.weight', 1],
      ['num_attention_heads × head_dim', (c: LlamaConfig) => c.numHeads * c.headDim, 'model.layers.0.self_attn.q_proj.weight', 0],
      ['num_key_value_heads × head_dim', (c: LlamaConfig) => c.numKvHeads * c.headDim, 'model.layers.0.self_attn.k_proj.weight', 0],
      ['intermediate_size', (c: LlamaConfig) => c.intermediateSize, 'model.layers.0.mlp.gate_proj.weight', 0],
    ],
  },
  gpt2: {
    layers: /^(?:transformer\.)?h\.(\d+)\./,
    fields: [
      ['vocab_size', (c: Gpt2Config) => c.vocabSize, 'wte.weight', 0],
      ['n_embd', (c: Gpt2Config) => c.hiddenSize, 'wte.weight', 1],
      ['n_positions', (c: Gpt2Config) => c.maxPositions, 'wpe.weight', 0],
      ['n_inner', (c: Gpt2Config) => c.innerSize, 'h.0.mlp.c_fc.weight', 1],
    ],
  },
};

/**
 * Compares config.json with the weights' shapes before anything is allocated: the number of layers present
 * and the sizes the embedding and first layer pin down. Each error names the field, config.json and what
 * the weights say.
 */
export function checkConfigAgainstWeights(config: AnyModelConfig, raw: ReadonlyMap<string, RawTensor>, files: { config: string; weights: string }): void {
  const spec = WEIGHT_CHECKS[config.architecture];
  const layerField = config.architecture === 'llama' ? 'num_hidden_layers' : 'n_layer';
  let layers = 0;
  for (const k of raw.keys()) {
    const m = spec.layers.exec(k);
    if (m) layers = Math.max(layers, Number(m[1]) + 1);
  }
  if (layers !== config.numLayers) {
    throw new Error(`${files.config}: field '${layerField}' is ${config.numLayers} but ${files.weights} has ${layers} layers`);
  }
  for (const [field, value, name, dim] of spec.fields) {
    const t = raw.get(name) ?? raw.get(`transformer.${name}`);
    if (t === undefined) continue; // a missing tensor is named by the strict load
    const want = (value as (c: AnyModelConfig) => number)(config);
    if (t.shape[dim] !== want) {
      throw new Error(`${files.config}: field '${field}' is ${want} but ${name} in ${files.weights} has shape [${t.shape.join(', ')}]`);
    }
  }
}

/** Loads a model directory (strict: every parameter must be present with its shape), in eval mode. */
export function loadModel(nameOrDir: string): CausalLM {
  const dir = resolveModelDir(nameOrDir);
  const config = parseConfig(readJson(join(dir, 'config.json')), join(dir, 'config.json'));
  const raw = readWeights(dir);
  const weights = existsSync(join(dir, 'model.safetensors')) ? join(dir, 'model.safetensors') : join(dir, SAFETENSORS_INDEX_FILE);
  checkConfigAgainstWeights(config, raw, { config: join(dir, 'config.json'), weights });
  let state = new Map<string, Tensor>();
  for (const [k, r] of raw) state.set(k, fromRaw(r));
  if (config.architecture === 'gpt2') state = gpt2StateFromHf(state);
  const model = buildModel(config);
  try {
    if (config.architecture === 'llama' && config.tieWordEmbeddings) state.delete('lm_head.weight');
    model.loadStateDict(state, { source: dir });
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    dispose([...state.values()]);
  }
  return model.eval();
}

/** config.json in HF's field names. */
export function configToHf(c: AnyModelConfig): Record<string, unknown> {
  const eos = c.eosTokenIds.length === 1 ? c.eosTokenIds[0] : c.eosTokenIds;
  if (c.architecture === 'llama') {
    return {
      architectures: [LLAMA_ARCHITECTURES[c.modelType] ?? 'LlamaForCausalLM'], model_type: c.modelType,
      vocab_size: c.vocabSize, hidden_size: c.hiddenSize, intermediate_size: c.intermediateSize,
      num_hidden_layers: c.numLayers, num_attention_heads: c.numHeads, num_key_value_heads: c.numKvHeads,
      head_dim: c.headDim, max_position_embeddings: c.maxPositions, rms_norm_eps: c.rmsNormEps, rope_theta: c.ropeTheta,
      rope_scaling: c.ropeScaling, tie_word_embeddings: c.tieWordEmbeddings, ...llamaTypeFields(c),
      hidden_act: 'silu', initializer_range: c.initializerRange,
      bos_token_id: c.bosTokenId, eos_token_id: eos, pad_token_id: c.padTokenId, torch_dtype: 'float32',
    };
  }
  return {
    architectures: ['GPT2LMHeadModel'], model_type: 'gpt2', vocab_size: c.vocabSize, n_embd: c.hiddenSize,
    n_layer: c.numLayers, n_head: c.numHeads, n_positions: c.maxPositions, n_inner: c.innerSize,
    layer_norm_epsilon: c.layerNormEps, activation_function: c.geluApproximate === 'tanh' ? 'gelu_new' : 'gelu',
    scale_attn_weights: c.scaleAttnWeights, scale_attn_by_inverse_layer_idx: c.scaleAttnByInverseLayerIdx, initializer_range: c.initializerRange,
    tie_word_embeddings: c.tieWordEmbeddings, bos_token_id: c.bosTokenId, eos_token_id: eos, pad_token_id: c.padTokenId,
    torch_dtype: 'float32',
  };
}

/** Writes config.json, generation_config.json, model.safetensors and extra (tokenizer) files into `dir`. */
export function writeModelFiles(dir: string, hfConfig: Record<string, unknown>, state: ReadonlyMap<string, Tensor>, opts: { extraFiles?: string[]; metadata?: Record<string, string> } = {}): void {
  writeFileSync(join(dir, 'config.json'), JSON.stringify(hfConfig, null, 2) + '\n');
  const gen = { bos_token_id: hfConfig.bos_token_id, eos_token_id: hfConfig.eos_token_id, pad_token_id: hfConfig.pad_token_id };
  writeFileSync(join(dir, 'generation_config.json'), JSON.stringify(gen, null, 2) + '\n');
  const entries = [...state].map(([k, t]) => [k, toRaw(t)] as [string, RawTensor]);
  writeSafetensorsFile(join(dir, 'model.safetensors'), entries, { format: 'pt', ...opts.metadata });
  for (const f of opts.extraFiles ?? []) {
    const dst = join(dir, f.split('/').pop()!);
    copyFileSync(f, dst);
    chmodSync(dst, 0o644); // a read-only source must not make the saved directory read-only
  }
}

/** Saves a causal LM as a Hugging Face-layout directory, atomically (tokenizer files via extraFiles). */
export function saveModel(model: CausalLM, dir: string, opts: { extraFiles?: string[]; metadata?: Record<string, string> } = {}): void {
  writeDirAtomic(dir, (tmp) => writeModelFiles(tmp, configToHf(model.config as AnyModelConfig), model.stateDict(), opts));
}

/** Tokenizer files present in a model directory (to carry along when saving a derived model). */
export function tokenizerFiles(dir: string): string[] {
  const names = ['tokenizer.json', 'tokenizer_config.json', 'tokenizer.bin', 'vocab.json', 'merges.txt', 'special_tokens_map.json'];
  return readdirSync(dir).filter((f) => names.includes(f)).map((f) => join(dir, f));
}
