/**
 * `rlhf bench generate`: stories260K sampling throughput (new tokens/s; 128 new tokens from BOS,
 * temperature 1) at batch 1, 16, 64 and 256, against bench/baseline/generate.py — a plain-PyTorch
 * KV-cache loop on the same libtorch, weights and thread counts. Ratios ours / Python (> 1: we are faster).
 * Neither side stops early (same work); ours also returns every token's raw log-prob, which the
 * baseline does not compute.
 *
 * Besides throughput it reports the time per decode step and, from a separate profiled run
 * (profileBoundary), the share of our time spent outside libtorch's calls (JavaScript and the boundary).
 */
import { generate } from '../src/generate/generate.js';
import { loadModel } from '../src/models/hub.js';
import { getNumThreads, profileBoundary, setNumThreads } from '../src/tensor/index.js';
import { type BenchResult, type Case, captureEnv, defaultPython, log, now, PythonBaseline, runInterleaved, since } from './common.js';

export interface GenerateBenchOptions {
  reps?: number;
  threads?: number;
  python?: string;
  quick?: boolean;
}

export async function runGenerateBench(opts: GenerateBenchOptions = {}): Promise<BenchResult & { perStep: Record<string, { oursMs: number; theirsMs: number; outsideNativeShare: number; nativeCallsPerStep: number }> }> {
  const quick = opts.quick ?? false;
  const reps = opts.reps ?? (quick ? 2 : 5);
  const threads = opts.threads ?? getNumThreads().torch;
  const newTokens = quick ? 8 : 128;
  const batches = quick ? [1, 16] : [1, 16, 64, 256];
  const python = defaultPython(opts.python);
  log(`generate: starting the Python baseline (${python}), ${threads} thread(s) each side, ${reps} reps${quick ? ', quick' : ''}`);
  process.env.RLHF_BENCH_NEW_TOKENS = String(newTokens);
  const baseline = await PythonBaseline.start('generate.py', { python, threads });
  setNumThreads(threads);
  const model = loadModel('stories260k');
  try {
    const run = (b: number) => generate(model, Array.from({ length: b }, () => [1]), { maxNewTokens: newTokens, temperature: 1, eosTokenIds: [] });
    const cases: Case[] = batches.map((b) => ({
      name: `b${b}`, unit: 'tokens/s', kind: 'rate', iters: 1,
      toUnit: (s, it) => (b * newTokens * it) / s,
      ours: (it) => {
        const t0 = now();
        for (let i = 0; i < it; i++) run(b);
        return since(t0);
      },
    }));
    const { results, ratios } = await runInterleaved(cases, baseline, reps);
    const perStep: Record<string, { oursMs: number; theirsMs: number; outsideNativeShare: number; nativeCallsPerStep: number }> = {};
    for (const b of batches) {
      const p = profileBoundary(() => run(b));
      const r = results[`b${b}`]!;
      perStep[`b${b}`] = {
        oursMs: ((b * 1000) / r.ours.median),
        theirsMs: ((b * 1000) / r.theirs.median),
        outsideNativeShare: 1 - p.nativeSeconds / p.totalSeconds,
        nativeCallsPerStep: p.calls / newTokens,
      };
    }
    const env = captureEnv(baseline.info, { reps, quick });
    return { bench: 'generate', env, results, ratios, perStep };
  } finally {
    model.dispose();
    await baseline.close();
  }
}
