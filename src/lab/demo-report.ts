/**
 * The demo's analysis and report: gold and proxy against d = √KL for RL and best-of-n, relative to the
 * initial policy (as Gao et al. plot them), Gao et al.'s forms fitted to each, the gold peak, and
 * report.html + metrics.jsonl + summary.json in the output directory.
 */
import { ONLINE_ALGORITHMS } from '../rlhf/algorithms.js';
import { join } from 'node:path';
import { buildInfo, getNumThreads } from '../tensor/index.js';
import { machineInfo, machineSummary } from '../machine.js';
import { packageRoot } from '../models/hub.js';
import { readFileSync } from 'node:fs';
import { fitOveroptimisation, fitPeak, type Fit } from './fit.js';
import { GOLD_FORMULA } from './gold.js';
import { overoptimisationChart, renderChart, type LineChart, type Point } from './plots.js';
import { buildReport, writeReport, type Section } from './report.js';
import type { DemoConfig } from './demo-config.js';
import { writeAtomic } from '../atomic.js';

export interface RlPoint { step: number; kl: number; proxy: number; proxySe: number; gold: number; goldSe: number; distinct2: number; length: number }
export interface BonPoint { n: number; kl: number; proxy: number; gold: number }
export interface SampleSet { step: number; samples: { text: string; gold: number; proxy: number }[] }

export interface DemoInputs {
  prefs: { pairs: number; agreement: number };
  proxy: { accuracy: number | null; n: number };
  rl: RlPoint[];
  samples: SampleSet[];
  bon: BonPoint[];
  seconds: number;
}

/** What `rlhf demo` returns and writes as summary.json: gold and proxy before, at the gold peak and at the end, KL, fits. */
export interface DemoSummary {
  out: string;
  seconds: number;
  algorithm: string;
  gold: { before: number; peak: number; end: number; peakStep: number; peakKl: number; dropFromPeak: number };
  /** The proxy on the same fresh samples: before RL, at the gold peak, its highest, at the end. */
  proxy: { before: number; atGoldPeak: number; max: number; end: number; accuracy: number | null };
  kl: { end: number };
  fits: { rlGold: Fit | null; rlProxy: Fit | null; bonGold: Fit | null; bonProxy: Fit | null };
  bestOfN: BonPoint[];
  report: string;
}

/** A fit that may fail (too few points, degenerate d): null, and the report says so. */
function tryFit(form: 'bon' | 'rl', pts: readonly Point[]): Fit | null {
  const usable = pts.filter((p) => (form === 'rl' ? p.x > 0 : p.x >= 0));
  try {
    return fitOveroptimisation(form, usable.map((p) => p.x), usable.map((p) => p.y));
  } catch {
    return null;
  }
}

const fmt = (x: number, d = 3) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');

function fitText(name: string, f: Fit | null): string {
  if (!f) return `${name}: not enough points to fit.`;
  const peak = fitPeak(f);
  return `${name}: α ${fmt(f.alpha)}, β ${fmt(f.beta)}, R² ${fmt(f.r2, 2)} over ${f.n} points${peak ? `; fitted peak at √KL ${fmt(peak.d, 2)}` : '; no interior peak (still rising)'}.`;
}

function versions(): Record<string, string> {
  const pkg = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string };
  return { 'rlhf-ts': pkg.version, node: process.version, libtorch: buildInfo().torchVersion };
}

function hardware(): Record<string, string | number> {
  const m = machineInfo();
  return { cpu: machineSummary(m), cores: m.cpu.logicalCores, threads: getNumThreads().torch, blas: m.blas.kind };
}

