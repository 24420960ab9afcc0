/** `rlhf demo`: the main job (src/lab/demo.ts) — over-optimisation measured on the embedded default. */
import { deepMerge, describeSchema, loadConfig } from '../config.js';
import { DEMO_DEFAULTS, DEMO_SCHEMA, QUICK_OVERRIDES, type DemoConfig } from '../lab/demo-config.js';
import { runDemo } from '../lab/demo.js';
import { overoptimisationSweep } from '../lab/overoptimisation.js';
import { UsageError, seedOption } from './args.js';
import type { DemoSummary } from '../lab/demo-report.js';
import { withInterrupt } from './args.js';
import type { Command } from './main.js';

export const demoCommand: Command = {
  summary: 'the main job: preferences → proxy reward model → PPO against it, with gold measured throughout, best-of-n, fits and report.html',
  options: [
    { name: 'out', type: 'string', default: DEMO_DEFAULTS.out, help: 'output directory (a rerun with the same --out resumes)' },
    seedOption('seed', 'seed of every phase', DEMO_DEFAULTS.seed),
    { name: 'quick', type: 'boolean', default: false, help: 'a small run (under a minute) of the same pipeline' },
    { name: 'config', type: 'string', help: 'YAML/JSON config overriding the defaults (fields below)' },
    { name: 'set', type: 'strings', default: [], help: 'override a config field: --set rl.algorithm=grpo (repeatable)' },
  ],
  helpExtra: () => `config fields (YAML; nested keys as in --set):\n${describeSchema(DEMO_DEFAULTS, DEMO_SCHEMA).map((l) => '  ' + l).join('\n')}`,
  async run(o) {
    const defaults = (o.quick ? deepMerge(DEMO_DEFAULTS, QUICK_OVERRIDES) : DEMO_DEFAULTS) as DemoConfig;
    const cfg = loadConfig(o.config as string | undefined, [...(o.set as string[]), `out=${JSON.stringify(o.out)}`, `seed=${o.seed}`], defaults, DEMO_SCHEMA);
    return withInterrupt((signal) => runDemo(cfg, { signal }));
  },
  human(r) {
    const s = r as DemoSummary;
    const f = (x: number, d = 3) => x.toFixed(d);
    return [
      `rlhf demo (${s.algorithm.toUpperCase()}) finished in ${s.seconds.toFixed(0)} s`,
      `  proxy reward: ${f(s.proxy.before)} → ${f(s.proxy.atGoldPeak)} at the gold peak → ${f(s.proxy.end)} at the end (highest ${f(s.proxy.max)}; held-out accuracy ${s.proxy.accuracy?.toFixed(3) ?? 'n/a'})`,
      `  gold reward:  ${f(s.gold.before)} → peak ${f(s.gold.peak)} at step ${s.gold.peakStep} (KL ${f(s.gold.peakKl, 2)} nats) → ${f(s.gold.end)} at the end (${(100 * s.gold.dropFromPeak).toFixed(0)}% of the rise lost)`,
      `  KL to the reference at the end: ${f(s.kl.end, 2)} nats`,
      `  best-of-n gold: ${s.bestOfN.map((b) => `n=${b.n} ${f(b.gold)}`).join(', ')}`,
      `  report: ${s.report}`,
      '',
    ].join('\n');
  },
};

export const labOveroptimisationCommand: Command = {
  summary: "the demo's over-optimisation experiment repeated over the amount of preference data (Gao et al. 2022), one report",
  options: [
    { name: 'out', type: 'string', default: 'runs/lab-overoptimisation', help: 'output directory (one demo folder per setting; reruns resume)' },
    seedOption('seed', 'seed of every run', DEMO_DEFAULTS.seed),
    { name: 'pairs', type: 'string', default: '192,384,768', help: 'comma-separated preference-data sizes' },
    { name: 'quick', type: 'boolean', default: false, help: 'each run as `rlhf demo --quick`' },
    { name: 'config', type: 'string', help: 'YAML/JSON config overriding the demo defaults' },
    { name: 'set', type: 'strings', default: [], help: 'override a demo config field (repeatable)' },
  ],
  async run(o) {
    const pairs = String(o.pairs).split(',').map((x) => Number(x.trim()));
    if (pairs.some((n) => !(Number.isInteger(n) && n >= 8))) throw new UsageError(`--pairs must be integers ≥ 8 separated by commas, got '${o.pairs}'`);
    const defaults = (o.quick ? deepMerge(DEMO_DEFAULTS, QUICK_OVERRIDES) : DEMO_DEFAULTS) as DemoConfig;
    const cfg = loadConfig(o.config as string | undefined, [...(o.set as string[]), `out=${JSON.stringify(o.out)}`, `seed=${o.seed}`], defaults, DEMO_SCHEMA);
    const r = await withInterrupt((signal) => overoptimisationSweep(cfg, pairs, { signal }));
    return { out: r.out, report: r.report, settings: r.settings.map((s) => ({ pairs: s.pairs, gold: s.summary.gold, proxy: s.summary.proxy, fit: s.summary.fits.rlGold })) };
  },
};
