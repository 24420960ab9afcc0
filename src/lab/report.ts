/**
 * The lab's HTML report: one self-contained file (inline CSS and SVG, no scripts, no external URLs) that
 * opens offline. A report is plain data — a title, the run's facts and a list of sections, each with the
 * caller's paragraphs of what was observed, plots (rendered `Figure`s, see plots.ts), tables and sample
 * generations — so later experiments add sections without touching this file. Every piece of text is
 * HTML-escaped; the only markup not written here is the SVG that vega rendered.
 */
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Figure } from './plots.js';

/** A report table's cell. */
export type Cell = string | number | boolean | null;

/** A report table: a caption, column headers and rows. */
export interface Table {
  caption?: string;
  columns: readonly string[];
  rows: readonly (readonly Cell[])[];
}

/** One generation shown verbatim. */
export interface Sample {
  /** e.g. 'before', 'at the gold peak (step 40)', 'end' */
  label: string;
  prompt?: string;
  text: string;
  /** e.g. 'gold 0.81 · proxy 1.3' */
  note?: string;
}

/** A report section: its title, prose, figures, tables and samples. */
export interface Section {
  /** the anchor (letters, digits, '-'), unique in the report */
  id: string;
  title: string;
  /** what was observed, for someone who has not read the paper */
  paragraphs: readonly string[];
  plots?: readonly Figure[];
  tables?: readonly Table[];
  samples?: readonly Sample[];
}

/** The report's header: the run's config, seed, versions, hardware and (optionally) date. */
export interface ReportMeta {
  /** the run's configuration, printed as JSON */
  config: unknown;
  seed: number;
  /** e.g. { 'rlhf-ts': '0.1.0', node: 'v20…', libtorch: '1.13.1' } */
  versions: Readonly<Record<string, string>>;
  /** e.g. { cpu: 'AMD EPYC …', cores: 2, blas: 'openblas' } */
  hardware: Readonly<Record<string, string | number>>;
  /** when the run was made, as the caller wants it shown (left out for byte-identical reports) */
  date?: string;
}

/** A whole HTML report: its header and sections. */
export interface Report {
  title: string;
  /** the opening paragraphs: what the report shows, in a sentence or two */
  summary?: readonly string[];
  meta: ReportMeta;
  sections: readonly Section[];
}

const ESC: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text as HTML text or attribute value. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESC[c]!);
}

