/**
 * Writing an output file (or directory) so that a reader (or a crash) never sees half of it: the text goes
 * to a temporary file beside the target, which is then renamed over it (rename is atomic on one filesystem).
 */
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { randomBytes } from 'node:crypto';

export function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

/**
 * Writes a directory atomically: `fill(tmp)` writes into a sibling temp directory, which then replaces
 * `dir` by rename, so a crash leaves either the old directory or the complete new one. On failure the
 * temp directory is removed and an existing `dir` is put back. A kill between the two renames leaves no
 * `dir` but its `.old-` and complete `.tmp-` siblings: src/run-dir.ts recoverRunDir puts one back.
 */
export function writeDirAtomic(dir: string, fill: (tmp: string) => void): void {
  const target = resolve(dir);
  const tmp = `${target}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const old = `${target}.old-${process.pid}-${randomBytes(4).toString('hex')}`;
  mkdirSync(tmp, { recursive: true });
  let moved = false;
  try {
    fill(tmp);
    if (existsSync(target)) {
      renameSync(target, old);
      moved = true;
    }
    renameSync(tmp, target);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    if (moved && !existsSync(target)) renameSync(old, target);
    throw e;
  }
  if (moved) rmSync(old, { recursive: true, force: true });
}

/**
 * A JSON file the run wrote (trainer state, manifests, resume markers), parsed, with any failure naming the
 * file: a zero-length or torn file otherwise gives `Unexpected end of JSON input` and no path.
 */
export function readJsonFile<T>(path: string): T {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`${path}: cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { cause: e });
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    const what = text.length === 0 ? 'is empty' : `is not valid JSON (${(e as Error).message})`;
    throw new Error(`${path} ${what}`, { cause: e });
  }
}

/** The rows of a JSON Lines file the run wrote, blank lines skipped; a bad line is named by file and line. */
export function readJsonLines<T>(path: string): T[] {
  return readFileSync(path, 'utf8').split('\n').flatMap((l, i) => {
    if (l.trim() === '') return [];
    try {
      return [JSON.parse(l) as T];
    } catch (e) {
      throw new Error(`${path}:${i + 1}: not valid JSON (${(e as Error).message})`, { cause: e });
    }
  });
}

/**
 * A text file of at most `maxBytes`, refused before it is read when it is not a regular file (a device such
 * as /dev/zero, a FIFO, a directory) or is larger: reading such a file whole could grow without bound.
 */
export function readBoundedText(path: string, maxBytes: number, what: string): string {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new Error(`${what} ${path}: cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { cause: e });
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new Error(`${what} ${path}: not a regular file`);
    if (st.size > maxBytes) throw new Error(`${what} ${path}: ${st.size} bytes, over the limit of ${maxBytes}`);
    // Read at most maxBytes + 1, whatever the size said: the file may grow between the stat and the read.
    const buf = Buffer.alloc(maxBytes + 1);
    let n = 0;
    for (let r = -1; r !== 0 && n < buf.length; n += r) r = readSync(fd, buf, n, buf.length - n, null);
    if (n > maxBytes) throw new Error(`${what} ${path}: over the limit of ${maxBytes} bytes`);
    return buf.subarray(0, n).toString('utf8');
  } finally {
    closeSync(fd);
  }
}
