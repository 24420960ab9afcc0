/**
 * Plots for the report: Vega-Lite specs compiled with `vega-lite` and rendered to SVG with `vega`'s
 * headless view (`renderer: 'none'`, `toSVG()`) when the report is built — no network, no browser, no
 * canvas. The same chart gives the same bytes: vega measures text with a fixed estimate when no canvas is
 * installed, and nothing random or time-dependent enters the spec.
 *
 * A `Figure` is plain data (title, caption, SVG, row count), so report sections stay serialisable.
 */
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { fitPeak, fitValue, type Fit } from './fit.js';

/** A point of a chart, with an optional standard error. */
export interface Point {
  x: number;
  y: number;
}

/**
 * One series of a chart. `points`: one symbol per row (measurements); `line`: a line only (a fitted
 * curve); `line+points` (default): a line with a symbol on every row (a metric over steps).
 */
export interface Series {
  name: string;
  points: readonly Point[];
  style?: 'points' | 'line' | 'line+points';
  /** CSS colour; default from a fixed 10-colour palette by the series' position */
  color?: string;
  /** draw the line dashed (fitted curves) */
  dashed?: boolean;
}

/** A vertical rule at x with a label (e.g. the gold peak). */
export interface Marker {
  x: number;
  label: string;
  color?: string;
}

/** A line chart: named series of points, axis titles and vertical markers. */
export interface LineChart {
  title: string;
  xTitle: string;
  yTitle: string;
  series: readonly Series[];
  markers?: readonly Marker[];
  /** the caption under the figure: what to read in it */
  caption?: string;
  /** plot area in px (default 520 × 300) */
  width?: number;
  height?: number;
}

/** A rendered plot. */
export interface Figure {
  title: string;
  caption: string;
  /** the standalone <svg> element */
  svg: string;
  /**
   * The marks the data asks for, which the browser test checks are all drawn: one per row of a `points`
   * or `line+points` series, one per `line` series, one per marker.
   */
  rows: number;
}

// Tableau 10, as Vega's default categorical scheme, fixed here so colours do not depend on series names.
const PALETTE = ['#4c78a8', '#f58518', '#e45756', '#72b7b2', '#54a24b', '#eeca3b', '#b279a2', '#ff9da6', '#9d755d', '#bab0ac'];

const finite = (p: Point): boolean => Number.isFinite(p.x) && Number.isFinite(p.y);

/** The Vega-Lite spec of a line/point chart, and the number of marks its data asks for. */
export function lineChartSpec(chart: LineChart): { spec: TopLevelSpec; rows: number } {
  const names = chart.series.map((s) => s.name);
  if (new Set(names).size !== names.length) throw new Error(`chart '${chart.title}': two series share a name`);
  const colors = chart.series.map((s, i) => s.color ?? PALETTE[i % PALETTE.length]!);
  const color = { field: 'series', type: 'nominal', scale: { domain: names, range: colors }, legend: { title: null, orient: 'bottom', columns: 2, labelLimit: 320 } };
  const x = { field: 'x', type: 'quantitative', title: chart.xTitle, scale: { zero: false, nice: false } };
  const y = { field: 'y', type: 'quantitative', title: chart.yTitle, scale: { zero: false } };
  const layers: object[] = [];
  let rows = 0;
  for (const s of chart.series) {
    // Non-finite rows are dropped here (vega would silently skip them, leaving fewer marks than rows).
    const values = s.points.filter(finite).map((p) => ({ series: s.name, x: p.x, y: p.y }));
    if (values.length === 0) continue;
    const style = s.style ?? 'line+points';
    const mark =
      style === 'points'
        ? { type: 'point', filled: true, size: 36 }
        : { type: 'line', strokeWidth: 2, ...(s.dashed ? { strokeDash: [6, 4] } : {}), ...(style === 'line+points' ? { point: { filled: true, size: 20 } } : {}) };
    rows += style === 'line' ? 1 : values.length;
    layers.push({ data: { values }, mark, encoding: { x, y, color, ...(style === 'line' ? { order: { field: 'x', type: 'quantitative' } } : {}) } });
  }
  for (const m of chart.markers ?? []) {
    if (!Number.isFinite(m.x)) continue;
    const data = { values: [{ x: m.x, label: m.label }] };
    const mx = { field: 'x', type: 'quantitative' };
    layers.push({ data, mark: { type: 'rule', color: m.color ?? '#444', strokeDash: [2, 3], strokeWidth: 1.5 }, encoding: { x: mx } });
    layers.push({ data, mark: { type: 'text', align: 'left', baseline: 'top', dx: 4, dy: 4, color: m.color ?? '#444' }, encoding: { x: mx, y: { value: 0 }, text: { field: 'label' } } });
    rows += 1;
  }
  if (layers.length === 0) throw new Error(`chart '${chart.title}': no finite data to plot`);
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: chart.title,
    width: chart.width ?? 520,
    height: chart.height ?? 300,
    background: 'white',
    config: { font: 'sans-serif', axis: { grid: true, gridColor: '#eee' }, view: { stroke: '#ccc' } },
    layer: layers,
  } as TopLevelSpec;
  return { spec, rows };
}