export async function analyse(cfg: DemoConfig, d: DemoInputs): Promise<DemoSummary> {
  const base = d.rl[0]!;
  const rlGold = d.rl.map((p) => ({ x: Math.sqrt(p.kl), y: p.gold - base.gold }));
  const rlProxy = d.rl.map((p) => ({ x: Math.sqrt(p.kl), y: p.proxy - base.proxy }));
  const b0 = d.bon[0]!;
  const bonGold = d.bon.map((p) => ({ x: Math.sqrt(p.kl), y: p.gold - b0.gold }));
  const bonProxy = d.bon.map((p) => ({ x: Math.sqrt(p.kl), y: p.proxy - b0.proxy }));
  const fits = { rlGold: tryFit('rl', rlGold), rlProxy: tryFit('rl', rlProxy), bonGold: tryFit('bon', bonGold), bonProxy: tryFit('bon', bonProxy) };
  const peak = d.rl.reduce((b, p) => (p.gold > b.gold ? p : b), base);
  const end = d.rl[d.rl.length - 1]!;
  const rise = peak.gold - base.gold;
  const summary: DemoSummary = {
    out: cfg.out, seconds: d.seconds, algorithm: cfg.rl.algorithm,
    gold: { before: base.gold, peak: peak.gold, end: end.gold, peakStep: peak.step, peakKl: peak.kl, dropFromPeak: rise > 0 ? (peak.gold - end.gold) / rise : 0 },
    proxy: { before: base.proxy, atGoldPeak: peak.proxy, max: Math.max(...d.rl.map((p) => p.proxy)), end: end.proxy, accuracy: d.proxy.accuracy },
    kl: { end: end.kl }, fits, bestOfN: d.bon, report: join(cfg.out, 'report.html'),
  };
  await writeDemoReport(cfg, d, summary, { rlGold, rlProxy, bonGold, bonProxy, peak });
  const metrics = [
    ...d.rl.map((p) => JSON.stringify({ phase: 'rl', ...p, sqrtKl: Math.sqrt(p.kl) })),
    ...d.bon.map((p) => JSON.stringify({ phase: 'bon', ...p, sqrtKl: Math.sqrt(p.kl) })),
  ].join('\n') + '\n';
  for (const [name, text] of [['metrics.jsonl', metrics], ['summary.json', JSON.stringify(summary, null, 2)]] as const) {
    writeAtomic(join(cfg.out, name), text);
  }
  return summary;
}

