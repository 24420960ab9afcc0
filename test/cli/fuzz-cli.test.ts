// A seeded fuzz of the command line (issue 15): 200 cases of random configs (wrong types, out-of-range
// numbers, nesting, unknown keys, lists and scalars at the top), random --set, and random data lines
// (binary, 1 MB, empty, wrong shapes) against `train rm`, `train dpo`, `eval rm` and `generate`, each
// capped at 1–2 steps. Every case must end within its time limit with exit 0, or exit 1/2 and a one-line
// message without a stack, and leave no half-written file. Most cases run in this process through the
// CLI's main() (a process start costs about a second); a few run as real processes, one at a time.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { mulberry32 } from '../../src/random.js';
import { dataWarnings } from '../../src/data/load.js';
import { rlhf, rlhfInProcess, type Run } from '../model/run-cli.js';

const CASES = 200;
const IN_PROCESS_LIMIT_MS = 20_000;
const TMP = mkdtempSync(join(tmpdir(), 'rlhf-fuzz-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

type Rand = () => number;
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;

const WEIRD: readonly unknown[] = [-1, 0, 1, 2, 0.5, 1.5, 1e300, -1e300, '.nan', '.inf', 'x', '', true, null, [1, 2], { a: 1 }];
/** Keys of the reward and DPO configs (some valid for one command only, some misspelt). */
const KEYS = [
  'seed', 'out', 'data.path', 'data.format', 'data.maxTokens', 'data.splitRatio', 'data.skipInvalid', 'data.limit', 'data.splitKey',
  'train.lr', 'train.batchSize', 'train.gradAccum', 'train.epochs', 'train.threads', 'train.warmupSteps', 'train.schedule',
  'train.clipGradNorm', 'train.evalEvery', 'train.checkpointEvery', 'loss.type', 'loss.margin', 'loss.labelSmoothing', 'loss.beta',
  'model.init', 'model.heads', 'model.scratch.layers', 'model.scratch.hiddenSize', 'model.policy', 'model.reference', 'trian.lr', 'data', 'loss',
];

/** A YAML value as --set takes it. */
const setValue = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v));

function randomConfig(r: Rand): unknown {
  const roll = r();
  if (roll < 0.3) return {}; // the defaults: a run that should succeed
  if (roll < 0.35) return [1, 'a'];
  if (roll < 0.1) return pick(r, [42, 'text', true]);
  const cfg: Record<string, unknown> = {};
  for (let i = Math.floor(r() * 4); i > 0; i--) {
    const path = pick(r, KEYS).split('.');
    let node = cfg;
    for (const k of path.slice(0, -1)) node = (node[k] = typeof node[k] === 'object' && node[k] !== null ? node[k] : {}) as Record<string, unknown>;
    const v = pick(r, WEIRD);
    node[path.at(-1)!] = v === '.nan' ? NaN : v === '.inf' ? Infinity : v;
  }
  return cfg;
}

const PAIR = (i: number) => JSON.stringify({ prompt: 'Once upon a time', chosen: ` there was a cat ${i}`, rejected: ` the end ${i}` });
const LINES: readonly ((r: Rand, i: number) => string | Buffer)[] = [
  (_, i) => PAIR(i), (_, i) => PAIR(i), (_, i) => PAIR(i), (_, i) => PAIR(i),
  () => '',
  () => JSON.stringify({ prompt: 'p', chosen: 'same', rejected: 'same' }),
  () => JSON.stringify({ prompt: 'p', chosen: 1, rejected: null }),
  () => '[1, 2, 3]',
  () => '{"prompt": "trunc',
  (r) => Buffer.from(Array.from({ length: 40 }, () => Math.floor(r() * 256))),
  () => JSON.stringify({ prompt: 'a'.repeat(1 << 20), chosen: ' b', rejected: ' c' }),
];

function randomData(r: Rand, file: string): void {
  const n = 3 + Math.floor(r() * 8);
  const lines = r() < 0.5 ? LINES.slice(0, 5) : LINES; // half the files only pairs and blank lines
  const parts: Buffer[] = [];
  for (let i = 0; i < n; i++) parts.push(Buffer.from(pick(r, lines)(r, i)), Buffer.from('\n'));
  writeFileSync(file, Buffer.concat(parts));
}

