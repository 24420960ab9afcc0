/**
 * Writing an output file (or directory) so that a reader (or a crash) never sees half of it: the text goes
 * to a temporary file beside the target, which is then renamed over it (rename is atomic on one filesystem).
 */
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
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
