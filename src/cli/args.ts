/**
 * Command-line parsing for `rlhf` (conventions in the README's "The command line"): every option has a type, a default
 * shown in --help and a description; an unknown option is an error naming the nearest valid one.
 */
import { MAX_THREADS, nearest } from '../config.js';

export type OptionType = 'string' | 'number' | 'boolean' | 'strings';

export interface OptionSpec {
  name: string;
  type: OptionType;
  /** Shown in --help; undefined means "none". */
  default?: string | number | boolean | string[];
  help: string;
  /** For numbers: must be an integer, and within [min, max]; a value outside is a usage error naming it. */
  integer?: boolean;
  min?: number;
  max?: number;
}

/** A seed option: 32-bit, as every RNG here takes it (`seed >>> 0`), so 1e300 cannot alias seed 0. */
export function seedOption(name: string, help: string, dflt = 0): OptionSpec {
  return { name, type: 'number', default: dflt, help, integer: true, min: 0, max: 2 ** 32 - 1 };
}

/** The threads option of the commands that take one (0 = libtorch's default). */
export const THREADS_OPTION: OptionSpec = {
  name: 'threads', type: 'number', default: 0, help: 'libtorch + OpenBLAS threads (0 = default)', integer: true, min: 0, max: MAX_THREADS,
};

export type ParsedOptions = Record<string, string | number | boolean | string[] | undefined>;

export class UsageError extends Error {}

/** Parses `argv` against `specs`; returns the options (defaults filled) and the positional words. */
export function parseOptions(argv: readonly string[], specs: readonly OptionSpec[]): { options: ParsedOptions; positional: string[] } {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const options: ParsedOptions = {};
  for (const s of specs) options[s.name] = Array.isArray(s.default) ? [...s.default] : s.default;
  const seen = new Set<string>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const spec = byName.get(name);
    if (!spec) {
      const near = nearest(name, [...byName.keys()]);
      throw new UsageError(`unknown option --${name}${near ? ` (did you mean --${near}?)` : ''}`);
    }
    let value: string | undefined = eq < 0 ? undefined : arg.slice(eq + 1);
    if (spec.type === 'boolean') {
      if (value !== undefined && value !== 'true' && value !== 'false') throw new UsageError(`--${name} takes no value (or =true/=false), got '${value}'`);
      options[name] = value !== 'false';
      continue;
    }
    if (value === undefined) {
      value = argv[++i];
      if (value === undefined) throw new UsageError(`--${name} needs a value`);
    }
    if (spec.type === 'number') {
      const n = Number(value);
      if (value.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${name} needs a number, got '${value}'`);
      checkRange(spec, n);
      options[name] = n;
    } else if (spec.type === 'strings') {
      // A repeatable option: the first use replaces the default list.
      const list = seen.has(name) ? (options[name] as string[]) : [];
      list.push(value);
      options[name] = list;
    } else options[name] = value;
    seen.add(name);
  }
  return { options, positional };
}

function checkRange(spec: OptionSpec, n: number): void {
  const range = spec.max !== undefined ? ` in ${spec.min ?? '-∞'}..${spec.max}` : spec.min !== undefined ? ` >= ${spec.min}` : '';
  const bad = (spec.integer && !Number.isInteger(n)) || (spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max);
  if (bad) throw new UsageError(`--${spec.name} must be ${spec.integer ? 'an integer' : 'a number'}${range}, got ${n}`);
}

/** The option table for --help. */
export function formatOptions(specs: readonly OptionSpec[]): string {
  const rows = specs.map((s) => {
    const flag = `--${s.name}${s.type === 'boolean' ? '' : s.type === 'number' ? ' N' : ' VALUE'}`;
    const dflt = s.default === undefined ? '' : ` (default: ${Array.isArray(s.default) ? JSON.stringify(s.default) : String(s.default)})`;
    return [flag, `${s.help}${dflt}`] as const;
  });
  const w = Math.max(...rows.map(([f]) => f.length), 10);
  return rows.map(([f, h]) => `  ${f.padEnd(w)}  ${h}`).join('\n');
}

/** A run stopped by Ctrl-C (its own message says what was kept and how to resume): the command exits 130. */
export class InterruptedRun extends Error {
  readonly exitCode = 130;
}

/**
 * Runs `fn` with an AbortSignal raised by the first SIGINT (a second one kills the process as usual). A
 * failure after the signal is an InterruptedRun.
 */
export async function withInterrupt<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  const onSigint = () => {
    process.stderr.write('\n[interrupt] stopping after the current step (Ctrl-C again to kill)\n');
    ac.abort();
    process.off('SIGINT', onSigint);
  };
  process.on('SIGINT', onSigint);
  try {
    return await fn(ac.signal);
  } catch (e) {
    if (ac.signal.aborted && e instanceof Error) throw new InterruptedRun(e.message, { cause: e });
    throw e;
  } finally {
    process.off('SIGINT', onSigint);
  }
}
