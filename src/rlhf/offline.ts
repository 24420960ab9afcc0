/**
 * What the offline policy trainers (SFT, DPO and its family, KTO) share around the epoch loop
 * (src/nn/train-loop.ts): the run directory's lock and crash recovery, atomic checkpoints (policy + optimiser
 * state + step), the resume that makes a continued run reproduce an uninterrupted one, and metrics.jsonl
 * (which keeps only the rows the checkpoint covers).
 */
import { tensorBoardFor } from '../tensorboard.js';
import { existsSync, mkdirSync } from 'node:fs';
import { readJsonFile } from '../atomic.js';
import { join } from 'node:path';
import type { Optimizer } from '../tensor/index.js';
import { type CheckpointParts, loadCheckpoint, saveCheckpoint } from '../nn/checkpoint.js';
import type { CausalLM } from '../models/common.js';
import type { Module } from '../nn/module.js';
import { disposePolicy, loadPolicy, type PolicyModel, referenceView } from '../models/adapted.js';
import { type LoraFields, loraConfigOf } from '../nn/lora.js';
import { epochOptimizer, type EpochTrainFields } from '../nn/train-fields.js';
import type { EpochLoop, StepPlan } from '../nn/train-loop.js';
import { checkResumeConfig, openMetricsLog, recoverRunDir } from '../run-dir.js';

export { StepPlan } from '../nn/train-loop.js';

/** The pair formats the offline preference trainers read (DPO's data, KTO's held-out pairs): every pair format, and rankings as all the pairs they imply. */
export const PAIR_FORMATS = ['pairwise', 'hh-rlhf', 'summarize', 'sst2', 'ranking'] as const;

/** The optimisation defaults of the offline preference trainers (the DPO family, KTO). */
export const PREFERENCE_TRAIN_DEFAULTS: EpochTrainFields = {
  epochs: 1, batchSize: 16, gradAccum: 1, optimizer: 'adamw', lr: 1e-4, weightDecay: 0, warmupSteps: 10, schedule: 'cosine',
  maxSteps: 0, clipGradNorm: 1, evalEvery: 0, checkpointEvery: 0, threads: 0,
};

/** Options of an offline policy run (SFT, DPO and its family, KTO). */
export interface OfflineRunOptions {
  fresh?: boolean;
  progress?: (line: string) => void;
  /** Stops before the next step with a checkpoint written (InterruptedError); a rerun resumes. */
  signal?: AbortSignal;
  /** How the policy and the reference are loaded from their directories (default src/models/hub.ts loadModel). */
  loadModel?: (dir: string) => CausalLM;
}

interface TrainerState<C> {
  step: number;
  config: C;
}

/**
 * The checkpoint's parts (src/nn/checkpoint.ts): what trains as model.safetensors (the policy, or its LoRA
 * adapters alone: src/models/adapted.ts trainablePart), the optimiser (AdamW or SGD) as optimizer.safetensors.
 */
function parts(model: Module, opt: Optimizer): CheckpointParts {
  return { modules: { model }, optimizers: { optimizer: opt } };
}

/**
 * Whether out/ holds a checkpoint to resume (never with `fresh`); a checkpoint of any other configuration
 * (the output path aside) is an error naming the fields that differ and --fresh. Call before writing
 * anything else into out/, so a refused run leaves it untouched; it first puts back a checkpoint a kill
 * left between the renames of its save, and removes other leftovers of killed runs.
 */
export function resumable<C>(out: string, config: C, fresh: boolean, say?: (line: string) => void): boolean {
  for (const l of recoverRunDir(out)) say?.(l);
  const state = join(out, 'checkpoint', 'trainer.json');
  if (fresh || !existsSync(state)) return false;
  const saved = readJsonFile<TrainerState<C>>(state);
  checkResumeConfig(out, saved.config, config);
  return true;
}

