/**
 * What the offline policy trainers (SFT, DPO) share around their loop: the step arithmetic over
 * shuffled epochs, the learning-rate schedule, atomic checkpoints (policy + AdamW state + step) and
 * the resume that makes a continued run reproduce an uninterrupted one, and metrics.jsonl.
 *
 * Exact resume rests on three facts: the data order is a pure function of (seed, epoch) (`epochOrder`,
 * shared with reward-model training), the optimiser state is restored bit for bit, and nothing else in
 * the loop is random. metrics.jsonl keeps only the rows the checkpoint covers.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AdamW, type Tensor } from '../tensor/index.js';
import { lrAt, type ScheduleKind } from '../nn/schedule.js';
import { loadTensors, saveTensors } from '../nn/serialize.js';
import { writeDirAtomic } from '../models/hub.js';
import type { CausalLM } from '../models/common.js';
import { epochOrder } from '../reward/train.js';

/** The optimisation fields SFT and DPO configs share (documented in each config's schema). */
export interface OfflineTrainFields {
  epochs: number;
  batchSize: number;
  gradAccum: number;
  lr: number;
  weightDecay: number;
  warmupSteps: number;
  schedule: string;
  maxSteps: number;
  clipGradNorm: number;
  evalEvery: number;
  checkpointEvery: number;
  threads: number;
}

/**
 * The optimiser-step plan over `units` (examples, packed rows or pairs): micro-batches of batchSize units,
 * gradAccum micro-batches per step; an epoch's last micro-batch may be short, and a step never spans two
 * epochs' tails differently in a resumed run because it is computed from the step index alone.
 */
export class StepPlan {
  readonly microPerEpoch: number;
  readonly totalSteps: number;

  constructor(private readonly units: number, private readonly t: OfflineTrainFields, private readonly seed: number) {
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

/** Writes the resumable state atomically: policy and optimiser tensors, the step, the config. */
export function saveCheckpoint<C>(dir: string, model: CausalLM, opt: AdamW, state: TrainerState<C>): void {
  writeDirAtomic(dir, (tmp) => {
    saveTensors(join(tmp, 'model.safetensors'), model.stateDict());
    const os = opt.stateDict();
    const tensors = new Map<string, Tensor>();
    const steps: (number | null)[] = [];
    os.params.forEach((p, i) => {
      steps.push(p ? p.step ?? 0 : null);
      p?.buffers.forEach((b, j) => tensors.set(`${i}.${j}`, b));
    });
    saveTensors(join(tmp, 'optimizer.safetensors'), tensors, { steps: JSON.stringify(steps), lrs: JSON.stringify(os.lrs) });
    for (const t of tensors.values()) t.dispose();
    writeFileSync(join(tmp, 'trainer.json'), JSON.stringify(state, null, 2));
  });
}

function loadCheckpoint(dir: string, model: CausalLM, opt: AdamW): number {
  const state = JSON.parse(readFileSync(join(dir, 'trainer.json'), 'utf8')) as TrainerState<unknown>;
  const m = loadTensors(join(dir, 'model.safetensors'));
  model.loadStateDict(m.tensors, { source: dir });
  for (const t of m.tensors.values()) t.dispose();
  const o = loadTensors(join(dir, 'optimizer.safetensors'));
  const steps = JSON.parse(o.metadata.steps ?? '[]') as (number | null)[];
  opt.loadStateDict({
    kind: 'adamw', lrs: JSON.parse(o.metadata.lrs ?? '[]') as number[],
    params: steps.map((s, i) => (s === null ? null : { step: s, buffers: [o.tensors.get(`${i}.0`)!, o.tensors.get(`${i}.1`)!] })),
  });
  for (const t of o.tensors.values()) t.dispose();
  return state.step;
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
export function openRun<C>(out: string, config: C, policy: CausalLM, t: OfflineTrainFields, fresh: boolean): OpenRun {
  mkdirSync(out, { recursive: true });
  const opt = new AdamW(policy.trainableParameters(), { lr: t.lr, weightDecay: t.weightDecay });
  const ckpt = join(out, 'checkpoint');
  let resumedFrom: number | null = null;
  try {
    if (resumable(out, config, fresh)) resumedFrom = loadCheckpoint(ckpt, policy, opt);
  } catch (e) {
    opt.dispose();
    throw e;
  }
  const metricsPath = join(out, 'metrics.jsonl');
  const kept = existsSync(metricsPath) && resumedFrom !== null
    ? readFileSync(metricsPath, 'utf8').split('\n').filter((l) => l && (JSON.parse(l) as { step: number }).step <= resumedFrom!)
    : [];
  writeFileSync(`${metricsPath}.tmp`, kept.map((l) => l + '\n').join(''));
  renameSync(`${metricsPath}.tmp`, metricsPath);
  return {
    opt, resumedFrom,
    checkpoint: (step) => saveCheckpoint(ckpt, policy, opt, { step, config }),
    logMetrics: (row) => writeFileSync(metricsPath, JSON.stringify(row) + '\n', { flag: 'a' }),
  };
}

/** The progress line writer: the caller's, or stderr; every line tagged with the command. */
export function progressLine(tag: string, progress?: (line: string) => void): (line: string) => void {
  const out = progress ?? ((l: string) => process.stderr.write(l + '\n'));
  return (l) => out(`${tag} ${l}`);
}
