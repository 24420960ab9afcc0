/**
 * The one epoch loop every offline trainer runs (reward models and their ensembles, SFT, DPO and its family,
 * KTO): set the learning rate → the step's micro-batches (forward, backward, gradients accumulated) →
 * gradient norm (clipped when asked) → divergence guard → optimiser step → log → evaluate → checkpoint, and
 * a final checkpoint. What differs between trainers — a micro-batch's loss, its metrics, the evaluation —
 * comes in as hooks; interruption, the divergence guard and the checkpoint cadence live here only.
 *
 * Exact resume rests on three facts: the data order is a pure function of (seed, epoch) (`epochOrder`), the
 * optimiser state is restored bit for bit, and nothing else in the loop is random.
 */
import { clipGradNorm, type Optimizer, type Tensor } from '../tensor/index.js';
import { mulberry32 } from '../random.js';
import { lrAt } from './schedule.js';
import type { EpochTrainFields } from './train-fields.js';

/** The order of `n` training units in `epoch`: a pure function of (seed, epoch), so resume needs no RNG state. */
export function epochOrder(n: number, seed: number, epoch: number): number[] {
  const rand = mulberry32((seed * 1000003 + epoch * 7919) >>> 0);
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [p[i], p[j]] = [p[j]!, p[i]!];
  }
  return p;
}

/**
 * The optimiser-step plan over `units` (records, examples, packed rows, pairs or completions): micro-batches
 * of batchSize units, gradAccum micro-batches per step. A step's micro-batches follow from its index alone
 * (micro-batch s·gradAccum + m of the endless sequence of epochs), so a resumed run takes the same ones.
 */
export class StepPlan {
  readonly microPerEpoch: number;
  readonly totalSteps: number;

  constructor(private readonly units: number, private readonly t: EpochTrainFields, private readonly seed: number) {
    if (units === 0) throw new Error('no training data left (after splitting, limits and length filters)');
    this.microPerEpoch = Math.ceil(units / t.batchSize);
    const stepsPerEpoch = Math.ceil(this.microPerEpoch / t.gradAccum);
    this.totalSteps = t.maxSteps > 0 ? Math.min(t.maxSteps, stepsPerEpoch * t.epochs) : stepsPerEpoch * t.epochs;
  }

  /** The unit indices of micro-batch m (0-based) of optimiser step `step` (0-based). */
  micro(step: number, m: number): number[] {
    const micro = step * this.t.gradAccum + m;
    const epoch = Math.floor(micro / this.microPerEpoch);
    const pos = (micro % this.microPerEpoch) * this.t.batchSize;
    return epochOrder(this.units, this.seed, epoch).slice(pos, pos + this.t.batchSize);
  }

  /** Every micro-batch of step `step`. */
  step(step: number): number[][] {
    return Array.from({ length: this.t.gradAccum }, (_, m) => this.micro(step, m));
  }

  lr(step: number): number {
    const schedule = { kind: this.t.schedule, warmupSteps: Math.min(this.t.warmupSteps, this.totalSteps), totalSteps: this.totalSteps };
    return lrAt(step, this.t.lr, schedule);
  }
}

/** Raised when a run stops on its signal: its checkpoint is written and a rerun resumes from it. */
export class InterruptedError extends Error {
  constructor(readonly step: number, out: string) {
    super(`interrupted after step ${step}: checkpoint written to ${out}/checkpoint; rerun the same command to resume`);
  }
}

/** Raised when a step's loss or gradient norm is not finite; nothing of that step is saved. */
export class DivergedError extends Error {
  constructor(readonly step: number, what: string, value: number, lr: { name: string; value: number }, kept: string) {
    super(`step ${step}: the ${what} is ${value} — training diverged; likely cause: the learning rate is too high (${lr.name} ${lr.value}; ` +
      `try a smaller one, or a gradient-norm clip); nothing of this step was saved, ${kept}`);
  }
}

