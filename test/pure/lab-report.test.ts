/**
 * Plots and the HTML report, without a browser: SVG is rendered headless and byte-deterministic, each
 * figure carries the marks its data asks for, every piece of text is escaped, the document is
 * self-contained, and the file is written atomically. (test/browser/report.test.ts opens it in chromium.)
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fitOveroptimisation } from '../../src/lab/fit.js';
import { lineChartSpec, overoptimisationChart, renderChart, type Figure, type LineChart } from '../../src/lab/plots.js';
import { buildReport, escapeHtml, formatCell, writeReport, type Report } from '../../src/lab/report.js';

const EVIL = '<script>alert("x")</script> & \'q\'';

const steps: LineChart = {
  title: `loss ${EVIL}`,
  xTitle: 'step',
  yTitle: 'value',
  series: [
    { name: 'a', points: [{ x: 0, y: 1 }, { x: 1, y: 0.5 }, { x: 2, y: NaN }, { x: 3, y: 0.2 }] },
    { name: `b ${EVIL}`, points: [{ x: 0, y: 0.3 }, { x: 1, y: 0.4 }], style: 'points' },
    { name: 'c', points: [{ x: 0, y: 0 }, { x: 3, y: 1 }], style: 'line', dashed: true },
  ],
  markers: [{ x: 1.5, label: `peak ${EVIL}` }],
};

function report(plots: Figure[]): Report {
  return {
    title: `Report ${EVIL}`,
    summary: [`summary ${EVIL}`],
    meta: { config: { key: EVIL }, seed: 7, versions: { node: 'v20', evil: EVIL }, hardware: { cores: 2, cpu: EVIL } },
    sections: [{
      id: 'over-opt',
      title: `Section ${EVIL}`,
      paragraphs: [`para ${EVIL}`],
      plots,
      tables: [{ caption: `table ${EVIL}`, columns: ['step', `gold ${EVIL}`], rows: [[1, 0.123456], [2, null], [EVIL, true]] }],
      samples: [{ label: `end ${EVIL}`, prompt: 'Once upon a time', text: `, there was ${EVIL}\nand more`, note: `gold ${EVIL}` }],
    }],
  };
}

describe('plots', () => {
  test('rows: one per point of a points / line+points series, one per line series and marker; non-finite dropped', () => {
    assert.equal(lineChartSpec(steps).rows, 3 + 2 + 1 + 1);
  });

  test('SVG is rendered headless, byte-identical on repeat, with text escaped', async () => {
    const a = await renderChart(steps);
    const b = await renderChart(steps);
    assert.equal(a.svg, b.svg);
    assert.ok(a.svg.startsWith('<svg'));
    assert.ok(!a.svg.includes('<script'), 'vega escapes titles and legend labels');
    assert.equal(a.rows, 7);
  });

  test('the over-optimisation chart: measured points, dashed fits, the gold peak', async () => {
    const ds = [0.5, 1, 1.5, 2, 2.5, 3];
    const gold = ds.map((d) => ({ x: d, y: d * (0.8 - 0.4 * Math.log(d)) }));
    const proxy = ds.map((d) => ({ x: d, y: d * (0.8 - 0.05 * Math.log(d)) }));
    const chart = overoptimisationChart({
      method: 'RL', gold, proxy,
      goldFit: fitOveroptimisation('rl', ds, gold.map((p) => p.y)),
      proxyFit: fitOveroptimisation('rl', ds, proxy.map((p) => p.y)),
      goldPeak: gold[2],
    });
    assert.equal(chart.series.length, 4);
    assert.equal(lineChartSpec(chart).rows, 6 + 6 + 1 + 1 + 1);
    assert.match(chart.caption!, /fitted gold peak at √KL 2\.72/); // exp(0.8/0.4 − 1) = e
    const f = await renderChart(chart);
    assert.match(f.svg, /gold peak/);
  });

  test('bad charts: duplicate series names, nothing finite', () => {
    assert.throws(() => lineChartSpec({ ...steps, series: [steps.series[0]!, steps.series[0]!] }), /share a name/);
    assert.throws(() => lineChartSpec({ ...steps, series: [{ name: 'x', points: [{ x: NaN, y: 1 }] }], markers: [] }), /no finite data/);
  });
});

describe('report', () => {
  test('escapeHtml and table numbers', () => {
    assert.equal(escapeHtml(EVIL), '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39;');
    assert.deepEqual([0.123456, 3, 1234567.8, 0.00001234, null, true, 'x'].map(formatCell), ['0.1235', '3', '1.235e+6', '1.234e-5', '—', 'true', 'x']);
  });

  test('every piece of text is escaped; self-contained; deterministic', async () => {
    const fig = await renderChart(steps);
    const html = buildReport(report([fig]));
    assert.equal(html, buildReport(report([fig])));
    // The one literal '<script' is nowhere: not in the title, summary, section, table, sample, meta or SVG.
    assert.ok(!/<script/i.test(html), 'an unescaped <script> got through');
    assert.equal((html.match(/&lt;script&gt;/g) ?? []).length >= 10, true);
    // no external resources: no <link>, <img>, src=, @import, and every href is an in-page anchor
    assert.ok(!/<link|<img|\ssrc=|@import/i.test(html));
    for (const m of html.matchAll(/href="([^"]*)"/g)) assert.match(m[1]!, /^#/);
    assert.match(html, /<figure class="plot" data-rows="7"/);
    assert.match(html, /<pre><span class="prompt">Once upon a time<\/span>, there was &lt;script&gt;/);
    assert.match(html, /<td class="num">0\.1235<\/td>/);
    assert.match(html, /<section id="run">/);
    assert.match(html, /&quot;key&quot;: &quot;&lt;script&gt;/); // config JSON, escaped
  });

  test('bad sections and plots are refused', () => {
    const base = report([]);
    const withSection = (s: Partial<Report['sections'][0]>) => ({ ...base, sections: [{ ...base.sections[0]!, ...s }] });
    assert.throws(() => buildReport(withSection({ id: 'has space' })), /section id 'has space'/);
    assert.throws(() => buildReport({ ...base, sections: [base.sections[0]!, base.sections[0]!] }), /used twice/);
    assert.throws(() => buildReport(withSection({ id: 'run' })), /reserved/);
    const evilSvg: Figure = { title: 't', caption: '', svg: '<svg><script>x</script></svg>', rows: 0 };
    assert.throws(() => buildReport(withSection({ plots: [evilSvg] })), /not a plain vega SVG/);
    assert.throws(() => buildReport(withSection({ plots: [{ ...evilSvg, svg: '<p>no</p>' }] })), /not a plain vega SVG/);
    assert.throws(() => buildReport(withSection({ tables: [{ columns: ['a', 'b'], rows: [[1]] }] })), /row 0 has 1 cells/);
  });

  test('writeReport: atomic replace, no temporary file left, directory created', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lab-report-'));
    try {
      const path = join(dir, 'sub', 'report.html');
      writeReport(path, report([]));
      assert.equal(readFileSync(path, 'utf8'), buildReport(report([])));
      writeFileSync(path, 'old half-written');
      writeReport(path, '<!DOCTYPE html>new');
      assert.equal(readFileSync(path, 'utf8'), '<!DOCTYPE html>new');
      assert.deepEqual(readdirSync(join(dir, 'sub')), ['report.html']);
      // a failed write (the path is a directory) leaves no temporary file behind
      assert.throws(() => writeReport(join(dir, 'sub'), 'x'));
      assert.deepEqual(readdirSync(dir), ['sub']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
