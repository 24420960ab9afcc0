/**
 * The `rlhf` command. Each subcommand declares its options (with defaults shown in --help) and a `run`
 * that returns a JSON-able result: with --json that result is printed as one line of compact JSON on
 * stdout and nothing else; without it, the command's `human` formatter prints it for people. Logs and
 * progress go to stderr. Exit code 0 on success; on failure a one-line reason on stderr (the stack with
 * --verbose) and exit code 1 (2 for usage errors, 130 for a run stopped by Ctrl-C).
 */
import { nearest } from '../config.js';
import { formatOptions, InterruptedRun, type OptionSpec, type ParsedOptions, parseOptions, UsageError } from './args.js';
import { benchCommands } from './bench.js';
import { demoCommand, labOveroptimisationCommand } from './demo.js';
import { feedbackCommands } from './feedback.js';
import { labCommands } from './lab.js';
import { infoCommand } from './info.js';
import { iteratedCommands } from './iterated.js';
import { modelCommands } from './model.js';
import { policyCommands } from './policy.js';
import { offlineCommands } from './policy-offline.js';
import { rewardCommands } from './reward.js';
import { serveCommands } from './serve.js';
import { installProgress } from './progress.js';
import { labelCommands } from './label.js';

export interface Command {
  summary: string;
  options: OptionSpec[];
  run(opts: ParsedOptions): Promise<unknown>;
  /** More --help text (e.g. a config file's fields). */
  helpExtra?(): string;
  /** Human-readable rendering of the result, written as is (defaults to pretty JSON and a newline). */
  human?(result: unknown): string;
}

const COMMON: OptionSpec[] = [
  { name: 'json', type: 'boolean', default: false, help: 'print the result as one line of JSON on stdout' },
  { name: 'verbose', type: 'boolean', default: false, help: 'print error details (stack) on failure' },
  { name: 'quiet', type: 'boolean', default: false, help: 'no progress bars or logs on stderr (a failure still says why)' },
  { name: 'help', type: 'boolean', default: false, help: 'show this help' },
];

export const COMMANDS: Record<string, Command> = {
  demo: demoCommand,
  'lab overoptimisation': labOveroptimisationCommand,
  ...labCommands,
  info: infoCommand,
  ...modelCommands,
  ...rewardCommands,
  ...policyCommands,
  ...iteratedCommands,
  ...offlineCommands,
  ...benchCommands,
  ...serveCommands,
  ...labelCommands,
  ...feedbackCommands,
};

function usage(): string {
  const names = Object.keys(COMMANDS);
  const w = Math.max(...names.map((n) => n.length));
  return `usage: rlhf <command> [options]\n\ncommands:\n${names.map((n) => `  ${n.padEnd(w)}  ${COMMANDS[n]!.summary}`).join('\n')}\n\nrun \`rlhf <command> --help\` for a command's options`;
}

/** Finds the longest command name made of the leading positional words. */
function resolve(argv: readonly string[]): { name: string; rest: string[] } {
  const words: string[] = [];
  for (const a of argv) {
    if (a.startsWith('--')) break;
    words.push(a);
  }
  for (let n = words.length; n > 0; n--) {
    const name = words.slice(0, n).join(' ');
    if (COMMANDS[name]) return { name, rest: argv.slice(n) };
  }
  const attempted = words.join(' ');
  const group = Object.keys(COMMANDS).filter((n) => n.startsWith(`${words[0]} `));
  if (words.length === 1 && group.length > 0) {
    throw new UsageError(`'rlhf ${words[0]}' needs a subcommand: ${group.map((n) => n.split(' ').slice(1).join(' ')).join(', ')}`);
  }
  // Compare against whole names and their first words, so `rlhf bnch` suggests 'bench'.
  const names = Object.keys(COMMANDS);
  const near = nearest(words.length > 1 ? attempted : words[0] ?? '', [...names, ...names.map((n) => n.split(' ')[0]!)]);
  throw new UsageError(words.length === 0 ? usage() : `unknown command '${attempted}'${near ? ` (did you mean '${near}'?)` : ''}`);
}

export async function main(argv: string[]): Promise<void> {
  const verbose = argv.includes('--verbose');
  try {
    if (argv.length === 0 || argv[0] === '--help' || argv[0] === 'help') {
      process.stdout.write(usage() + '\n');
      return;
    }
    const { name, rest } = resolve(argv);
    const cmd = COMMANDS[name]!;
    const specs = [...cmd.options, ...COMMON];
    const { options, positional } = parseOptions(rest, specs);
    if (options.help) {
      process.stdout.write(`rlhf ${name}: ${cmd.summary}\n\noptions:\n${formatOptions(specs)}\n${cmd.helpExtra ? '\n' + cmd.helpExtra() + '\n' : ''}`);
      return;
    }
    if (positional.length > 0) throw new UsageError(`unexpected argument '${positional[0]}' for 'rlhf ${name}'`);
    // On a terminal, the logs' k/N counts become progress bars (src/cli/progress.ts); --quiet silences them.
    const restore = installProgress({ tty: process.stderr.isTTY === true && !options.json, quiet: options.quiet === true });
    let result: unknown;
    try {
      result = await cmd.run(options);
    } finally {
      restore();
    }
    if (options.json) process.stdout.write(JSON.stringify(result) + '\n');
    else process.stdout.write(cmd.human ? cmd.human(result) : JSON.stringify(result, null, 2) + '\n');
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    process.stderr.write(`rlhf: ${err.message.split('\n')[0]}\n`);
    if (err instanceof UsageError && err.message.includes('\n')) process.stderr.write(err.message.split('\n').slice(1).join('\n') + '\n');
    if (verbose && err.stack) process.stderr.write(err.stack + '\n');
    process.exitCode = err instanceof InterruptedRun ? err.exitCode : err instanceof UsageError ? 2 : 1;
  }
}