/** Renders a Vega-Lite spec to an SVG string, headless. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Renders a line/point chart to a Figure. */
export async function renderChart(chart: LineChart): Promise<Figure> {
  const { spec, rows } = lineChartSpec(chart);
  return { title: chart.title, caption: chart.caption ?? '', svg: await renderSvg(spec), rows };
}

/** `n` points of a fitted curve over [0, dMax] (the forms start at R(0) = 0). */
export function fitCurve(fit: Pick<Fit, 'form' | 'alpha' | 'beta'>, dMax: number, n = 60): Point[] {
  return Array.from({ length: n + 1 }, (_, i) => {
    const d = (dMax * i) / n;
    return { x: d, y: fitValue(fit, d) };
  });
}

/** Inputs of one over-optimisation plot: rewards against d = √KL for one optimisation method. */
export interface OveroptimisationPlot {
  /** 'RL (PPO)', 'best-of-n', … */
  method: string;
  /** measured gold reward against d (relative to the initial policy's, as the fits assume) */
  gold: readonly Point[];
  /** measured proxy reward against d, on the same scale */
  proxy: readonly Point[];
  goldFit?: Fit;
  proxyFit?: Fit;
  /** where the measured gold peaked, marked with a rule */
  goldPeak?: Point;
  caption?: string;
}

/**
 * Gold and proxy reward against √KL for one method, with Gao et al.'s fitted forms as dashed curves and
 * the gold peak marked: the proxy keeps rising while the gold turns down.
 */
export function overoptimisationChart(p: OveroptimisationPlot): LineChart {
  const dMax = Math.max(0, ...[...p.gold, ...p.proxy].filter(finite).map((q) => q.x)) * 1.05;
  const series: Series[] = [
    { name: 'gold (measured)', points: p.gold, style: 'points', color: PALETTE[0] },
    { name: 'proxy (measured)', points: p.proxy, style: 'points', color: PALETTE[1] },
  ];
  const fitName = (who: string, f: Fit) => `${who} fit (${f.form === 'bon' ? 'd(α − βd)' : 'd(α − β log d)'}, R² ${f.r2.toFixed(2)})`;
  if (p.goldFit && dMax > 0) series.push({ name: fitName('gold', p.goldFit), points: fitCurve(p.goldFit, dMax), style: 'line', dashed: true, color: PALETTE[0] });
  if (p.proxyFit && dMax > 0) series.push({ name: fitName('proxy', p.proxyFit), points: fitCurve(p.proxyFit, dMax), style: 'line', dashed: true, color: PALETTE[1] });
  const markers: Marker[] = p.goldPeak ? [{ x: p.goldPeak.x, label: `gold peak (√KL ${p.goldPeak.x.toFixed(2)})`, color: PALETTE[0] }] : [];
  const fitPeakNote = p.goldFit && fitPeak(p.goldFit) ? `; fitted gold peak at √KL ${fitPeak(p.goldFit)!.d.toFixed(2)}` : '';
  return {
    title: `${p.method}: gold and proxy reward vs √KL`,
    xTitle: 'd = √KL(π ‖ π_ref)',
    yTitle: 'reward − initial reward',
    series,
    markers,
    caption: p.caption ?? `Each point is a measurement; dashed curves are Gao et al.'s fitted forms${fitPeakNote}.`,
  };
}
