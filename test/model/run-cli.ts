// Shared by the tests that drive the `rlhf` command: the package root and a CLI runner.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { packageRoot } from '../../src/models/hub.js';

export const ROOT = packageRoot();

export interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs `node bin/rlhf.js ...args` from the package root; resolves with its exit status and output. */
export function rlhf(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [join(ROOT, 'bin', 'rlhf.js'), ...args], { cwd: ROOT, timeout: 120_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const status = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ status, stdout, stderr });
    });
  });
}
