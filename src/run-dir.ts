/**
 * What every training run does with its output directory, in one place (no native code, so the pure tests
 * cover it): an exclusive lock, so a second run on the same directory fails at once naming the holder; the
 * append-safe metrics log; the clean-up and recovery of what a killed run left behind; and the resume
 * check that names the configuration fields that differ.
 */
import type { TensorBoardWriter } from './tensorboard.js';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync, statSync, truncateSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { writeAtomic } from './atomic.js';

// ---- the lock

/** What out/.lock holds: who runs there, so a second run can name it and a stale lock can be recognised. */
export interface LockHolder {
  pid: number;
  host: string;
  /** When the run took the lock (ISO time, for people). */
  started: string;
  /** The process's start time in clock ticks since boot (/proc/<pid>/stat field 22), null where unknown: tells a reused PID apart. */
  procStart: number | null;
}

export interface RunLock {
  readonly path: string;
  /** Removes the lock (idempotent; a lock file another run has since taken is left alone). */
  release(): void;
}

export const LOCK_FILE = '.lock';

/** Field 22 of /proc/<pid>/stat (start time after boot), or null where /proc is missing or the process is gone. */
export function processStartTime(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces or ')': count fields after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const v = Number(fields[22 - 3]);
    return Number.isFinite(v) ? v : null;
  } catch {
    return null;
  }
}

