/**
 * `rlhf bench serve`: the feedback app under load. `rlhf feedback serve` runs as its own process on
 * loopback (as deployed: one Node process, one SQLite file in WAL mode with synchronous = FULL), and N
 * scripted annotators — each its own cookie jar, session and CSRF token — repeat "next item → submit a
 * pairwise label" for a bounded time and count. Reported per concurrency level: sustained labels/s,
 * p50/p99 latency of the label submission and of the next-item request, and the check that every
 * acknowledged label (201) is in the database afterwards. There is no baseline to compare against, so
 * `ratios` is empty; the figures are this machine's.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { FeedbackClient } from '../src/app/client.js';
import { FeedbackStore } from '../src/feedback/store.js';
import { packageRoot } from '../src/models/hub.js';
import { log } from './common.js';

/** What the serve bench measures; every field has a default. */
export interface ServeBenchOptions {
  /** Concurrent annotators per level (default [10, 50]; quick: [4]). */
  levels?: number[];
  /** Seconds each level runs (default 8; quick: 2). */
  seconds?: number;
  /** At most this many labels per annotator per level (default 400). */
  maxLabelsPerAnnotator?: number;
  /** Items in the project (default 2000): every annotator may label each once (overlap = the level's N). */
  items?: number;
  quick?: boolean;
}

/** One level's figures. */
export interface ServeLevel {
  annotators: number;
  seconds: number;
  acknowledged: number;
  inDatabase: number;
  errors: number;
  labelsPerSecond: number;
  labelP50Ms: number;
  labelP99Ms: number;
  nextP50Ms: number;
  nextP99Ms: number;
}

const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};

/** `rlhf feedback serve` on DB in a child process (rate limits raised for load), resolved once it listens. */
export function startServer(db: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [join(packageRoot(), 'bin', 'rlhf.js'), 'feedback', 'serve', '--db', db, '--port', '0', '--rate-limit', '1000000', '--auth-rate-limit', '10000'],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  return new Promise((resolve, reject) => {
    let err = '';
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(err);
      if (m) resolve({ child, url: m[1]! });
    });
    child.on('exit', (code) => reject(new Error(`the server exited (${code}) before listening: ${err}`)));
  });
}

/** One level: a fresh database, N annotators labelling for `seconds`, then the database counted. */
async function runLevel(n: number, o: Required<Omit<ServeBenchOptions, 'levels' | 'quick'>>, dir: string): Promise<ServeLevel> {
  const db = join(dir, `serve-${n}.sqlite`);
  const setup = new FeedbackStore(db);
  const p = setup.createProject({ name: 'bench', task: 'pairwise', overlap: n, settings: { goldRate: 0, seed: 1 } });
  setup.transaction(() => {
    for (let i = 0; i < o.items; i++) setup.addItem(p, `Prompt ${i}: tell a story.`, [{ text: `Once upon a time ${i}.` }, { text: `A story number ${i}, told twice as long.` }]);
  });
  const invites = Array.from({ length: n }, () => setup.createInvite('annotator'));
  setup.close();
  const { child, url } = await startServer(db);
  const labelMs: number[] = [];
  const nextMs: number[] = [];
  const acked = new Set<number>();
  let errors = 0;
  try {
    const clients = await Promise.all(invites.map(async (t, i) => {
      const c = new FeedbackClient(url);
      await c.redeem(t, `bench${i}`);
      return c;
    }));
    const t0 = performance.now();
    const deadline = t0 + o.seconds * 1000;
    await Promise.all(clients.map(async (c, i) => {
      for (let k = 0; k < o.maxLabelsPerAnnotator && performance.now() < deadline; k++) {
        let t = performance.now();
        const next = await c.next('bench');
        nextMs.push(performance.now() - t);
        if (next.kind !== 'item') return;
        t = performance.now();
        const r = await c.label(next.assignment.id, { strength: ((i + k) % 7) - 3 });
        labelMs.push(performance.now() - t);
        if (r.status === 201) acked.add(r.data.labelId!);
        else errors++;
      }
    }));
    const seconds = (performance.now() - t0) / 1000;
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
    const check = FeedbackStore.openExisting(db);
    const stored = new Set((check.db.prepare('SELECT id FROM labels').all() as { id: number }[]).map((r) => r.id));
    check.close();
    const inDatabase = [...acked].filter((id) => stored.has(id)).length;
    return {
      annotators: n, seconds, acknowledged: acked.size, inDatabase, errors, labelsPerSecond: acked.size / seconds,
      labelP50Ms: quantile(labelMs, 0.5), labelP99Ms: quantile(labelMs, 0.99), nextP50Ms: quantile(nextMs, 0.5), nextP99Ms: quantile(nextMs, 0.99),
    };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

/** Runs every level; throws if any acknowledged label is missing from the database. */
export async function runServeBench(opts: ServeBenchOptions = {}) {
  const quick = opts.quick ?? false;
  const levels = opts.levels ?? (quick ? [4] : [10, 50]);
  const o = { seconds: opts.seconds ?? (quick ? 2 : 8), maxLabelsPerAnnotator: opts.maxLabelsPerAnnotator ?? 400, items: opts.items ?? 2000 };
  const dir = mkdtempSync(join(tmpdir(), 'rlhf-bench-serve-'));
  try {
    const results: ServeLevel[] = [];
    for (const n of levels) {
      log(`[bench serve] ${n} annotators for ${o.seconds} s`);
      const r = await runLevel(n, o, dir);
      if (r.inDatabase !== r.acknowledged) throw new Error(`${r.acknowledged - r.inDatabase} acknowledged labels missing from the database at ${n} annotators`);
      results.push(r);
    }
    const sqlite = new FeedbackStore(join(dir, 'version.sqlite'));
    const sqliteVersion = (sqlite.db.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v;
    sqlite.close();
    return {
      bench: 'serve',
      env: { node: process.version, sqlite: sqliteVersion, cpu: cpus()[0]?.model ?? 'unknown', cpus: cpus().length, quick, ...o },
      levels: results,
      ratios: {},
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
