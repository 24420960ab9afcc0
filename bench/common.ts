/**
 * Shared benchmark machinery (same work on both sides, both warm, interleaved repetitions): the environment
 * both sides ran in, a long-lived Python baseline process, and a runner that interleaves repetitions
 * (ours, theirs, ours, …) and reports medians with their spread. Every benchmark (engine, generate, rm,
 * ppo) returns a `BenchResult`; `rlhf bench <name> --json` prints it as one line. Progress goes to stderr.
 */
import { type ChildProcessByStdio, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { arch, release, type } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { addonRecord, blasInfo, buildInfo, getNumThreads } from '../src/tensor/index.js';
import { machineInfo, mappedLibraries, type MachineInfo } from '../src/machine.js';

// ---- results ------------------------------------------------------------------------------------------

/** One side's samples of one case, in the case's unit. */
export interface Stats {
  median: number;
  min: number;
  max: number;
  samples: number[];
}

export interface CaseResult {
  ours: Stats;
  theirs: Stats;
  /** e.g. 'us/op', 'GFLOP/s', 'steps/s' */
  unit: string;
}

/** Thread pools as each side reports them after configuration. */
export interface ThreadCounts {
  torch: number;
  interop: number;
  /** OpenBLAS's pool; null when the BLAS in use is not OpenBLAS. */
  blas: number | null;
}

export interface BlasDescription {
  kind: string;
  config: string | null;
  coreType: string | null;
  libraries: string[];
}

/** What the baseline process reports about itself on start (bench/baseline/common.py `hello`). */
export interface BaselineInfo {
  python: string;
  pythonVersion: string;
  torch: string;
  /** The libtorch_cpu shared library the process mapped (null where it could not tell). */
  libtorch: string | null;
  threads: ThreadCounts;
  blas: BlasDescription;
}

export interface BenchEnv {
  node: string;
  python: { path: string; version: string };
  torch: { ours: string; theirs: string };
  /** Both sides should map the same file: then every kernel is the same code. */
  libtorch: { ours: string | null; theirs: string | null };
  threads: { ours: ThreadCounts; theirs: ThreadCounts };
  blas: { ours: BlasDescription; theirs: BlasDescription };
  dtype: string;
  /** The CPU, its vector extensions, the BLAS (with OpenBLAS's core type), OpenMP runtimes and kernel path (src/machine.ts). */
  machine: MachineInfo;
  os: string;
  reps: number;
  quick: boolean;
  /** Our side's malloc policy (native/runtime.cpp keeps freed heap unless told not to); Python's is glibc's default. */
  malloc: string;
}

export interface BenchResult {
  bench: string;
  env: BenchEnv;
  results: Record<string, CaseResult>;
  /** One flat number per comparison, oriented so that > 1 means rlhf-ts is better. */
  ratios: Record<string, number>;
  /** Sanity checks that both sides did the same work (e.g. the same first loss), where a bench has them. */
  checks?: Record<string, { ours: number; theirs: number }>;
  /** What each side's training reached after the same steps (bench peers), per workload and figure. */
  quality?: Record<string, Record<string, { ours: Stats; theirs: Stats }>>;
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function stats(samples: readonly number[]): Stats {
  return { median: median(samples), min: Math.min(...samples), max: Math.max(...samples), samples: [...samples] };
}

export const log = (msg: string): void => {
  process.stderr.write(`[bench] ${msg}\n`);
};

// ---- environment ----------------------------------------------------------------------------------

function osDescription(): string {
  let distro = '';
  try {
    distro = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? '';
  } catch {
    // no os-release: the kernel line alone
  }
  return `${distro ? distro + ', ' : ''}${type()} ${release()} ${arch()}`;
}

/** The environment of both sides; call after both have set their thread counts. */
export function captureEnv(baseline: BaselineInfo, opts: { reps: number; quick: boolean; dtype?: string }): BenchEnv {
  return {
    node: process.version,
    python: { path: baseline.python, version: baseline.pythonVersion },
    torch: { ours: buildInfo().torchVersion, theirs: baseline.torch },
    libtorch: { ours: mappedLibraries('libtorch_cpu')[0] ?? null, theirs: baseline.libtorch ?? null },
    threads: { ours: getNumThreads(), theirs: baseline.threads },
    blas: { ours: blasInfo(), theirs: baseline.blas },
    dtype: opts.dtype ?? 'float32',
    machine: machineInfo(),
    os: osDescription(),
    reps: opts.reps,
    quick: opts.quick,
    malloc: ['MALLOC_MMAP_THRESHOLD_', 'MALLOC_TRIM_THRESHOLD_', 'MALLOC_TOP_PAD_', 'GLIBC_TUNABLES'].some((v) => process.env[v] !== undefined) || process.env.RLHF_MALLOC_TUNING === '0'
      ? 'glibc default or user-set'
      : 'tuned: mmap threshold 32 MiB, trim threshold 128 MiB',
  };
}

// ---- the Python baseline process ------------------------------------------------------------------

/** bench/baseline/, found from this file whether it runs from bench/ (tsx) or dist/bench/. */
export function baselineDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const root = here.split('/').at(-2) === 'dist' ? resolve(here, '..', '..') : resolve(here, '..');
  return join(root, 'bench', 'baseline');
}

/**
 * The baseline's interpreter: --python, else $PYTHON, else the Python whose `torch` is the very libtorch the
 * addon links (recorded by scripts/build-native.mjs: the .venv's for the pip wheel, Debian's /usr/bin/python3
 * for libtorch-dev), else /usr/bin/python3.
 */
export function defaultPython(python?: string): string {
  return python ?? process.env.PYTHON ?? addonRecord().python ?? '/usr/bin/python3';
}

/**
 * A long-lived Python process running one of bench/baseline/*.py: started once (importing torch takes a
 * second or two), then one JSON command per line on its stdin, one JSON answer per line on its stdout.
 * Its stderr is ours, so a Python traceback shows up where the bench's progress does.
 */
export class PythonBaseline {
  private readonly pending: { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void }[] = [];
  private exited: Error | null = null;

  private constructor(
    private readonly child: ChildProcessByStdio<Writable, Readable, null>,
    private readonly lines: Interface,
    readonly info: BaselineInfo,
  ) {}

  /**
   * Starts `script` (a file in bench/baseline/) under `python` with `threads` intra-op threads on both
   * libtorch and OpenBLAS: OPENBLAS_NUM_THREADS must be in the environment before torch loads OpenBLAS,
   * since torch.set_num_threads does not bound OpenBLAS's pool.
   */
  static async start(script: string, opts: { python: string; threads: number; args?: string[] }): Promise<PythonBaseline> {
    const path = join(baselineDir(), script);
    const env = { ...process.env, OPENBLAS_NUM_THREADS: String(opts.threads), OMP_NUM_THREADS: String(opts.threads) };
    const child = spawn(opts.python, [path, '--threads', String(opts.threads), ...(opts.args ?? [])], { env, stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = createInterface({ input: child.stdout });
    const first = await new Promise<Record<string, unknown>>((resolveLine, reject) => {
      const fail = (why: string) => reject(new Error(`Python baseline (${opts.python} ${script}): ${why}`));
      child.once('error', (e: NodeJS.ErrnoException) => fail(e.code === 'ENOENT' ? 'interpreter not found; pass --python or set PYTHON' : e.message));
      child.once('exit', (code) => fail(`exited with code ${code} before it was ready`));
      lines.once('line', (l) => {
        try {
          resolveLine(JSON.parse(l) as Record<string, unknown>);
        } catch {
          fail(`unexpected first line ${JSON.stringify(l.slice(0, 200))}`);
        }
      });
    });
    child.removeAllListeners('exit');
    child.removeAllListeners('error');
    if (typeof first.error === 'string') {
      child.kill();
      throw new Error(`Python baseline (${opts.python}): ${first.error}`);
    }
    const b = new PythonBaseline(child, lines, first as unknown as BaselineInfo);
    lines.on('line', (l) => b.answer(l));
    child.on('exit', (code, signal) => b.fail(new Error(`Python baseline exited (code ${code}, signal ${signal})`)));
    return b;
  }

  private answer(line: string): void {
    const p = this.pending.shift();
    if (!p) return;
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(line) as Record<string, unknown>;
    } catch {
      p.reject(new Error(`Python baseline: unparseable answer ${JSON.stringify(line.slice(0, 200))}`));
      return;
    }
    if (typeof msg.error === 'string') p.reject(new Error(`Python baseline: ${msg.error}`));
    else p.resolve(msg);
  }

  private fail(e: Error): void {
    this.exited = e;
    for (const p of this.pending.splice(0)) p.reject(e);
  }

  /** Sends one command and waits for its answer (commands are answered in order). */
  request(cmd: Record<string, unknown>): Promise<Record<string, unknown>> {
    if (this.exited) return Promise.reject(this.exited);
    return new Promise((res, rej) => {
      this.pending.push({ resolve: res, reject: rej });
      this.child.stdin.write(JSON.stringify(cmd) + '\n');
    });
  }

  /** Runs `iters` iterations of a case; returns the seconds they took (the Python side times itself). */
  async time(name: string, iters: number): Promise<number> {
    const r = await this.request({ case: name, iters });
    if (typeof r.seconds !== 'number') throw new Error(`Python baseline: answer to '${name}' has no seconds`);
    return r.seconds;
  }

  async close(): Promise<void> {
    if (this.exited) return;
    const done = new Promise<void>((res) => this.child.once('exit', () => res()));
    this.child.stdin.end();
    const timer = setTimeout(() => this.child.kill(), 5000);
    await done;
    clearTimeout(timer);
    this.lines.close();
  }
}

// ---- the interleaved runner ---------------------------------------------------------------------------

/** One comparison: the same work on both sides, named the same in the Python baseline's case table. */
export interface Case {
  name: string;
  unit: string;
  /** 'time': lower is better (ratio theirs/ours); 'rate': higher is better (ratio ours/theirs). */
  kind: 'time' | 'rate';
  iters: number;
  /** Converts the seconds `iters` iterations took into the unit. */
  toUnit: (seconds: number, iters: number) => number;
  /** Runs `iters` iterations on our side and returns the seconds they took (setup excluded). */
  ours: (iters: number) => number | Promise<number>;
}

/**
 * For each case: one untimed warm-up run per side, then `reps` interleaved repetitions per side.
 * Returns each side's samples (in the case's unit) and the median ratio oriented so > 1 favours us.
 */
export async function runInterleaved(
  cases: readonly Case[],
  baseline: PythonBaseline,
  reps: number,
): Promise<{ results: Record<string, CaseResult>; ratios: Record<string, number> }> {
  const results: Record<string, CaseResult> = {};
  const ratios: Record<string, number> = {};
  for (const c of cases) {
    await c.ours(c.iters);
    await baseline.time(c.name, c.iters);
    const ours: number[] = [];
    const theirs: number[] = [];
    for (let r = 0; r < reps; r++) {
      // ABBA order (ours first on even reps, theirs first on odd) so a load that drifts during the run
      // does not always fall on the same side.
      if (r % 2 === 0) ours.push(c.toUnit(await c.ours(c.iters), c.iters));
      theirs.push(c.toUnit(await baseline.time(c.name, c.iters), c.iters));
      if (r % 2 === 1) ours.push(c.toUnit(await c.ours(c.iters), c.iters));
    }
    const o = stats(ours);
    const t = stats(theirs);
    results[c.name] = { ours: o, theirs: t, unit: c.unit };
    ratios[c.name] = c.kind === 'time' ? t.median / o.median : o.median / t.median;
    log(`${c.name}: ours ${fmt(o.median)} (${fmt(o.min)}–${fmt(o.max)}), python ${fmt(t.median)} (${fmt(t.min)}–${fmt(t.max)}) ${c.unit}; ratio ${ratios[c.name]!.toFixed(3)}`);
  }
  return { results, ratios };
}

function fmt(x: number): string {
  return x >= 100 ? x.toFixed(0) : x >= 1 ? x.toFixed(2) : x.toPrecision(3);
}

/** Seconds since `t0` (from `now()`). */
export function now(): bigint {
  return process.hrtime.bigint();
}
export function since(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0) / 1e9;
}