/** One case: the command line and the output directory to inspect. */
function randomCase(r: Rand, i: number, rmModel: string): { args: string[]; out: string } {
  const dir = join(TMP, `case-${i}`);
  mkdirSync(dir);
  const data = join(dir, 'data.jsonl');
  randomData(r, data);
  const out = join(dir, 'out');
  const command = pick(r, ['train rm', 'train dpo', 'eval rm', 'generate'] as const);
  const sets = Array.from({ length: Math.floor(r() * 3) }, () => `${pick(r, KEYS)}=${setValue(pick(r, WEIRD))}`);
  if (r() < 0.3) sets.push('data.skipInvalid=true');
  if (r() < 0.1) sets.push(pick(r, ['novalue', '=1', 'a..b=1', 'seed=[1, 2']));
  if (command === 'train rm' || command === 'train dpo') {
    const config = join(dir, 'config.yaml');
    writeFileSync(config, stringify(randomConfig(r)));
    // The caps come last, so they win over the random part (tiny runs, this case's files).
    const caps = [`train.maxSteps=${1 + Math.floor(r() * 2)}`, 'train.epochs=1', `out=${out}`, `data.path=${data}`, 'train.evalEvery=0'];
    return { args: [...command.split(' '), '--config', config, ...sets.flatMap((s) => ['--set', s]), ...caps.flatMap((s) => ['--set', s])], out };
  }
  if (command === 'eval rm') {
    const opts = [['--max-tokens', pick(r, ['64', '0', '-3', '1e300', 'x'])], ['--part', pick(r, ['test', 'all', 'nope'])], ['--threads', pick(r, ['1', '-2', '1000'])], ['--seed', pick(r, ['0', '1e300', '-1'])]];
    const skip = r() < 0.3 ? ['--skip-invalid'] : [];
    return { args: ['eval', 'rm', '--model', rmModel, '--data', data, '--part', 'all', ...skip, ...opts.filter(() => r() < 0.3).flat()], out };
  }
  // 100k characters: over any context, and under the 128 KiB a single argument of a real process may have.
  const prompt = pick(r, ['Once', '', 'a'.repeat(100_000), 'é🎉\u0001', 'Once upon a time '.repeat(50)]);
  const opts = [['--max-new-tokens', pick(r, ['2', '0', '-1', '1e9', '1.5'])], ['--temperature', pick(r, ['0', '1', '-1'])], ['--top-k', pick(r, ['0', '5', '-5'])], ['--top-p', pick(r, ['1', '0', '0.5', '2'])], ['--seed', pick(r, ['0', '1e300', '4294967295'])]];
  return { args: ['generate', '--prompt', prompt, '--max-new-tokens', '2', ...opts.filter(() => r() < 0.5).flat(), ...(r() < 0.3 ? ['--json'] : [])], out };
}

/** Paths under `dir` left half-written: a temp file or directory of an atomic write. */
function leftovers(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir, { recursive: true }) as string[];
  } catch {
    return [];
  }
  return names.filter((n) => /\.tmp-|\.tmp$|\.old-/.test(n));
}

function check(name: string, run: Run, out: string): void {
  const lines = run.stderr.split('\n').filter((l) => l.startsWith('rlhf: '));
  if (run.status === 0) assert.equal(lines.length, 0, `${name}: exit 0 with an error line: ${run.stderr.slice(-300)}`);
  else {
    assert.ok(run.status === 1 || run.status === 2, `${name}: exit ${run.status}: ${run.stderr.slice(-500)}`);
    assert.equal(lines.length, 1, `${name}: exit ${run.status} needs exactly one 'rlhf: ' line: ${run.stderr.slice(-500)}`);
    assert.ok(!/\n\s+at /.test(run.stderr), `${name}: a stack trace without --verbose: ${run.stderr.slice(-500)}`);
  }
  assert.deepEqual(leftovers(out), [], `${name}: half-written files left in ${out}`);
}

const short = (args: readonly string[]): string => args.map((a) => (a.length > 60 ? `<${a.length} chars>` : a)).join(' ');

describe('seeded fuzz of the command line', () => {
  test(`${CASES} cases: exit 0, or 1/2 with one line; none hangs, crashes or leaves a temp file`, { timeout: 240_000 }, async () => {
    const rm = join(TMP, 'rm');
    const pairs = join(TMP, 'pairs.jsonl');
    writeFileSync(pairs, Array.from({ length: 12 }, (_, i) => PAIR(i)).join('\n') + '\n');
    const base = await rlhfInProcess(['train', 'rm', '--set', `data.path=${pairs}`, '--set', `out=${rm}`, '--set', 'train.maxSteps=2', '--set', 'data.splitRatio=0.5']);
    assert.equal(base.status, 0, base.stderr);
    const r = mulberry32(15);
    const tally = new Map<string, number>();
    const warn = dataWarnings.write;
    dataWarnings.write = () => {}; // counted bytes are expected here; keep the test's output readable
    try {
      for (let i = 0; i < CASES; i++) {
        const { args, out } = randomCase(r, i, join(rm, 'model'));
        const name = `case ${i} (rlhf ${short(args)})`;
        // Every 25th case as a real process (a signal or a hard exit would show there); the rest in-process.
        const real = i % 25 === 0;
        let timer: NodeJS.Timeout | undefined;
        const limit = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`${name}: still running after ${IN_PROCESS_LIMIT_MS / 1000} s`)), IN_PROCESS_LIMIT_MS);
        });
        const run = await Promise.race([real ? rlhf(args, IN_PROCESS_LIMIT_MS) : rlhfInProcess(args), limit]).finally(() => clearTimeout(timer));
        check(name, run, out);
        const key = `${args[0] === 'generate' ? 'generate' : args.slice(0, 2).join(' ')}:${run.status}`;
        tally.set(key, (tally.get(key) ?? 0) + 1);
        rmSync(join(TMP, `case-${i}`), { recursive: true, force: true });
      }
    } finally {
      dataWarnings.write = warn;
    }
    console.log(`fuzz: ${[...tally].sort().map(([k, n]) => `${k}×${n}`).join(' ')}`);
  });
});
