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
export function rlhf(args: string[], timeoutMs = 120_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [join(ROOT, 'bin', 'rlhf.js'), ...args], { cwd: ROOT, timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      // Killed by a signal (a crash, or the timeout): no exit code, reported as -1.
      const status = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ status, stdout, stderr });
    });
  });
}

/**
 * Runs `rlhf ...args` in this process through the CLI's main(), with stdout and stderr captured and the
 * exit code it set: no process start-up per call (about a second), for tests that run many commands.
 * Calls must not overlap (they swap process-wide writers).
 */
export async function rlhfInProcess(args: string[]): Promise<Run> {
  const { main } = await import('../../src/cli/main.js');
  const out: string[] = [];
  const err: string[] = [];
  const [stdoutWrite, stderrWrite, exitCode] = [process.stdout.write, process.stderr.write, process.exitCode];
  const capture = (into: string[]) => ((chunk: string | Uint8Array) => (into.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8')), true)) as typeof process.stdout.write;
  process.stdout.write = capture(out);
  process.stderr.write = capture(err);
  process.exitCode = 0;
  try {
    await main(args);
    return { status: Number(process.exitCode ?? 0), stdout: out.join(''), stderr: err.join('') };
  } finally {
    process.stdout.write = stdoutWrite;
    process.stderr.write = stderrWrite;
    process.exitCode = exitCode;
  }
}
