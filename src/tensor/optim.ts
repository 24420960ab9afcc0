/**
 * Optimisers are libtorch's (torch::optim::AdamW and SGD); this wrapper adds parameter groups with
 * defaults, learning-rate control for schedules (src/nn/schedule.ts), and exact state save/restore.
 * AdamW steps through libtorch's fused multi-tensor kernel where it has one (≥ 2.4; torch.optim.AdamW's
 * `fused=True`), else through torch::optim::AdamW's per-parameter ops; the state is the same either way.
 */
import { native, type OptimGroupSpec } from './native.js';
import { Tensor } from './tensor.js';

/** Parameters with their own learning rate and weight decay. */
export interface ParamGroup {
  params: readonly Tensor[];
  lr?: number;
  weightDecay?: number;
}

/** AdamW's hyper-parameters (torch.optim.AdamW names and defaults). */
export interface AdamWOptions {
  lr: number;
  /** (β1, β2), default (0.9, 0.999) */
  betas?: [number, number];
  eps?: number;
  /** Decoupled weight decay (Loshchilov & Hutter 2019); PyTorch's default 0.01. */
  weightDecay?: number;
  /**
   * Step every parameter in one fused kernel (at::_fused_adamw_) rather than ~10 ops per parameter.
   * Default: where this libtorch has the CPU kernel (≥ 2.4; `fusedAdamWAvailable()`). The two paths agree
   * to a few float32 roundings of the update (test/native/optim.test.ts derives the bound).
   */
  fused?: boolean;
}

/** Whether this libtorch has the fused CPU AdamW kernel (libtorch ≥ 2.4; Debian's 1.13 has not). */
export function fusedAdamWAvailable(): boolean {
  return native.buildInfo().fusedAdamW;
}

/** SGD's hyper-parameters. */
export interface SGDOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

/** Per-parameter state, in parameter order: tensors are copies owned by the caller. */
export interface OptimizerState {
  kind: 'adamw' | 'sgd';
  lrs: number[];
  params: ({ step?: number; buffers: Tensor[] } | null)[];
}

function validate(name: string, v: number | undefined, min: number): void {
  if (v !== undefined && !(Number.isFinite(v) && v >= min)) throw new Error(`${name} must be a finite number >= ${min}, got ${v}`);
}

/** An optimiser over parameter groups (libtorch's): step, zeroGrad, learning rates, state in and out. */
export abstract class Optimizer {
  protected id: number;
  private lrs: number[];
  readonly kind: 'adamw' | 'sgd';
  /** Whether steps run through the fused kernel (AdamW only). */
  readonly fused: boolean;
  protected constructor(kind: 'adamw' | 'sgd', groups: OptimGroupSpec[], fused = false) {
    this.kind = kind;
    this.fused = fused;
    this.lrs = groups.map((g) => g.lr);
    this.id = native.optimizerNew(kind === 'adamw' ? 0 : 1, groups, fused);
  }
  private get handle(): number {
    if (this.id < 0) throw new Error('optimizer used after dispose()');
    return this.id;
  }
  step(): void {
    native.optimizerStep(this.handle);
  }
  /** Drops every parameter's gradient (set_to_none). */
  zeroGrad(): void {
    native.optimizerZeroGrad(this.handle);
  }
  get groupCount(): number {
    return this.lrs.length;
  }
  getLr(group = 0): number {
    return this.lrs[group]!;
  }
  /** Sets the learning rate of one group, or of all when `group` is omitted. */
  setLr(lr: number, group?: number): void {
    validate('lr', lr, 0);
    const gs = group === undefined ? this.lrs.map((_, i) => i) : [group];
    for (const g of gs) {
      native.optimizerSetLr(this.handle, g, lr);
      this.lrs[g] = lr;
    }
  }
  stateDict(): OptimizerState {
    const raw = native.optimizerGetState(this.handle);
    const params = raw.map((s) => {
      if (s === null) return null;
      if (this.kind === 'adamw') return { step: s[0]!, buffers: [new Tensor(s[1]!), new Tensor(s[2]!)] };
      return { buffers: s[0]! >= 0 ? [new Tensor(s[0]!)] : [] };
    });
    return { kind: this.kind, lrs: [...this.lrs], params };
  }
  /** Restores a state from stateDict(); the next step is then bit-identical to the original's. */
  loadStateDict(state: OptimizerState): void {
    if (state.kind !== this.kind) throw new Error(`optimizer state is for ${state.kind}, this optimizer is ${this.kind}`);
    if (state.lrs.length !== this.lrs.length) throw new Error(`optimizer state has ${state.lrs.length} parameter groups, this optimizer ${this.lrs.length}`);
    const raw = state.params.map((p) => {
      if (p === null) return null;
      if (this.kind === 'adamw') return [p.step ?? 0, p.buffers[0]!.handle, p.buffers[1]!.handle];
      return [p.buffers[0] ? p.buffers[0].handle : -1];
    });
    native.optimizerSetState(this.handle, raw);
    state.lrs.forEach((lr, g) => this.setLr(lr, g));
  }
  dispose(): void {
    if (this.id >= 0) native.optimizerFree(this.id);
    this.id = -1;
  }
  [Symbol.dispose](): void {
    this.dispose();
  }
}

