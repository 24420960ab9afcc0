/**
 * LoRA (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models"): a frozen Linear W gets a
 * trainable low-rank update, y = x Wᵀ + b + s · B(A(dropout(x))), A (r, in), B (out, r), s = α / r (α / √r
 * with rsLoRA, Kalajdzievski 2023). B starts at zero, so the adapted model starts as the base model exactly.
 *
 * The adapters are attached to the model's Linear layers (Linear.adapter), not registered as its children:
 * the model's state dict stays the base's (a checkpoint of the base loads and saves as before), and the
 * adapters' own state dict (LoraAdapters) uses PEFT's names less its `base_model.model.` prefix
 * (`model.layers.0.self_attn.q_proj.lora_A.weight`). Switching them off (`disabled`) gives the base model
 * bit for bit: that is the reference of every trainer whose policy is LoRA, with no second copy of the weights.
 */
import { dropout, type Generator as TorchGenerator, noGrad, normal_, scope, type Tensor, uniform_, zeros } from '../tensor/index.js';
import type { Schema } from '../config.js';
import { Linear } from './layers.js';
import { Module } from './module.js';

/** Which layers get adapters and their shape (PEFT's LoraConfig names in comments). */
export interface LoraConfig {
  /** Rank r of the update (r). */
  r: number;
  /** Scale numerator α (lora_alpha): the update is multiplied by α / r. */
  alpha: number;
  /** Dropout on the adapter's input while training (lora_dropout); 0 keeps rollout and update log-probs equal. */
  dropout: number;
  /**
   * The Linear layers to adapt (target_modules): a list of names, each matching a layer whose dotted name
   * is it or ends with `.name` ('q_proj' adapts every attention's q_proj), or one regular expression the
   * whole dotted name must match (PEFT's string form).
   */
  targetModules: string[] | string;
  /** rsLoRA's scale α / √r instead of α / r (use_rslora). */
  useRslora: boolean;
}

/** The defaults of a `lora:` block: rank 16, α 32, no dropout, every attention and MLP projection of the Llama family. */
export const LORA_DEFAULTS: LoraConfig = {
  r: 16, alpha: 32, dropout: 0, targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'], useRslora: false,
};

/** Every module under `m` with its dotted name (torch's named_modules, the root excluded). */
export function* namedModules(m: Module, prefix = ''): Generator<[string, Module]> {
  for (const [n, c] of m.namedChildren()) {
    yield [prefix + n, c];
    yield* namedModules(c, `${prefix}${n}.`);
  }
}

/** Whether a layer's dotted name is targeted (PEFT's rule: a list matches the name or its last components, a string is a full-match regex). */
export function isTarget(name: string, targets: string[] | string): boolean {
  if (typeof targets === 'string') return new RegExp(`^(?:${targets})$`).test(name);
  return targets.some((t) => name === t || name.endsWith(`.${t}`));
}

/** One adapted Linear's A and B. Its `active` follows its owner's switch and whether it is merged. */
export class LoraAdapter extends Module {
  readonly lora_A: Linear;
  readonly lora_B: Linear;
  merged = false;
  constructor(private readonly owner: LoraAdapters, readonly target: Linear, readonly scale: number, private readonly p: number, r: number, generator?: TorchGenerator) {
    super();
    const dtype = target.weight.dtype;
    this.lora_A = this.child('lora_A', new Linear(target.inFeatures, r, { bias: false, dtype }));
    this.lora_B = this.child('lora_B', new Linear(r, target.outFeatures, { bias: false, dtype }));
    noGrad(() => {
      // PEFT's init: A ~ kaiming_uniform(a = √5) = U(±1/√in), B = 0.
      const bound = 1 / Math.sqrt(target.inFeatures);
      uniform_(this.lora_A.weight, -bound, bound, generator);
      this.lora_B.weight.copy_(scope(() => zeros(this.lora_B.weight.shape, { dtype })));
    });
  }
  get active(): boolean {
    return this.owner.enabled && !this.merged;
  }
  /** s · B(A(dropout(x))): (..., out). Dropout follows the adapted layer's train/eval mode. */
  forward(x: Tensor): Tensor {
    const h = this.p > 0 && this.target.training ? dropout(x, this.p, true) : x;
    return this.lora_B.forward(this.lora_A.forward(h)).mul(this.scale);
  }
  /** The update as a weight, s · B A (out, in). */
  delta(): Tensor {
    return this.lora_B.weight.matmul(this.lora_A.weight).mul(this.scale);
  }
}

