/**
 * A policy as the trainers hold it: the model, and its LoRA adapters when the run trains adapters only
 * (`lora.r > 0`). Then the frozen model with its adapters disabled is the reference (referenceView: no
 * second copy of the weights), the optimiser and the checkpoint see the adapters alone, and the saved
 * policy is a Hugging Face directory with the adapters merged (any tool loads it) plus the adapters in
 * PEFT's layout beside it.
 */
import { writeDirAtomic } from '../atomic.js';
import { applyLora, type LoraAdapters, type LoraFields, loraConfigOf } from '../nn/lora.js';
import { Module } from '../nn/module.js';
import { Generator, noGrad, scope, type Tensor } from '../tensor/index.js';
import type { KVCache } from './cache.js';
import type { CausalLM, ForwardOptions, ModelStages } from './common.js';
import { type AnyModelConfig, configToHf, loadModel, writeModelFiles } from './hub.js';
import { savePeftAdapter } from './peft.js';

/** The model a trainer optimises, with its adapters (null: the whole model trains). */
export interface PolicyModel {
  model: CausalLM;
  adapters: LoraAdapters | null;
}

/**
 * Loads the policy from `dir` (by `load`, default loadModel) and, when `lora.r > 0`, attaches adapters
 * (A drawn from a generator seeded with `seed`, B = 0: the policy starts as the model exactly) and freezes
 * the model.
 */
export function loadPolicy(dir: string, lora: LoraFields, opts: { seed: number; load?: (dir: string) => CausalLM }): PolicyModel {
  const model = (opts.load ?? loadModel)(dir);
  const config = loraConfigOf(lora);
  if (!config) return { model, adapters: null };
  const gen = new Generator(opts.seed);
  try {
    return { model, adapters: applyLora(model, config, { generator: gen }) };
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    gen.dispose();
  }
}

/** What the optimiser trains and the checkpoint holds: the adapters, or the whole model. */
export function trainablePart(p: PolicyModel): Module {
  return p.adapters ?? p.model;
}

/** Frees the adapters and the model. */
export function disposePolicy(p: PolicyModel): void {
  p.adapters?.detach();
  p.model.dispose();
}

/**
 * The policy's model with its adapters switched off for every call: the initial policy bit for bit, as a
 * CausalLM the reference's users (KL, reference log-probs) take. It owns nothing (dispose is a no-op).
 */
class AdaptersOff extends Module implements CausalLM {
  constructor(private readonly policy: CausalLM, private readonly adapters: LoraAdapters) {
    super();
  }
  get config(): CausalLM['config'] {
    return this.policy.config;
  }
  hidden(ids: Tensor, opts?: ForwardOptions): Tensor {
    return this.adapters.disabled(() => this.policy.hidden(ids, opts));
  }
  forward(ids: Tensor, opts?: ForwardOptions): Tensor {
    return this.adapters.disabled(() => this.policy.forward(ids, opts));
  }
  logits(hidden: Tensor): Tensor {
    return this.adapters.disabled(() => this.policy.logits(hidden));
  }
  newCache(batch: number, maxLen: number): KVCache {
    return this.policy.newCache(batch, maxLen);
  }
  stages(ids: Tensor, opts?: ForwardOptions): ModelStages {
    const s = this.adapters.disabled(() => this.policy.stages(ids, opts));
    const off = (f: (x: Tensor) => Tensor) => (x: Tensor) => this.adapters.disabled(() => f(x));
    return { embed: () => this.adapters.disabled(() => s.embed()), blocks: s.blocks.map(off), finish: off(s.finish) };
  }
  override dispose(): void {}
}

/** The reference of a LoRA policy: its model with the adapters disabled (null for a policy without adapters). */
export function referenceView(p: PolicyModel): CausalLM | null {
  return p.adapters ? new AdaptersOff(p.model, p.adapters) : null;
}

/** The model's state with every adapted weight replaced by W + s·BA (new tensors; the model is not touched). */
export function mergedState(p: PolicyModel): Map<string, Tensor> {
  const state = p.model.stateDict();
  if (!p.adapters) return state;
  noGrad(() => {
    for (const [name, a] of p.adapters!.adapters) {
      const key = `${name}.weight`;
      const w = state.get(key);
      if (!w) throw new Error(`LoRA: the adapted layer '${name}' has no '${key}' in the model's state`);
      state.set(key, scope(() => w.add(a.delta().to({ dtype: w.dtype }))));
    }
  });
  return state;
}

/**
 * Saves the policy as a Hugging Face directory `dir` (adapters merged), atomically, and with adapters also
 * `adapterDir` in PEFT's layout (base: `baseModel`).
 */
export function savePolicy(p: PolicyModel, dir: string, opts: { extraFiles?: string[]; metadata?: Record<string, string>; adapterDir?: string; baseModel?: string } = {}): void {
  const state = mergedState(p);
  const own = new Set(p.model.stateDict().values());
  try {
    writeDirAtomic(dir, (tmp) => writeModelFiles(tmp, configToHf(p.model.config as AnyModelConfig), state, opts));
  } finally {
    for (const t of state.values()) if (!own.has(t)) t.dispose();
  }
  if (p.adapters && opts.adapterDir) savePeftAdapter(p.adapters, opts.adapterDir, opts.baseModel ? { baseModel: opts.baseModel } : {});
}
