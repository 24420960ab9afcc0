/**
 * Writing an output file so that a reader (or a crash) never sees half of it: the text goes to a
 * temporary file beside the target, which is then renamed over it (rename is atomic on one filesystem).
 */
import { renameSync, writeFileSync } from 'node:fs';

export function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}
