/**
 * The settings a test run takes from outside, so the same suite can run on another thread count and
 * seed (scripts/test.mjs --numeric and `npm run test:matrix` set them):
 *   RLHF_TEST_THREADS  libtorch's (and OpenBLAS's) thread count for the tests that fix one (default 1);
 *   RLHF_TEST_SEED     the seed of the "learning works" runs (default 0): to a short RL run another
 *                      processor is just another seed, so those tests must pass for several;
 *   RLHF_TEST_REPORT   a file: each "learning works" test appends one JSON line with its margin there.
 * RLHF_SCALAR_KERNELS=1 (read by the addon itself) forces the scalar kernel loops.
 */
import { appendFileSync } from 'node:fs';
import { setNumThreads } from '../src/tensor/index.js';

function intFromEnv(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name} must be an integer in [${min}, ${max}], got '${raw}'`);
  return n;
}

export const TEST_THREADS = intFromEnv('RLHF_TEST_THREADS', 1, 1, 64);
export const TEST_SEED = intFromEnv('RLHF_TEST_SEED', 0, 0, 2 ** 31 - 1);

/**
 * A test's own fixed seed moved by RLHF_TEST_SEED (unchanged at the default 0): for the seeds of the data a
 * learning test samples, so another run seed also draws other data, as another processor would.
 */
export function testSeed(base: number): number {
  return base + 1000 * TEST_SEED;
}

/** Sets libtorch's and OpenBLAS's pools to RLHF_TEST_THREADS (call in a test file's `before`). */
export function useTestThreads(): void {
  setNumThreads(TEST_THREADS);
}

/** What a "learning works" test measured against the bar it must clear, for the matrix's table of margins. */
export interface Margin {
  test: string;
  /** e.g. 's.e. gained', 'held-out accuracy' */
  metric: string;
  value: number;
  /** the test passes when value ≥ bar */
  bar: number;
}

/** Appends one row, with the run's seed, thread count and kernel path, to RLHF_TEST_REPORT when it is set. */
function appendReport(row: Record<string, unknown>): void {
  const file = process.env.RLHF_TEST_REPORT;
  if (!file) return;
  const kernels = process.env.RLHF_SCALAR_KERNELS ? 'scalar' : 'default';
  appendFileSync(file, JSON.stringify({ ...row, seed: TEST_SEED, threads: TEST_THREADS, kernels }) + '\n');
}

/** Reports a "learning works" test's margin, for the matrix's table. */
export function reportMargin(m: Margin): void {
  appendReport({ ...m });
}

/**
 * Reports a float comparison's worst difference and its bound (with the tuned bound it replaced): the table
 * of tolerances across kernel paths and thread counts.
 */
export function reportBound(test: string, worst: number, bound: number, old: number): void {
  appendReport({ kind: 'bound', test, worst, bound, old });
}
