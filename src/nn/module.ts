/**
 * Module: the building block of models (torch.nn.Module's contract). Parameters, buffers and children
 * are registered by name, so a module's state dict uses Hugging Face's dotted names
 * (`model.layers.0.self_attn.q_proj.weight`) and a checkpoint loads by key copy.
 *
 * Parameters and buffers live outside any `scope` (they are `keep`-ed) until `dispose()`.
 */
import { type Device, type DType, isFloating, keep, noGrad, type Tensor } from '../tensor/index.js';

export interface LoadOptions {
  /** Missing and unexpected keys are errors (default true). */
  strict?: boolean;
  /** Where the state came from, for error messages (a file or directory). */
  source?: string;
}

/** The base of every layer and model: named parameters and buffers, children, train/eval mode, state dicts with Hugging Face names. */
export abstract class Module {
  training = true;
  private readonly _params = new Map<string, Tensor>();
  private readonly _buffers = new Map<string, { t: Tensor; persistent: boolean }>();
  private readonly _children = new Map<string, Module>();

  /** Registers a trainable parameter (requiresGrad on, kept out of scopes). */
  protected param(name: string, t: Tensor): Tensor {
    this._params.set(name, keep(t).requiresGrad_(true));
    return t;
  }
  /** Registers a buffer: state that is not trained (a persistent one is saved in the state dict). */
  protected buffer(name: string, t: Tensor, persistent = true): Tensor {
    this._buffers.set(name, { t: keep(t), persistent });
    return t;
  }
  protected child<M extends Module>(name: string | number, m: M): M {
    this._children.set(String(name), m);
    return m;
  }

  *namedChildren(): Generator<[string, Module]> {
    yield* this._children;
  }
  *namedParameters(prefix = ''): Generator<[string, Tensor]> {
    for (const [n, p] of this._params) yield [prefix + n, p];
    for (const [n, c] of this._children) yield* c.namedParameters(`${prefix}${n}.`);
  }
  parameters(): Tensor[] {
    return [...this.namedParameters()].map(([, p]) => p);
  }
  /** Parameters with requiresGrad on (what an optimiser should see). */
  trainableParameters(): Tensor[] {
    return this.parameters().filter((p) => p.requiresGrad);
  }
  *namedBuffers(prefix = '', persistentOnly = false): Generator<[string, Tensor]> {
    for (const [n, b] of this._buffers) if (!persistentOnly || b.persistent) yield [prefix + n, b.t];
    for (const [n, c] of this._children) yield* c.namedBuffers(`${prefix}${n}.`, persistentOnly);
  }
  numParameters(trainableOnly = false): number {
    return this.parameters().reduce((n, p) => n + (!trainableOnly || p.requiresGrad ? p.numel : 0), 0);
  }

  /** The live parameters and persistent buffers by name (not copies). */
  stateDict(): Map<string, Tensor> {
    return new Map([...this.namedParameters(), ...this.namedBuffers('', true)]);
  }

  /**
   * Copies `state` into this module's parameters and buffers (under noGrad), converting dtype to the
   * module's. Strict by default: a missing or unexpected key is an error naming it; a shape mismatch is
   * always an error naming the key and both shapes.
   */
  loadStateDict(state: ReadonlyMap<string, Tensor>, opts: LoadOptions = {}): void {
    const strict = opts.strict ?? true;
    const where = opts.source ? ` (${opts.source})` : '';
    const own = this.stateDict();
    if (strict) {
      const missing = [...own.keys()].filter((k) => !state.has(k));
      const unexpected = [...state.keys()].filter((k) => !own.has(k));
      if (missing.length || unexpected.length) {
        const parts = [];
        if (missing.length) parts.push(`missing keys: ${missing.slice(0, 8).join(', ')}${missing.length > 8 ? ` … (${missing.length})` : ''}`);
        if (unexpected.length) parts.push(`unexpected keys: ${unexpected.slice(0, 8).join(', ')}${unexpected.length > 8 ? ` … (${unexpected.length})` : ''}`);
        throw new Error(`loadStateDict${where}: ${parts.join('; ')}`);
      }
    }
    noGrad(() => {
      for (const [k, dst] of own) {
        const src = state.get(k);
        if (!src) continue;
        const [a, b] = [dst.shape, src.shape];
        if (a.length !== b.length || a.some((d, i) => d !== b[i])) {
          throw new Error(`loadStateDict${where}: '${k}' has shape [${b.join(', ')}], the model expects [${a.join(', ')}]`);
        }
        dst.copy_(src);
      }
    });
  }

  /** Sets training mode here and in every child (dropout is active only in training). */
  train(on = true): this {
    this.training = on;
    for (const c of this._children.values()) c.train(on);
    return this;
  }
  eval(): this {
    return this.train(false);
  }

  /** Moves parameters and buffers to a device and/or casts floating ones to a dtype, in place. */
  to(target: { device?: Device; dtype?: DType }): this {
    noGrad(() => {
      for (const [, p] of this.namedParameters()) {
        const dtype = target.dtype && isFloating(p.dtype) ? target.dtype : p.dtype;
        const rg = p.requiresGrad;
        p._setData(p.to({ dtype, device: target.device ?? p.device }));
        p.requiresGrad_(rg);
      }
      for (const [, b] of this.namedBuffers()) {
        const dtype = target.dtype && isFloating(b.dtype) ? target.dtype : b.dtype;
        b._setData(b.to({ dtype, device: target.device ?? b.device }));
      }
    });
    return this;
  }

  /** Turns requiresGrad off for every parameter (or those whose name matches `filter`). */
  freeze(filter?: (name: string) => boolean): this {
    for (const [n, p] of this.namedParameters()) if (!filter || filter(n)) p.requiresGrad_(false);
    return this;
  }
  unfreeze(filter?: (name: string) => boolean): this {
    for (const [n, p] of this.namedParameters()) if (!filter || filter(n)) p.requiresGrad_(true);
    return this;
  }

  /** Frees every parameter and buffer. The module is unusable afterwards. */
  dispose(): void {
    for (const [, p] of this.namedParameters()) p.dispose();
    for (const [, b] of this.namedBuffers()) b.dispose();
  }
}

/** An indexed list of modules, named '0', '1', … in the state dict (torch.nn.ModuleList). */
export class ModuleList<M extends Module> extends Module {
  readonly items: M[];
  constructor(items: M[]) {
    super();
    this.items = items;
    items.forEach((m, i) => this.child(i, m));
  }
  get length(): number {
    return this.items.length;
  }
}