/** A number as a table shows it: integers whole, others to 4 significant digits. */
export function formatCell(v: Cell): string {
  if (v === null) return '—';
  if (typeof v !== 'number') return String(v);
  if (!Number.isFinite(v) || Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(3) : String(Number(v.toPrecision(4)));
}

const CSS = `
body{font:16px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;background:#fff;margin:0}
main{max-width:60rem;margin:0 auto;padding:1.5rem 1.25rem 4rem}
h1{font-size:1.8rem;margin:.5rem 0 1rem}h2{font-size:1.35rem;margin:2.5rem 0 .75rem;padding-top:.5rem;border-top:1px solid #ddd}
h3{font-size:1.05rem;margin:1.5rem 0 .5rem}
nav ol{margin:.25rem 0 1rem;padding-left:1.5rem}
.summary{font-size:1.05rem}
figure.plot{margin:1.25rem 0;padding:.5rem;border:1px solid #e4e4e4;border-radius:4px;overflow-x:auto}
figure.plot svg{max-width:100%;height:auto;display:block}
figcaption{font-size:.9rem;color:#555;margin-top:.35rem}
table{border-collapse:collapse;margin:1rem 0;font-size:.92rem;font-variant-numeric:tabular-nums}
caption{text-align:left;font-weight:600;padding-bottom:.35rem}
th,td{border:1px solid #ddd;padding:.3rem .6rem;text-align:left;vertical-align:top}
td.num{text-align:right}th{background:#f6f6f6}
.sample{margin:1rem 0}.sample h4{margin:0 0 .25rem;font-size:.95rem}
.sample .note{color:#555;font-weight:400}
pre{white-space:pre-wrap;word-wrap:break-word;background:#f7f7f5;border:1px solid #e6e6e0;border-radius:4px;padding:.6rem .8rem;margin:.25rem 0;font:.88rem/1.45 ui-monospace,Menlo,Consolas,monospace}
pre .prompt{color:#777}
`.trim();

const SECTION_ID = /^[A-Za-z0-9][A-Za-z0-9-]*$/;

function figureHtml(f: Figure): string {
  const svg = f.svg.trim();
  // The SVG is vega's output; refuse anything that would break "self-contained, no scripts".
  if (!svg.startsWith('<svg') || /<script|<foreignObject|<image|url\(\s*['"]?(?:https?:|\/\/)/i.test(svg)) {
    throw new Error(`plot '${f.title}': not a plain vega SVG (a script, foreign object, image or external URL)`);
  }
  if (!Number.isInteger(f.rows) || f.rows < 0) throw new Error(`plot '${f.title}': rows must be a non-negative integer, got ${f.rows}`);
  const caption = f.caption ? `<figcaption>${escapeHtml(f.caption)}</figcaption>` : '';
  return `<figure class="plot" data-rows="${f.rows}" aria-label="${escapeHtml(f.title)}">\n${svg}\n${caption}</figure>`;
}

function tableHtml(t: Table, header = true): string {
  const width = t.columns.length;
  t.rows.forEach((r, i) => {
    if (r.length !== width) throw new Error(`table '${t.caption ?? ''}': row ${i} has ${r.length} cells, the header ${width}`);
  });
  const head = `<tr>${t.columns.map((c) => `<th>${escapeHtml(c)}</th>`).join('')}</tr>`;
  const body = t.rows.map((r) => `<tr>${r.map((v) => `<td${typeof v === 'number' ? ' class="num"' : ''}>${escapeHtml(formatCell(v))}</td>`).join('')}</tr>`);
  const caption = t.caption ? `<caption>${escapeHtml(t.caption)}</caption>` : '';
  return `<table>${caption}${header ? `<thead>${head}</thead>` : ''}<tbody>\n${body.join('\n')}\n</tbody></table>`;
}

function sampleHtml(s: Sample): string {
  const note = s.note ? ` <span class="note">· ${escapeHtml(s.note)}</span>` : '';
  const prompt = s.prompt ? `<span class="prompt">${escapeHtml(s.prompt)}</span>` : '';
  return `<div class="sample"><h4>${escapeHtml(s.label)}${note}</h4><pre>${prompt}${escapeHtml(s.text)}</pre></div>`;
}

function sectionHtml(s: Section): string {
  const parts = [`<section id="${escapeHtml(s.id)}">`, `<h2>${escapeHtml(s.title)}</h2>`];
  for (const p of s.paragraphs) parts.push(`<p>${escapeHtml(p)}</p>`);
  for (const f of s.plots ?? []) parts.push(figureHtml(f));
  for (const t of s.tables ?? []) parts.push(tableHtml(t));
  if (s.samples?.length) {
    parts.push('<h3>Sample generations</h3>');
    for (const x of s.samples) parts.push(sampleHtml(x));
  }
  parts.push('</section>');
  return parts.join('\n');
}

function metaHtml(m: ReportMeta): string {
  const kv = (caption: string, o: Readonly<Record<string, string | number>>): string =>
    tableHtml({ caption, columns: ['', ''], rows: Object.entries(o).map(([k, v]) => [k, v]) }, false);
  const facts: Record<string, string | number> = { seed: m.seed };
  if (m.date !== undefined) facts['date'] = m.date;
  return [
    '<section id="run">',
    '<h2>The run</h2>',
    '<p>Everything needed to reproduce the numbers above: the same configuration and seed give the same report.</p>',
    kv('Run', facts),
    kv('Versions', m.versions),
    kv('Hardware', m.hardware),
    '<h3>Configuration</h3>',
    `<pre>${escapeHtml(JSON.stringify(m.config, null, 2) ?? 'null')}</pre>`,
    '</section>',
  ].join('\n');
}

/** The report as one self-contained HTML document. */
export function buildReport(report: Report): string {
  const ids = new Set<string>(['run']);
  for (const s of report.sections) {
    if (!SECTION_ID.test(s.id)) throw new Error(`section id '${s.id}': use letters, digits and '-' (it is the anchor)`);
    if (ids.has(s.id)) throw new Error(`section id '${s.id}' is used twice (or is the reserved 'run')`);
    ids.add(s.id);
  }
  const toc = [...report.sections, { id: 'run', title: 'The run' }].map((s) => `<li><a href="#${escapeHtml(s.id)}">${escapeHtml(s.title)}</a></li>`);
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(report.title)}</title>`,
    `<style>${CSS}</style>`,
    '</head>',
    '<body><main>',
    `<h1>${escapeHtml(report.title)}</h1>`,
    ...(report.summary ?? []).map((p) => `<p class="summary">${escapeHtml(p)}</p>`),
    `<nav><ol>${toc.join('')}</ol></nav>`,
    ...report.sections.map(sectionHtml),
    metaHtml(report.meta),
    '</main></body>',
    '</html>',
    '',
  ].join('\n');
}

/**
 * Writes the report (or its built HTML) to `path` atomically: a temporary file beside it, then a rename,
 * so a reader (or a rerun after an interruption) never sees half a report. Creates the directory.
 */
export function writeReport(path: string, report: Report | string): void {
  const html = typeof report === 'string' ? report : buildReport(report);
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, html);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}