async function writeDemoReport(cfg: DemoConfig, d: DemoInputs, s: DemoSummary, c: { rlGold: Point[]; rlProxy: Point[]; bonGold: Point[]; bonProxy: Point[]; peak: RlPoint }): Promise<void> {
  const algo = ONLINE_ALGORITHMS[cfg.rl.algorithm].title;
  const overRl = await renderChart(overoptimisationChart({ method: `RL (${algo})`, gold: c.rlGold, proxy: c.rlProxy, goldFit: s.fits.rlGold ?? undefined, proxyFit: s.fits.rlProxy ?? undefined, goldPeak: { x: Math.sqrt(c.peak.kl), y: c.peak.gold - d.rl[0]!.gold } }));
  const overBon = await renderChart(overoptimisationChart({ method: 'best-of-n', gold: c.bonGold, proxy: c.bonProxy, goldFit: s.fits.bonGold ?? undefined, proxyFit: s.fits.bonProxy ?? undefined }));
  const steps: LineChart = {
    title: `${algo} training: gold and proxy on fresh samples by step`, xTitle: 'RL step', yTitle: 'reward',
    series: [
      { name: 'gold', points: d.rl.map((p) => ({ x: p.step, y: p.gold })) },
      { name: 'proxy', points: d.rl.map((p) => ({ x: p.step, y: p.proxy })) },
    ],
    markers: [{ x: c.peak.step, label: `gold peak (step ${c.peak.step})` }],
    caption: 'Both rewards measured on the same fresh samples at each evaluation.',
  };
  const drift: LineChart = {
    title: 'What the policy turns into: KL, distinct-2 and length by step', xTitle: 'RL step', yTitle: 'value',
    series: [
      { name: 'KL(π‖π_ref), nats / 10', points: d.rl.map((p) => ({ x: p.step, y: p.kl / 10 })) },
      { name: 'distinct-2', points: d.rl.map((p) => ({ x: p.step, y: p.distinct2 })) },
      { name: 'length / max tokens', points: d.rl.map((p) => ({ x: p.step, y: p.length / cfg.preferences.maxNewTokens })) },
    ],
  };
  const stepFigs = [await renderChart(steps), await renderChart(drift)];
  const at = (step: number) => d.samples.find((x) => x.step === step);
  const end = d.rl[d.rl.length - 1]!;
  const sampleRows = [['before RL', d.rl[0]!.step], ['at the gold peak', c.peak.step], ['at the end', end.step]] as const;
  const over = s.gold.dropFromPeak > 0 && c.peak.step !== d.rl[0]!.step && c.peak.step !== end.step;
  const proxyTop = d.rl.reduce((b, p) => (p.proxy > b.proxy ? p : b), d.rl[0]!);
  const sections: Section[] = [
    {
      id: 'overoptimisation', title: 'Over-optimisation: the proxy keeps rising, the gold does not',
      paragraphs: [
        `A proxy reward model was trained on ${d.prefs.pairs} comparisons of the initial policy's samples, labelled by synthetic annotators who prefer the completion with the higher gold reward with Bradley–Terry rationality β = ${cfg.preferences.rationality} (their labels agree with the gold ordering ${(100 * d.prefs.agreement).toFixed(1)}% of the time). The proxy's held-out accuracy on those labels is ${d.proxy.accuracy === null ? 'n/a' : fmt(d.proxy.accuracy)}.`,
        `${algo} then optimised the policy against the proxy for ${cfg.rl.steps} steps. On fresh samples, the proxy went from ${fmt(s.proxy.before)} to ${fmt(s.proxy.end)} while the gold went from ${fmt(s.gold.before)} to a peak of ${fmt(s.gold.peak)} at step ${s.gold.peakStep} (KL ${fmt(s.gold.peakKl, 2)} nats) and ended at ${fmt(s.gold.end)} (KL ${fmt(s.kl.end, 2)} nats)` +
        (over
          ? ` — ${(100 * s.gold.dropFromPeak).toFixed(0)}% of its rise lost past the peak, while the proxy ${s.proxy.end > c.peak.proxy ? `ended above its value at the gold peak (${fmt(c.peak.proxy)}; highest ${fmt(proxyTop.proxy)} at step ${proxyTop.step})` : `did not end above its value at the gold peak (${fmt(c.peak.proxy)})`}. That is Goodhart's law in the reward model: the policy found what the proxy over-values.`
          : '.'),
        `The x-axis is d = √KL(π ‖ π_ref), the distance the optimisation has moved the policy; Gao et al. (2022) found gold reward follows d(α − β log d) for RL and d(α − β d) for best-of-n. ${fitText('RL gold fit', s.fits.rlGold)} ${fitText('RL proxy fit', s.fits.rlProxy)}`,
      ],
      plots: [overRl, ...stepFigs],
      samples: sampleRows.flatMap(([label, step]) => (at(step)?.samples ?? []).slice(0, 2).map((x) => ({ label: `${label} (step ${step})`, text: x.text, note: `gold ${fmt(x.gold)} · proxy ${fmt(x.proxy)}` }))),
    },
    {
      id: 'best-of-n', title: 'Best-of-n against the same proxy',
      paragraphs: [
        `For each of ${cfg.bon.prompts} prompts, ${cfg.bon.maxN} samples of the initial policy were ranked by the proxy and the best kept, for n = 1, 2, 4, … ${cfg.bon.maxN}; best-of-n moves the policy by KL = log n − (n − 1)/n nats without any training. ${fitText('Best-of-n gold fit', s.fits.bonGold)} ${fitText('Best-of-n proxy fit', s.fits.bonProxy)}`,
      ],
      plots: [overBon],
      tables: [{ caption: 'Best-of-n by the proxy', columns: ['n', 'KL (nats)', '√KL', 'proxy', 'gold'], rows: d.bon.map((p) => [p.n, fmt(p.kl), fmt(Math.sqrt(p.kl)), fmt(p.proxy), fmt(p.gold)]) }],
    },
    {
      id: 'gold', title: 'The gold reward',
      paragraphs: [GOLD_FORMULA, 'Its sentiment part is checked against human ratings in the test suite (Pearson r ≥ 0.8 on tweets, ≥ 0.4 on movie snippets, ≥ 0.5 on Amazon snippets; data/vader).'],
      tables: [{ caption: 'Evaluations during RL', columns: ['step', 'KL (nats)', 'proxy', 'gold', 'gold s.e.', 'distinct-2', 'length'], rows: d.rl.map((p) => [p.step, fmt(p.kl, 2), fmt(p.proxy), fmt(p.gold), fmt(p.goldSe, 4), fmt(p.distinct2), fmt(p.length, 1)]) }],
    },
  ];
  writeReport(join(cfg.out, 'report.html'), buildReport({
    title: 'rlhf demo: reward-model over-optimisation on stories260K',
    summary: [`Gold peaked at step ${s.gold.peakStep} of ${cfg.rl.steps} (KL ${fmt(s.gold.peakKl, 2)} nats) and ended ${(100 * s.gold.dropFromPeak).toFixed(0)}% of its rise below the peak; the proxy went ${fmt(s.proxy.before)} → ${fmt(s.proxy.end)}. Wall time ${d.seconds.toFixed(0)} s.`],
    meta: { config: cfg, seed: cfg.seed, versions: versions(), hardware: hardware() },
    sections,
  }));
}