function groupsOf(params: readonly Tensor[] | readonly ParamGroup[]): ParamGroup[] {
  if (params.length === 0) return [];
  return params[0] instanceof Tensor ? [{ params: params as readonly Tensor[] }] : [...(params as readonly ParamGroup[])];
}

/** AdamW (torch.optim.AdamW semantics; defaults betas (0.9, 0.999), eps 1e-8, weight decay 0.01). */
export class AdamW extends Optimizer {
  constructor(params: readonly Tensor[] | readonly ParamGroup[], opts: AdamWOptions) {
    validate('lr', opts.lr, 0);
    validate('eps', opts.eps, 0);
    validate('weightDecay', opts.weightDecay, 0);
    const [b1, b2] = opts.betas ?? [0.9, 0.999];
    for (const [n, b] of [['betas[0]', b1], ['betas[1]', b2]] as const) {
      if (!(b >= 0 && b < 1)) throw new Error(`${n} must be in [0, 1), got ${b}`);
    }
    const groups = groupsOf(params);
    if (groups.length === 0) throw new Error('AdamW: no parameters to optimise');
    const available = fusedAdamWAvailable();
    if (opts.fused && !available) throw new Error(`AdamW: fused: true needs libtorch >= 2.4 (this is ${native.buildInfo().torchVersion}); pass fused: false`);
    super('adamw', groups.map((g) => ({
      params: g.params.map((p) => p.handle),
      lr: g.lr ?? opts.lr,
      weightDecay: g.weightDecay ?? opts.weightDecay ?? 0.01,
      beta1: b1,
      beta2: b2,
      eps: opts.eps ?? 1e-8,
    })), opts.fused ?? available);
  }
}

/** SGD with optional momentum, dampening, Nesterov and (L2) weight decay (torch.optim.SGD semantics). */
export class SGD extends Optimizer {
  constructor(params: readonly Tensor[] | readonly ParamGroup[], opts: SGDOptions) {
    validate('lr', opts.lr, 0);
    validate('momentum', opts.momentum, 0);
    validate('weightDecay', opts.weightDecay, 0);
    if (opts.nesterov && !((opts.momentum ?? 0) > 0 && (opts.dampening ?? 0) === 0)) {
      throw new Error('SGD: Nesterov momentum needs momentum > 0 and dampening 0');
    }
    const groups = groupsOf(params);
    if (groups.length === 0) throw new Error('SGD: no parameters to optimise');
    super('sgd', groups.map((g) => ({
      params: g.params.map((p) => p.handle),
      lr: g.lr ?? opts.lr,
      weightDecay: g.weightDecay ?? opts.weightDecay ?? 0,
      momentum: opts.momentum ?? 0,
      dampening: opts.dampening ?? 0,
      nesterov: opts.nesterov ?? false,
    })));
  }
}
