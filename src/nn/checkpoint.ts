/**
 * Resumable training checkpoints, shared by every trainer: modules' state dicts, optimisers' exact state
 * (AdamW moments and step counts, learning rates) and a JSON trainer state, written into a directory
 * atomically (a temp directory renamed into place: an interrupted save leaves the previous checkpoint).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Optimizer, Tensor } from '../tensor/index.js';
import type { Module } from './module.js';
import { loadTensors, saveTensors } from './serialize.js';
import { readJsonFile, writeDirAtomic } from '../atomic.js';

export { openMetricsLog } from '../run-dir.js';

export interface CheckpointParts {
  /** name → module: saved as name.safetensors. */
  modules: Readonly<Record<string, Module>>;
  /** name → optimiser: saved as name.safetensors (names distinct from the modules'). */
  optimizers: Readonly<Record<string, Optimizer>>;
}

function saveOptimizer(path: string, opt: Optimizer): void {
  const os = opt.stateDict();
  const tensors = new Map<string, Tensor>();
  const steps: (number | null)[] = [];
  os.params.forEach((p, i) => {
    steps.push(p ? p.step ?? 0 : null);
    p?.buffers.forEach((b, j) => tensors.set(`${i}.${j}`, b));
  });
  saveTensors(path, tensors, { kind: os.kind, steps: JSON.stringify(steps), lrs: JSON.stringify(os.lrs), buffers: JSON.stringify(os.params.map((p) => p?.buffers.length ?? 0)) });
  for (const t of tensors.values()) t.dispose();
}

function loadOptimizer(path: string, opt: Optimizer): void {
  const o = loadTensors(path);
  try {
    const steps = JSON.parse(o.metadata.steps ?? '[]') as (number | null)[];
    const counts = JSON.parse(o.metadata.buffers ?? 'null') as number[] | null;
    opt.loadStateDict({
      kind: (o.metadata.kind as 'adamw' | 'sgd' | undefined) ?? 'adamw',
      lrs: JSON.parse(o.metadata.lrs ?? '[]') as number[],
      params: steps.map((s, i) => (s === null ? null : { step: s, buffers: Array.from({ length: counts?.[i] ?? 2 }, (_, j) => o.tensors.get(`${i}.${j}`)!) })),
    });
  } finally {
    for (const t of o.tensors.values()) t.dispose();
  }
}

/** Writes every part and `state` (as trainer.json) into `dir`, atomically. */
export function saveCheckpoint(dir: string, parts: CheckpointParts, state: unknown): void {
  writeDirAtomic(dir, (tmp) => {
    for (const [name, m] of Object.entries(parts.modules)) saveTensors(join(tmp, `${name}.safetensors`), m.stateDict());
    for (const [name, o] of Object.entries(parts.optimizers)) saveOptimizer(join(tmp, `${name}.safetensors`), o);
    writeFileSync(join(tmp, 'trainer.json'), JSON.stringify(state, null, 2));
  });
}

/** The trainer state in `dir` (trainer.json), without loading tensors. */
export function readCheckpointState<S>(dir: string): S {
  return readJsonFile<S>(join(dir, 'trainer.json'));
}

/** Loads every part from `dir` (strictly: a missing or mis-shaped tensor is an error) and returns its state. */
export function loadCheckpoint<S>(dir: string, parts: CheckpointParts): S {
  for (const [name, m] of Object.entries(parts.modules)) {
    const t = loadTensors(join(dir, `${name}.safetensors`));
    try {
      m.loadStateDict(t.tensors, { source: join(dir, `${name}.safetensors`) });
    } finally {
      for (const x of t.tensors.values()) x.dispose();
    }
  }
  for (const [name, o] of Object.entries(parts.optimizers)) loadOptimizer(join(dir, `${name}.safetensors`), o);
  return readCheckpointState<S>(dir);
}