/**
 * The adapters of one model, by the dotted name of the Linear each adapts. Their parameters are the only
 * trainable ones of the model after applyLora (plus any the caller unfreezes, such as a reward head).
 */
export class LoraAdapters extends Module {
  /** While false every adapter is skipped: the model computes exactly as its base. */
  enabled = true;
  readonly adapters = new Map<string, LoraAdapter>();
  constructor(readonly config: LoraConfig) {
    super();
  }

  /** Attaches an adapter to `target` (named `name` in the state dict). */
  attach(name: string, target: Linear, generator?: TorchGenerator): LoraAdapter {
    const c = this.config;
    if (target.adapter) throw new Error(`LoRA: '${name}' already has an adapter`);
    const a = this.child(name, new LoraAdapter(this, target, c.alpha / (c.useRslora ? Math.sqrt(c.r) : c.r), c.dropout, c.r, generator));
    this.adapters.set(name, a);
    target.adapter = a;
    return a;
  }

  /** Runs `fn` with every adapter off (the base model, bit for bit), then restores the switch. */
  disabled<T>(fn: () => T): T {
    if (this.merged) throw new Error('LoRA: adapters are merged into the weights; unmerge() before computing the base model');
    const was = this.enabled;
    this.enabled = false;
    try {
      return fn();
    } finally {
      this.enabled = was;
    }
  }

  get merged(): boolean {
    return [...this.adapters.values()].some((a) => a.merged);
  }

  /** Adds each update into its layer's weight (W + s·BA): the forward then needs no adapter (fused paths can run). */
  merge(): void {
    this.shift(+1);
  }
  /** Takes the updates back out of the weights (W − s·BA: the base up to float32 rounding). */
  unmerge(): void {
    this.shift(-1);
  }
  private shift(sign: 1 | -1): void {
    noGrad(() => scope(() => {
      for (const [name, a] of this.adapters) {
        if (a.merged === (sign > 0)) throw new Error(`LoRA: '${name}' is already ${sign > 0 ? 'merged' : 'unmerged'}`);
        const w = a.target.weight;
        w.copy_(w.add(a.delta().mul(sign).to({ dtype: w.dtype })));
        a.merged = sign > 0;
      }
    }));
  }

  /** Removes the adapters from their layers and frees them (the model is its base again, still frozen). */
  detach(): void {
    if (this.merged) this.unmerge();
    for (const a of this.adapters.values()) a.target.adapter = null;
    this.dispose();
  }
}

/**
 * Attaches LoRA adapters to the Linear layers of `model` that `config.targetModules` names, and freezes
 * every parameter of the model: after it only the adapters train. An error names a targeted layer that is
 * not a Linear, or, when nothing matches, the layer names there are.
 */