/** Whether the holder of a lock still runs: same host, its PID alive and (where /proc tells) started when the lock says. */
function holderAlive(h: LockHolder): boolean {
  if (h.host !== hostname()) return true; // another machine (a shared filesystem): it cannot be checked from here
  try {
    process.kill(h.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  const now = processStartTime(h.pid);
  return h.procStart === null || now === null || now === h.procStart; // a different start time: the PID was reused
}

function readHolder(path: string): LockHolder | null {
  try {
    const h = JSON.parse(readFileSync(path, 'utf8')) as LockHolder;
    return Number.isInteger(h.pid) && typeof h.host === 'string' ? h : null;
  } catch {
    return null;
  }
}

/** Creates `path` exclusively (O_EXCL) with `text`; false when it exists. */
function createExclusive(path: string, text: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'wx');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
  return true;
}

/** Seconds since a file was last written, or null when it is gone. */
function ageSeconds(path: string): number | null {
  try {
    return (Date.now() - statSync(path).mtimeMs) / 1000;
  } catch {
    return null;
  }
}

/**
 * Removes a stale lock under a take-over lock of its own (O_EXCL), so two runs that both find the same stale
 * lock cannot both take it: the second finds the first's fresh lock when it looks again.
 */
function removeStale(path: string, stale: string): void {
  const takeover = `${path}.takeover`;
  const age = ageSeconds(takeover);
  if (age !== null && age > 10) rmSync(takeover, { force: true }); // left by a run killed in these few lines
  if (!createExclusive(takeover, String(process.pid))) return;
  try {
    if (existsSync(path) && readFileSync(path, 'utf8') === stale) unlinkSync(path);
  } finally {
    rmSync(takeover, { force: true });
  }
}

/**
 * Takes the exclusive lock of run directory `out` (creating it): out/.lock, created with O_EXCL, holding this
 * process's PID, host and start time. A live holder (this process included) makes it fail at once with a
 * message naming its PID; the lock of a dead process, or of a PID since reused, is taken over. The lock is
 * released by `release()` and, as a backstop, when the process exits; directories the lock created are
 * removed with it when the run left them empty, so a run refused early leaves no trace.
 */
export function lockRunDir(out: string): RunLock {
  const created = mkdirSync(out, { recursive: true });
  const path = join(out, LOCK_FILE);
  const me: LockHolder = { pid: process.pid, host: hostname(), started: new Date().toISOString(), procStart: processStartTime(process.pid) };
  const text = JSON.stringify(me) + '\n';
  for (let attempt = 0; attempt < 5; attempt++) {
    if (createExclusive(path, text)) {
      const release = () => {
        process.off('exit', release);
        try {
          if (readFileSync(path, 'utf8') === text) unlinkSync(path);
        } catch {
          // already gone
        }
        if (created !== undefined) removeEmpty(resolve(out), resolve(created));
      };
      process.on('exit', release);
      return { path, release };
    }
    let seen: string;
    try {
      seen = readFileSync(path, 'utf8');
    } catch {
      continue; // released meanwhile
    }
    const holder = readHolder(path);
    if (holder === null) {
      // Created but not yet written (the holder is between two system calls), or torn by a kill: wait it out.
      if ((ageSeconds(path) ?? 0) < 2) throw new Error(`${out} is being locked by another run (${path} is being written): try again`);
    } else if (holderAlive(holder)) {
      const self = holder.pid === process.pid && holder.host === hostname() ? ', this process' : '';
      throw new Error(`${out} is in use by another run (PID ${holder.pid} on ${holder.host}${self}, started ${holder.started}): wait for it to finish or use another output directory${holder.host === hostname() ? '' : `; if that run is gone, remove ${path}`}`);
    }
    removeStale(path, seen);
  }
  throw new Error(`${out}: could not take ${path} (another run keeps taking it)`);
}

/** Removes `dir` and its parents up to `top` while they are empty. */
function removeEmpty(dir: string, top: string): void {
  for (let d = dir; ; d = dirname(d)) {
    try {
      rmdirSync(d);
    } catch {
      return;
    }
    if (d === top || dirname(d) === d) return;
  }
}

/** Runs `fn` holding the lock of `out`; released however `fn` ends. */
export async function withRunLock<T>(out: string, fn: () => Promise<T>): Promise<T> {
  const lock = lockRunDir(out);
  try {
    return await fn();
  } finally {
    lock.release();
  }
}

// ---- the metrics log

/**
 * Opens a run's metrics.jsonl for appending. Resuming from step k keeps only the rows with step ≤ k (later
 * ones belong to the interrupted run); a fresh run (resumedFrom null) starts it empty. A last line cut short
 * (a kill or a full disk mid-append) is dropped with a warning, never blocking the resume; a broken line
 * anywhere else is an error naming the file and line. The rewrite is atomic. An append that fails is cut
 * back, so a failed write leaves no partial line for the next one to follow.
 */
export function openMetricsLog(path: string, resumedFrom: number | null, warn: (line: string) => void = (l) => process.stderr.write(l + '\n'), tensorboard?: TensorBoardWriter): (row: Record<string, unknown>) => void {
  const kept = existsSync(path) && resumedFrom !== null ? rowsUpTo(path, resumedFrom, warn) : [];
  const text = kept.map((l) => l + '\n').join('');
  writeAtomic(path, text);
  let size = Buffer.byteLength(text);
  return (row) => {
    const line = JSON.stringify(row) + '\n';
    try {
      writeFileSync(path, line, { flag: 'a' });
    } catch (e) {
      try {
        truncateSync(path, size);
      } catch {
        // the original error says more
      }
      throw new Error(`${path}: cannot append a metrics row (${(e as Error).message})`);
    }
    size += Buffer.byteLength(line);
    if (typeof row.step === 'number') tensorboard?.scalars(row.step, row);
  };
}

function rowsUpTo(path: string, step: number, warn: (line: string) => void): string[] {
  const text = readFileSync(path, 'utf8');
  const lines = text.split('\n');
  const torn = lines.pop()!; // after the last newline: '' unless the last line was cut short
  const rows: string[] = [];
  lines.forEach((l, i) => {
    if (!l) return;
    let row: { step?: unknown };
    try {
      row = JSON.parse(l) as { step?: unknown };
    } catch (e) {
      throw new Error(`${path}:${i + 1}: not a JSON metrics row (${(e as Error).message}); fix or remove the line, or use --fresh`);
    }
    if (typeof row.step === 'number' && row.step <= step) rows.push(l);
  });
  if (torn) warn(`${path}:${lines.length + 1}: the last line is incomplete (a run stopped while writing it): dropped`);
  return rows;
}

// ---- crash leftovers

/** A temp or old sibling of an atomic directory write (src/atomic.ts writeDirAtomic), or a temp file of writeAtomic. */
const LEFTOVER = /^(.+)\.(tmp|old)-(\d+)-[0-9a-f]{8}$|^(.+)\.(\d+)\.tmp$/;

function pidAlive(pid: number): boolean {
  if (pid === process.pid) return false; // this run has not written anything yet
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** A temp directory is complete when its trainer.json (a checkpoint's last file) parses. */
function completeCheckpoint(dir: string): boolean {
  try {
    JSON.parse(readFileSync(join(dir, 'trainer.json'), 'utf8'));
    return true;
  } catch {
    return false;
  }
}

/**
 * Cleans what killed runs left in `out`: temp and old directories of atomic directory writes and temp files
 * of atomic file writes (of processes no longer running). Where a kill fell between the two renames of a
 * directory write, the target is missing: the complete new directory (a temp one whose trainer.json parses)
 * or else the previous one (`.old-`) is put back first, so the rerun resumes instead of starting over.
 * Returns what it did, one line each.
 */
export function recoverRunDir(out: string): string[] {
  if (!existsSync(out)) return [];
  const groups = new Map<string, { tmp: string[]; old: string[]; files: string[] }>();
  for (const f of readdirSync(out)) {
    const m = LEFTOVER.exec(f);
    if (!m || pidAlive(Number(m[3] ?? m[5]))) continue;
    const target = m[1] ?? m[4]!;
    const g = groups.get(target) ?? { tmp: [], old: [], files: [] };
    (m[2] === 'tmp' ? g.tmp : m[2] === 'old' ? g.old : g.files).push(join(out, f));
    groups.set(target, g);
  }
  const done: string[] = [];
  for (const [name, g] of groups) {
    const target = join(out, name);
    if (!existsSync(target)) {
      const back = g.tmp.find(completeCheckpoint) ?? g.old[0];
      if (back) {
        renameSync(back, target);
        done.push(`${target} recovered from ${back} (a run was stopped while replacing it)`);
      }
    }
    for (const p of [...g.tmp, ...g.old, ...g.files]) {
      if (!existsSync(p)) continue;
      rmSync(p, { recursive: true, force: true });
      done.push(`removed ${p}, left by a stopped run`);
    }
  }
  return done;
}

// ---- the resume check

const show = (v: unknown): string => (v === undefined ? '(absent)' : JSON.stringify(v));

/** The fields where `a` and `b` differ, as `path: a → b` (nested objects compared key by key). */
export function configDiff(a: unknown, b: unknown, prefix = ''): string[] {
  const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (isObj(a) && isObj(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
    return keys.flatMap((k) => configDiff(a[k], b[k], prefix ? `${prefix}.${k}` : k));
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [`${prefix || '(config)'}: ${show(a)} → ${show(b)}`];
}

/**
 * Refuses to resume from a checkpoint written under another configuration, naming the fields that differ.
 * The output path is not part of the comparison, so a run directory that was moved still resumes.
 */
export function checkResumeConfig(out: string, saved: unknown, current: unknown, what = 'a checkpoint of a different configuration'): void {
  const strip = (c: unknown) => (c !== null && typeof c === 'object' && !Array.isArray(c) ? { ...(c as Record<string, unknown>), out: undefined } : c);
  const diff = configDiff(strip(saved), strip(current));
  if (diff.length === 0) return;
  const shown = diff.slice(0, 4).join('; ') + (diff.length > 4 ? `; and ${diff.length - 4} more` : '');
  throw new Error(`${out} holds ${what} (${shown}): use another --out, or --fresh to start over`);
}

