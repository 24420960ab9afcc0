/**
 * The report as a reader sees it: built from synthetic data with several plots, opened from a file:// URL
 * in Debian's chromium (headless, through playwright-core, offline), every plot must be drawn — an <svg>
 * of non-zero size whose data marks (vega's `g.role-mark` children with a non-empty box) number at least
 * the rows its data has — and nothing may be fetched from anywhere. A screenshot is kept in
 * test-artifacts/report.png (gitignored). Without chromium the test fails and says how to install it:
 * `npm test` installs it through scripts/setup.sh (RLHF_SETUP_BROWSER=1).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { deepMerge } from '../../src/config.js';
import { DEMO_DEFAULTS, QUICK_OVERRIDES, type DemoConfig } from '../../src/lab/demo-config.js';
import { runDemo } from '../../src/lab/demo.js';
import { fitOveroptimisation, fitPeak, klBestOfN } from '../../src/lab/fit.js';
import { overoptimisationChart, renderChart, type Figure, type Point } from '../../src/lab/plots.js';
import { buildReport, writeReport, type Report } from '../../src/lab/report.js';
import { GOLD_FORMULA } from '../../src/lab/gold.js';
import { mulberry32 } from '../../src/random.js';
import { ARTIFACTS, CHROMIUM, openAndMeasure } from './measure.js';


/** Gold and proxy along d = √KL from Gao et al.'s forms, with seeded noise; the proxy keeps rising. */
function synthetic(form: 'rl' | 'bon', ds: number[], seed: number): { gold: Point[]; proxy: Point[] } {
  const u = mulberry32(seed);
  const noise = () => (u() - 0.5) * 0.02;
  const g = (d: number) => (form === 'rl' ? d * (0.5 - 0.3 * Math.log(d)) : d * (0.6 - 0.25 * d));
  const p = (d: number) => (form === 'rl' ? d * (0.5 - 0.05 * Math.log(d)) : d * (0.6 - 0.02 * d));
  return { gold: ds.map((d) => ({ x: d, y: g(d) + noise() })), proxy: ds.map((d) => ({ x: d, y: p(d) + noise() })) };
}

async function overoptFigure(method: string, form: 'rl' | 'bon', ds: number[], seed: number): Promise<Figure> {
  const { gold, proxy } = synthetic(form, ds, seed);
  const peak = gold.reduce((a, b) => (b.y > a.y ? b : a));
  return renderChart(overoptimisationChart({
    method, gold, proxy, goldPeak: peak,
    goldFit: fitOveroptimisation(form, gold.map((q) => q.x), gold.map((q) => q.y)),
    proxyFit: fitOveroptimisation(form, proxy.map((q) => q.x), proxy.map((q) => q.y)),
  }));
}

async function syntheticReport(): Promise<Report> {
  const rlDs = Array.from({ length: 30 }, (_, i) => 0.15 * (i + 1));
  const bonNs = [2, 4, 8, 16, 32, 64, 128, 256];
  const rl = await overoptFigure('RL (PPO)', 'rl', rlDs, 1);
  const bon = await overoptFigure('best-of-n', 'bon', bonNs.map((n) => Math.sqrt(klBestOfN(n))), 2);
  const u = mulberry32(3);
  const steps = Array.from({ length: 60 }, (_, i) => i);
  const training = await renderChart({
    title: 'PPO training',
    xTitle: 'step',
    yTitle: 'value',
    series: [
      { name: 'KL (nats)', points: steps.map((s) => ({ x: s, y: 0.002 * s * s + u() * 0.1 })) },
      { name: 'proxy reward', points: steps.map((s) => ({ x: s, y: Math.log1p(s) + u() * 0.2 })) },
      { name: 'gold reward', points: steps.map((s) => ({ x: s, y: 0.5 + 0.02 * s - 0.0004 * s * s + u() * 0.05 })) },
    ],
    markers: [{ x: 25, label: 'gold peak' }],
    caption: 'Synthetic training curves.',
  });
  const fit = fitOveroptimisation('rl', rlDs, synthetic('rl', rlDs, 1).gold.map((q) => q.y));
  return {
    title: 'rlhf demo (synthetic data for the browser test)',
    summary: ['A report built from made-up numbers, to check that every plot is drawn.'],
    meta: { config: { seed: 0, note: '<script>alert(1)</script>' }, seed: 0, versions: { node: process.version }, hardware: { cpu: 'test' } },
    sections: [
      {
        id: 'overoptimisation',
        title: 'Over-optimisation',
        paragraphs: [GOLD_FORMULA, 'The gold reward rises, peaks and falls while the proxy keeps rising.'],
        plots: [rl, bon],
        tables: [{
          caption: 'Fitted forms',
          columns: ['method', 'α', 'β', 'R²', 'n', 'peak √KL'],
          rows: [['RL', fit.alpha, fit.beta, fit.r2, fit.n, fitPeak(fit)?.d ?? null]],
        }],
        samples: [
          { label: 'before', prompt: 'Once upon a time', text: ', there was a little girl named Lily.', note: 'gold 0.80' },
          { label: 'end <script>alert(2)</script>', prompt: 'Once upon a time', text: ' happy happy happy <b>happy</b>', note: 'gold 0.10' },
        ],
      },
      { id: 'training', title: 'Training', paragraphs: ['Per-step metrics.'], plots: [training] },
    ],
  };
}

test('the report draws every plot in chromium, offline, and a screenshot is saved', { timeout: 120_000 }, async () => {
  assert.ok(
    existsSync(CHROMIUM),
    `chromium not found at ${CHROMIUM}: the browser test needs Debian's chromium — install it with ` +
      '`sudo apt-get install -y chromium` (or run `RLHF_SETUP_BROWSER=1 bash scripts/setup.sh` as root; ' +
      '`npm test` does this), or point RLHF_CHROMIUM at a Chromium binary',
  );
  mkdirSync(ARTIFACTS, { recursive: true });
  const report = await syntheticReport();
  const html = buildReport(report);
  const file = join(ARTIFACTS, 'report.html');
  writeReport(file, html);
  const rowsWanted = report.sections.flatMap((s) => (s.plots ?? []).map((f) => f.rows));
  assert.ok(rowsWanted.length >= 3);

  const plots = await openAndMeasure(file, 'report.png', async (page) => {
    // escaped text shows as text: the sample's markup is visible, not executed or rendered
    assert.ok((await page.textContent('body'))!.includes('<b>happy</b>'));
  });
  assert.deepEqual(plots.map((p) => p.rows), rowsWanted);
});

test("the demo's own report (rlhf demo --quick) draws every plot in chromium", { timeout: 180_000 }, async () => {
  assert.ok(existsSync(CHROMIUM), `chromium not found at ${CHROMIUM}: install it with \`sudo apt-get install -y chromium\``);
  const out = join(ARTIFACTS, 'demo');
  rmSync(out, { recursive: true, force: true });
  const cfg = deepMerge(DEMO_DEFAULTS, { ...QUICK_OVERRIDES, out }) as DemoConfig;
  await runDemo(cfg, { progress: () => {} });
  const plots = await openAndMeasure(join(out, 'report.html'), 'demo-report.png');
  assert.ok(plots.length >= 4, `the demo report has ${plots.length} plots`);
});
