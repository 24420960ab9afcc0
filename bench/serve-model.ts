/**
 * `rlhf bench serve-model`: `rlhf serve-model` on stories260K over loopback with 1, 8 and 32 concurrent
 * clients (each sends `perClient` completion requests one after another: bounded), against `generate` at
 * the same batch size in the same process — what dynamic batching keeps of the batched throughput once
 * requests arrive over HTTP one by one. Per level: requests/s, p50/p99 latency, generated tokens/s, the
 * server's mean batch; `ratios.cN` = served tokens/s ÷ generate's tokens/s at batch N (1 would be free
 * serving; < 1 is the price of HTTP, JSON and batches that fill up while the previous one decodes).
 * Repetitions interleave (served, generate, served, …); medians, with min and max. The clients run in the
 * server's process, so they share its CPU.
 */
import { performance } from 'node:perf_hooks';
import { generate } from '../src/generate/generate.js';
import { loadModel, resolveModelDir } from '../src/models/hub.js';
import { loadTokenizer } from '../src/text/index.js';
import { serveModel } from '../src/serve/model-server.js';
import { getNumThreads, setNumThreads } from '../src/tensor/index.js';
import { median } from './common.js';

/** Options of the serve-model bench. */
export interface ServeBenchOptions {
  reps?: number;
  threads?: number;
  quick?: boolean;
}

interface Level {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  tokensPerSecond: number;
  meanBatch: number;
  generateTokensPerSecond: number;
  spread: { tokensPerSecond: [number, number]; generateTokensPerSecond: [number, number] };
}

const quantile = (xs: readonly number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};

/** Runs the bench (see the header) and returns its JSON. */
export async function runServeBench(opts: ServeBenchOptions = {}) {
  const quick = opts.quick ?? false;
  const reps = opts.reps ?? (quick ? 1 : 3);
  const threads = opts.threads ?? getNumThreads().torch;
  setNumThreads(threads);
  const maxTokens = quick ? 8 : 32;
  const perClient = quick ? 1 : 2;
  const levels = [1, 8, 32];
  const server = await serveModel({ model: 'stories260k', windowMs: 5, maxBatch: 64 }); // serve-model's defaults
  const model = loadModel('stories260k');
  const ids = loadTokenizer(resolveModelDir('stories260k')).encode('Once upon a time', { addBos: true }); // the served prompt
  const body = (seed: number) => JSON.stringify({ model: 'stories260k', prompt: 'Once upon a time', max_tokens: maxTokens, temperature: 1, seed });
  try {
    const served = async (c: number) => {
      const latencies: number[] = [];
      let tokens = 0;
      const batchesBefore = server.batchSizes.length;
      const t0 = performance.now();
      await Promise.all(Array.from({ length: c }, async (_, k) => {
        for (let r = 0; r < perClient; r++) {
          const t = performance.now();
          const res = await fetch(`${server.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body(k * perClient + r) });
          const json = (await res.json()) as { usage: { completion_tokens: number } };
          latencies.push(performance.now() - t);
          tokens += json.usage.completion_tokens;
        }
      }));
      const seconds = (performance.now() - t0) / 1000;
      const batches = server.batchSizes.slice(batchesBefore);
      return { rps: (c * perClient) / seconds, latencies, tps: tokens / seconds, meanBatch: batches.reduce((a, x) => a + x, 0) / batches.length };
    };
    const direct = (b: number) => {
      const t0 = performance.now();
      const out = generate(model, Array.from({ length: b }, () => ids), { maxNewTokens: maxTokens, temperature: 1, seed: 1 });
      return out.reduce((a, c) => a + c.tokens.length, 0) / ((performance.now() - t0) / 1000);
    };
    await served(1); // warm-up: first-call allocations on both paths
    direct(1);
    const results: Record<string, Level> = {};
    const ratios: Record<string, number> = {};
    for (const c of levels) {
      const runs: Awaited<ReturnType<typeof served>>[] = [];
      const gen: number[] = [];
      for (let r = 0; r < reps; r++) {
        runs.push(await served(c));
        gen.push(direct(c));
      }
      const lat = runs.flatMap((x) => x.latencies);
      const tps = runs.map((x) => x.tps);
      results[`c${c}`] = {
        requestsPerSecond: median(runs.map((x) => x.rps)), p50Ms: quantile(lat, 0.5), p99Ms: quantile(lat, 0.99), tokensPerSecond: median(tps),
        meanBatch: median(runs.map((x) => x.meanBatch)), generateTokensPerSecond: median(gen),
        spread: { tokensPerSecond: [Math.min(...tps), Math.max(...tps)], generateTokensPerSecond: [Math.min(...gen), Math.max(...gen)] },
      };
      ratios[`c${c}`] = results[`c${c}`]!.tokensPerSecond / results[`c${c}`]!.generateTokensPerSecond;
    }
    return {
      bench: 'serve-model',
      env: { node: process.version, threads: getNumThreads(), model: 'stories260k', dtype: 'float32', maxTokens, perClient, reps, quick, prompt: 'Once upon a time', promptTokens: ids.length },
      results, ratios,
    };
  } finally {
    model.dispose();
    await server.close();
  }
}
