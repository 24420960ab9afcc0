/**
 * `rlhf lab <name>`: one command per experiment in LAB_EXPERIMENTS (src/lab/experiments.ts), with the
 * same options: --out (the lab directory shared by experiments: their sections add up to one report),
 * --seed, --quick, --config, --set.
 */
import { deepMerge, describeSchema, loadConfig, type Schema } from '../config.js';
import { recordOutcome, type Experiment } from '../lab/experiment.js';
import { LAB_EXPERIMENTS } from '../lab/experiments.js';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { seedOption, withInterrupt } from './args.js';
import { withRunLock } from '../run-dir.js';
import type { Command } from './main.js';

function labCommand(e: Experiment): Command {
  return {
    summary: e.summary,
    options: [
      { name: 'out', type: 'string', default: 'runs/lab', help: 'the lab directory: this experiment runs in OUT/<name>, and OUT/report.html gathers every experiment run there' },
      seedOption('seed', 'seed of the experiment'),
      { name: 'quick', type: 'boolean', default: false, help: 'the same experiment, small (under a minute)' },
      { name: 'config', type: 'string', help: 'YAML/JSON config (fields below)' },
      { name: 'set', type: 'strings', default: [], help: 'override a config field (repeatable)' },
    ],
    helpExtra: () => `config fields (YAML; nested keys as in --set):\n${describeSchema(e.defaults, e.schema as Schema<object>).map((l) => '  ' + l).join('\n')}`,
    async run(o) {
      const defaults = (o.quick ? deepMerge(e.defaults, e.quick) : e.defaults) as object;
      const cfg = loadConfig(o.config as string | undefined, o.set as string[], defaults, e.schema as Schema<object>);
      const out = o.out as string;
      const dir = join(out, e.name);
      try {
        mkdirSync(dir, { recursive: true });
      } catch (err) {
        throw new Error(`--out ${out} cannot be written: ${(err as Error).message}`);
      }
      const say = (l: string) => process.stderr.write(`[lab ${e.name}] ${l}\n`);
      const outcome = await withRunLock(dir, () => withInterrupt((signal) => e.run(cfg, { dir, seed: o.seed as number, quick: o.quick as boolean, progress: say, signal })));
      const report = recordOutcome(out, e.name, outcome, { config: cfg, seed: o.seed as number });
      return { experiment: e.name, report, ...outcome.result };
    },
  };
}

export const labCommands: Record<string, Command> = Object.fromEntries(Object.values(LAB_EXPERIMENTS).map((e) => [`lab ${e.name}`, labCommand(e)]));
