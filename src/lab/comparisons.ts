/**
 * Small pieces the lab's experiments share with the demo's preferences phase (demo.ts): comparisons of
 * two fresh samples of the initial policy, and resumable steps with done-markers.
 */
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel, resolveModelDir } from '../models/hub.js';
import { loadTokenizer } from '../text/index.js';
import { sample } from '../rlhf/online/rollout.js';
import type { Comparison } from './annotators.js';
import { writeAtomic, readJsonFile } from '../atomic.js';

/**
 * A resumable step: skipped (its saved result returned) when `dir/<name>.done.json` holds this
 * fingerprint; otherwise run, and the marker written last. A marker of another fingerprint means the
 * step's outputs belong to another configuration: `clean` (the step's own folder) is removed first, so a
 * trainer does not refuse the stale checkpoint there.
 */
export async function resumable<T>(dir: string, name: string, fingerprint: unknown, run: () => Promise<T>, clean?: string): Promise<T> {
  const marker = join(dir, `${name}.done.json`);
  if (existsSync(marker)) {
    const saved = readJsonFile<{ fingerprint: unknown; result: T }>(marker);
    if (JSON.stringify(saved.fingerprint) === JSON.stringify(fingerprint)) return saved.result;
    rmSync(marker);
    if (clean) rmSync(clean, { recursive: true, force: true });
  }
  const result = await run();
  writeAtomic(marker, JSON.stringify({ fingerprint, result }));
  return result;
}

/**
 * `n` comparisons, each of two fresh unconditional samples of `model` (temperature 1, no top-k/p), as the
 * demo's preferences phase draws them: 2n samples in batches of 128, sample 2i against 2i + 1.
 */
export function sampleComparisons(model: string, n: number, maxNewTokens: number, seed: number, say: (l: string) => void): Comparison[] {
  const policy = loadModel(model);
  const tok = loadTokenizer(resolveModelDir(model));
  try {
    const settings = { maxNewTokens, temperature: 1, topK: 0, topP: 1 };
    const texts: string[] = [];
    for (let i = 0; i < 2 * n; i += 128) {
      texts.push(...sample(policy, tok, Array.from({ length: Math.min(128, 2 * n - i) }, () => ''), settings, seed, i).completions);
      say(`sampled ${texts.length}/${2 * n}`);
    }
    return Array.from({ length: n }, (_, i) => ({ prompt: '', a: texts[2 * i]!, b: texts[2 * i + 1]! }));
  } finally {
    policy.dispose();
  }
}