export function applyLora(model: Module, config: LoraConfig, opts: { generator?: TorchGenerator } = {}): LoraAdapters {
  if (!(Number.isInteger(config.r) && config.r > 0)) throw new Error(`lora.r must be a positive integer, got ${config.r}`);
  if (!(config.alpha > 0)) throw new Error(`lora.alpha must be positive, got ${config.alpha}`);
  if (!(config.dropout >= 0 && config.dropout < 1)) throw new Error(`lora.dropout must be in [0, 1), got ${config.dropout}`);
  const targets = [...namedModules(model)].filter(([n]) => isTarget(n, config.targetModules));
  const linears = [...namedModules(model)].filter(([, m]) => m instanceof Linear).map(([n]) => n);
  if (targets.length === 0) {
    const kinds = [...new Set(linears.map((n) => n.split('.').pop()!))];
    throw new Error(`lora.targetModules ${JSON.stringify(config.targetModules)} matches no layer; the model's Linear layers end in: ${kinds.join(', ')}`);
  }
  for (const [n, m] of targets) if (!(m instanceof Linear)) throw new Error(`lora.targetModules: '${n}' is a ${m.constructor.name}, not a Linear layer`);
  model.freeze();
  const adapters = new LoraAdapters(config);
  for (const [n, m] of targets) adapters.attach(n, m as Linear, opts.generator);
  return adapters;
}

/** Sets every adapter's B from N(0, std²) (tests and fixtures: an adapter that changes the output, as after training). */
export function randomizeLoraB(adapters: LoraAdapters, std: number, generator?: TorchGenerator): void {
  noGrad(() => {
    for (const a of adapters.adapters.values()) normal_(a.lora_B.weight, 0, std, generator);
  });
}

/**
 * The `lora:` block every trainer's config has (src/config.ts fields): r 0 (the default) trains the whole
 * model; r > 0 trains LoRA adapters only on the frozen model, and the reference is the policy with its
 * adapters disabled (no second copy of the weights).
 */
export interface LoraFields {
  /** Rank of each adapter; 0 = no LoRA (full fine-tune). */
  r: number;
  /** α: the update is scaled by α / r (α / √r with rslora). */
  alpha: number;
  /** Dropout on each adapter's input while training. */
  dropout: number;
  /** Layer names to adapt (a layer matches its own name or any ending `.name`). */
  targetModules: string[];
  /** A regular expression the whole dotted layer name must match, used instead of targetModules when set. */
  targetRegex: string;
  /** rsLoRA (Kalajdzievski 2023): scale α / √r. */
  rslora: boolean;
}

/** `lora:` off by default; with r set, LORA_DEFAULTS' α, dropout and targets. */
export const LORA_FIELD_DEFAULTS: LoraFields = {
  r: 0, alpha: LORA_DEFAULTS.alpha, dropout: 0, targetModules: [...(LORA_DEFAULTS.targetModules as string[])], targetRegex: '', rslora: false,
};

/** The schema of the `lora:` block. */
export const LORA_SCHEMA: Schema<LoraFields> = {
  r: { doc: 'LoRA rank (0 = train the whole model; > 0 = adapters only, the reference being the policy with adapters disabled)', integer: true, min: 0, max: 4096 },
  alpha: { doc: 'LoRA α: the update is scaled by α / r', below: Number.POSITIVE_INFINITY, min: 1e-9 },
  dropout: { doc: "dropout on the adapters' input while training", min: 0, below: 1 },
  targetModules: { doc: 'Linear layer names to adapt (q_proj matches every …q_proj)', items: 'string' },
  targetRegex: { doc: "regular expression over the whole dotted layer name, instead of targetModules ('' = use targetModules)" },
  rslora: { doc: 'rsLoRA scaling α / √r' },
};

/** The LoraConfig a `lora:` block asks for, or null for a full fine-tune (r 0). */
export function loraConfigOf(f: LoraFields): LoraConfig | null {
  if (f.r === 0) return null;
  if (f.targetRegex) {
    try {
      new RegExp(f.targetRegex);
    } catch (e) {
      throw new Error(`lora.targetRegex: ${(e as Error).message}`);
    }
  } else if (f.targetModules.length === 0) throw new Error('lora.targetModules is empty and lora.targetRegex unset: no layer to adapt');
  return { r: f.r, alpha: f.alpha, dropout: f.dropout, targetModules: f.targetRegex || [...f.targetModules], useRslora: f.rslora };
}
