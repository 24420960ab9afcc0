/**
 * `rlhf lab overoptimisation`: the demo's experiment repeated over the amount of preference data the
 * proxy learns from (Gao et al. 2022 varied proxy size and data; here: data, one proxy architecture).
 * Each setting is a full demo run in its own folder (so each resumes on its own); the sweep's report
 * overlays their gold-vs-√KL curves and tabulates the fitted forms and gold peaks.
 */
import { join } from 'node:path';
import { deepMerge } from '../config.js';
import type { DemoConfig } from './demo-config.js';
import { runDemo, type DemoOptions } from './demo.js';
import { readFileSync } from 'node:fs';
import type { DemoSummary } from './demo-report.js';
import { renderChart, type Series } from './plots.js';
import { buildReport, writeReport } from './report.js';
import { fitPeak } from './fit.js';

/** The over-optimisation sweep: one demo summary per amount of preference data, and the comparing report. */
export interface SweepResult {
  out: string;
  settings: { pairs: number; summary: DemoSummary }[];
  report: string;
}

/** Runs the demo once per preference-data size and writes out/report.html comparing them. */
export async function overoptimisationSweep(base: DemoConfig, pairs: readonly number[], opts: DemoOptions = {}): Promise<SweepResult> {
  if (pairs.length === 0) throw new Error('the sweep needs at least one preference-data size');
  const settings: SweepResult['settings'] = [];
  for (const n of pairs) {
    const cfg = deepMerge(base, { out: join(base.out, `pairs-${n}`), preferences: { pairs: n } }) as DemoConfig;
    settings.push({ pairs: n, summary: await runDemo(cfg, opts) });
  }
  const series: Series[] = settings.map(({ pairs: n, summary }) => {
    const rows = readFileSync(join(base.out, `pairs-${n}`, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { phase: string; sqrtKl: number; gold: number });
    const rl = rows.filter((r) => r.phase === 'rl');
    return { name: `${n} pairs`, points: rl.map((r) => ({ x: r.sqrtKl, y: r.gold - summary.gold.before })) };
  });
  const fig = await renderChart({
    title: 'Gold reward vs √KL, by the amount of preference data', xTitle: 'd = √KL(π ‖ π_ref)', yTitle: 'gold − initial gold', series,
    caption: 'One RL run per proxy; each proxy learned from a different number of labelled pairs.',
  });
  const f = (x: number | null | undefined, d = 3) => (x == null || !Number.isFinite(x) ? 'n/a' : x.toFixed(d));
  const report = join(base.out, 'report.html');
  writeReport(report, buildReport({
    title: 'rlhf lab overoptimisation: proxy data vs over-optimisation',
    summary: ['The same over-optimisation experiment as `rlhf demo`, repeated with proxies trained on different amounts of preference data.'],
    meta: { config: { base, pairs }, seed: base.seed, versions: { node: process.version }, hardware: {} },
    sections: [{
      id: 'sweep', title: 'How much data the proxy saw',
      paragraphs: [
        'Gao et al. (2022) found that proxies trained on more data are over-optimised later: the gold peaks at a larger KL and higher. Each row below is one run; the fitted RL form is gold(d) = d(α − β log d).',
      ],
      plots: [fig],
      tables: [{
        columns: ['pairs', 'proxy accuracy', 'gold before', 'gold peak', 'peak step', 'peak KL', 'gold end', 'α', 'β', 'fitted peak √KL'],
        rows: settings.map(({ pairs: n, summary: s }) => [n, f(s.proxy.accuracy), f(s.gold.before), f(s.gold.peak), s.gold.peakStep, f(s.gold.peakKl, 2), f(s.gold.end),
          f(s.fits.rlGold?.alpha), f(s.fits.rlGold?.beta), f(s.fits.rlGold ? fitPeak(s.fits.rlGold)?.d : null, 2)]),
      }],
    }],
  }));
  return { out: base.out, settings, report };
}