/** A policy run's optimiser, the step it resumes from, and its metrics log. */
export interface OpenRun {
  opt: Optimizer;
  resumedFrom: number | null;
  checkpoint: (step: number) => void;
  logMetrics: (row: Record<string, unknown>) => void;
}

/**
 * Creates the optimiser (train.optimizer) over what trains (the policy, or its adapters) and, unless `fresh`, loads out/checkpoint when it was
 * written by this exact configuration (any other is refused, naming --fresh). metrics.jsonl is cut back
 * to the rows the checkpoint covers: later ones belong to the interrupted run.
 */
export function openPolicyRun<C>(out: string, config: C, policy: Module, t: EpochTrainFields, fresh: boolean, say?: (line: string) => void): OpenRun {
  mkdirSync(out, { recursive: true });
  const opt = epochOptimizer(policy.trainableParameters(), t);
  const ckpt = join(out, 'checkpoint');
  let resumedFrom: number | null = null;
  try {
    if (resumable(out, config, fresh, say)) resumedFrom = loadCheckpoint<TrainerState<C>>(ckpt, parts(policy, opt)).step;
  } catch (e) {
    opt.dispose();
    throw e;
  }
  return {
    opt, resumedFrom,
    checkpoint: (step) => saveCheckpoint(ckpt, parts(policy, opt), { step, config }),
    logMetrics: openMetricsLog(join(out, 'metrics.jsonl'), resumedFrom, say, tensorBoardFor(config, resumedFrom)),
  };
}

/** The parts of the epoch loop (src/nn/train-loop.ts) a policy run opened by openPolicyRun fixes; the trainer adds its step, line and evaluation. */
export function policyLoop(run: OpenRun, policy: Module, plan: StepPlan, t: EpochTrainFields, o: { out: string; t0: number; say: (line: string) => void; signal?: AbortSignal | undefined }): Omit<EpochLoop, 'step' | 'describe' | 'evaluate'> {
  return {
    plan, opt: run.opt, params: () => policy.trainableParameters(), train: t, resumedFrom: run.resumedFrom,
    checkpoint: run.checkpoint, log: run.logMetrics, say: o.say, out: o.out, t0: o.t0, ...(o.signal ? { signal: o.signal } : {}),
  };
}

/** The progress line writer: the caller's, or stderr; every line tagged with the command. */
export function progressLine(tag: string, progress?: (line: string) => void): (line: string) => void {
  const out = progress ?? ((l: string) => process.stderr.write(l + '\n'));
  return (l) => out(`${tag} ${l}`);
}

/**
 * How a trainer gets its reference model from a directory: the LoRA policy with its adapters disabled when
 * the reference is the policy's own directory (no second copy of the weights), else `load`.
 */
export function referenceLoader(policy: PolicyModel | null, policyDir: string, load: (dir: string) => CausalLM): (dir: string) => CausalLM {
  return (dir) => (policy?.adapters && dir === policyDir ? referenceView(policy)! : load(dir));
}

/**
 * Loads the policy (with LoRA adapters when `lora.r > 0`) and runs `withReference` (what the trainer needs
 * from its reference, given how to load one), in the order that keeps memory lowest: a LoRA policy first,
 * since its adapters disabled are the reference; otherwise the reference's work first, the reference freed
 * before the policy is loaded, so two models never share memory.
 */
export function policyAndReference<R>(policyDir: string, lora: LoraFields, o: { seed: number; load: (dir: string) => CausalLM }, withReference: (load: (dir: string) => CausalLM) => R): { policy: PolicyModel; ref: R } {
  const open = () => loadPolicy(policyDir, lora, { seed: o.seed, load: o.load });
  const first = loraConfigOf(lora) ? open() : null;
  let ref: R;
  try {
    ref = withReference(referenceLoader(first, policyDir, o.load));
  } catch (e) {
    if (first) disposePolicy(first);
    throw e;
  }
  return { policy: first ?? open(), ref };
}
