/**
 * What the offline policy trainers (SFT, DPO) share around their loop: the step arithmetic over
 * shuffled epochs, the learning-rate schedule, atomic checkpoints (policy + AdamW state + step) and
 * the resume that makes a continued run reproduce an uninterrupted one, and metrics.jsonl.
 *
 * Exact resume rests on three facts: the data order is a pure function of (seed, epoch) (`epochOrder`,
 * shared with reward-model training), the optimiser state is restored bit for bit, and nothing else in
 * the loop is random. metrics.jsonl keeps only the rows the checkpoint covers.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AdamW } from '../tensor/index.js';
import { lrAt, type ScheduleKind } from '../nn/schedule.js';
import { type CheckpointParts, loadCheckpoint, openMetricsLog, saveCheckpoint } from '../nn/checkpoint.js';
import type { CausalLM } from '../models/common.js';
import { epochOrder } from '../reward/train.js';
import type { EpochTrainFields } from '../nn/train-fields.js';

/**
 * The optimiser-step plan over `units` (examples, packed rows or pairs): micro-batches of batchSize units,
 * gradAccum micro-batches per step; an epoch's last micro-batch may be short, and a step never spans two
 * epochs' tails differently in a resumed run because it is computed from the step index alone.
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
    const schedule = { kind: this.t.schedule as ScheduleKind, warmupSteps: Math.min(this.t.warmupSteps, this.totalSteps), totalSteps: this.totalSteps };
    return lrAt(step, this.t.lr, schedule);
  }
}

interface TrainerState<C> {
  step: number;
  config: C;
}

/** The checkpoint's parts (src/nn/checkpoint.ts): the policy as model.safetensors, AdamW as optimizer.safetensors. */
function parts(model: CausalLM, opt: AdamW): CheckpointParts {
  return { modules: { model }, optimizers: { optimizer: opt } };
}

/**
 * Whether out/ holds a checkpoint to resume (never with `fresh`); a checkpoint of any other configuration
 * is an error naming --fresh. Call before writing anything into out/, so a refused run leaves it untouched.
 */
export function resumable<C>(out: string, config: C, fresh: boolean): boolean {
  const state = join(out, 'checkpoint', 'trainer.json');
  if (fresh || !existsSync(state)) return false;
  const saved = JSON.parse(readFileSync(state, 'utf8')) as TrainerState<C>;
  if (JSON.stringify(saved.config) !== JSON.stringify(config)) {
    throw new Error(`${out} holds a checkpoint of a different configuration: use another --out, or --fresh to start over`);
  }
  return true;
}

/** A policy run's optimiser, the step it resumes from, and its metrics log. */
export interface OpenRun {
  opt: AdamW;
  resumedFrom: number | null;
  checkpoint: (step: number) => void;
  logMetrics: (row: Record<string, unknown>) => void;
}

/**
 * Creates the AdamW optimiser over the policy and, unless `fresh`, loads out/checkpoint when it was
 * written by this exact configuration (any other is refused, naming --fresh). metrics.jsonl is cut back
 * to the rows the checkpoint covers: later ones belong to the interrupted run.
 */
export function openRun<C>(out: string, config: C, policy: CausalLM, t: EpochTrainFields, fresh: boolean): OpenRun {
  mkdirSync(out, { recursive: true });
  const opt = new AdamW(policy.trainableParameters(), { lr: t.lr, weightDecay: t.weightDecay });
  const ckpt = join(out, 'checkpoint');
  let resumedFrom: number | null = null;
  try {
    if (resumable(out, config, fresh)) resumedFrom = loadCheckpoint<TrainerState<C>>(ckpt, parts(policy, opt)).step;
  } catch (e) {
    opt.dispose();
    throw e;
  }
  return {
    opt, resumedFrom,
    checkpoint: (step) => saveCheckpoint(ckpt, parts(policy, opt), { step, config }),
    logMetrics: openMetricsLog(join(out, 'metrics.jsonl'), resumedFrom),
  };
}

/** The progress line writer: the caller's, or stderr; every line tagged with the command. */
export function progressLine(tag: string, progress?: (line: string) => void): (line: string) => void {
  const out = progress ?? ((l: string) => process.stderr.write(l + '\n'));
  return (l) => out(`${tag} ${l}`);
}
