/**
 * The user's own reward, from a JavaScript module: `module:./path/file.mjs#exportName` (`#default` when the
 * name is left out; a relative path is taken from the working directory). The export is either
 *
 * - a per-sample function `(completion, prompt, meta) => number | Promise<number>` (TRL's reward function
 *   for one sample; the samples of a batch are scored concurrently when it returns promises), or
 * - a batch scorer `{ batch(input: RewardInput) => number[] | Promise<number[]> }` over the whole rollout.
 *
 * The module is imported once per source (the first score, or `ready()` at the start of a run); errors name
 * the file, the export and the sample. TypeScript must be compiled to JavaScript first (`npx tsc`, or
 * TypeScript's `transpileModule`): Node 20 does not run `.ts`, and no TypeScript loader is a runtime
 * dependency of this package.
 */
import { existsSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { checkFinite, quoteCompletion, type RewardInput, type RewardOutput, type RewardSource, RewardSourceError } from './sources.js';

/** What a per-sample reward function gets besides the texts: its row in the batch and the policy's token ids. */
export interface RewardSampleMeta {
  index: number;
  promptIds: readonly number[];
  completionIds: readonly number[];
}

/** A per-sample reward function, as a module exports it. */
export type SampleRewardFunction = (completion: string, prompt: string, meta: RewardSampleMeta) => number | Promise<number>;

/** A batch reward, as a module exports it: one reward per row of the rollout. */
export interface BatchRewardFunction {
  batch(input: RewardInput): readonly number[] | Promise<readonly number[]>;
}

const COMPILE_FIRST = new Set(['.ts', '.mts', '.cts', '.tsx']);

/** File path and export name of a `PATH#EXPORT` argument, checked before anything is imported. */
export function parseModuleSpec(arg: string): { file: string; exportName: string } {
  const hash = arg.lastIndexOf('#');
  const file = hash < 0 ? arg : arg.slice(0, hash);
  const exportName = hash < 0 ? 'default' : arg.slice(hash + 1) || 'default';
  if (!file) throw new Error(`reward module spec 'module:${arg}' names no file: use 'module:./path/file.mjs#exportName'`);
  if (COMPILE_FIRST.has(extname(file))) {
    throw new Error(`reward module ${file}: TypeScript must be compiled to JavaScript first (e.g. npx tsc, then 'module:./dist/…/${file.replace(/\.[mc]?tsx?$/, '.js').split('/').pop()}#${exportName}')`);
  }
  return { file, exportName };
}

async function loadExport(name: string, file: string, exportName: string): Promise<SampleRewardFunction | BatchRewardFunction> {
  const path = resolve(file);
  if (!existsSync(path)) throw new RewardSourceError(name, `reward module ${file} not found (looked at ${path})`);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (e) {
    throw new RewardSourceError(name, `reward module ${file} failed to load: ${(e as Error).message}`);
  }
  const x = mod[exportName];
  if (x === undefined) throw new RewardSourceError(name, `reward module ${file} has no export '${exportName}' (it exports ${Object.keys(mod).join(', ') || 'nothing'})`);
  if (typeof x === 'function') return x as SampleRewardFunction;
  if (x !== null && typeof x === 'object' && typeof (x as BatchRewardFunction).batch === 'function') return x as BatchRewardFunction;
  throw new RewardSourceError(name, `reward module ${file}: export '${exportName}' is a ${typeof x}, not a function (completion, prompt, meta) => number or an object { batch(input) => number[] }`);
}

/** Scores the rollout one sample at a time; concurrent when the function returns promises. */
async function perSample(name: string, fn: SampleRewardFunction, input: RewardInput): Promise<unknown[]> {
  const at = (i: number, e: unknown): RewardSourceError =>
    new RewardSourceError(name, `reward ${name} threw on sample ${i} (completion ${quoteCompletion(input.completions[i]!)}): ${(e as Error)?.message ?? String(e)}`);
  const out = input.completions.map((c, i) => {
    try {
      const r = fn(c, input.prompts[i]!, { index: i, promptIds: input.promptIds[i]!, completionIds: input.completionIds[i]! });
      return r instanceof Promise ? r.catch((e) => Promise.reject(at(i, e))) : r;
    } catch (e) {
      throw at(i, e);
    }
  });
  return Promise.all(out);
}

/** The export `exportName` of the module `file` as a reward source (see the header). */
export function moduleReward(arg: string): RewardSource {
  const { file, exportName } = parseModuleSpec(arg);
  const name = `module:${file}#${exportName}`;
  let loaded: Promise<SampleRewardFunction | BatchRewardFunction> | null = null;
  const load = () => (loaded ??= loadExport(name, file, exportName));
  return {
    name,
    ready: async () => {
      await load();
    },
    async score(input): Promise<RewardOutput> {
      const fn = await load();
      let rewards: readonly unknown[];
      if (typeof fn === 'function') rewards = await perSample(name, fn, input);
      else {
        try {
          rewards = await fn.batch(input);
        } catch (e) {
          throw new RewardSourceError(name, `reward ${name} (batch) threw on a batch of ${input.completions.length}: ${(e as Error)?.message ?? String(e)}`);
        }
        if (!Array.isArray(rewards)) throw new RewardSourceError(name, `reward ${name} (batch) returned ${typeof rewards}, not an array of numbers`);
      }
      checkFinite(name, rewards, input);
      return { rewards: [...rewards], spread: null, tokenRewards: null };
    },
    dispose() {},
  };
}
