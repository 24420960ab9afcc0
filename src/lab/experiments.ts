/**
 * Every `rlhf lab <name>` experiment, by name (src/lab/experiment.ts has the shape). Add one by importing
 * it here; the command line and the report pick it up.
 */
import type { Experiment } from './experiment.js';
import { noisy } from './noisy.js';
import { misspecification } from './misspecification.js';
import { generalisationExperiment } from './generalisation.js';
import { mitigationsExperiment } from './mitigations.js';
import { paradoxExperiment } from './paradox.js';
import { sparse } from './sparse.js';

/** Every `rlhf lab <name>` experiment by name. */
export const LAB_EXPERIMENTS: Readonly<Record<string, Experiment>> = Object.fromEntries(
  ([generalisationExperiment, paradoxExperiment, mitigationsExperiment, sparse, misspecification, noisy] as unknown as Experiment[]).map((e) => [e.name, e]),
);
