/**
 * LoRA adapters in Hugging Face PEFT's directory layout, so they move to and from Python tools:
 * adapter_config.json (PEFT 0.21's LoraConfig fields) and adapter_model.safetensors with PEFT's key names,
 * `base_model.model.<layer>.lora_A.weight` (r, in) and `…lora_B.weight` (out, r). Every adapter_config.json
 * field is honoured or refused by name (PEFT_FIELDS): a DoRA, a per-layer rank or a bias adapter would
 * otherwise load as something else.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeDirAtomic } from '../atomic.js';
import { applyLora, type LoraAdapters, type LoraConfig } from '../nn/lora.js';
import type { Module } from '../nn/module.js';
import { readSafetensorsFile, writeSafetensorsFile, type RawTensor } from '../nn/safetensors.js';
import { fromRaw, toRaw } from '../nn/serialize.js';
import { dispose, type Generator, type Tensor } from '../tensor/index.js';
import { checkFields, ConfigReader, type FieldRule, onlyValue } from './config.js';
import { readJson } from './hub.js';

/** PEFT's prefix of a causal LM's adapter keys (PeftModelForCausalLM.base_model.model). */
export const PEFT_PREFIX = 'base_model.model.';
export const PEFT_CONFIG_FILE = 'adapter_config.json';
export const PEFT_WEIGHTS_FILE = 'adapter_model.safetensors';

const empty = (what: string): FieldRule => (v) => (v === undefined || v === null || (typeof v === 'object' && Object.keys(v).length === 0) ? null : `${JSON.stringify(v)} is not implemented (${what}); only {} or null is`);

/** What each adapter_config.json field does (PEFT 0.21's LoraConfig); any other field is refused by name. */
export const PEFT_FIELDS: Readonly<Record<string, FieldRule>> = {
  ...Object.fromEntries(['r', 'lora_alpha', 'lora_dropout', 'target_modules', 'use_rslora'].map((f) => [f, 'honoured' as FieldRule])),
  ...Object.fromEntries(['base_model_name_or_path', 'auto_mapping', 'task_type', 'inference_mode', 'init_lora_weights', 'revision', 'peft_version',
    'megatron_config', 'megatron_core', 'loftq_config', 'corda_config', 'eva_config', 'arrow_config', 'kasa_config', 'lora_ga_config', 'monteclora_config',
    'qalora_group_size', 'ensure_weight_tying', 'velora_config'].map((f) => [f, 'metadata' as FieldRule])),
  peft_type: onlyValue('LORA', 'another PEFT method'),
  bias: onlyValue('none', 'trained biases'),
  lora_bias: onlyValue(false, "a bias on lora_B"),
  fan_in_fan_out: onlyValue(false, 'Conv1D-layout targets (GPT-2)'),
  use_dora: onlyValue(false, 'DoRA'),
  use_qalora: onlyValue(false, 'QA-LoRA'),
  use_bdlora: onlyValue(null, 'block-diagonal LoRA'),
  rank_pattern: empty('per-layer ranks'),
  alpha_pattern: empty('per-layer alphas'),
  layers_to_transform: onlyValue(null, 'a subset of layers'),
  layers_pattern: onlyValue(null, 'a subset of layers'),
  exclude_modules: onlyValue(null, 'excluded modules'),
  modules_to_save: onlyValue(null, 'fully trained extra modules'),
  target_parameters: onlyValue(null, 'parameter targets'),
  trainable_token_indices: onlyValue(null, 'trainable token embeddings'),
  layer_replication: onlyValue(null, 'layer replication'),
  alora_invocation_tokens: onlyValue(null, 'activated LoRA'),
};

/** Reads adapter_config.json into a LoraConfig; errors name the file and the field. */
export function parsePeftConfig(raw: Record<string, unknown>, source: string): LoraConfig {
  checkFields(raw, source, 'PEFT LoRA', PEFT_FIELDS);
  const r = new ConfigReader(raw, source);
  const targets = raw.target_modules;
  const ok = typeof targets === 'string' || (Array.isArray(targets) && targets.length > 0 && targets.every((t) => typeof t === 'string'));
  if (!ok) r.fail('target_modules', `expected a regular expression or a list of module names, got ${JSON.stringify(targets)}`);
  const dropout = r.num('lora_dropout', 0);
  if (!(dropout >= 0 && dropout < 1)) r.fail('lora_dropout', `must be in [0, 1), got ${dropout}`);
  return { r: r.int('r'), alpha: r.num('lora_alpha', 8), dropout, targetModules: targets as string[] | string, useRslora: r.bool('use_rslora', false) };
}

/** adapter_config.json for a LoraConfig, with PEFT's defaults for what LoRA here does not vary. */
export function peftConfigJson(c: LoraConfig, baseModel: string | null): Record<string, unknown> {
  return {
    peft_type: 'LORA', task_type: 'CAUSAL_LM', base_model_name_or_path: baseModel, r: c.r, lora_alpha: c.alpha, lora_dropout: c.dropout,
    target_modules: c.targetModules, use_rslora: c.useRslora, bias: 'none', lora_bias: false, fan_in_fan_out: false, use_dora: false,
    init_lora_weights: true, inference_mode: true, modules_to_save: null, rank_pattern: {}, alpha_pattern: {}, layers_to_transform: null, layers_pattern: null,
  };
}

/** Writes the adapters as a PEFT directory (adapter_config.json + adapter_model.safetensors), atomically. */
export function savePeftAdapter(adapters: LoraAdapters, dir: string, opts: { baseModel?: string } = {}): void {
  writeDirAtomic(dir, (tmp) => {
    writeFileSync(join(tmp, PEFT_CONFIG_FILE), JSON.stringify(peftConfigJson(adapters.config, opts.baseModel ?? null), null, 2) + '\n');
    const entries = [...adapters.stateDict()].map(([k, t]) => [PEFT_PREFIX + k, toRaw(t)] as [string, RawTensor]);
    writeSafetensorsFile(join(tmp, PEFT_WEIGHTS_FILE), entries, { format: 'pt' });
  });
}

/**
 * Attaches the adapters of a PEFT directory to `model` (applyLora with its config, then its weights: every
 * adapted layer's A and B must be there with their shapes, and nothing else). The model is frozen after.
 */
export function loadPeftAdapter(model: Module, dir: string, opts: { generator?: Generator } = {}): LoraAdapters {
  const configPath = join(dir, PEFT_CONFIG_FILE);
  const config = parsePeftConfig(readJson(configPath), configPath);
  const weightsPath = join(dir, PEFT_WEIGHTS_FILE);
  const raw = readSafetensorsFile(weightsPath).tensors;
  const state = new Map<string, Tensor>();
  for (const [k, t] of raw) {
    if (!k.startsWith(PEFT_PREFIX)) throw new Error(`${weightsPath}: key '${k}' does not start with PEFT's '${PEFT_PREFIX}'`);
    state.set(k.slice(PEFT_PREFIX.length), fromRaw(t));
  }
  const adapters = applyLora(model, config, opts);
  try {
    adapters.loadStateDict(state, { source: weightsPath });
  } catch (e) {
    adapters.detach();
    throw e;
  } finally {
    dispose([...state.values()]);
  }
  return adapters;
}
