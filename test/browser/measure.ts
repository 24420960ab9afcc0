/**
 * Opening a report in Debian's chromium (playwright-core, offline) and measuring its plots — shared by the
 * browser tests.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Page } from 'playwright-core';

// dist/test/browser → the package root
const ROOT = join(import.meta.dirname, '..', '..', '..');
export const ARTIFACTS = join(ROOT, 'test-artifacts');
export const CHROMIUM = process.env['RLHF_CHROMIUM'] ?? '/usr/bin/chromium';

export interface PlotMeasure { title: string; rows: number; marks: number; width: number; height: number }

/**
 * Opens a report offline in chromium; checks every figure.plot is an <svg> of real size drawing at least
 * its data-rows marks, that the page has no script, no errors and fetches nothing; saves a screenshot.
 */
export async function openAndMeasure(file: string, screenshot: string, extra?: (page: Page) => Promise<void>): Promise<PlotMeasure[]> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
  try {
    const context = await browser.newContext({ offline: true, viewport: { width: 1100, height: 900 } });
    const page = await context.newPage();
    const requests: string[] = [];
    const errors: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });

    const plots = await page.$$eval('figure.plot', (figs) => figs.map((fig) => {
      const svg = fig.querySelector('svg');
      const box = svg?.getBoundingClientRect();
      // vega puts each data mark (a symbol's path, a line's path, a rule's line) directly in a g.role-mark;
      // axes, legends and titles use other roles. Text labels are not counted.
      const marks = svg ? [...svg.querySelectorAll('g.role-mark > path, g.role-mark > line, g.role-mark > rect, g.role-mark > circle')] : [];
      const drawn = marks.filter((m) => {
        const b = (m as unknown as { getBBox(): { width: number; height: number } }).getBBox();
        return b.width + b.height > 0;
      });
      return {
        title: fig.getAttribute('aria-label') ?? '',
        rows: Number(fig.getAttribute('data-rows')),
        marks: drawn.length,
        width: box?.width ?? 0,
        height: box?.height ?? 0,
      };
    }));
    assert.ok(plots.length > 0, 'the report has plots');
    for (const p of plots) {
      assert.ok(p.width > 100 && p.height > 100, `plot '${p.title}' is ${p.width}×${p.height} px`);
      assert.ok(p.marks >= p.rows && p.rows > 0, `plot '${p.title}': ${p.marks} marks drawn for ${p.rows} data rows`);
    }
    await extra?.(page);
    assert.deepEqual(await page.$$('script'), []);
    assert.deepEqual(errors, []);
    assert.deepEqual(requests.filter((u) => !u.startsWith('file:')), [], 'the report fetches nothing');

    await page.screenshot({ path: join(ARTIFACTS, screenshot), fullPage: true });
    assert.ok(existsSync(join(ARTIFACTS, screenshot)));
    return plots;
  } finally {
    await browser.close();
  }
}