/**
 * Throws DivergedError when a named value of step `step` (1-based) is not finite; `saved` is the step of the
 * last checkpoint written (null: none yet), which stays.
 */
export function guardFinite(step: number, values: Readonly<Record<string, number | null>>, lr: { name: string; value: number }, out: string, saved: number | null): void {
  const bad = Object.entries(values).find(([, v]) => v !== null && !Number.isFinite(v));
  if (!bad) return;
  const kept = saved === null ? 'and no checkpoint had been written yet' : `and the checkpoint of step ${saved} in ${out}/checkpoint is kept`;
  throw new DivergedError(step, bad[0], bad[1]!, lr, kept);
}

/** What one optimiser step's micro-batches gave: the logged loss and the trainer's own metrics. */
export interface StepResult {
  loss: number;
  /** Logged between `loss` and `lr`, in this order. */
  metrics: Record<string, unknown>;
}

export interface EpochLoop {
  plan: StepPlan;
  opt: Optimizer;
  /** The parameters the optimiser updates: their gradient norm is clipped (clipGradNorm > 0) and checked. */
  params: () => Tensor[];
  train: Pick<EpochTrainFields, 'clipGradNorm' | 'evalEvery' | 'checkpointEvery' | 'lr'>;
  /** The step of the checkpoint the run resumed from (null: a fresh run, from step 0). */
  resumedFrom: number | null;
  /** Forward and backward of one step's micro-batches (unit indices, none empty); gradients accumulate. */
  step(micro: number[][], step: number): StepResult;
  /** The progress line of a logged row after `step k/N `. */
  describe(row: StepResult & { lr: number }): string;
  /** A periodic held-out evaluation after `step` (the trainer logs it). */
  evaluate?(step: number): void;
  checkpoint(step: number): void;
  log(row: Record<string, unknown>): void;
  say(line: string): void;
  /** The run's directory (for messages) and its start time (the rows' `seconds`). */
  out: string;
  t0: number;
  /** Stops the run before its next step, with a checkpoint written (InterruptedError). */
  signal?: AbortSignal;
}

/** Runs steps start..plan.totalSteps and writes the final checkpoint; returns the step reached. */
export async function runEpochLoop(l: EpochLoop): Promise<number> {
  const { plan, train: t } = l;
  let step = l.resumedFrom ?? 0;
  let saved = l.resumedFrom;
  while (step < plan.totalSteps) {
    await new Promise((r) => setImmediate(r)); // a step is synchronous: let a pending SIGINT handler run
    if (l.signal?.aborted) {
      l.checkpoint(step);
      throw new InterruptedError(step, l.out);
    }
    // ---- one optimiser step: its micro-batches, the gradient norm, the guard, the update
    const lr = plan.lr(step);
    l.opt.setLr(lr);
    const r = l.step(plan.step(step).filter((m) => m.length > 0), step);
    // Unclipped, the norm is still needed by the guard: an infinite bound scales every gradient by exactly 1.
    const norm = clipGradNorm(l.params(), t.clipGradNorm > 0 ? t.clipGradNorm : Infinity);
    guardFinite(step + 1, { loss: r.loss, 'gradient norm': norm }, { name: 'train.lr', value: t.lr }, l.out, saved);
    l.opt.step();
    l.opt.zeroGrad();
    step++;
    // ---- log, evaluate, checkpoint
    l.log({ step, loss: r.loss, ...r.metrics, lr, gradNorm: t.clipGradNorm > 0 ? norm : null, seconds: (Date.now() - l.t0) / 1000 });
    l.say(`step ${step}/${plan.totalSteps} ${l.describe({ ...r, lr })}`);
    if (t.evalEvery > 0 && step % t.evalEvery === 0 && step < plan.totalSteps) l.evaluate?.(step);
    if (t.checkpointEvery > 0 && step % t.checkpointEvery === 0) {
      l.checkpoint(step);
      saved = step;
    }
  }
  l.checkpoint(step);
  return step;
}
