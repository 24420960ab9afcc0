/**
 * Learning-rate schedules as pure functions of the step. The multipliers are those of Hugging Face
 * transformers (`src/transformers/optimization.py`): `get_constant_schedule_with_warmup`,
 * `get_linear_schedule_with_warmup` and `get_cosine_schedule_with_warmup` with `num_cycles = 0.5`, so a run
 * here follows the same learning-rate curve as the equivalent `Trainer` run.
 */

export type ScheduleKind = 'constant' | 'linear' | 'cosine';

/** A learning-rate schedule: its kind, warm-up and total steps, and the floor as a fraction of the peak. */
export interface ScheduleConfig {
  kind: ScheduleKind;
  /** Steps of linear warmup from 0 to the base rate; integer, 0 <= warmupSteps <= totalSteps. */
  warmupSteps: number;
  /** Optimiser steps in the whole run; the decay reaches its end here. Integer >= 0. */
  totalSteps: number;
  /**
   * Floor of the decay as a fraction of the base rate, in [0, 1]; default 0. The decaying multiplier d
   * becomes min + (1 - min) * d (transformers' `get_cosine_with_min_lr_schedule_with_warmup`, `min_lr_rate`).
   * Warmup is not floored.
   */
  minLrRatio?: number;
}

/** Multiplier after warmup, in [0, 1], for warmupSteps <= step <= totalSteps. */
type Decay = (step: number, warmupSteps: number, totalSteps: number) => number;

/** max(1, ·) guards as transformers does, so warmupSteps === totalSteps does not divide by zero. */
export const SCHEDULES: Readonly<Record<ScheduleKind, Decay>> = {
  constant: () => 1,
  linear: (step, warmup, total) => Math.max(0, (total - step) / Math.max(1, total - warmup)),
  cosine: (step, warmup, total) => {
    const progress = (step - warmup) / Math.max(1, total - warmup);
    return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress))); // num_cycles 0.5: half a cosine period
  },
};

/**
 * Learning rate at optimiser step `step` (0-based, as `LambdaLR` counts): baseLr * step / max(1, warmup)
 * during warmup, then baseLr * (min + (1 - min) * decay). `step` may not exceed `totalSteps`: past the end
 * transformers' cosine would climb back up, which is never what a run wants, so it is an error here.
 */
export function lrAt(step: number, baseLr: number, cfg: ScheduleConfig): number {
  validateSchedule(cfg);
  if (!Number.isFinite(baseLr) || baseLr < 0) throw new RangeError(`lrAt: baseLr must be a finite number >= 0, got ${baseLr}`);
  if (!Number.isFinite(step) || step < 0 || step > cfg.totalSteps) {
    throw new RangeError(`lrAt: step must be in [0, totalSteps = ${cfg.totalSteps}], got ${step}`);
  }
  return baseLr * multiplier(step, cfg); // LambdaLR's base_lr * lr_lambda(step), same rounding
}

function multiplier(step: number, cfg: ScheduleConfig): number {
  if (step < cfg.warmupSteps) return step / Math.max(1, cfg.warmupSteps);
  const min = cfg.minLrRatio ?? 0;
  return min + (1 - min) * SCHEDULES[cfg.kind](step, cfg.warmupSteps, cfg.totalSteps);
}

/** Throws a RangeError naming the field at fault; call at config time to fail before training starts. */
export function validateSchedule(cfg: ScheduleConfig): void {
  const where = 'learning-rate schedule';
  if (!Object.hasOwn(SCHEDULES, cfg.kind)) {
    throw new RangeError(`${where}: unknown kind ${JSON.stringify(cfg.kind)} (expected one of ${Object.keys(SCHEDULES).join(', ')})`);
  }
  for (const field of ['warmupSteps', 'totalSteps'] as const) {
    const v = cfg[field];
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`${where}: ${field} must be an integer >= 0, got ${v}`);
  }
  if (cfg.warmupSteps > cfg.totalSteps) {
    throw new RangeError(`${where}: warmupSteps (${cfg.warmupSteps}) exceeds totalSteps (${cfg.totalSteps})`);
  }
  const min = cfg.minLrRatio;
  if (min !== undefined && !(min >= 0 && min <= 1)) throw new RangeError(`${where}: minLrRatio must be in [0, 1], got ${min}`);
}
